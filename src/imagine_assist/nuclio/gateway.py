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
import math
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from imagine_assist.functions.render import function_config
from imagine_assist.nuclio.cvat_requests import answer
from imagine_assist.nuclio.hosting import FunctionHost, ModelWatch, model_version
from imagine_assist.nuclio.metrics import GatewayMetrics
from imagine_assist.nuclio.protocol import (
    CLIENT_GONE,
    ERRORS_WITH_A_STATUS,
    ClientGone,
    HTTPError,
    clip,
    error_body,
    parse_body,
    status_for,
)

log = logging.getLogger(__name__)

PROJECT = "cvat"
TOKEN_HEADER = "x-imagine-assist-token"
TOKEN_ENV = "IMAGINE_ASSIST_TOKEN"
UNGUARDED = ("/api/healthz",)
BODY_TIMEOUT_S = 20.0  # for the whole body, before and apart from the function's timeout
BODY_BUDGET_BYTES = 256 * 2**20  # request bodies held at once: arriving, queued or running


def client_headers() -> dict:
    """What our own clients (reload, usage counters) send: the token, when one is set."""
    token = os.environ.get(TOKEN_ENV)
    return {TOKEN_HEADER: token} if token else {}


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


class Admission:
    """Who runs next: at most `workers` requests run and up to `queue` more wait their turn,
    in arrival order, in the worker pool's own FIFO queue; a request that finds the queue
    full is refused at once. A request leaves when its call returns, or when it is
    cancelled while still waiting (its deadline passed, or its client left)."""

    def __init__(self, workers: int, queue: int) -> None:
        self.workers = workers
        self.queue = queue
        self.pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="infer")
        self.admitted = 0  # running or waiting
        self.mean_s = 0.1  # running mean of the time a call holds a worker
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        return max(0, self.admitted - self.workers)

    def retry_after_s(self) -> int:
        """Seconds until the queue as it stands now has drained, at the mean service time."""
        return max(1, math.ceil(self.mean_s * max(1, self.admitted) / self.workers))

    def busy(self, message: str) -> HTTPError:
        retry = self.retry_after_s()
        return HTTPError(503, f"{message}; retry in {retry} s", {"Retry-After": str(retry)})

    def submit(self, call: Callable, *args) -> concurrent.futures.Future:
        with self._lock:
            if self.admitted >= self.workers + self.queue:
                raise self.busy(
                    f"the gateway is busy: {self.workers} running and {self.queue} waiting"
                )
            self.admitted += 1
        try:
            future = self.pool.submit(self._timed, call, *args)
        except BaseException:
            self._leave(None)
            raise
        future.add_done_callback(self._leave)
        return future

    def _timed(self, call: Callable, *args):
        started = time.monotonic()
        try:
            return call(*args)
        finally:
            with self._lock:
                self.mean_s = 0.8 * self.mean_s + 0.2 * (time.monotonic() - started)

    def _leave(self, _future) -> None:
        with self._lock:
            self.admitted -= 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class BodyBudget:
    """The bytes of request bodies held at once, arriving, waiting or running: bodies are
    read before a request queues, so this, not the queue, bounds their memory. Lives on the
    event loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int, retry_after_s: int) -> None:
        if self.held + size > self.limit:
            raise HTTPError(
                503,
                f"the gateway holds {self.held / 2**20:.0f} MiB of other requests' bodies, "
                f"its limit is {self.limit / 2**20:.0f} MiB; retry in {retry_after_s} s",
                {"Retry-After": str(retry_after_s), "Connection": "close"},
            )
        self.held += size

    def give(self, size: int) -> None:
        self.held -= size


async def client_gone(receive: Callable[[], Awaitable[dict]]) -> None:
    """Returns when the client has closed its connection (its body was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


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
        body_timeout_s: float = BODY_TIMEOUT_S,
        body_budget_bytes: int = BODY_BUDGET_BYTES,
        access_log: Path | None = None,
        watch_models_s: float | None = None,
        find_hosts: Callable[[], Mapping[str, FunctionHost]] | None = None,
    ) -> None:
        self.hosts = dict(hosts)
        # every function there is now (serving them all): a family created while the
        # gateway runs is served from the next SIGHUP
        self.find_hosts = find_hosts
        # seconds between looks for a live model changed on disk (None: only reloads asked for)
        self.watch_models_s = watch_models_s
        self.port = port
        self.token = token
        self.timeout_s = timeout_s
        self.body_timeout_s = body_timeout_s
        self.metrics = GatewayMetrics()
        # A request joins the queue only once its whole body has arrived, so a slow client
        # holds its connection and nothing else; a worker frees only when its call returns,
        # also after a 504, so runaway requests cannot pile up threads.
        self.admission = Admission(workers, queue)
        self.bodies = BodyBudget(body_budget_bytes)
        self.access_log = access_log
        self._log_lock = threading.Lock()
        # line-buffered: each record reaches the file when written, without a reopen
        self._access_file = access_log.open("a", buffering=1) if access_log else None
        self._access_failing = self._access_closed = False

    def take_new_functions(self) -> list[str]:
        """Host the functions created since the gateway started (a family made by
        `families create`), loading each; the ids taken. The mapping is replaced, not
        changed, so a request reading the old one is never disturbed."""
        if self.find_hosts is None:
            return []
        new = {
            function_id: host
            for function_id, host in self.find_hosts().items()
            if function_id not in self.hosts
        }
        if new:
            self.hosts = {**self.hosts, **new}
            log.info("serving new functions: %s", ", ".join(new))
        return list(new)

    def reload_all(self) -> None:
        """What SIGHUP does: take new functions, and load every function's model anew."""
        try:
            self.take_new_functions()
        except Exception:  # a family file being written: the next SIGHUP takes it
            log.exception("looking for new functions failed")
        for host in self.hosts.values():
            host.load_in_background()

    def close(self) -> None:
        self.admission.close()
        with self._log_lock:
            self._access_closed = True
            if self._access_file is not None:
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
        if self.access_log is None:
            return
        with self._log_lock:
            if self._access_closed:
                return
            try:
                self._reopen_if_rotated()
                self._access_file.write(line + "\n")
                self._access_failing = False
            except (OSError, ValueError) as error:
                # the log is the report's, never a reason to break an answer (this runs
                # before the answer's last bytes go out); said once, tried again next time
                if not self._access_failing:
                    log.warning("cannot write the access log %s: %s", self.access_log, error)
                self._access_failing = True
                self._access_file = None

    def _reopen_if_rotated(self) -> None:
        """logrotate moves the log aside and makes a new one (or the user deletes it): the
        open file would take every later line into the moved or deleted one, out of the
        report. One stat a request; nothing to configure (no copytruncate, no signal)."""
        if self._access_file is not None:
            try:
                current = os.stat(self.access_log)
                if os.path.samestat(current, os.fstat(self._access_file.fileno())):
                    return
            except OSError:  # gone: made anew below
                pass
            self._access_file.close()
            self._access_file = None
        self._access_file = self.access_log.open("a", buffering=1)

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
    async def read_body(self, request: Request, limit: int, taken: list[int]) -> bytes:
        """The whole body within `body_timeout_s`, or a 408, 413 or 503 that closes the
        connection (the rest of the body is never read). The bytes it holds, as they
        arrive, are added to `taken[0]` and to the gateway's body budget."""
        close = {"Connection": "close"}
        retry_after_s = self.admission.retry_after_s()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and len(declared) < 20:
            if int(declared) > limit:
                raise HTTPError(
                    413,
                    f"the body is {int(declared):,} bytes, over the limit of "
                    f"{limit:,}; send a smaller image",
                    close,
                )
            # nothing is taken from the budget for a length only declared: headers that
            # promise 32 MiB and send nothing would hold it for nobody
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HTTPError(
                            413, f"the body is over the limit of {limit:,} bytes", close
                        )
                    # the budget counts the bytes held, as they arrive
                    self.bodies.take(size - taken[0], retry_after_s)
                    taken[0] = size
                    chunks.append(chunk)
        except TimeoutError:
            raise HTTPError(
                408,
                f"the body did not arrive within {self.body_timeout_s:g} s "
                f"({size:,} bytes came); send it at once",
                close,
            ) from None
        except ClientDisconnect:
            raise ClientGone() from None
        return b"".join(chunks)

    async def invoke(self, host: FunctionHost, request: Request) -> list | dict:
        taken = [0]
        try:
            body = parse_body(await self.read_body(request, host.spec.max_body_bytes, taken))
            return await self.run(host, request, body)
        finally:
            self.bodies.give(taken[0])

    async def run(self, host: FunctionHost, request: Request, body: dict) -> list | dict:
        """`body` through `host`'s function: in turn, within the function's timeout."""
        function = host.current()  # kept to the end: a reload does not touch this request
        timeout_s = self.timeout_s or host.spec.event_timeout_s
        deadline = time.monotonic() + timeout_s  # from here: the time in the queue counts
        gone = asyncio.ensure_future(client_gone(request.receive))
        try:
            future = self.admission.submit(answer, function, body)
            work = asyncio.wrap_future(future)
            await asyncio.wait(
                {work, gone},
                timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if work.done():
                return work.result()
            never_ran = future.cancel()  # only while it still waits for a worker
            work.cancel()  # a running call goes on to its end; its answer goes nowhere
            if gone.done():
                raise ClientGone()
            if never_ran:
                raise self.admission.busy("no worker was free within the function's timeout")
            raise HTTPError(
                504,
                f"{host.spec.id} took longer than {timeout_s:g} s, its wait for a worker "
                "included; raise the timeout (imagine-assist serve --timeout) or send a "
                "smaller image",
            )
        finally:
            gone.cancel()


def create_app(gateway: Gateway, load_on_start: bool = True) -> Starlette:
    async def healthz(request: Request) -> Response:
        statuses = {name: host.status for name, host in gateway.hosts.items()}
        states = {name: status.state for name, status in statuses.items()}
        models = {
            name: {
                "model": status.model,
                "version": model_version(status.model),
                # the last reload failed: this model serves on, not the one asked for
                **({"reload_error": status.reload_error} if status.reload_error else {}),
                # no model at all: why, with the way out the error names
                **({"error": status.message} if status.state == "failed" else {}),
            }
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
                404,
                f"no function {clip(name)!r} here; this gateway serves {', '.join(gateway.hosts)}",
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
        try:  # SIGHUP reloads every function, as `kill -HUP` users expect; off the loop:
            # reading the family files (and a model's labels) must not stop the answers
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.run_in_executor(None, gateway.reload_all)
            )
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests) or not a POSIX platform
        watch = None
        if gateway.watch_models_s:
            watch = ModelWatch(lambda: gateway.hosts.values(), gateway.watch_models_s).start()
        yield
        if watch is not None:
            watch.stop()
        gateway.close()

    async def answer_error(request: Request, failure: Exception) -> Response:
        """The errors with a status of their own; anything else reaches `GuardAndLog`."""
        function = request.headers.get("x-nuclio-function-name", "")
        status, message = status_for(
            failure, function if function in gateway.hosts else "the gateway"
        )
        return error(status, message, getattr(failure, "headers", None))

    async def answer_routing(request: Request, failure: HTTPException) -> Response:
        """Starlette's own 404 (no such path) and 405 (wrong method), as JSON."""
        if failure.status_code == 405:
            message = f"{request.method} is not allowed here; use {failure.headers['Allow']}"
        elif failure.status_code == 404:
            message = "no such endpoint; this gateway answers under /api/ (see docs/gateway.md)"
        else:
            message = failure.detail
        return error(failure.status_code, message, failure.headers)

    async def answer_gone(request: Request, failure: Exception) -> Response:
        return error(CLIENT_GONE, "the client closed the connection")  # sent to nobody

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
        # An error with a status is answered here; any other reaches GuardAndLog, which
        # answers 500 and logs one traceback (Starlette's last-resort handler would log a
        # second and re-raise it to uvicorn)
        exception_handlers={kind: answer_error for kind in ERRORS_WITH_A_STATUS}
        | {
            HTTPException: answer_routing,
            ClientGone: answer_gone,
            ClientDisconnect: answer_gone,
        },
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
        state = {"status": 500, "noted": False, "started": False}

        async def send_and_note(message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
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
        except Exception as failure:  # a fault of ours: one traceback in the log, a 500
            log.error(
                "unexpected error on %s %s",
                request.method,
                clip(request.url.path),
                exc_info=failure,
            )
            if not state["started"]:
                function = request.headers.get("x-nuclio-function-name", "")
                who = function if function in self.gateway.hosts else "the gateway"
                await error(*status_for(failure, who))(scope, receive, send_and_note)
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
                "path": clip(request.url.path),
                "function": clip(function),
                "status": status,
                "ms": round(seconds * 1000, 1),
                "user_agent": clip(request.headers.get("user-agent", "")),
            }
        )
