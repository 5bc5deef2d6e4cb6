"""The plankton models: a single/multiple classifier and an instance-segmentation separator,
both ultralytics models trained on generated ZooScan vignettes, exported to ONNX.

`imagine-assist train plankton` runs this. Both models see the vignette with its scale-bar
strip cropped away, as the served function does. The classifier sees it padded square with
white, at its input size, so that its training crops and the served input are the same
picture (ultralytics' default random crops would cut a multiple down to one organism).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import yaml
from PIL import Image
from tqdm.auto import tqdm

from imagine_assist.models.compact import halve_weights
from imagine_assist.models.separate import crop_scale_bar
from imagine_assist.models.vignette_classifier import square_on_white
from imagine_assist.samples.plankton import VIGNETTE_CLASSES, PlanktonSample, plankton_sample
from imagine_assist.training.detector import _ultralytics

TRAIN_VAL = (0.85, 0.15, 0.0)
CLASSIFIER, SEPARATOR = "classifier", "separator"


@dataclass(frozen=True)
class PlanktonRecipe:
    images: int = 8000  # generated train + val vignettes
    test_images: int = 300  # from `test_seed`, for the reported metrics
    seed: int = 0
    test_seed: int = 2000
    separator_architecture: str = "yolov8n-seg.yaml"
    separator_imgsz: int = 320
    separator_epochs: int = 60
    classifier_architecture: str = "yolov8n-cls.yaml"
    classifier_imgsz: int = 224
    classifier_epochs: int = 40
    batch: int = 32
    # Wall-clock budget per model in hours (ultralytics' `time`, which fits the schedule to it);
    # None trains for the epochs above.
    hours: float | None = None

    def scaled(self, epochs: int | None = None, images: int | None = None) -> PlanktonRecipe:
        """The same recipe with a smaller budget (tests, quick tries)."""
        return replace(
            self,
            images=images or self.images,
            test_images=min(self.test_images, images or self.test_images),
            separator_epochs=epochs or self.separator_epochs,
            classifier_epochs=epochs or self.classifier_epochs,
        )


PLANKTON_RECIPE = PlanktonRecipe()


def yolo_polygon(mask: np.ndarray) -> np.ndarray | None:
    """The outline of a mask's largest part, normalised to [0, 1], for a YOLO-seg label."""
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    if len(outline) < 3:
        return None
    height, width = mask.shape
    return outline / [width, height]


