"""`imagine-assist serve`: run the gateway with uvicorn."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import FUNCTIONS, get_spec, load_function
from imagine_assist.home import Home
from imagine_assist.nuclio.gateway import TOKEN_ENV, Gateway, create_app
from imagine_assist.nuclio.hosting import FunctionHost

log = logging.getLogger(__name__)

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


@contextlib.contextmanager
def background_server(
    gateway: Gateway, host: str = "127.0.0.1", wait_ready: bool = True, timeout_s: float = 120.0
) -> Iterator[str]:
    """Run the gateway on a free port in a thread; yields its base URL (tests, benchmarks)."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind((host, 0))
        gateway.port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(gateway), host=host, port=gateway.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="gateway")
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        while wait_ready and any(h.status.state == "loading" for h in gateway.hosts.values()):
            if time.monotonic() > deadline:
                raise RuntimeError("the models did not load in time")
            time.sleep(0.05)
        yield f"http://{host}:{gateway.port}"
    finally:
        server.should_exit = True
        thread.join(10)


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
