"""How long `usage report` takes over a year of gateway access log, against the floor of
reading the same file and parsing each line with json.loads, in the same process.

    python tests/benchmarks/bench_usage.py [--lines 1000000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from report import write_report

from imagine_assist.usage.report import load_geoip, read_uses, summarise
from imagine_assist.usage.report import write_report as write_csv

FUNCTIONS = ["fish-detector", "litter-detector", "burrow-detector", "burrow-tracker"]


def synthetic_log(path: Path, lines: int, seed: int = 0) -> None:
    """Lines in the gateway's own format (nuclio.gateway.GuardAndLog.note), over one year."""
    rng = random.Random(seed)
    start = time.mktime((2026, 1, 1, 0, 0, 0, 0, 0, 0))
    with path.open("w") as handle:
        for _ in range(lines):
            invocation = rng.random() < 0.9
            record = {
                "time": time.strftime(
                    "%Y-%m-%dT%H:%M:%S+0000", time.gmtime(start + rng.random() * 365 * 86400)
                ),
                "client": f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.0.{rng.randint(1, 50)}",
                "method": "POST" if invocation else "GET",
                "path": "/api/function_invocations" if invocation else "/api/healthz",
                "function": rng.choice(FUNCTIONS) if invocation else "",
                "status": 200 if rng.random() < 0.98 else 400,
                "ms": round(rng.random() * 200, 1),
                "user_agent": "python-requests/2.32",
            }
            handle.write(json.dumps(record) + "\n")


def geoip_file(path: Path) -> None:
    rows = [f"{a}.0.0.0,{a}.255.255.255,C{a % 40}" for a in range(1, 224)]
    path.write_text("\n".join(rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--write", help="markdown file to update")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        log, geoip = Path(folder) / "access.jsonl", Path(folder) / "geo.csv"
        synthetic_log(log, args.lines)
        geoip_file(geoip)
        started = time.perf_counter()
        with log.open() as handle:
            parsed = sum(1 for line in handle if json.loads(line))
        floor = time.perf_counter() - started
        started = time.perf_counter()
        uses, _ = read_uses([log])
        report = summarise(uses, None, load_geoip(geoip))
        write_csv(report, Path(folder) / "out")
        ours = time.perf_counter() - started
    body = (
        f"| what | seconds | lines/s | ratio to json.loads alone |\n|---|---|---|---|\n"
        f"| read + json.loads each line (floor) | {floor:.2f} | {parsed / floor:,.0f} | 1.00 |\n"
        f"| `usage report` (parse, count, GeoIP, CSV, plot) | {ours:.2f} | "
        f"{args.lines / ours:,.0f} | {ours / floor:.2f} |\n\n"
        f"{args.lines:,} access-log lines over one year (90 % invocations, 4 functions), "
        f"a 223-range GeoIP CSV; one process, 2-core development machine.\n"
    )
    print(body)
    if args.write:
        write_report(args.write, "usage", "Usage report over a year of access log", body)


if __name__ == "__main__":
    main()
