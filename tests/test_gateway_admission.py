"""Who gets in, and when (issue 15, findings 2, 3 and 8): slow and greedy clients on loopback.

Each test starts the real server and holds a bounded number of connections for a bounded
time. Clients that must look like other machines connect from other loopback addresses
(127.0.0.2, 127.0.0.3), which Linux routes to the same server.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import threading
import time

import numpy as np
import pytest
import requests

from imagine_assist.functions.catalog import get_spec
from imagine_assist.images import encode_jpeg
from imagine_assist.nuclio import gateway as gateway_module
from imagine_assist.nuclio.gateway import Gateway
from imagine_assist.nuclio.hosting import FunctionHost
from imagine_assist.nuclio.serve import ConnectionLimits, background_server, build_hosts

DETECTOR = "burrow-detector"
INVOKE = "/api/function_invocations"
FRAME = base64.b64encode(encode_jpeg(np.full((240, 320, 3), 90, np.uint8))).decode()


def invoke_headers(name: str = DETECTOR) -> dict:
    return {"x-nuclio-function-name": name, "Content-Type": "application/json"}


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, dict(response.getheaders()), response.read()


def post_head(name: str = DETECTOR, length: int = 1000) -> bytes:
    return (
        f"POST {INVOKE} HTTP/1.1\r\nHost: gateway\r\nx-nuclio-function-name: {name}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


class Blocking:
    """Stands in for `cvat_requests.answer`: notes each request's `n` in the order the
    workers take them, and holds the worker until `release` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.order: list[int] = []
        self.started = threading.Event()

    def __call__(self, function, body: dict) -> list:
        self.order.append(body.get("n", -1))
        self.started.set()
        if not self.release.wait(10):
            raise RuntimeError("never released")
        return []


def stand_in_gateway(**options) -> Gateway:
    """A gateway whose one function answers through `gateway_module.answer`, patched."""
    spec = get_spec(DETECTOR)
    return Gateway({spec.id: FunctionHost(spec, object)}, **options)


def wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.mark.slow  # a subprocess or seconds of work: the full tier
def test_slow_clients_do_not_starve_the_others():
    """Finding 2: 20 connections that trickle their bodies (and 5 their headers) hold no
    worker and no queue place: another client gets its 200s at once, and the trickling
    ones get a 408 when their deadline passes."""
    gateway = Gateway(build_hosts([DETECTOR], None), workers=1, queue=2, body_timeout_s=2.0)
    limits = ConnectionLimits(header_timeout_s=2.0)
    stop = threading.Event()
    with background_server(gateway, limits=limits) as url:
        port = port_of(url)
        bodies = [connect(port, "127.0.0.2") for _ in range(20)]
        heads = [connect(port, "127.0.0.3") for _ in range(5)]
        for sock in bodies:
            sock.sendall(post_head())
        for sock in heads:
            sock.sendall(b"POST /api/function_invocations HTTP/1.1\r\nx-pad: ")

        def trickle() -> None:  # one byte each, every half second
            while not stop.wait(0.5):
                for sock in bodies + heads:
                    try:
                        sock.send(b"7")
                    except OSError:
                        pass

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        started = time.monotonic()
        try:
            with requests.Session() as session:
                for _ in range(8):
                    sent = time.monotonic()
                    response = session.post(
                        f"{url}{INVOKE}", json={"image": FRAME}, headers=invoke_headers()
                    )
                    assert response.status_code == 200, response.text
                    assert time.monotonic() - sent < 1.5
            assert time.monotonic() - started < 1.9  # all while the slow ones still trickle
            bodies_refused = [read_response(sock) for sock in bodies]
            heads_refused = [read_response(sock) for sock in heads]
        finally:
            stop.set()
            trickler.join()
            for sock in bodies + heads:
                sock.close()
    for status, _, body in bodies_refused:
        assert status == 408 and "body did not arrive" in json.loads(body)["message"]
    for status, _, body in heads_refused:
        assert status == 408 and "headers did not arrive" in json.loads(body)["message"]
    assert gateway.metrics.requests(DETECTOR).get(200) == 8


