"""`imagine-assist train`: a family's default model from synthetic scenes, or a new version
retrained from corrected CVAT exports (`--from`)."""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.app.common import (
    MODELS_HELP,
    add_export_options,
    check_device,
    family_help,
    positive_int,
    ratio_text,
    reload_gateway,
)
from imagine_assist.errors import UserError
from imagine_assist.home import Home, work_folder_held

EPILOG = """\
examples:
  imagine-assist train fish --from task-12.zip --from task-13.zip     # a new registry version
  imagine-assist train fish --from task-14.zip --val fixed-val.zip   # gate on a fixed export
  imagine-assist train fish --from task-3.zip --map Fish=fish        # rename export labels
  imagine-assist train plankton --from task-7.zip   # the separator, from corrected masks
  imagine-assist train fish --yes                                    # synthetic default model
"""

# Wall-clock seconds per training image and epoch of YOLOv8n at 320 px, validation
# included: 0.075 measured on 2 CPU cores (`train fish --images 60`, 6 epochs against 2),
# rounded up for data generation and the test run. Fish's 400 x 80 comes to about 43 minutes;
# more cores go faster. An order of size, to decide whether to start, not a promise.
CPU_SECONDS_PER_IMAGE_EPOCH = 0.08
GPU_SECONDS_PER_IMAGE_EPOCH = 0.004
REFERENCE_IMGSZ = 320
# Segmentation costs more per image than boxes, and the classifier far less (224 px, cls).
PLANKTON_SEPARATOR_FACTOR = 1.3
PLANKTON_CLASSIFIER_FACTOR = 0.3
# A tiled family trains on the windows that hold objects and a tenth of the empty ones:
# 27 of a litter frame's 48 windows, measured on generated frames.
TILED_WINDOWS_KEPT = 0.55
ASK_ABOVE_SECONDS = 300  # shorter runs start without a question


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="retrain a family from CVAT exports (--from), or train a built-in family's "
        "default model on synthetic scenes",
        description="With --from: train a candidate from corrected CVAT exports, compare it "
        "with the live model on held-out images, store it as a new registry version, and "
        "promote it if the recipe's gate lets it. Without --from: train a built-in family's "
        "default model on synthetic scenes (a long CPU run; it says how long first).",
        epilog=EPILOG,
        parents=parents,
    )
    parser.add_argument("family", help=family_help())
    add_export_options(parser)
    parser.add_argument(
        "--recipe",
        help="retraining recipe YAML, shaped like a family file's `training:` "
        "(default: the family's)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote even if the gate fails (a model whose classes differ from the "
        "family's labels is never promoted)",
    )
    parser.add_argument("--gateway", help="URL of a running gateway to reload after promotion")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--work",
        help="folder for data and training runs (default: <home>/runs/<family>, with --from "
        "<home>/runs/<family>-retrain)",
    )
    parser.add_argument("--epochs", type=positive_int, help="(default: the recipe's)")
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0")
    parser.add_argument(
        "--images",
        type=positive_int,
        help="synthetic: generated train+val images (default: the family file's)",
    )
    parser.add_argument(
        "--hours",
        type=float,
        help="plankton: wall-clock budget per model, overrides --epochs (default: epochs)",
    )
    parser.add_argument(
        "--only",
        choices=["separator", "classifier"],
        help="plankton: train one of the two models (default: both)",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="synthetic: start without asking")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.families import get_family

    family = get_family(args.family)  # here, not in argparse: --home decides what exists
    check_device(args.device)  # before the data is made, not a traceback from the trainer
    if args.exports and family.name == "plankton":
        return _train_separator_from_exports(args)
    if args.exports:
        return _train_from_exports(args)
    if args.val_exports or args.label_map:
        raise UserError("--val and --map go with --from: they are for retraining from exports")
    estimate = training_estimate(
        family.name, args.epochs, args.images, args.device, args.hours, args.only
    )
    if not confirm(estimate, args.yes):
        print("not started")
        return 1
    from imagine_assist.models.store import family_dir

    target = family_dir(family.name, args.models)
    work = Path(args.work) if args.work else Home.resolve().root / "runs" / family.name
    if family.name == "plankton":
        return _train_plankton(args, target, work)
    from imagine_assist.training.defaults import train_default

    with work_folder_held(work, f"training of {family.name}"):
        trained = train_default(family.name, target, work, estimate.recipe, device=args.device)
    test = trained.metrics["test"]
    print(
        f"{family.name}: held-out test mAP50 {test['mAP50']:.3f}, mAP50-95 "
        f"{test['mAP50-95']:.3f}, precision {test['precision']:.3f}, recall {test['recall']:.3f}"
    )
    print(f"installed {trained.onnx} and {trained.pt}")
    return 0


