"""The Nuclio side of a function: `init_context` loads the model once, `handler` answers.

Each generated ``serverless/<id>/main.py`` is a few lines that delegate here, so the
transport (body decoding, errors, JSON responses) exists once for every function.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

from imagine_assist.errors import BadRequest
from imagine_assist.functions.catalog import get_spec, load_function
from imagine_assist.functions.requests import parse_body

MODEL_ENV = "IMAGINE_ASSIST_MODEL"
MODELS_MOUNT = "/opt/nuclio/models"


def container_model_path(family: str, model_file: str = "model.onnx") -> str:
    """Where a deployed function finds its model: the models volume is mounted read-only."""
    return f"{MODELS_MOUNT}/{family}/{model_file}"


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
        except BadRequest as error:
            context.logger.warn_with("bad request", function=self.spec.id, error=str(error))
            return _json(context, {"message": str(error)}, error.status_code)
        except Exception as error:  # the worker must keep serving whatever one request does
            context.logger.error_with(
                "request failed", function=self.spec.id, traceback=traceback.format_exc()
            )
            message = (
                f"{self.spec.id} failed on this request ({type(error).__name__}); "
                "see the function log"
            )
            return _json(context, {"message": message}, 500)


def _json(context, payload, status: int):
    return context.Response(
        body=json.dumps(payload), headers={}, content_type="application/json", status_code=status
    )
