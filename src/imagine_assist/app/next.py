"""`imagine-assist next`: the images to label next, by the live model's uncertainty and
their diversity, as a list and optionally as a CVAT task."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from imagine_assist.app.common import (
    CVAT_LOGIN,
    MODELS_HELP,
    box_detector,
    checked_threshold,
    cvat_client,
    cvat_login,
    threshold_value,
)
from imagine_assist.errors import UserError
from imagine_assist.home import Home


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "next",
        help="pick the images to label next (uncertain and diverse), as a list or a CVAT task",
        description="Score every image with the function's model, pick the most uncertain "
        "ones that do not repeat each other, write them to next.csv and, with --cvat, "
        "create a CVAT task holding them. The rule: docs/loop.md, 'What to label next'.",
        parents=parents,
    )
    parser.add_argument(
        "--function",
        required=True,
        help="a box detector, e.g. fish-detector (`imagine-assist functions list`)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="IMAGES",
        help="a directory of unlabelled images",
    )
    parser.add_argument("-n", type=int, default=50, help="how many images to pick")
    parser.add_argument("--out", help="folder for next.csv (default: <home>/next/<function>)")
    parser.add_argument("--weights", help=".onnx or .pt (default: the family's live model)")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--threshold",
        type=threshold_value,
        help="the confidence where the model is least sure (default: the function's)",
    )
    parser.add_argument(
        "--cvat",
        metavar="URL",
        help=f"create a CVAT task with the picks on this server; {CVAT_LOGIN} (default: none, "
        "only the list)",
    )
    parser.add_argument(
        "--project", type=int, help="CVAT project id for the task; it takes the project's labels"
    )
    parser.add_argument(
        "--task-name", help="(default: 'next <n> for <function>' and the date and time)"
    )
    parser.add_argument(
        "--pre-annotate",
        action="store_true",
        help="pre-annotate the new task with the same model (cvat-sdk annotate_task)",
    )
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.review.next_images import create_labelling_task, next_images

    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    if args.cvat is None and (args.project is not None or args.task_name or args.pre_annotate):
        raise UserError("--project, --task-name and --pre-annotate need --cvat URL")
    if args.cvat is not None:
        cvat_login()  # before scoring a whole folder, not after it
    function = box_detector(args.function, args.weights, args.models)
    threshold = checked_threshold(function.spec, args.threshold)
    out = Path(args.out) if args.out else Home.resolve().root / "next" / args.function
    report = next_images(function, args.source, args.n, out, threshold)
    for _, reason in report.skipped:
        print(f"skipped: {reason}", file=sys.stderr)
    print(
        f"{args.function}: picked {len(report.picks)} of {report.scored} images by uncertainty "
        f"and diversity -> {report.list_path}"
    )
    if args.cvat is None:
        return 0
    name = args.task_name or (
        f"next {len(report.picks)} for {args.function} {time.strftime('%Y-%m-%d %H:%M')}"
    )
    with cvat_client(args.cvat) as client:
        task = create_labelling_task(
            client, report.picks, name, function.spec.label_names, args.project
        )
        print(f"created CVAT task {task.id} {name!r} with {len(report.picks)} images")
        if args.pre_annotate:
            from cvat_sdk.auto_annotation import annotate_task

            from imagine_assist.cvat.sdk_function import SdkDetectionFunction

            annotate_task(
                client, task.id, SdkDetectionFunction(function), allow_unmatched_labels=True
            )
            print(f"pre-annotated task {task.id} with {args.function}")
    return 0