@dataclass(frozen=True)
class Estimate:
    seconds: float
    what: str  # "400 images x 80 epochs", for the message
    device: str
    recipe: object  # the recipe the estimate is for, which training then runs

    def message(self) -> str:
        where = (
            "on 2 CPU cores (less with more)" if self.device == "cpu" else f"on GPU {self.device}"
        )
        return (
            f"training {self.what} takes about {_duration(self.seconds)} {where} "
            "(--epochs and --images make a shorter run)"
        )


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 2:
        return "a minute"
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{seconds / 3600:.1f} hours"


def _frame_windows(family: str, tile_size: int | None, tile_overlap: int) -> int:
    """Windows tiled inference cuts from one of the family's generated frames: a tiled
    family trains on those windows, not on whole frames."""
    if not tile_size:
        return 1
    from imagine_assist.families import get_family
    from imagine_assist.models.tiling import tile_windows
    from imagine_assist.samples import SAMPLE_FAMILIES

    generator = SAMPLE_FAMILIES[get_family(family).synthetic or family].generate
    defaults = inspect.signature(generator).parameters
    if "width" not in defaults or "height" not in defaults:
        return 1
    width, height = defaults["width"].default, defaults["height"].default
    return len(tile_windows(width, height, tile_size, tile_overlap))


def training_estimate(
    family: str,
    epochs: int | None = None,
    images: int | None = None,
    device: str = "cpu",
    hours: float | None = None,
    only: str | None = None,
) -> Estimate:
    """How long `train FAMILY` (synthetic, no --from) will take, from its recipe: training
    images x epochs x the measured cost of one image-epoch."""
    per_image_epoch = (
        CPU_SECONDS_PER_IMAGE_EPOCH if device == "cpu" else GPU_SECONDS_PER_IMAGE_EPOCH
    )
    if family == "plankton":
        from dataclasses import replace

        from imagine_assist.training.plankton import PLANKTON_RECIPE

        recipe = PLANKTON_RECIPE.scaled(epochs=epochs, images=images)
        if hours:
            recipe = replace(recipe, hours=hours)
        parts = {
            "separator": recipe.separator_epochs * PLANKTON_SEPARATOR_FACTOR,
            "classifier": recipe.classifier_epochs * PLANKTON_CLASSIFIER_FACTOR,
        }
        models = [only] if only else list(parts)
        if recipe.hours:
            seconds = recipe.hours * 3600 * len(models)
            what = f"{' and '.join(models)} for {recipe.hours:g} h each"
        else:
            seconds = sum(parts[m] for m in models) * recipe.images * per_image_epoch
            what = f"{' and '.join(models)} on {recipe.images} vignettes"
        return Estimate(seconds, what, device, recipe)
    from imagine_assist.training.recipes import RECIPES

    if family not in RECIPES:
        raise UserError(
            f"family {family} has no synthetic training (no `default_training:`): retrain it "
            f"from your exports with `imagine-assist train {family} --from EXPORT.zip`"
        )
    recipe = RECIPES[family].scaled(epochs=epochs, images=images)
    windows = _frame_windows(family, recipe.tile_size, recipe.tile_overlap)
    scale = (recipe.imgsz / REFERENCE_IMGSZ) ** 2
    kept = windows * TILED_WINDOWS_KEPT if windows > 1 else 1
    seconds = recipe.images * kept * recipe.epochs * scale * per_image_epoch
    what = f"{family}: {recipe.images} images" + (
        f" (about {round(kept)} of {windows} windows each)" if windows > 1 else ""
    )
    return Estimate(seconds, f"{what} x {recipe.epochs} epochs", device, recipe)