def _write_one(sample: PlanktonSample, root: Path, classifier_imgsz: int) -> str:
    """Write one vignette into both datasets; return its vignette class."""
    rows = sample.scale_bar_rows
    image = crop_scale_bar(sample.image, rows)
    stem = Path(sample.name).stem
    Image.fromarray(image).save(
        root / SEPARATOR / "images" / sample.split / f"{stem}.jpg", quality=92
    )
    lines = []
    for obj in sample.objects:
        polygon = yolo_polygon(obj.mask[: obj.mask.shape[0] - rows])
        if polygon is not None:
            lines.append("0 " + " ".join(f"{v:.5f}" for v in polygon.ravel()))
    (root / SEPARATOR / "labels" / sample.split / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    squared = square_on_white(image, classifier_imgsz)
    folder = root / CLASSIFIER / sample.split / sample.vignette_class
    Image.fromarray(squared).save(folder / f"{stem}.jpg", quality=92)
    return sample.vignette_class


def _write_range(
    indices: range, seed: int, fractions: tuple, root: Path, classifier_imgsz: int
) -> list[str]:
    return [
        _write_one(plankton_sample(seed, i, fractions=fractions), root, classifier_imgsz)
        for i in indices
    ]


def write_training_data(
    root: Path, n: int, seed: int, classifier_imgsz: int, workers: int | None = None
) -> dict:
    """A YOLO-seg dataset (`separator/data.yaml`) and a class-folder dataset (`classifier/`)
    from the same `n` generated vignettes, made by worker processes."""
    for split in ("train", "val"):
        (root / SEPARATOR / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / SEPARATOR / "labels" / split).mkdir(parents=True, exist_ok=True)
        for name in VIGNETTE_CLASSES:
            (root / CLASSIFIER / split / name).mkdir(parents=True, exist_ok=True)
    workers = workers or max(1, min(16, (os.cpu_count() or 1)))
    chunk = 50
    chunks = [range(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    write = partial(
        _write_range, seed=seed, fractions=TRAIN_VAL, root=root, classifier_imgsz=classifier_imgsz
    )
    classes: list[str] = []
    progress = tqdm(total=n, desc="generating vignettes", unit="vignette")
    if workers == 1 or len(chunks) == 1:
        for done in map(write, chunks):
            classes.extend(done)
            progress.update(len(done))
    else:
        # spawn, not fork: a fork of a process that already runs threads (ONNX Runtime,
        # FiftyOne, a gateway) can deadlock on a lock some thread held at the fork
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for done in pool.map(write, chunks):
                classes.extend(done)
                progress.update(len(done))
    progress.close()
    config = {
        "path": str((root / SEPARATOR).resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": {0: "organism"},
    }
    (root / SEPARATOR / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return {"seed": seed, "vignettes": n, "multiples": classes.count("multiple")}


def _progress_callback(total: int, desc: str):
    progress = tqdm(total=total, desc=desc, unit="epoch")

    def on_epoch_end(trainer) -> None:
        # with a time budget ultralytics re-plans the epoch count after the first epoch
        progress.total = trainer.epochs
        progress.update(min(trainer.epoch + 1, trainer.epochs) - progress.n)

    return progress, on_epoch_end


def _train(
    architecture: str,
    task: str,
    data: str,
    out_dir: Path,
    epochs: int,
    hours: float | None,
    desc: str,
    device: str,
    **overrides,
) -> Path:
    out_dir = out_dir.resolve()  # ultralytics puts a relative project under its runs_dir
    ultralytics = _ultralytics()
    model = ultralytics.YOLO(architecture, task=task)
    progress, callback = _progress_callback(epochs, desc)
    model.add_callback("on_fit_epoch_end", callback)
    args = dict(
        data=data,
        epochs=epochs,
        seed=0,
        deterministic=True,
        project=str(out_dir),
        name=task,
        exist_ok=True,
        device=device,
        workers=0 if device == "cpu" else min(8, os.cpu_count() or 1),
        plots=False,
        verbose=False,
        amp=device != "cpu",
        patience=1000,
    )
    if hours:
        args["time"] = hours
    try:
        model.train(**(args | overrides))
    finally:
        progress.close()
    best = out_dir / task / "weights" / "best.pt"
    if not best.is_file():
        raise RuntimeError(f"training finished without writing {best}")
    return best


def train_separator(data_root: Path, out_dir: Path, recipe: PlanktonRecipe, device: str) -> Path:
    return _train(
        recipe.separator_architecture,
        "segment",
        str(data_root / SEPARATOR / "data.yaml"),
        out_dir,
        recipe.separator_epochs,
        recipe.hours,
        "training separator",
        device,
        imgsz=recipe.separator_imgsz,
        batch=recipe.batch,
        flipud=0.5,  # organisms lie any way up on the scanner
        degrees=0.0,
        hsv_h=0.0,
        hsv_s=0.0,
        close_mosaic=5,
    )


def train_classifier(data_root: Path, out_dir: Path, recipe: PlanktonRecipe, device: str) -> Path:
    return _train(
        recipe.classifier_architecture,
        "classify",
        str(data_root / CLASSIFIER),
        out_dir,
        recipe.classifier_epochs,
        recipe.hours,
        "training classifier",
        device,
        imgsz=recipe.classifier_imgsz,
        batch=recipe.batch * 4,
        scale=0.0,  # whole vignette, never a crop that could drop the second organism
        erasing=0.0,  # erasing could blank the very contact that makes a multiple
        auto_augment=None,
        flipud=0.5,
        hsv_h=0.0,
        hsv_s=0.0,
    )


def export_onnx(weights: Path, task: str, imgsz: int) -> Path:
    import importlib.util

    ultralytics = _ultralytics()
    model = ultralytics.YOLO(str(weights), task=task)
    simplify = importlib.util.find_spec("onnxslim") is not None
    exported = model.export(format="onnx", imgsz=imgsz, dynamic=False, simplify=simplify)
    return halve_weights(exported)


def install_plankton(family_dir: Path, files: dict[str, Path], metrics: dict) -> None:
    """Copy the models in, metrics.json last and atomically: a half-copied directory never
    looks finished."""
    family_dir.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        partial_path = family_dir / f".{name}.partial"
        shutil.copyfile(source, partial_path)
        partial_path.replace(family_dir / name)
    partial_path = family_dir / ".metrics.json.partial"
    partial_path.write_text(json.dumps(metrics, indent=2))
    partial_path.replace(family_dir / "metrics.json")


def train_plankton(
    family_dir: Path,
    work_dir: Path,
    recipe: PlanktonRecipe = PLANKTON_RECIPE,
    device: str = "cpu",
    only: str | None = None,
) -> dict:
    """Generate data, train both models (or `only` one), evaluate them on held-out vignettes
    against the watershed baseline, and install them into `family_dir`."""
    from imagine_assist.models.plankton_eval import evaluate_plankton

    started = time.time()
    data_root = work_dir / "data"
    lineage = write_training_data(data_root, recipe.images, recipe.seed, recipe.classifier_imgsz)
    files: dict[str, Path] = {}
    if only in (None, SEPARATOR):
        best = train_separator(data_root, work_dir, recipe, device)
        files["separator.pt"] = best
        files["separator.onnx"] = export_onnx(best, "segment", recipe.separator_imgsz)
    if only in (None, CLASSIFIER):
        best = train_classifier(data_root, work_dir, recipe, device)
        files["classifier.pt"] = best
        files["classifier.onnx"] = export_onnx(best, "classify", recipe.classifier_imgsz)
    test = evaluate_plankton(
        recipe.test_images,
        recipe.test_seed,
        separator=files.get("separator.onnx"),
        classifier=files.get("classifier.onnx"),
    )
    metrics = {
        "family": "plankton",
        "recipe": asdict(recipe),
        "test": test,
        "data": {
            "train_val": lineage,
            "test": {"seed": recipe.test_seed, "vignettes": recipe.test_images},
        },
        "train_seconds": round(time.time() - started, 1),
        "device": device,
    }
    install_plankton(family_dir, files, metrics)
    return metrics
