"""`imagine-assist serve`: run the gateway with uvicorn, on connections it guards.

Uvicorn's own settings bound the headers (`h11_max_incomplete_event_size`), idle keep-alive
connections (`timeout_keep_alive`) and, as a backstop, open connections and request tasks
(`limit_concurrency`). What uvicorn has no setting for is added by `guarded_protocol`: a
limit of connections per client address, a deadline for the headers, and JSON for every
refusal it answers itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import FUNCTIONS, get_spec, load_function
from imagine_assist.home import Home
from imagine_assist.models.store import live_model_stamp
from imagine_assist.nuclio.gateway import BODY_TIMEOUT_S, TOKEN_ENV, Gateway, create_app
from imagine_assist.nuclio.hosting import WATCH_MODELS_S, FunctionHost
from imagine_assist.nuclio.protocol import error_body

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client, and all clients together, may hold of the server."""

    connections: int = 128  # open at once, from everyone
    per_client: int = 32  # from one address (behind a reverse proxy: the proxy's address)
    header_bytes: int = 16 * 1024  # request line and headers together
    header_timeout_s: float = (
        10.0  # from the connection, or a request's first byte, to its blank line
    )
    keep_alive_s: float = 5.0  # idle between two requests on one connection
    # an answer that cannot be handed to the client for this long (it stopped reading: its
    # window full) ends the connection: the answer, its task and its place were held for good
    send_timeout_s: float = 60.0
    retry_after_s: int = 5  # suggested to a client refused for holding too many connections


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """Uvicorn's h11 protocol with per-address and header-time limits (h11 and not
    httptools: only h11 bounds the size of the headers)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    held: Counter[str] = Counter()  # open connections per client address

    class GuardedH11(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.peer = self.client[0] if self.client else ""
            self.header_timer: asyncio.TimerHandle | None = None
            self.unread_timer: asyncio.TimerHandle | None = None
            self.send_timer: asyncio.TimerHandle | None = None
            self.unsent = 0  # bytes of the answer not yet taken, when last looked at
            self.refused = False
            self.head_seen, self.head_tail = 0, b""  # bytes of the head so far, its last 3
            held[self.peer] += 1
            if held[self.peer] > limits.per_client:
                self.refuse(
                    503,
                    f"this address has {limits.per_client} connections open to the gateway "
                    "already; reuse one or close one",
                    limits.retry_after_s,
                )
            elif len(self.connections) > limits.connections:
                self.refuse(
                    503,
                    f"the gateway has {limits.connections} connections open; retry shortly",
                    limits.retry_after_s,
                )
            else:
                self.header_timer = self.loop.call_later(
                    limits.header_timeout_s, self.headers_too_slow
                )

        def connection_lost(self, exc: Exception | None) -> None:
            held[self.peer] -= 1
            if held[self.peer] <= 0:
                del held[self.peer]
            self.stop_header_timer()
            self.stop_unread_timer()
            self.stop_send_timer()
            super().connection_lost(exc)

        def pause_writing(self) -> None:
            super().pause_writing()
            if self.send_timer is None:
                self.unsent = self.transport.get_write_buffer_size()
                self.send_timer = self.loop.call_later(limits.send_timeout_s, self.reader_gone)

        def resume_writing(self) -> None:
            super().resume_writing()
            self.stop_send_timer()

        def stop_send_timer(self) -> None:
            if self.send_timer is not None:
                self.send_timer.cancel()
                self.send_timer = None

        def reader_gone(self) -> None:
            """Still paused after the timeout: a client that took some of the answer
            meanwhile is reading (slowly) and gets another timeout; one that took none is
            dropped."""
            self.send_timer = None
            left = self.transport.get_write_buffer_size()
            if left < self.unsent:
                self.unsent = left
                self.send_timer = self.loop.call_later(limits.send_timeout_s, self.reader_gone)
                return
            log.info(
                "closed a connection from %s: it read none of its answer for %g s",
                self.peer,
                limits.send_timeout_s,
            )
            self.transport.abort()  # close() would wait for the unread bytes to leave

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
                # answered before the body was read (404, 401, 413 and the like): the rest is
                # read and dropped, and each byte of it would put uvicorn's keep-alive off
                # again, so a client dribbling a 10 GB body held the connection forever
                self.unread_timer = self.loop.call_later(limits.keep_alive_s, self.transport.close)

        def stop_unread_timer(self) -> None:
            if self.unread_timer is not None:
                self.unread_timer.cancel()
                self.unread_timer = None

        def data_received(self, data: bytes) -> None:
            if self.refused:
                return  # read and dropped until the close, so the refusal is not reset
            if self.conn.their_state is h11.IDLE and self.head_too_long(data):
                self.refuse(431, f"the request headers are over {limits.header_bytes:,} bytes")
                return
            super().data_received(data)
            if self.unread_timer is not None and self.conn.their_state is not h11.SEND_BODY:
                self.stop_unread_timer()  # the unread body has ended: the connection goes on
            in_headers = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
            if not in_headers:
                self.stop_header_timer()
            elif self.header_timer is None:  # a request begins on a kept-alive connection
                self.header_timer = self.loop.call_later(
                    limits.header_timeout_s, self.headers_too_slow
                )

        def head_too_long(self, data: bytes) -> bool:
            """Counts the bytes of a request's head. h11's own limit applies only while the
            head is incomplete, so a long head that arrives in one piece would pass it."""
            seen = self.head_seen
            joined = self.head_tail + data
            end = joined.find(b"\r\n\r\n")
            if end >= 0:
                seen += end + 4 - len(self.head_tail)
                self.head_seen, self.head_tail = 0, b""
            else:
                seen += len(data)
                self.head_seen, self.head_tail = seen, joined[-3:]
            return seen > limits.header_bytes

        def eof_received(self) -> None:
            if self.refused:  # the client has read its refusal and gone
                self.transport.close()

        def stop_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def headers_too_slow(self) -> None:
            self.header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.refuse(
                    408, f"the request headers did not arrive within {limits.header_timeout_s:g} s"
                )

        def send_400_response(self, msg: str) -> None:
            # Over the limit only while a head is still arriving (`head_seen` > 0): once it
            # has ended, what h11 holds is the body of a request whose head it refused.
            buffered = len(getattr(self.conn, "_receive_buffer", b""))
            if self.head_seen > 0 and buffered > limits.header_bytes:
                self.refuse(431, f"the request headers are over {limits.header_bytes:,} bytes")
            else:
                self.refuse(400, "the request is not valid HTTP/1.1")

        def refuse(self, status: int, message: str, retry_after_s: int | None = None) -> None:
            """Answer `status` in JSON and close, after a moment to drain what the client
            still sends (closing on unread bytes would reset the connection, answer and all)."""
            self.stop_header_timer()
            self.refused = True
            log.info("refused a connection from %s with %d: %s", self.peer, status, message)
            body = json.dumps(error_body(status, message)).encode()
            head = [
                f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
                "content-type: application/json",
                f"content-length: {len(body)}",
                "connection: close",
            ]
            if retry_after_s is not None:
                head.append(f"retry-after: {retry_after_s}")
            self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(1.0, self.transport.close)

    return GuardedH11


def uvicorn_config(app, host: str, port: int, limits: ConnectionLimits, **options):
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        h11_max_incomplete_event_size=limits.header_bytes,
        timeout_keep_alive=limits.keep_alive_s,
        # our own check answers first, in JSON; uvicorn's counts request tasks as well
        limit_concurrency=limits.connections + 1,
        access_log=False,
        **options,
    )


def build_hosts(function_ids: list[str] | None, models_dir: str | Path | None) -> dict:
    """One host per function; each load resolves the model anew, so a reload picks up a
    newly installed version, and the stamp of its family's models folder says when one was."""
    ids = function_ids or list(FUNCTIONS)
    return {
        function_id: FunctionHost(
            get_spec(function_id),
            functools.partial(load_function, function_id, None, models_dir),
            functools.partial(live_model_stamp, get_spec(function_id).family, models_dir),
        )
        for function_id in ids
    }


