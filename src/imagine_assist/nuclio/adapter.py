"""The Nuclio side of a function: `init_context` loads the model once, `handler` answers.

Each generated ``serverless/<id>/main.py`` is a few lines that delegate here, so the
transport (body decoding, errors, JSON responses) exists once for every function.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

from imagine_assist.functions.catalog import get_spec, load_function
from imagine_assist.functions.render import MODEL_ENV, container_model_path
from imagine_assist.nuclio.protocol import error_body, parse_body, status_for


class NuclioFunction:
    def __init__(self, function_id: str) -> None:
        self.spec = get_spec(function_id)

    def init_context(self, context) -> None:
        path = Path(
            os.environ.get(MODEL_ENV)
            or container_model_path(self.spec.family, self.spec.model_file)
        )
        context.user_data.function = load_function(self.spec.id, weights=path)
        context.logger.info_with("model loaded", function=self.spec.id, model=str(path))

    def handler(self, context, event):
        try:
            body = parse_body(event.body)
            result = context.user_data.function.handle(body)
            return _json(context, result, 200)
        except Exception as error:  # the worker must keep serving whatever one request does
            status, message = status_for(error, self.spec.id)
            if status >= 500:
                context.logger.error_with(
                    "request failed", function=self.spec.id, traceback=traceback.format_exc()
                )
            else:
                context.logger.warn_with("bad request", function=self.spec.id, error=message)
            return _json(context, error_body(status, message), status)


def _json(context, payload, status: int):
    return context.Response(
        body=json.dumps(payload), headers={}, content_type="application/json", status_code=status
    )
