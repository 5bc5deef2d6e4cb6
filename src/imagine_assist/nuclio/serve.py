"""`imagine-assist serve`: run the gateway with uvicorn."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import FUNCTIONS, get_spec, load_function
from imagine_assist.home import Home
from imagine_assist.nuclio.gateway import Gateway, create_app
from imagine_assist.nuclio.hosting import FunctionHost

log = logging.getLogger(__name__)

TOKEN_ENV = "IMAGINE_ASSIST_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def build_hosts(function_ids: list[str] | None, models_dir: str | Path | None) -> dict:
    """One host per function; each load resolves the model anew, so a reload picks up a
    newly installed version."""
    ids = function_ids or list(FUNCTIONS)
    return {
        function_id: FunctionHost(
            get_spec(function_id),
            functools.partial(load_function, function_id, None, models_dir),
        )
        for function_id in ids
    }


def serve(
    host: str = "127.0.0.1",
    port: int = 8070,
    function_ids: list[str] | None = None,
    models_dir: str | Path | None = None,
    workers: int = 1,
    timeout_s: float | None = None,
    access_log: Path | None = None,
) -> None:
    import uvicorn

    token = os.environ.get(TOKEN_ENV) or None
    if host not in LOOPBACK and not token:
        log.warning(
            "serving on %s without a token: anyone who reaches this port can run the models. "
            "Set %s, or bind to 127.0.0.1 behind a reverse proxy.",
            host,
            TOKEN_ENV,
        )
    if not 1 <= port <= 65535:
        raise UserError(f"port {port} is not a TCP port")
    access_log = access_log or Home.resolve().root / "logs" / "gateway-access.jsonl"
    access_log.parent.mkdir(parents=True, exist_ok=True)
    gateway = Gateway(
        build_hosts(function_ids, models_dir),
        port=port,
        token=token,
        workers=workers,
        timeout_s=timeout_s,
        access_log=access_log,
    )
    print(
        f"imagine-assist gateway on http://{host}:{port} serving {', '.join(gateway.hosts)}; "
        f"access log {access_log}"
    )
    uvicorn.run(create_app(gateway), host=host, port=port, access_log=False, log_level="info")
