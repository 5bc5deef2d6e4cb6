"""`imagine-assist review`: compare a corrected CVAT export with a detector's predictions
in FiftyOne, and send the likely mistakes back to CVAT."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imagine_assist.app.common import (
    FIFTYONE_CVAT_LOGIN,
    MODELS_HELP,
    add_cvat_option,
    add_export_options,
    checked_threshold,
    cvat_url,
    fiftyone_cvat_login,
    threshold_value,
)
from imagine_assist.home import Home


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "review",
        help="compare a corrected CVAT export with the model's predictions in FiftyOne",
        parents=parents,
    )
    parser.add_argument("export", help="CVAT export zip (images 1.1, video 1.1, COCO, YOLO)")
    parser.add_argument(
        "--function", required=True, help="the deployed detector, e.g. fish-detector"
    )
    parser.add_argument("--out", default="review", help="folder for summary.json and plots")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--threshold",
        type=threshold_value,
        help="prediction confidence threshold, in the function's range (default: the function's)",
    )
    parser.add_argument(
        "--class-agnostic",
        action="store_true",
        help="match boxes whatever their labels: how well the model finds the objects, "
        "when the export's labels differ from the function's",
    )
    add_export_options(parser, exports=False, val=False)
    parser.add_argument("--app", action="store_true", help="open the FiftyOne App on 127.0.0.1")
    parser.add_argument("--port", type=int, default=5151, help="FiftyOne App port")
    parser.add_argument(
        "--send-to-cvat",
        nargs="?",
        const=True,
        metavar="URL",
        help="send the likely mistakes to CVAT for correction, to the server of --cvat (or "
        "the URL given here); FiftyOne logs in with CVAT_USER and CVAT_PASSWORD",
    )
    add_cvat_option(parser, "for --send-to-cvat")
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.functions.catalog import get_spec
    from imagine_assist.review.review import MISTAKES_VIEW, review_export
    from imagine_assist.training.exports import parse_label_map

    spec = get_spec(args.function, args.models)
    threshold = checked_threshold(spec, args.threshold)
    url = None
    if args.send_to_cvat:  # the login is checked before the review, not after it
        url = (
            args.send_to_cvat
            if isinstance(args.send_to_cvat, str)
            else cvat_url(args.cvat, FIFTYONE_CVAT_LOGIN)
        )
        fiftyone_cvat_login(url)
    out = Path(args.out)
    work = Home.resolve().root / "runs" / "review"
    dataset, summary = review_export(
        args.export,
        args.function,
        out,
        work,
        args.models,
        threshold,
        class_agnostic=args.class_agnostic,
        label_map=parse_label_map(args.label_map),
    )
    facts = json.loads(summary.summary.read_text())
    print(
        f"{facts['samples']} images: mAP50 {facts['mAP50']:.3f}, TP {facts['tp']}, "
        f"FP {facts['fp']}, FN {facts['fn']}"
    )
    for name, scores in facts["per_class"].items():
        print(f"  {name}: precision {scores['precision']:.3f}, recall {scores['recall']:.3f}")
    agnostic = facts["class_agnostic"]
    print(
        f"  any label (boxes matched whatever their labels): AP50 {agnostic['AP50']:.3f}, "
        f"precision {agnostic['precision']:.3f}, recall {agnostic['recall']:.3f}, "
        f"TP {agnostic['tp']}, FP {agnostic['fp']}, FN {agnostic['fn']}"
    )
    flagged = ", ".join(summary.flagged) or "none: labels and predictions agree on every image"
    print(f"likely mistakes first ({facts['mistakes_scored_by']}): {flagged}")
    print(f"summary and plots in {out}; FiftyOne dataset {dataset.name!r}, view {MISTAKES_VIEW!r}")
    if url is not None:
        from imagine_assist.review.review import send_to_cvat

        key, count = send_to_cvat(dataset, list(spec.label_names), url)
        print(f"sent {count} samples to {url}; bring the fixes back with key {key!r}")
    if args.app:
        from imagine_assist.review.app import serve_app

        serve_app(dataset, MISTAKES_VIEW, args.port)
    return 0
