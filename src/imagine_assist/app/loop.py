"""`imagine-assist loop`: export a corrected CVAT task, review it, retrain, promote, and
pre-annotate the next task."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagine_assist.app.common import (
    MODELS_HELP,
    add_cvat_option,
    cvat_client,
    cvat_url,
    family_help,
    reload_gateway,
)
from imagine_assist.errors import UserError
from imagine_assist.home import Home


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "loop",
        help="export a corrected CVAT task, review, retrain, promote, pre-annotate the next",
        parents=parents,
    )
    parser.add_argument("family", help=family_help("the family of the task's labels"))
    add_cvat_option(parser, "holding the tasks")
    parser.add_argument("--task", type=int, required=True, help="the corrected task")
    parser.add_argument(
        "--next-task", type=int, help="the task to pre-annotate afterwards (default: none)"
    )
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--work", help="folder for exports, reviews and runs (default: <home>/loop/<family>)"
    )
    parser.add_argument("--epochs", type=int, help="(default: the recipe's)")
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0")
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote even if the gate fails (never a model with other classes)",
    )
    parser.add_argument("--gateway", help="URL of a running gateway to reload after promotion")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.families import get_family
    from imagine_assist.loop import run_loop

    spec = get_family(args.family)  # here, not in argparse: --home decides what exists
    family = spec.name
    if spec.training is None:  # before CVAT is asked for anything
        raise UserError(
            f"the loop's round trip retrains box families; {family} has no `training:` recipe. "
            + (
                "Export the corrected task (CVAT for images 1.1, organisms as masks) and run "
                "`imagine-assist train plankton --from task.zip`"
                if family == "plankton"
                else f"Retrain it with `imagine-assist train {family}`"
            )
        )
    url = cvat_url(args.cvat)
    work = Path(args.work) if args.work else Home.resolve().root / "loop" / family
    reload = (lambda name: reload_gateway(args.gateway, name)) if args.gateway else None
    with cvat_client(url) as client:
        report = run_loop(
            client,
            family,
            args.task,
            args.next_task,
            work,
            args.models,
            args.device,
            args.epochs,
            args.force,
            reload,
        )
    print(f"exported task {args.task} -> {report.export}; review in {report.review_summary.parent}")
    print(
        f"trained {report.version} from {len(report.exports_used)} export(s): "
        + ("promoted" if report.promoted else "not promoted")
        + " ("
        + "; ".join(report.gate_reasons)
        + ")"
    )
    if report.annotated_task is not None:
        print(f"pre-annotated task {report.annotated_task} with the live model")
    return 0
