"""The Nuclio side of a function: `init_context` loads the model once, `handler` answers.

Each generated ``serverless/<id>/main.py`` is a few lines that delegate here, so the
transport (body decoding, CVAT's request per kind, errors, JSON responses) exists once for
every function.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import get_spec, load_function
from imagine_assist.functions.render import MODEL_ENV, MODELS_ENV, MODELS_MOUNT
from imagine_assist.models.store import live_model, live_model_stamp
from imagine_assist.nuclio.cvat_requests import answer
from imagine_assist.nuclio.hosting import WATCH_MODELS_S
from imagine_assist.nuclio.protocol import error_body, parse_body, status_for


class NuclioFunction:
    def __init__(self, function_id: str) -> None:
        self.spec = get_spec(function_id)

    def init_context(self, context) -> None:
        weights = os.environ.get(MODEL_ENV) or None
        models_dir = os.environ.get(MODELS_ENV, MODELS_MOUNT)
        # the live model is followed (a promotion serves without a redeploy); one named is not
        context.user_data.models_dir = None if weights else models_dir
        context.user_data.stamp = None if weights else self._stamp(models_dir)
        context.user_data.looked = time.monotonic()
        function = load_function(self.spec.id, weights=weights, models_dir=models_dir)
        context.user_data.function = function
        model = weights or live_model_name(self.spec, models_dir)
        context.logger.info_with("model loaded", function=self.spec.id, model=model)

    def _stamp(self, models_dir: str) -> object:
        try:
            return live_model_stamp(self.spec.family, models_dir)
        except OSError as error:
            return f"unreadable: {error}"

    def follow_the_live_model(self, context) -> None:
        """Every WATCH_MODELS_S, before a request: if the mounted models folder names another
        live model (a promotion or rollback since this worker loaded), load it; a model that
        fails to load leaves the one serving, logged, and is not tried again until the
        folder changes again."""
        data = context.user_data
        models_dir = getattr(data, "models_dir", None)
        if models_dir is None or time.monotonic() - data.looked < WATCH_MODELS_S:
            return
        data.looked = time.monotonic()
        stamp = self._stamp(models_dir)
        if stamp == data.stamp:
            return
        data.stamp = stamp
        try:
            data.function = load_function(self.spec.id, models_dir=models_dir)
        except Exception as error:  # the worker serves on with the model it has
            context.logger.error_with(
                "the new live model did not load; serving the previous one",
                function=self.spec.id,
                error=str(error),
            )
            return
        model = live_model_name(self.spec, models_dir)
        context.logger.info_with("model reloaded", function=self.spec.id, model=model)

    def handler(self, context, event):
        self.follow_the_live_model(context)
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
