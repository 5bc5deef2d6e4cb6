"""`imagine-assist separate`: split touching plankton in ZooScan vignettes; EcoTaxa TSV."""

from __future__ import annotations

import argparse
import os
import sys

from imagine_assist.app.common import MODELS_HELP
from imagine_assist.errors import UserError


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "separate",
        help="split touching plankton in ZooScan vignettes; EcoTaxa TSV",
        parents=parents,
    )
    parser.add_argument("source", help="a vignette or a directory of vignettes")
    parser.add_argument("--out", required=True, help="folder for the masks and the TSV")
    parser.add_argument("--weights", help="separator .onnx (default: the family's live model)")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes, at most one per core",
    )
    parser.add_argument(
        "--scale-bar-rows",
        type=int,
        help="rows at the bottom holding the 1 mm scale bar (default: found in each vignette)",
    )
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.home import out_folder_held
    from imagine_assist.images import readable_name
    from imagine_assist.zooscan import SeparatorSource, separate_to_files

    if args.scale_bar_rows is not None and args.scale_bar_rows < 0:
        raise UserError("--scale-bar-rows must be 0 or more")
    if args.workers < 1:
        raise UserError("--workers must be 1 or more")
    source = SeparatorSource(args.weights, args.models, args.scale_bar_rows)
    with out_folder_held(args.out, "separate"):
        report = separate_to_files(args.source, args.out, source, workers=args.workers)
    print(
        f"{report.vignettes} vignettes ({report.multiples} multiple) -> {report.objects} "
        f"organisms; EcoTaxa TSV {report.tsv}"
    )
    for _, reason in report.skipped:  # one line each, naming the file as the outputs do
        print(f"skipped: {reason}", file=sys.stderr)
    if report.no_organism:
        names = ", ".join(readable_name(p) for p in report.no_organism[:5])
        more = f" and {len(report.no_organism) - 5} more" if len(report.no_organism) > 5 else ""
        print(
            f"no organism found in {len(report.no_organism)} vignettes ({names}{more}), "
            "faint or blank: they have no row in the TSV; look at them before the import",
            file=sys.stderr,
        )
    return 0
