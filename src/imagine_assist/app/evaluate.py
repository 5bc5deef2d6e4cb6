"""`imagine-assist evaluate`: check a function on your own labelled images before trusting
its pre-annotations. A detector: AP, precision and recall at the served threshold, empty
images with a box, and galleries of its worst mistakes. `plankton-separator`: its
single/multiple tag on vignettes sorted into single/ and multiple/ folders."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from imagine_assist.app.common import (
    MODELS_HELP,
    add_export_options,
    checked_threshold,
    ratio_text,
    threshold_value,
)
from imagine_assist.home import Home


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="check a function on your own labelled images (AP, P/R, galleries)",
        description=__doc__,
        parents=parents,
    )
    parser.add_argument(
        "source",
        help="for a detector: a YOLO folder (data.yaml, or images/ and labels/ side by side) "
        "or a CVAT export zip (images 1.1, video 1.1, COCO 1.0, Ultralytics YOLO); for "
        "plankton-separator: a folder of vignettes sorted into single/ and multiple/ (the "
        "tag), or a CVAT for images 1.1 export zip with the organisms drawn as masks or "
        "polygons (the separation)",
    )
    parser.add_argument(
        "--function",
        required=True,
        help="a detector, e.g. fish-detector, or plankton-separator (its single/multiple tag)",
    )
    parser.add_argument(
        "--class-agnostic",
        action="store_true",
        help="every box is one class: how well the model finds the objects, whatever labels",
    )
    parser.add_argument(
        "--threshold",
        type=threshold_value,
        help="the served confidence threshold that precision, recall and the galleries "
        "use; for plankton-separator, the P(multiple) from which a vignette is tagged "
        "multiple (default: the function's own, its classifier's for plankton-separator)",
    )
    add_export_options(parser, exports=False, val=False)
    parser.add_argument("--out", default="evaluation", help="folder for summary.json and the plots")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.errors import UserError
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.functions.detector import DetectorFunction
    from imagine_assist.functions.separator import SeparatorFunction
    from imagine_assist.review.evaluate import evaluate_function
    from imagine_assist.training.exports import fiftyone, parse_label_map

    label_map = parse_label_map(args.label_map)
    if not Path(args.source).exists():
        raise UserError(f"no folder or export at {args.source}")
    function = load_function(args.function, models_dir=args.models)
    if isinstance(function, SeparatorFunction):
        return run_plankton(args, function, label_map)
    if not getattr(args, "verbose", False):  # FiftyOne's own progress lines, on stdout
        fiftyone()  # which sets its loggers' levels when imported
        for name in ("fiftyone", "eta"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if not isinstance(function, DetectorFunction):
        raise UserError(
            f"{args.function} is not a box detector; evaluate takes a detector function "
            "or plankton-separator (`imagine-assist functions list`)"
        )
    threshold = checked_threshold(function.spec, args.threshold)
    out = Path(args.out)
    work = Home.resolve().root / "runs" / "evaluate"
    result = evaluate_function(
        args.source,
        function,
        out,
        work,
        threshold=threshold,
        class_agnostic=args.class_agnostic,
        label_map=label_map,
    )
    print(summary_lines(result.facts))
    print(f"summary.json and plots in {out}")
    return 0


def run_plankton(args: argparse.Namespace, function, label_map: dict) -> int:
    """plankton-separator: its organisms against a CVAT export's masks, or its
    single/multiple tag against vignettes sorted by eye."""
    from imagine_assist.errors import UserError
    from imagine_assist.review.evaluate_masks import evaluate_separation
    from imagine_assist.review.evaluate_tags import evaluate_tags

    if args.class_agnostic or label_map:
        raise UserError(
            "--class-agnostic and --map are for detectors; plankton-separator is judged on "
            "the single/ and multiple/ folders"
        )
    threshold = args.threshold
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise UserError(f"a P(multiple) threshold lies in (0, 1), not {threshold:g}")
    if Path(args.source).is_file():  # an export
        work = Home.resolve().root / "runs" / "evaluate"
        result = evaluate_separation(args.source, function, Path(args.out), work, threshold)
        print(separation_summary_lines(result.facts))
    else:
        result = evaluate_tags(args.source, function, Path(args.out), threshold)
        print(tag_summary_lines(result.facts))
    print(f"summary.json and plots in {args.out}")
    return 0


def separation_summary_lines(facts: dict) -> str:
    lines = [
        f"{facts['function']} on {facts['vignettes']} vignettes ({facts['multiples']} multiple, "
        f"{facts['singles']} single): {facts['drawn_organisms']} organisms drawn, "
        f"{facts['organisms_sent']} sent"
    ]
    for part, scores in facts["separation"].items():
        if scores:
            lines.append(
                f"  {part}: F1 {scores['f1']:.3f} (IoU 0.5; precision {scores['precision']:.3f}, "
                f"recall {scores['recall']:.3f}), over-split {scores['over_split_rate']:.3f}, "
                f"under-split {scores['under_split_rate']:.3f}"
            )
    lines.append(
        f'tag "multiple": precision {ratio_text(facts["precision_multiple"])}, recall '
        f"{ratio_text(facts['recall_multiple'])}; singles cut into several objects: "
        f"{facts['singles_cut_apart']} of {facts['singles']}"
    )
    if facts.get("undrawn"):
        lines.append(f"nothing drawn, left out: {len(facts['undrawn'])} (in summary.json)")
    if facts["unreadable"]:
        lines.append(f"unreadable, left out: {len(facts['unreadable'])} (in summary.json)")
    return "\n".join(lines)


def tag_summary_lines(facts: dict) -> str:
    by = (
        f"P(multiple) >= {facts['threshold']:g}"
        if facts["threshold"] is not None
        else "two organisms or more (no classifier)"
    )
    lines = [
        f"{facts['function']} on {facts['vignettes']} vignettes ({facts['multiples']} multiple, "
        f"{facts['singles']} single), tagged multiple at {by}",
        f'"multiple": precision {ratio_text(facts["precision_multiple"])}, recall '
        f"{ratio_text(facts['recall_multiple'])}; {facts['tagged_multiple']} tagged multiple "
        f"({facts['tagged_multiple_share']:.1%}); singles cut into several objects: "
        f"{facts['singles_cut_apart']} of {facts['singles']}",
    ]
    if facts["roc_auc"] is not None:
        lines.append(
            f"ranking by {facts['score']}: ROC AUC {facts['roc_auc']:.3f}, average precision "
            f"{facts['average_precision']:.3f}"
        )
    left = ", ".join(f"{folder}/ {count}" for folder, count in facts["left_out"].items())
    if left:
        lines.append(f"left out: {left}")
    if facts["unreadable"]:
        lines.append(f"unreadable, left out: {len(facts['unreadable'])} (in summary.json)")
    return "\n".join(lines)


def summary_lines(facts: dict) -> str:
    mode = "class-agnostic" if facts["class_agnostic"] else "per class"
    lines = [
        f"{facts['function']} on {facts['images']} images, {facts['boxes']} boxes ({mode}, "
        f"IoU {facts['iou']:g}): AP50 {facts['AP50']:.3f}, AP50-95 {facts['AP50-95']:.3f}",
        f"at threshold {facts['threshold']:g}: precision {ratio_text(facts['precision'])}, "
        f"recall {ratio_text(facts['recall'])} (TP {facts['tp']}, FP {facts['fp']}, "
        f"FN {facts['fn']})",
    ]
    if facts["empty_images"]:
        lines.append(
            f"empty images with a box: {facts['empty_images_with_box']} of "
            f"{facts['empty_images']} ({facts['empty_with_box_share']:.0%})"
        )
    else:
        lines.append("empty images: none")
    cost = facts["annotator_time"]
    lines.append(
        f"annotator time (review/annotator_time.py): {cost['seconds'] / 60:.1f} min to correct "
        f"the boxes sent at {cost['threshold']:g}, {cost['from_scratch'] / 60:.1f} min to draw "
        f"every box; least at threshold {cost['cheapest_threshold']:g}: "
        f"{cost['cheapest_seconds'] / 60:.1f} min"
    )
    if not facts["class_agnostic"] and len(facts["per_class"]) > 1:
        for label, scores in facts["per_class"].items():
            lines.append(f"  {label}: AP50 {scores['AP50']:.3f}, AP50-95 {scores['AP50-95']:.3f}")
    if facts.get("unreadable"):
        lines.append(
            f"unreadable or refused, left out with their labels: {len(facts['unreadable'])} "
            "(in summary.json)"
        )
    return "\n".join(lines)
