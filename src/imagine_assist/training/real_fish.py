"""The bundled fish model's recipe: one class `fish`, trained on real camera frames.

    make train-real-fish    # python -m imagine_assist.training.real_fish --data DIR --out DIR

- DeepFish (20 habitats of stationary cameras) is split **by habitat**: frames of one
  habitat are near-duplicates, so the held-out habitats are cameras the model never saw.
- Fish4Knowledge's train split trains, its valid split picks the best epoch; its numbered
  species all become `fish` (species come from a user's own family).
- Letterbox bars are cut away (`models.borders`), as the served detector does.
- Every training image passes through `camera_effects.degrade` once, on top of ultralytics'
  colour, scale, flip and mosaic augmentations.
- DeepFish habitats are balanced: at most `deepfish_per_habitat` evenly spaced frames each.
- Training starts from the current bundled weights (a one-class `fish` model, so the head
  carries over too; a model with other classes keeps only its backbone) and runs for a
  wall-clock budget (ultralytics re-plans the epochs after the first one), so
  the recipe ends on time on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from imagine_assist.models.borders import picture_box
from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.training.camera_effects import degrade
from imagine_assist.training.detector import (
    evaluate_yolo,
    export_onnx,
    fit,
    write_run_record,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# Both sets are CC BY 4.0: a model trained on them credits them wherever its figures go.
CREDITS = [
    "DeepFish (Saleh et al. 2020, Scientific Reports 10, 14671; James Cook University), "
    "Roboflow export deepfish-fmyzf v2: CC BY 4.0",
    "Fish4Knowledge (Fisher et al. 2016, Fish4Knowledge project), Roboflow export "
    "fish4knowledge-dataset v3: CC BY 4.0",
]
TEST_SET = "held-out DeepFish habitats 7398, 7585, 9866, 9892, 9908 (real frames)"


@dataclass(frozen=True)
class RealFishRecipe:
    held_out_habitats: tuple[str, ...] = ("7398", "7585", "9866", "9892", "9908")
    # Of a habitat's near-duplicate frames, keep at most this many, evenly spaced: the
    # habitats with hundreds of frames of tiny fish would otherwise teach "fish are tiny".
    deepfish_per_habitat: int = 100
    f4k_every: int = 2
    degrade_chance: float = 0.3  # per camera effect, per training image
    start_from: str = "bundled"  # the bundled fish weights, or an architecture yaml
    imgsz: int = 384
    batch: int = 16
    hours: float = 1.25  # wall-clock budget of the training itself
    epochs: int = 30  # the plan ultralytics starts from; the budget stops it sooner
    seed: int = 0
    train_args: dict = field(
        default_factory=lambda: {
            "close_mosaic": 2,
            "hsv_h": 0.03,
            "hsv_s": 0.7,
            "hsv_v": 0.5,
            "degrees": 5.0,
            # Zoom 0.25-1.75x: close fish fill the frame on some cameras and are specks on
            # others, and a habitat split shows the model cameras it never saw.
            "scale": 0.75,
            "fliplr": 0.5,
            "mosaic": 1.0,
            "mixup": 0.0,
            # Continuing from trained weights: ultralytics' automatic choice (AdamW at 0.002
            # with a warm-up) took F4K val mAP50 from 0.54 down to 0.41 in three epochs.
            "optimizer": "AdamW",
            "lr0": 0.0005,
            "warmup_epochs": 0.0,
            "cache": "ram",  # a few thousand small frames: decode once, not every epoch
        }
    )


def habitat(path: Path) -> str:
    """DeepFish names each frame after its habitat: `7398_F2_f000123_jpg.rf.<hash>.jpg`."""
    return path.name.split("_", 1)[0]


def evenly_spaced(items: list, at_most: int) -> list:
    """At most `at_most` of `items`, spread over the whole list (first and last included)."""
    if len(items) <= at_most:
        return list(items)
    if at_most <= 1:
        return list(items[:at_most])
    step = (len(items) - 1) / (at_most - 1)
    return [items[round(i * step)] for i in range(at_most)]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_boxes(label: Path) -> np.ndarray:
    """YOLO rows (class, cx, cy, w, h), normalised, as an (n, 4) array of cx cy w h."""
    if not label.is_file():
        return np.zeros((0, 4))
    rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
    return np.array([[float(v) for v in row[1:5]] for row in rows]).reshape(-1, 4)


def write_frame(
    image_path: Path,
    label_path: Path,
    out_images: Path,
    out_labels: Path,
    rng: np.random.Generator | None,
    chance: float,
) -> int:
    """Copy one frame as one-class `fish`, bars cut away, optionally degraded; return boxes."""
    bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{image_path} is not a readable image")
    height, width = bgr.shape[:2]
    x0, y0, x1, y1 = picture_box(bgr)
    picture = bgr[y0:y1, x0:x1]
    boxes = _read_boxes(label_path)
    rows = []
    for cx, cy, w, h in boxes:
        left = np.clip((cx - w / 2) * width, x0, x1) - x0
        right = np.clip((cx + w / 2) * width, x0, x1) - x0
        top = np.clip((cy - h / 2) * height, y0, y1) - y0
        bottom = np.clip((cy + h / 2) * height, y0, y1) - y0
        pw, ph = x1 - x0, y1 - y0
        if right - left < 2 or bottom - top < 2:
            continue  # a box that lived in the bars
        rows.append(
            f"0 {(left + right) / 2 / pw:.6f} {(top + bottom) / 2 / ph:.6f} "
            f"{(right - left) / pw:.6f} {(bottom - top) / ph:.6f}"
        )
    if rng is not None:
        picture = degrade(picture[:, :, ::-1], rng, chance)[:, :, ::-1]
    stem = image_path.stem
    cv2.imwrite(str(out_images / f"{stem}.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (out_labels / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    return len(rows)


def _write_split(frames, root: Path, split: str, rng, chance: float) -> dict:
    images, labels = root / split / "images", root / split / "labels"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    boxes = empty = 0
    for image_path, label_path in frames:
        n = write_frame(image_path, label_path, images, labels, rng, chance)
        boxes += n
        empty += n == 0
    return {"images": len(frames), "boxes": boxes, "empty_images": empty}


def _pairs(images: list[Path], labels: Path) -> list[tuple[Path, Path]]:
    return [(p, labels / f"{p.stem}.txt") for p in images]


def build_datasets(data: Path, out: Path, recipe: RealFishRecipe) -> dict:
    """train/ val/ test-deepfish/ under `out`, each one-class YOLO; returns what went where."""
    deepfish = _images(data / "deepfish" / "images")
    held_out = set(recipe.held_out_habitats)
    train_df, test_df = [], []
    for name in sorted({habitat(p) for p in deepfish}):
        frames = [p for p in deepfish if habitat(p) == name]
        if name in held_out:
            test_df += frames
        else:
            train_df += evenly_spaced(frames, recipe.deepfish_per_habitat)
    f4k = data / "fish4knowledge"
    train_f4k = _images(f4k / "train" / "images")[:: recipe.f4k_every]
    val_f4k = _images(f4k / "valid" / "images")
    rng = np.random.default_rng(recipe.seed)
    if out.exists():
        shutil.rmtree(out)  # a dataset is exactly what this recipe says, never a leftover
    lineage = {
        "train": _write_split(
            _pairs(train_df, data / "deepfish" / "labels")
            + _pairs(train_f4k, f4k / "train" / "labels"),
            out,
            "train",
            rng,
            recipe.degrade_chance,
        ),
        "val": _write_split(_pairs(val_f4k, f4k / "valid" / "labels"), out, "val", None, 0),
        "test-deepfish": _write_split(
            _pairs(test_df, data / "deepfish" / "labels"), out, "test-deepfish", None, 0
        ),
    }
    lineage["train"]["deepfish_habitats"] = sorted({habitat(p) for p in train_df})
    lineage["train"]["deepfish_frames"] = len(train_df)
    lineage["train"]["fish4knowledge_frames"] = len(train_f4k)
    lineage["test-deepfish"]["habitats"] = sorted(held_out)
    for split in ("train", "val", "test-deepfish"):
        (out / f"{split}.yaml").write_text(
            yaml.safe_dump(
                {
                    "path": str(out),
                    "train": "train/images",
                    "val": f"{split}/images",
                    "test": f"{split}/images",
                    "names": {0: "fish"},
                }
            )
        )
    return lineage


def train(
    data: Path, out: Path, recipe: RealFishRecipe, start_weights: Path, device: str = "cpu"
) -> dict:
    started = time.time()
    lineage = build_datasets(data, out / "dataset", recipe)
    print(json.dumps(lineage, indent=1), flush=True)
    best = fit(
        str(start_weights),
        "detect",
        str(out / "dataset" / "val.yaml"),
        out,
        "run",
        recipe.epochs,
        device,
        "training fish on real frames",
        imgsz=recipe.imgsz,
        batch=recipe.batch,
        seed=recipe.seed,
        time=recipe.hours,
        amp=False,
        # Not `single_cls`: the labels are one class already, and ultralytics would name it
        # "item" instead of the yaml's `fish`.
        **recipe.train_args,
    )
    figures = {
        split: evaluate_yolo(best, out / "dataset" / f"{split}.yaml", "test", recipe.imgsz, device)
        for split in ("val", "test-deepfish")
    }
    onnx = export_onnx(best, recipe.imgsz)
    facts = {
        "family": "fish",
        "recipe": asdict(recipe),
        "data": lineage,
        "ultralytics_val": figures,
    }
    return write_run_record(out, facts, started, device, best, onnx)


def bundle(out: Path, target: Path) -> None:
    """Install a finished run as the bundled fish model: weights, and a metrics.json whose
    `test` is the held-out habitats' figure and whose `credits` name the data."""
    from imagine_assist.training.detector import install_files, name_classes

    metrics = json.loads((out / "metrics.json").read_text())
    # The class is `fish` whatever the run called it; the ONNX is exported again from that.
    weights = name_classes(Path(metrics["best"]), ["fish"], out / "bundle" / "model.pt")
    onnx = export_onnx(weights, metrics["recipe"]["imgsz"])
    held_out = metrics["ultralytics_val"]["test-deepfish"]
    bundled = {
        "family": "fish",
        "recipe": metrics["recipe"],
        "test": {**held_out, "split": "test-deepfish"},
        "test_set": TEST_SET,
        "validation": metrics["ultralytics_val"]["val"],
        "data": metrics["data"],
        "credits": CREDITS,
        "train_seconds": metrics["train_seconds"],
        "device": metrics["device"],
    }
    install_files(target, {"model.pt": weights, "model.onnx": onnx}, bundled)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="real-train/fish folder")
    parser.add_argument("--out", type=Path, required=True, help="work folder (replaced)")
    parser.add_argument("--start", type=Path, help="starting weights (.pt)")
    parser.add_argument("--hours", type=float, help="training budget (default 1.25 on 2 CPU cores)")
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device such as 0")
    parser.add_argument(
        "--bundle-into", type=Path, help="only install the finished run in --out into this folder"
    )
    args = parser.parse_args(argv)
    if args.bundle_into:
        bundle(args.out, args.bundle_into)
        return
    recipe = RealFishRecipe()
    if args.hours:
        recipe = RealFishRecipe(hours=args.hours)
    start = args.start or BUNDLED_DIR / "fish" / "model.pt"
    print(json.dumps(train(args.data, args.out, recipe, start, args.device), indent=2))


if __name__ == "__main__":
    main()