def confirm(estimate: Estimate, yes: bool, stdin=None) -> bool:
    """Say how long it takes; ask first when someone is at the terminal and it is long.
    Scripts and tests (stdin not a terminal) are told and go on."""
    stdin = stdin or sys.stdin
    print(estimate.message(), flush=True)
    if yes or estimate.seconds < ASK_ABOVE_SECONDS or not stdin.isatty():
        return True
    try:
        answer = input("start it? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _train_plankton(args: argparse.Namespace, target: Path, work: Path) -> int:
    from dataclasses import replace

    from imagine_assist.training.plankton import PLANKTON_RECIPE, train_plankton

    recipe = PLANKTON_RECIPE.scaled(epochs=args.epochs, images=args.images)
    if args.hours:
        recipe = replace(recipe, hours=args.hours)
    metrics = train_plankton(target, work, recipe, device=args.device, only=args.only)
    test = metrics["test"]
    for name in ("model", "watershed"):
        if name in test:
            scores = test[name]["all"]
            print(
                f"separator ({name}): F1 {scores['f1']:.3f}, over-split "
                f"{scores['over_split_rate']:.3f}, under-split {scores['under_split_rate']:.3f}"
            )
    if "classifier" in test:
        scores = test["classifier"]
        print(
            f"classifier: recall(multiple) {ratio_text(scores['recall_multiple'])}, "
            f"precision(multiple) {ratio_text(scores['precision_multiple'])}"
        )
    print(f"installed the plankton models in {target}")
    return 0


def _train_from_exports(args: argparse.Namespace) -> int:
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import family_dir
    from imagine_assist.training.exports import parse_label_map
    from imagine_assist.training.retrain import load_recipe, retrain

    registry = Registry(family_dir(args.family, args.models).parent)
    work = Path(args.work) if args.work else Home.resolve().root / "runs" / f"{args.family}-retrain"
    recipe = load_recipe(args.family, args.recipe)
    with work_folder_held(work, f"training of {args.family}"):
        result = retrain(
            args.family,
            args.exports,
            registry,
            work,
            recipe,
            args.device,
            args.force,
            args.epochs,
            val_exports=args.val_exports,
            label_map=parse_label_map(args.label_map),
        )
    metrics = result.card["metrics"]
    deployed = metrics["deployed"]
    evaluated = result.card["evaluated_on"]
    print(
        f"{args.family} {result.version.name}: mAP50 {metrics['candidate']['mAP50']:.3f}"
        + (
            f" (deployed {metrics['deployed_version']}: {deployed['mAP50']:.3f})"
            if deployed
            else ""
        )
        + f" on {evaluated['images']} "
        + ("held-out" if evaluated["split"] != "train" else "training")
        + " images"
        + (f" ({evaluated['boxes']} boxes)" if "boxes" in evaluated else "")
    )
    if evaluated["split"] == "train":
        print(
            "warning: no image fell in the val or test split, so the gate compared the "
            "models on images the candidate trained on; export more images (or a longer "
            "stretch of video), or name a fixed validation export with --val"
        )
    report_outcome(args, registry, result)
    return 0


def _train_separator_from_exports(args: argparse.Namespace) -> int:
    """The plankton family retrains its separator from organisms corrected as masks or
    polygons (`training.plankton_retrain`); every mask is an organism, so no label map."""
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import family_dir
    from imagine_assist.training.plankton_retrain import retrain_separator

    if args.label_map or args.recipe:
        raise UserError(
            "plankton reads every mask or polygon of an export as an organism, with its own "
            "recipe: --map and --recipe are for the box families"
        )
    if args.hours or args.only or args.images:
        raise UserError(
            "--hours, --only and --images are for training on synthetic vignettes; with "
            "--from, the separator is retrained for --epochs"
        )
    registry = Registry(family_dir(args.family, args.models).parent)
    work = Path(args.work) if args.work else Home.resolve().root / "runs" / "plankton-retrain"
    with work_folder_held(work, "training of plankton"):
        result = retrain_separator(
            args.exports,
            registry,
            work,
            device=args.device,
            force=args.force,
            epochs=args.epochs,
            val_exports=args.val_exports,
        )
    metrics = result.card["metrics"]
    candidate, deployed = metrics["candidate"], metrics["deployed"]
    held_out = result.card["evaluated_on"]
    if candidate:
        print(
            f"plankton {result.version.name}: separator F1 {candidate['f1']:.3f} (live "
            f"{metrics['deployed_version']}: {deployed['f1']:.3f}) on {held_out['vignettes']} "
            f"held-out vignettes ({held_out['organisms']} organisms)"
        )
    else:
        print(f"plankton {result.version.name}: no vignette fell in the held-out split")
    report_outcome(args, registry, result)
    return 0


def report_outcome(args: argparse.Namespace, registry, result) -> None:
    """The gate's reasons, and what serves now: promoted, undecided or kept."""
    for reason in result.gate["reasons"]:
        print(f"gate: {reason}")
    undecided = result.gate.get("decided") is False
    if result.gate.get("live_changed"):
        print(f"not promoted: {result.gate['live_changed']}")
    elif result.promoted:
        forced = "" if result.gate["passed"] else " (forced)"
        print(f"promoted {result.version.name}{forced}")
        if args.gateway:
            reload_gateway(args.gateway, args.family)
    elif undecided:
        current = registry.current(args.family)
        print(
            f"not enough held-out data: the gate could not decide, so nothing was promoted; "
            f"{current.name if current else 'the default model'} still serves. "
            f"{result.version.name} is kept in the registry"
        )
    else:
        current = registry.current(args.family)
        print(
            f"kept {current.name if current else 'the deployed model'}; `imagine-assist models "
            f"promote {args.family} {result.version.name} --force` overrides the gate"
        )
