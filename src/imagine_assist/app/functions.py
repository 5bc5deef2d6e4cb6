"""`imagine-assist functions`: list the served functions or render serverless/."""

from __future__ import annotations

import argparse
import logging
import sys

from imagine_assist.app.common import check_output_folder

log = logging.getLogger(__name__)


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "functions",
        help="list the served functions or render serverless/",
        description="list: every family's functions with their CVAT kind and labels. render: "
        "write serverless/<id>/function.yaml (CPU and GPU) and main.py for each.",
        parents=parents,
    )
    parser.add_argument("action", choices=["list", "render"])
    parser.add_argument("--out", default="serverless", help="where serverless/<id>/ folders go")
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    parser.add_argument(
        "--family",
        action="append",
        metavar="NAME",
        help="only this family's functions (repeat for several; default: every family, your "
        "own included)",
    )
    parser.add_argument(
        "--builtin",
        action="store_true",
        help="only the built-in families' functions (what the repository's serverless/ holds)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.families import get_family
    from imagine_assist.functions.catalog import FUNCTIONS, builtin_specs
    from imagine_assist.functions.render import drift, orphans, render

    specs = list((builtin_specs() if args.builtin else FUNCTIONS).values())
    if args.family:
        wanted = {get_family(name).name for name in args.family}  # unknown names: an error
        specs = [spec for spec in specs if spec.family in wanted]
    if args.action == "list":
        for spec in specs:
            print(f"{spec.id:22} {spec.kind:9} {', '.join(spec.label_names)}")
        return 0
    if args.check:
        stale = drift(specs, args.out, whole=not args.family)
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        if stale:
            print(
                "run `imagine-assist functions render`, remove the folders of functions that "
                "are gone, and commit the result",
                file=sys.stderr,
            )
        return 1 if stale else 0
    check_output_folder(args.out)  # only here: list and --check write nothing
    for path in render(specs, args.out):
        print(path)
    for path in orphans(specs, args.out) if not args.family else ():
        log.warning("%s is of no function now: remove %s", path, path.parent)
    return 0
