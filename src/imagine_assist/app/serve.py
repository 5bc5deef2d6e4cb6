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
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.nuclio.serve import serve

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
    )
    return 0
