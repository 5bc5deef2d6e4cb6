"""The Nuclio side of a function: `init_context` loads the model once, `handler` answers.

Each generated ``serverless/<id>/main.py`` is a few lines that delegate here, so the
transport (body decoding, CVAT's request per kind, errors, JSON responses) exists once for
every function.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import get_spec, load_function
from imagine_assist.functions.render import MODEL_ENV, MODELS_ENV, MODELS_MOUNT
from imagine_assist.models.store import live_model
from imagine_assist.nuclio.cvat_requests import answer
from imagine_assist.nuclio.protocol import error_body, parse_body, status_for


class NuclioFunction:
    def __init__(self, function_id: str) -> None:
        self.spec = get_spec(function_id)

    def init_context(self, context) -> None:
        weights = os.environ.get(MODEL_ENV) or None
        models_dir = os.environ.get(MODELS_ENV, MODELS_MOUNT)
        function = load_function(self.spec.id, weights=weights, models_dir=models_dir)
        context.user_data.function = function
        model = weights or live_model_name(self.spec, models_dir)
        context.logger.info_with("model loaded", function=self.spec.id, model=model)

    def handler(self, context, event):
        try:
            body = parse_body(event.body)
            result = answer(context.user_data.function, body)
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


def live_model_name(spec, models_dir: str) -> str:
    """What the log should say was loaded: the live model's file and version."""
    try:
        live = live_model(spec.family, models_dir, name=Path(spec.model_file).stem)
    except UserError:
        return "none (a function without a model of its own)"
    return f"{live.path} ({live.source})"


def _json(context, payload, status: int):
    return context.Response(
        body=json.dumps(payload), headers={}, content_type="application/json", status_code=status
    )