def test_connections_per_client_address_are_limited():
    gateway = stand_in_gateway()
    limits = ConnectionLimits(per_client=4)
    with background_server(gateway, limits=limits) as url:
        port = port_of(url)
        held = [connect(port, "127.0.0.2") for _ in range(4)]
        refused = connect(port, "127.0.0.2")
        status, headers, body = read_response(refused)
        assert status == 503 and int(headers["retry-after"]) >= 1
        assert "4 connections" in json.loads(body)["message"]
        # other addresses are not affected, and a freed connection can be used again
        assert requests.get(f"{url}/api/healthz").status_code == 200
        held.pop().close()
        refused.close()
        time.sleep(0.2)
        again = connect(port, "127.0.0.2")
        again.sendall(b"GET /api/healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert read_response(again)[0] == 200
        for sock in [*held, refused, again]:
            sock.close()


def test_bodies_held_at_once_are_bounded(monkeypatch):
    """Bodies are read before a request queues, so a budget bounds their memory instead."""
    monkeypatch.setattr(gateway_module, "answer", lambda function, body: [])
    gateway = stand_in_gateway(body_budget_bytes=10_000)
    with background_server(gateway) as url:
        port = port_of(url)
        promise = [connect(port, "127.0.0.3") for _ in range(3)]
        for sock in promise:  # a length declared, nothing sent: nothing held
            sock.sendall(post_head(length=9_000))
        slow = connect(port, "127.0.0.2")
        slow.sendall(post_head(length=8_000) + b'{"n": ' + b" " * 7_990)
        wait_until(lambda: gateway.bodies.held == 7_996)
        padded = {"n": 1, "pad": "x" * 4_000}
        refused = requests.post(f"{url}{INVOKE}", json=padded, headers=invoke_headers())
        assert refused.status_code == 503 and "Retry-After" in refused.headers
        assert "MiB of other requests' bodies" in refused.json()["message"]
        slow.close()
        wait_until(lambda: gateway.bodies.held == 0)
        accepted = requests.post(f"{url}{INVOKE}", json=padded, headers=invoke_headers())
        assert accepted.status_code == 200  # with the three promises still open
        for sock in promise:
            sock.close()


def test_a_full_queue_is_a_fast_503_with_retry_after(monkeypatch):
    blocking = Blocking()
    monkeypatch.setattr(gateway_module, "answer", blocking)
    gateway = stand_in_gateway(workers=1, queue=2)
    with background_server(gateway) as url:
        results: dict[int, requests.Response] = {}

        def send(n: int) -> None:
            results[n] = requests.post(f"{url}{INVOKE}", json={"n": n}, headers=invoke_headers())

        threads = [threading.Thread(target=send, args=(n,)) for n in range(3)]
        threads[0].start()
        assert blocking.started.wait(5)  # one runs...
        for thread in threads[1:]:
            thread.start()
        wait_until(lambda: gateway.admission.waiting == 2)  # ...and two wait
        sent = time.monotonic()
        refused = requests.post(f"{url}{INVOKE}", json={"n": 9}, headers=invoke_headers())
        assert time.monotonic() - sent < 0.5
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        assert "busy" in refused.json()["message"]
        blocking.release.set()
        for thread in threads:
            thread.join(10)
    assert [results[n].status_code for n in range(3)] == [200, 200, 200]
    assert 9 not in blocking.order


def test_requests_wait_their_turn_in_arrival_order(monkeypatch):
    blocking = Blocking()
    monkeypatch.setattr(gateway_module, "answer", blocking)
    gateway = stand_in_gateway(workers=1, queue=8)
    with background_server(gateway) as url:
        statuses: dict[int, int] = {}

        def send(n: int) -> None:
            response = requests.post(f"{url}{INVOKE}", json={"n": n}, headers=invoke_headers())
            statuses[n] = response.status_code

        threads = []
        for n in range(7):
            threads.append(threading.Thread(target=send, args=(n,)))
            threads[-1].start()
            if n == 0:
                assert blocking.started.wait(5)
            else:
                wait_until(lambda n=n: gateway.admission.waiting == n)
        blocking.release.set()
        for thread in threads:
            thread.join(10)
    assert blocking.order == list(range(7))
    assert set(statuses.values()) == {200}


def test_time_in_the_queue_counts_against_the_timeout(monkeypatch):
    blocking = Blocking()
    monkeypatch.setattr(gateway_module, "answer", blocking)
    gateway = stand_in_gateway(workers=1, queue=4, timeout_s=0.4)
    with background_server(gateway) as url:
        first = threading.Thread(
            target=requests.post,
            args=(f"{url}{INVOKE}",),
            kwargs={"json": {"n": 0}, "headers": invoke_headers()},
        )
        first.start()
        assert blocking.started.wait(5)
        sent = time.monotonic()
        waited = requests.post(f"{url}{INVOKE}", json={"n": 1}, headers=invoke_headers())
        elapsed = time.monotonic() - sent
        blocking.release.set()
        first.join(10)
    assert waited.status_code == 503 and "Retry-After" in waited.headers
    assert 0.35 < elapsed < 0.75  # one timeout in all, not one to queue and one to run
    assert blocking.order == [0]


def test_oversize_headers_are_refused_and_never_logged(tmp_path):
    log = tmp_path / "access.jsonl"
    gateway = stand_in_gateway(access_log=log)
    with background_server(gateway) as url:
        huge = requests.get(f"{url}/api/healthz", headers={"x-pad": "a" * 20_000})
        assert huge.status_code == 431 and "16,384 bytes" in huge.json()["message"]
        # under the limit, but far longer than anything worth repeating
        name = "f" * 5_000
        unknown = requests.post(
            f"{url}{INVOKE}", json={"image": FRAME}, headers={**invoke_headers(name)}
        )
        assert unknown.status_code == 404 and len(unknown.text) < 500
        assert requests.get(f"{url}/api/healthz").status_code == 200
    lines = log.read_text().splitlines()
    assert all(len(line) < 1000 for line in lines)
    assert "a" * 300 not in log.read_text()


@pytest.mark.parametrize(
    "framing",
    ["Content-Length: abc", "Content-Length: -1", "Content-Length: 5\r\nContent-Length: 9"],
)
def test_a_bad_head_with_a_long_body_is_a_400_not_headers_too_large(framing):
    """The head is 150 bytes: what follows it is a body, whatever its size."""
    with background_server(stand_in_gateway()) as url:
        sock = connect(port_of(url))
        head = f"POST {INVOKE} HTTP/1.1\r\nHost: x\r\nx-nuclio-function-name: {DETECTOR}\r\n"
        sock.sendall(f"{head}{framing}\r\n\r\n".encode() + b"x" * 17_000)
        status, _, body = read_response(sock)
        sock.close()
        assert status == 400 and "not valid HTTP/1.1" in json.loads(body)["message"]
        assert requests.get(f"{url}/api/healthz").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "fragment"),
    [
        ("GET", "/no/such/thing", 404, "no such endpoint"),
        ("GET", INVOKE, 405, "use POST"),
        ("DELETE", "/api/functions", 405, "not allowed"),
    ],
)
def test_routing_errors_are_json(method, path, status, fragment):
    with background_server(stand_in_gateway()) as url:
        response = requests.request(method, f"{url}{path}")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert fragment in response.json()["message"] and response.json()["status"] == status


