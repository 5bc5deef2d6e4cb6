"""`imagine-assist predict`: run a box detector over images; CVAT XML, CSV and previews."""

from __future__ import annotations

import argparse
import json
import sys

from imagine_assist.app.common import MODELS_HELP, box_detector, checked_threshold, threshold_value


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "predict",
        help="run a function over images, write CVAT XML, CSV, previews",
        parents=parents,
    )
    parser.add_argument("source", help="an image or a directory of images")
    parser.add_argument(
        "--function",
        required=True,
        help="a box detector, e.g. fish-detector (`imagine-assist functions list`)",
    )
    parser.add_argument("--out", required=True, help="folder for the results")
    parser.add_argument("--weights", help=".onnx or .pt (default: the family's live model)")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--threshold",
        type=threshold_value,
        help="minimum confidence, in the function's range (default: the function's)",
    )
    parser.add_argument(
        "--tile-size",
        type=int,
        help="tile large images in windows this wide (default: the function's)",
    )
    parser.add_argument(
        "--tile-overlap",
        type=int,
        help="pixels shared by neighbouring tiles, at most half a tile (default: the function's)",
    )
    parser.add_argument("--no-previews", action="store_true", help="skip the preview images")
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.home import out_folder_held
    from imagine_assist.predict import predict_to_files

    function = box_detector(
        args.function, args.weights, args.models, args.tile_size, args.tile_overlap
    )
    threshold = checked_threshold(function.spec, args.threshold)
    with out_folder_held(args.out, "predict"):
        report = predict_to_files(
            function, args.source, args.out, threshold, previews=not args.no_previews
        )
    print(
        f"{args.function}: {sum(report.totals.values())} objects "
        f"{json.dumps(report.totals)} -> {report.out_dir}"
    )
    for _, reason in report.skipped:  # one line each, naming the file as the outputs do
        print(f"skipped: {reason}", file=sys.stderr)
    return 0