@contextlib.contextmanager
def background_server(
    gateway: Gateway,
    host: str = "127.0.0.1",
    wait_ready: bool = True,
    timeout_s: float = 120.0,
    limits: ConnectionLimits | None = None,
) -> Iterator[str]:
    """Run the gateway on a free port in a thread; yields its base URL (tests, benchmarks)."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind((host, 0))
        gateway.port = probe.getsockname()[1]
    config = uvicorn_config(
        create_app(gateway), host, gateway.port, limits or ConnectionLimits(), log_level="warning"
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
    limits: ConnectionLimits | None = None,
    queue: int = 16,
    body_timeout_s: float = BODY_TIMEOUT_S,
    watch_models_s: float | None = WATCH_MODELS_S,
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
        queue=queue,
        timeout_s=timeout_s,
        body_timeout_s=body_timeout_s,
        access_log=access_log,
        watch_models_s=watch_models_s,
        find_hosts=None if function_ids else functools.partial(build_hosts, None, models_dir),
    )
    print(
        f"imagine-assist gateway on http://{host}:{port} serving {', '.join(gateway.hosts)}; "
        f"access log {access_log}"
    )
    config = uvicorn_config(
        create_app(gateway), host, port, limits or ConnectionLimits(), log_level="info"
    )
    uvicorn.Server(config).run()