REID_FRAME = base64.b64encode(encode_jpeg(np.full((128, 128, 3), 90, np.uint8))).decode()


def reid_body(value: str) -> bytes:
    shape = f'{{"points": [10, 10, {value}, 40]}}'
    return (
        f'{{"image0": "{REID_FRAME}", "image1": "{REID_FRAME}", '
        f'"boxes0": [{shape}], "boxes1": [{{"points": [10, 10, 40, 40]}}]}}'
    ).encode()


@pytest.fixture(scope="module")
def detector_and_reid():
    gateway = Gateway(build_hosts([DETECTOR, "burrow-reid"], None))
    with background_server(gateway) as url:
        yield url, gateway


@pytest.mark.parametrize(
    ("name", "body", "fragment"),
    [
        (DETECTOR, b'{"image": "x", "threshold": 1' + b"0" * 5000 + b"}", "at most 1e+12"),
        (DETECTOR, b'{"image": "x", "threshold": 0.' + b"5" * 5000 + b"1e9999}", "at most"),
        (DETECTOR, b'{"image": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
        ("burrow-reid", reid_body("NaN"), "NaN"),
        ("burrow-reid", reid_body("Infinity"), "Infinity"),
        ("burrow-reid", reid_body("-Infinity"), "Infinity"),
        ("burrow-reid", reid_body("1e308"), "at most 1e+12"),
        ("burrow-reid", reid_body("-1e308"), "at most 1e+12"),
    ],
)
def test_hostile_numbers_and_nesting_are_400(detector_and_reid, name, body, fragment):
    url, gateway = detector_and_reid
    response = requests.post(f"{url}{INVOKE}", data=body, headers=invoke_headers(name))
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"] and len(response.text) < 600
    assert 500 not in gateway.metrics.requests(name)


def test_a_disconnect_is_noted_as_499_not_500(monkeypatch):
    blocking = Blocking()
    monkeypatch.setattr(gateway_module, "answer", blocking)
    gateway = stand_in_gateway(workers=1, queue=4)
    with background_server(gateway) as url:
        port = port_of(url)
        body = b'{"n": 0}'
        # gone while its body arrives, while it runs, and while it waits in the queue
        halfway = connect(port)
        halfway.sendall(post_head(length=100) + b'{"n"')
        time.sleep(0.1)
        halfway.close()
        running = connect(port)
        running.sendall(post_head(length=len(body)) + body)
        assert blocking.started.wait(5)
        queued = connect(port)
        queued.sendall(post_head(length=len(body)) + body)
        wait_until(lambda: gateway.admission.waiting == 1)
        queued.close()
        running.close()
        wait_until(lambda: gateway.metrics.requests(DETECTOR).get(499) == 3)
        blocking.release.set()
        wait_until(lambda: gateway.admission.admitted == 0)
        assert requests.get(f"{url}/api/healthz").status_code == 200
    assert 500 not in gateway.metrics.requests(DETECTOR)


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_500_logs_one_traceback(monkeypatch):
    def failing(function, body):
        raise RuntimeError("/secret/path exploded")

    monkeypatch.setattr(gateway_module, "answer", failing)
    handler = ListHandler()
    watched = [logging.getLogger(name) for name in ("imagine_assist", "uvicorn", "starlette")]
    for logger in watched:
        logger.addHandler(handler)
    try:
        gateway = stand_in_gateway()
        with background_server(gateway) as url:
            response = requests.post(f"{url}{INVOKE}", json={"n": 0}, headers=invoke_headers())
            assert requests.get(f"{url}/api/healthz").status_code == 200
    finally:
        for logger in watched:
            logger.removeHandler(handler)
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    assert "secret" not in response.text and "RuntimeError" in response.json()["message"]
    tracebacks = [record for record in handler.records if record.exc_info]
    assert len(tracebacks) == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--per-client", "0"], "--per-client must be at least 1"),
        (["--queue", "-1"], "--queue must be at least 0"),
        (["--max-connections", "0"], "--max-connections must be at least 1"),
        (["--body-timeout", "0"], "--body-timeout must be a positive number"),
        (["--timeout", "inf"], "--timeout must be a positive number"),
        (["--watch-models", "-1"], "--watch-models must be 0 or a number of seconds"),
        (["--watch-models", "nan"], "--watch-models must be 0 or a number of seconds"),
    ],
)
def test_serve_refuses_admission_settings_that_cannot_work(flags, message, capsys, tmp_path):
    from imagine_assist.app.main import main

    assert main(["--home", str(tmp_path), "serve", *flags]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # a subprocess or seconds of work: the full tier
def test_serve_flags_set_the_limits_a_client_meets(tmp_path):
    """`imagine-assist serve --per-client 2`: the command's own flags reach the server."""
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "imagine_assist.app.main", "--home", str(tmp_path), "serve"]
    command += ["--functions", DETECTOR, "--port", str(port), "--per-client", "2"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                if requests.get(f"{url}/api/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)
        held = [connect(port, "127.0.0.2") for _ in range(2)]
        refused = connect(port, "127.0.0.2")
        status, _, body = read_response(refused)
        assert status == 503 and "2 connections" in json.loads(body)["message"]
        for sock in [*held, refused]:
            sock.close()
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize(
    "head",
    [
        b"POST /nothing HTTP/1.1\r\nHost: g\r\nContent-Length: 10000000000\r\n\r\n",
        b"GET /api/healthz HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n",
        post_head(name="no-such-function", length=10**10),
    ],
)
def test_a_body_dribbled_after_an_early_answer_does_not_hold_the_connection(head):
    """Answered before its body was read, a client sent a byte every 2 s: each byte put the
    keep-alive off again, and ten such connections shut one address out for good."""
    limits = ConnectionLimits(keep_alive_s=1.0)
    with background_server(stand_in_gateway(), limits=limits) as url:
        sock = connect(port_of(url))
        try:
            sock.sendall(head)
            status, _, _ = read_response(sock)
            assert status in (200, 404)
            answered = time.monotonic()
            closed = False
            while time.monotonic() - answered < 4:
                try:
                    sock.sendall(b"7")
                    if sock.recv(1, socket.MSG_DONTWAIT) == b"":
                        closed = True
                        break
                except BlockingIOError:
                    pass
                except OSError:  # reset: closed with our bytes unread
                    closed = True
                    break
                time.sleep(0.3)
        finally:
            sock.close()
    assert closed and time.monotonic() - answered < 2.5


def invoked_with_a_small_window(url: str, window: int) -> socket.socket:
    """A connection with a receive buffer of `window` bytes that has sent one invocation."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window)
    sock.connect(("127.0.0.1", port_of(url)))
    body = json.dumps({"image": FRAME}).encode()
    sock.sendall(post_head(length=len(body)) + body)
    return sock


def test_a_client_that_stops_reading_its_answer_loses_the_connection(monkeypatch):
    """Eight clients that never read an 8 MB answer held their connections, answers and
    tasks for good; behind a proxy, one address is every client."""
    big = [{"label": "burrow", "points": [1.5] * 4, "type": "rectangle"}] * 150_000  # ~9 MB
    monkeypatch.setattr(gateway_module, "answer", lambda function, body: big)
    limits = ConnectionLimits(per_client=1, send_timeout_s=1.0)
    with background_server(stand_in_gateway(), limits=limits) as url:
        stuck = invoked_with_a_small_window(url, 4096)  # and never reads
        try:
            time.sleep(0.5)
            refused = requests.get(f"{url}/api/healthz")
            assert refused.status_code == 503  # its one connection is the stuck one
            wait_until(lambda: requests.get(f"{url}/api/healthz").status_code == 200, 5.0)
        finally:
            stuck.close()


@pytest.mark.slow  # 12 MB read slowly: seconds
def test_a_client_reading_its_answer_slowly_keeps_the_connection(monkeypatch):
    """The send deadline is for a client that takes nothing: one reading a large answer at
    a few hundred KB/s was dropped halfway once the deadline passed."""
    big = [
        {"label": "burrow", "points": [1.5] * 4, "type": "rectangle"}
    ] * 180_000  # ~12 MB: more than the kernel buffers take
    monkeypatch.setattr(gateway_module, "answer", lambda function, body: big)
    limits = ConnectionLimits(send_timeout_s=1.0)
    with background_server(stand_in_gateway(), limits=limits) as url:
        slow = invoked_with_a_small_window(url, 32768)
        try:
            received, started, length = b"", time.monotonic(), None
            while time.monotonic() - started < 60:
                chunk = slow.recv(65536)
                if not chunk:
                    break
                received += chunk
                head, _, payload = received.partition(b"\r\n\r\n")
                if length is None and _:
                    lines = head.decode().lower().split("\r\n")
                    length = int(
                        next(
                            v
                            for k, _, v in (x.partition(": ") for x in lines)
                            if k == "content-length"
                        )
                    )
                if length is not None and len(payload) >= length:
                    break
                time.sleep(0.02)  # about 1.5 MB/s: 12 MB take several send deadlines
        finally:
            slow.close()
    head, _, payload = received.partition(b"\r\n\r\n")
    assert b"200" in head.split(b"\r\n")[0] and len(json.loads(payload)) == len(big)
