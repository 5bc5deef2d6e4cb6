"""`imagine-assist demo`: train the default models if needed and run them on demo data."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagine_assist.app.common import MODELS_HELP


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="train the default models if needed and run them on demo data",
        parents=parents,
    )
    parser.add_argument("--out", default="demo-output", help="folder for the demo's results")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.demo import run_demo

    run_demo(Path(args.out), args.models)
    return 0
