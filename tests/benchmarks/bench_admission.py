"""Latency at the gateway's door: N clients at once against one worker (issue 15, finding 3).

The gateway runs in its own process (burrow-detector, 1 worker, the default queue of 16);
each client thread sends one 640x480 JPEG after another on a keep-alive connection for
`--seconds`. A client refused with 503 waits its Retry-After (1 s without one) before it
tries again, as a polite client does. Prints the figures as a markdown table row.

    python tests/benchmarks/bench_admission.py [--clients 32] [--seconds 20] [--src DIR]

`--src` runs the gateway from another checkout's `src` (the "before" figures:
`git archive HEAD src | tar -x -C /tmp/before`, then `--src /tmp/before/src`).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

FUNCTION = "burrow-detector"


def serve(port_file: str) -> None:
    """The gateway, in this process, until it is killed."""
    from imagine_assist.nuclio.gateway import Gateway
    from imagine_assist.nuclio.serve import background_server, build_hosts

    gateway = Gateway(build_hosts([FUNCTION], None), workers=1)
    with background_server(gateway) as url:
        with open(port_file, "w") as handle:
            handle.write(url.rsplit(":", 1)[1])
        while True:
            time.sleep(3600)


def frame() -> bytes:
    from imagine_assist.images import encode_jpeg

    rng = np.random.default_rng(15)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    image = (image // 64 * 64).astype(np.uint8)  # coarse, so the JPEG stays small
    body = {"image": base64.b64encode(encode_jpeg(image)).decode(), "threshold": 0.5}
    return json.dumps(body).encode()


def client(port: int, body: bytes, until: float, results: list) -> None:
    headers = {"x-nuclio-function-name": FUNCTION, "Content-Type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            connection.request("POST", "/api/function_invocations", body, headers)
            response = connection.getresponse()
            response.read()
            status, retry = response.status, response.getheader("Retry-After")
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            status, retry = 0, None
        results.append((status, time.monotonic() - started))
        if status != 200:
            time.sleep(float(retry) if retry else 1.0)
    connection.close()


def round_trip_ms(port: int, count: int = 500) -> float:
    """Median `GET /api/healthz` on one keep-alive connection: the server's own cost."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", "/api/healthz")
        connection.getresponse().read()
        times.append(time.perf_counter() - started)
    connection.close()
    return statistics.median(times) * 1000


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--src", help="run the gateway from this src folder instead")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.path.abspath(args.src)
    port_file = f"/tmp/bench-admission-{os.getpid()}.port"
    server = subprocess.Popen([sys.executable, __file__, "--serve", port_file], env=env)
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(port_file) or not open(port_file).read():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the gateway did not start")
            time.sleep(0.1)
        port = int(open(port_file).read())
        body = frame()
        healthz_ms = round_trip_ms(port)
        alone: list = []
        client(port, body, time.monotonic() + 3, alone)  # one client: the work itself
        work_s = statistics.median(s for status, s in alone if status == 200)
        results: list = []
        until = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=client, args=(port, body, until, results))
            for _ in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.kill()
        server.wait()
        if os.path.exists(port_file):
            os.remove(port_file)
    ok = [s for status, s in results if status == 200]
    busy = [s for status, s in results if status == 503]
    other = sorted({status for status, _ in results} - {200, 503})
    print(f"one client alone: {work_s * 1000:.0f} ms per request (median)")
    print(f"GET /api/healthz round trip, one client: {healthz_ms:.2f} ms (median)")
    print(
        "| clients | 200s | p50 (s) | p99 (s) | max (s) | 200s/s | 503s | 503 p50 (s) "
        "| 503 p99 (s) | other |"
    )
    print(
        f"| {args.clients} | {len(ok)} | {percentile(ok, 50):.2f} | {percentile(ok, 99):.2f} "
        f"| {max(ok, default=float('nan')):.2f} | {len(ok) / args.seconds:.1f} | {len(busy)} "
        f"| {percentile(busy, 50):.3f} | {percentile(busy, 99):.3f} | {other or '-'} |"
    )


if __name__ == "__main__":
    main()
