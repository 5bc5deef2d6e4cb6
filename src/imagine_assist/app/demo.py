"""`imagine-assist demo`: train the default models if needed and run them on demo data."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from imagine_assist.app.common import MODELS_HELP
from imagine_assist.home import HOME_ENV


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="run the bundled models on synthetic demo data, then one loop turn (own home)",
        parents=parents,
    )
    parser.add_argument("--out", default="demo-output", help="folder for the demo's results")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.demo import run_demo

    if not os.environ.get(HOME_ENV):
        # The demo trains and promotes a fish version and creates a family: in a home of its
        # own unless the user names one, so it never changes the models they work with.
        os.environ[HOME_ENV] = str((Path(args.out) / "home").resolve())
        print(
            f"No --home given: the demo keeps its models and families in {os.environ[HOME_ENV]}, "
            "apart from your own home.\n"
        )
    run_demo(Path(args.out), args.models)
    return 0
