"""`imagine-assist serve`: the functions served to CVAT by a Nuclio-compatible gateway."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from imagine_assist.app.common import MODELS_HELP


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="serve the functions to CVAT as a Nuclio-compatible gateway",
        parents=parents,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind; 127.0.0.1 answers this machine only"
    )
    parser.add_argument("--port", type=int, default=8070, help="port to listen on")
    parser.add_argument(
        "--functions", help="comma-separated function ids (default: every family's)"
    )
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument("--workers", type=int, default=1, help="inference threads")
    parser.add_argument(
        "--timeout", type=float, help="seconds per request (default: each function's)"
    )
    parser.add_argument(
        "--access-log", help="JSON-lines access log (default: <home>/logs/gateway-access.jsonl)"
    )
    parser.add_argument(
        "--watch-models",
        type=float,
        metavar="SECONDS",
        help="look this often (default 5) for a live model promoted, rolled back or installed "
        "by another process, and reload it (0: only on POST .../reload or SIGHUP)",
    )
    admission = parser.add_argument_group(
        "admission", "what clients may hold of the gateway (docs/gateway.md, Admission)"
    )
    admission.add_argument(
        "--queue", type=int, default=16, help="requests that may wait for a worker, in order"
    )
    admission.add_argument(
        "--max-connections", type=int, default=128, help="connections open at once, in all"
    )
    admission.add_argument(
        "--per-client",
        type=int,
        default=32,
        help="connections open at once from one address (behind a proxy: the proxy's)",
    )
    admission.add_argument(
        "--body-timeout",
        type=float,
        default=20.0,
        help="seconds for a request's whole body to arrive, apart from --timeout",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.errors import UserError
    from imagine_assist.nuclio.serve import WATCH_MODELS_S, ConnectionLimits, serve

    for flag, value, least in (
        ("--workers", args.workers, 1),
        ("--queue", args.queue, 0),
        ("--max-connections", args.max_connections, 1),
        ("--per-client", args.per_client, 1),
    ):
        if value < least:
            raise UserError(f"{flag} must be at least {least}, not {value}")
    for flag, seconds in (("--timeout", args.timeout), ("--body-timeout", args.body_timeout)):
        if seconds is not None and not 0 < seconds < float("inf"):
            raise UserError(f"{flag} must be a positive number of seconds, not {seconds}")
    watch = WATCH_MODELS_S if args.watch_models is None else args.watch_models
    if not 0 <= watch < float("inf"):
        raise UserError(f"--watch-models must be 0 or a number of seconds, not {watch}")

    # a server's log is its record: model choices, loads and requests are worth seeing
    logging.getLogger("imagine_assist").setLevel(logging.INFO)
    function_ids = [f.strip() for f in args.functions.split(",")] if args.functions else None
    serve(
        args.host,
        args.port,
        function_ids,
        args.models,
        args.workers,
        args.timeout,
        Path(args.access_log) if args.access_log else None,
        ConnectionLimits(connections=args.max_connections, per_client=args.per_client),
        queue=args.queue,
        body_timeout_s=args.body_timeout,
        watch_models_s=watch or None,
    )
    return 0
