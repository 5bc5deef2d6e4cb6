"""A Nuclio-dashboard-compatible HTTP gateway: CVAT talks to it as to Nuclio.

CVAT's lambda manager, with ``CVAT_NUCLIO_INVOKE_METHOD=dashboard``, lists functions with
``GET /api/functions`` and invokes them with ``POST /api/function_invocations`` and the
``x-nuclio-function-name`` header (contract §3). This app answers those, plus readiness,
metrics and hot reload, without Docker or Nuclio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from imagine_assist.functions.render import function_config
from imagine_assist.nuclio.cvat_requests import answer
from imagine_assist.nuclio.hosting import FunctionHost, model_version
from imagine_assist.nuclio.metrics import GatewayMetrics
from imagine_assist.nuclio.protocol import (
    ERRORS_WITH_A_STATUS,
    HTTPError,
    error_body,
    parse_body,
    status_for,
)

log = logging.getLogger(__name__)

PROJECT = "cvat"
TOKEN_HEADER = "x-imagine-assist-token"
TOKEN_ENV = "IMAGINE_ASSIST_TOKEN"
UNGUARDED = ("/api/healthz",)


def client_headers() -> dict:
    """What our own clients (reload, usage counters) send: the token, when one is set."""
    token = os.environ.get(TOKEN_ENV)
    return {TOKEN_HEADER: token} if token else {}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status)


class Gateway:
    """The state behind the routes: hosts, worker pool, limits, metrics, access log."""

    def __init__(
        self,
        hosts: Mapping[str, FunctionHost],
        *,
        port: int = 8070,
        token: str | None = None,
        workers: int = 1,
        queue: int = 16,
        timeout_s: float | None = None,
        access_log: Path | None = None,
    ) -> None:
        self.hosts = dict(hosts)
        self.port = port
        self.token = token
        self.timeout_s = timeout_s
        self.metrics = GatewayMetrics()
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="infer")
        # Slots bound the requests admitted at once (running or waiting for a worker). A
        # request takes its slot before its body is read, so a burst waits in the sockets
        # instead of in memory, and a slot frees only when its worker is done.
        self.slots = threading.BoundedSemaphore(workers + queue)
        self.access_log = access_log
        self._log_lock = threading.Lock()
        # line-buffered: each record reaches the file when written, without a reopen
        self._access_file = access_log.open("a", buffering=1) if access_log else None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self._access_file is not None:
            with self._log_lock:
                self._access_file.close()
                self._access_file = None

    # --- access -------------------------------------------------------------------------
    def authorised(self, request: Request) -> bool:
        if not self.token or request.url.path in UNGUARDED:
            return True
        sent = request.headers.get(TOKEN_HEADER) or ""
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            sent = sent or bearer[7:]
        return hmac.compare_digest(sent.encode(), self.token.encode())

    def write_access(self, record: dict) -> None:
        line = json.dumps(record)
        if log.isEnabledFor(logging.INFO):
            log.info("%s", line)
        if self._access_file is not None:
            with self._log_lock:
                self._access_file.write(line + "\n")

    # --- listing ------------------------------------------------------------------------
    def config(self, host: FunctionHost) -> dict:
        config = function_config(host.spec)
        config["metadata"]["labels"] = {"nuclio.io/project-name": PROJECT}
        config["metadata"]["annotations"] = dict(config["metadata"]["annotations"])
        config["metadata"]["annotations"]["spec"] = str(config["metadata"]["annotations"]["spec"])
        status = host.status
        state = {"ready": "ready", "loading": "building", "failed": "error"}[status.state]
        config["status"] = {"state": state, "httpPort": self.port}
        if status.message:
            config["status"]["message"] = status.message
        return config

    # --- invocation ---------------------------------------------------------------------
    async def read_body(self, request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPError(
                413,
                f"the body is {int(declared):,} bytes, over the limit of "
                f"{limit:,}; send a smaller image",
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"the body is over the limit of {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def acquire_slot(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.slots.acquire(blocking=False):
            if time.monotonic() > deadline:
                raise HTTPError(503, "the gateway is busy; retry in a moment")
            await asyncio.sleep(0.005)

    async def invoke(self, host: FunctionHost, request: Request) -> list | dict:
        timeout_s = self.timeout_s or host.spec.event_timeout_s
        await self.acquire_slot(timeout_s)
        released = False
        try:
            body = parse_body(await self.read_body(request, host.spec.max_body_bytes))
            function = host.current()  # kept to the end: a reload does not touch this request
            future = self.pool.submit(answer, function, body)
            # the slot stays taken until the worker finishes, even past a timeout
            future.add_done_callback(lambda _: self.slots.release())
            released = True
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
            except TimeoutError:
                raise HTTPError(
                    504,
                    f"{host.spec.id} took longer than {timeout_s:g} s; raise the timeout "
                    "(imagine-assist serve --timeout) or send a smaller image",
                ) from None
        finally:
            if not released:
                self.slots.release()


def create_app(gateway: Gateway, load_on_start: bool = True) -> Starlette:
    async def healthz(request: Request) -> Response:
        statuses = {name: host.status for name, host in gateway.hosts.items()}
        states = {name: status.state for name, status in statuses.items()}
        models = {
            name: {"model": status.model, "version": model_version(status.model)}
            for name, status in statuses.items()
        }
        ready = all(state == "ready" for state in states.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "functions": states, "models": models},
            status_code=200 if ready else 503,
        )

    async def list_functions(request: Request) -> Response:
        project = request.headers.get("x-nuclio-project-name")
        if project and project != PROJECT:
            return JSONResponse({})
        return JSONResponse({name: gateway.config(h) for name, h in gateway.hosts.items()})

    def host_named(name: str) -> FunctionHost:
        if not name:
            raise HTTPError(400, "name the function in the x-nuclio-function-name header")
        if name not in gateway.hosts:
            raise HTTPError(
                404, f"no function {name!r} here; this gateway serves {', '.join(gateway.hosts)}"
            )
        return gateway.hosts[name]

    async def get_function(request: Request) -> Response:
        return JSONResponse(gateway.config(host_named(request.path_params["name"])))

    async def invoke(request: Request) -> Response:
        host = host_named(request.headers.get("x-nuclio-function-name", ""))
        return JSONResponse(await gateway.invoke(host, request))

    async def reload(request: Request) -> Response:
        host = host_named(request.path_params["name"])
        status = await asyncio.get_running_loop().run_in_executor(None, host.load)
        if status.state != "ready":
            current = host.status
            return error(
                422,
                f"the new model could not be loaded ({status.message}); "
                f"{host.spec.id} is {current.state}"
                + (f" with {current.model}" if current.model else ""),
            )
        return JSONResponse(
            {
                "function": host.spec.id,
                "state": status.state,
                "model": status.model,
                "version": model_version(status.model),
            }
        )

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(gateway.metrics.render(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(app: Starlette):
        if load_on_start:
            for host in gateway.hosts.values():
                host.load_in_background()
        loop = asyncio.get_running_loop()
        try:  # SIGHUP reloads every function, as `kill -HUP` users expect
            loop.add_signal_handler(
                signal.SIGHUP, lambda: [h.load_in_background() for h in gateway.hosts.values()]
            )
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests) or not a POSIX platform
        yield
        gateway.close()

    async def answer_error(request: Request, failure: Exception) -> Response:
        function = request.headers.get("x-nuclio-function-name", "")
        status, message = status_for(
            failure, function if function in gateway.hosts else "the gateway"
        )
        if status == 500:  # a fault of ours, unlike the known states answered 503 or 504
            log.error(
                "unexpected error on %s %s", request.method, request.url.path, exc_info=failure
            )
        return error(status, message)

    return Starlette(
        routes=[
            Route("/api/healthz", healthz),
            Route("/api/functions", list_functions),
            Route("/api/functions/{name}", get_function),
            Route("/api/functions/{name}/reload", reload, methods=["POST"]),
            Route("/api/function_invocations", invoke, methods=["POST"]),
            Route("/metrics", metrics),
        ],
        middleware=[Middleware(GuardAndLog, gateway=gateway)],
        # Starlette sends a plain Exception to its last-resort middleware, which logs and
        # re-raises it; the errors with a status are named so that they are just answered
        exception_handlers={Exception: answer_error}
        | {kind: answer_error for kind in ERRORS_WITH_A_STATUS},
        lifespan=lifespan,
    )


class GuardAndLog:
    """Token check, per-function metrics and the access log, around every request."""

    def __init__(self, app, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        started = time.perf_counter()
        state = {"status": 500, "noted": False}

        async def send_and_note(message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # noted before the last bytes go out, so a client that has its answer
                # also finds it in the metrics and the access log
                state["noted"] = True
                self.note(request, state["status"], time.perf_counter() - started)
            await send(message)

        try:
            if self.gateway.authorised(request):
                await self.app(scope, receive, send_and_note)
            else:
                await error(401, f"send the gateway token in the {TOKEN_HEADER} header")(
                    scope, receive, send_and_note
                )
        finally:
            if not state["noted"]:
                self.note(request, state["status"], time.perf_counter() - started)

    def note(self, request: Request, status: int, seconds: float) -> None:
        function = request.headers.get("x-nuclio-function-name", "")
        if request.url.path == "/api/function_invocations" and function in self.gateway.hosts:
            self.gateway.metrics.observe(function, status, seconds)
        self.gateway.write_access(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "client": request.client.host if request.client else "",
                "method": request.method,
                "path": request.url.path,
                "function": function,
                "status": status,
                "ms": round(seconds * 1000, 1),
                "user_agent": request.headers.get("user-agent", ""),
            }
        )
