"""`imagine-assist bundle`: an offline install bundle, or `bundle verify <folder>`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imagine_assist.app.common import MODELS_HELP
from imagine_assist.errors import UserError


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bundle",
        help="an offline install bundle (wheels, models, serverless/, compose/)",
        parents=parents,
    )
    parser.add_argument("words", nargs="*", help="`verify <folder>` to check a bundle")
    parser.add_argument("--out", help="a new folder for the bundle")
    parser.add_argument(
        "--functions",
        help="comma-separated function ids (default: fish-detector,litter-detector)",
    )
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument("--with-training", action="store_true", help="add torch and ultralytics")
    parser.add_argument("--with-review", action="store_true", help="add FiftyOne")
    parser.add_argument(
        "--python",
        default=f"{sys.version_info.major}.{sys.version_info.minor}",
        help="Python version of the target machine",
    )
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        help="pip platform tag of the target; repeat for each it accepts (default: this machine's)",
    )
    parser.add_argument(
        "--wheelhouse", help="use these wheels instead of downloading (default: download)"
    )
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.bundle import build_bundle
    from imagine_assist.checksums import verify_manifest

    if args.words:
        if args.words[0] != "verify" or len(args.words) != 2:
            raise UserError("usage: imagine-assist bundle verify <bundle folder>")
        problems = verify_manifest(args.words[1])
        for problem in problems:
            print(problem)
        print(f"{args.words[1]}: " + ("intact" if not problems else f"{len(problems)} problem(s)"))
        return 0 if not problems else 1
    if not args.out:
        raise UserError("give --out <folder> for the bundle (or `bundle verify <folder>`)")
    functions = (
        args.functions.split(",") if args.functions else ["fish-detector", "litter-detector"]
    )
    report = build_bundle(
        Path(args.out),
        functions,
        args.models,
        args.with_training,
        args.with_review,
        args.python,
        args.platform,
        Path(args.wheelhouse) if args.wheelhouse else None,
    )
    print(
        f"bundle {report.folder}: {report.wheels} wheels, models {', '.join(report.models)}, "
        f"{report.size_bytes / 1e6:.0f} MB; install with {report.folder / 'install.sh'}"
    )
    return 0
