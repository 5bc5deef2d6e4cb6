"""`imagine-assist families list|show|create`: the families this home serves, and a new one
from a user's own CVAT export."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagine_assist.app.common import (
    MODELS_HELP,
    HelpFormatter,
    add_export_options,
    check_device,
    positive_int,
)
from imagine_assist.errors import UserError
from imagine_assist.home import Home, work_folder_held

EPILOG = """\
examples:
  imagine-assist families create reef --from task-12.zip            # labels from the export
  imagine-assist families create obsea --from a.zip --from b.zip --val fixed-val.zip
  imagine-assist families show reef
"""


def add_parser(commands, parents=()) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "families",
        help="list the families, show one, or start one from your own CVAT export",
        description="A family is one YAML file: labels, served functions, models, training "
        "recipe and gate. Built-in ones ship with imagine-assist; yours live in "
        "<home>/families/.",
        epilog=EPILOG,
        parents=list(parents),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("action", choices=["list", "show", "create"])
    parser.add_argument("name", nargs="?", help="the family (show, create)")
    add_export_options(parser)
    parser.add_argument(
        "--base",
        help="create: the built-in family whose model to start from (default: the one "
        "sharing most labels, else fish)",
    )
    parser.add_argument(
        "--epochs", type=positive_int, help="create: epochs (default: the recipe's)"
    )
    parser.add_argument("--device", default="cpu", help="create: cpu, or a CUDA device such as 0")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--work", help="create: folder for the run (default: <home>/runs/NAME-create)"
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.families import get_family, read_families

    if args.action == "list":
        families, problems = read_families(None)
        for path, error in problems.items():
            print(f"unusable family file {path}: {error}")
        for family in families.values():
            where = "built in" if family.builtin else str(family.source)
            labels = ", ".join(family.labels) if family.labels is not None else "(from model)"
            functions = ", ".join(function.id for function in family.functions)
            print(f"{family.name:12} {functions:52} {labels}  [{where}]")
        return 0
    if not args.name:
        raise UserError(f"name the family: `imagine-assist families {args.action} NAME`")
    if args.action == "show":
        family = get_family(args.name)
        print(f"# {family.source}")
        print(Path(family.source).read_text())
        return 0
    return _create(args)


def _create(args: argparse.Namespace) -> int:
    from imagine_assist.training.exports import parse_label_map
    from imagine_assist.training.new_family import check_new_name, create_family

    check_new_name(args.name)  # before the work folder is named after it
    home = Home.resolve()
    work = Path(args.work) if args.work else home.root / "runs" / f"{args.name}-create"
    check_device(args.device)  # before the export is read, not a trainer's traceback
    with work_folder_held(work, f"creation of {args.name}"):
        created = create_family(
            args.name,
            args.exports,
            work,
            args.models,
            args.base,
            args.val_exports,
            parse_label_map(args.label_map),
            args.epochs,
            args.device,
        )
    result = created.result
    candidate = result.card["metrics"]["candidate"]
    evaluated = result.card["evaluated_on"]
    print(
        f"family {created.family.name}: labels {', '.join(created.family.labels)}; "
        f"started from the {created.base} model"
    )
    print(
        f"{created.family.name} {result.version.name}: mAP50 {candidate['mAP50']:.3f} on "
        f"{evaluated['images']} {'held-out' if evaluated['split'] != 'train' else 'training'} "
        f"images ({evaluated['boxes']} boxes)"
    )
    if not result.gate.get("decided", True):
        print(f"note: {result.gate['reasons'][0]}; this first model serves anyway")
    print(f"family file {created.path}")
    print(
        f"served as {created.family.functions[0].id}: `imagine-assist serve` (a gateway "
        "already running: `kill -HUP` it), "
        f"`imagine-assist predict IMAGES --function {created.family.functions[0].id}`; "
        f"retrain with `imagine-assist train {created.family.name} --from NEXT_EXPORT.zip`"
    )
    return 0
