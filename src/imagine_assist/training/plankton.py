"""The plankton models: a single/multiple classifier and an instance-segmentation separator,
both ultralytics models trained on generated ZooScan vignettes, exported to ONNX.

`imagine-assist train plankton` runs this. Both models see the vignette with its scale-bar
strip cropped away, as the served function does. The classifier sees it padded square with
white, at its input size, so that its training crops and the served input are the same
picture (ultralytics' default random crops would cut a multiple down to one organism).
"""

from __future__ import annotations

import multiprocessing
import os
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

from imagine_assist.models.separate import crop_scale_bar
from imagine_assist.models.vignette_classifier import square_on_white
from imagine_assist.samples.plankton import VIGNETTE_CLASSES, PlanktonSample, plankton_sample
from imagine_assist.training.detector import export_onnx, fit, install_files

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

# How the single/multiple classifier sees a vignette in training.
CLASSIFIER_AUGMENTATION = {
    "scale": 0.0,  # whole vignette, never a crop that could drop the second organism
    "erasing": 0.0,  # erasing could blank the very contact that makes a multiple
    "auto_augment": None,
    "flipud": 0.5,  # organisms lie any way up on the scanner
    "hsv_h": 0.0,
    "hsv_s": 0.0,
}


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


def write_separator_sample(sample: PlanktonSample, dataset: Path) -> np.ndarray:
    """One vignette into a YOLO-seg dataset (`images/` and `labels/` by split), its
    scale-bar strip cut as the served separator cuts it; returns the cut image."""
    rows = sample.scale_bar_rows
    image = crop_scale_bar(sample.image, rows)
    stem = Path(sample.name).stem
    Image.fromarray(image).save(dataset / "images" / sample.split / f"{stem}.jpg", quality=92)
    masks = [obj.mask[: obj.mask.shape[0] - rows] for obj in sample.objects]
    write_outlines(dataset / "labels" / sample.split / f"{stem}.txt", masks)
    return image


def write_outlines(label: Path, masks: list[np.ndarray]) -> None:
    """A YOLO-seg label file: one outline of class 0 per mask (an empty mask: no line)."""
    lines = []
    for mask in masks:
        polygon = yolo_polygon(mask)
        if polygon is not None:
            lines.append("0 " + " ".join(f"{v:.5f}" for v in polygon.ravel()))
    label.write_text("\n".join(lines) + "\n")


def _write_one(sample: PlanktonSample, root: Path, classifier_imgsz: int) -> str:
    """Write one vignette into both datasets; return its vignette class."""
    image = write_separator_sample(sample, root / SEPARATOR)
    stem = Path(sample.name).stem
    squared = square_on_white(image, classifier_imgsz)
    folder = root / CLASSIFIER / sample.split / sample.vignette_class
    Image.fromarray(squared).save(folder / f"{stem}.jpg", quality=92)
    return sample.vignette_class


def write_separator_yaml(dataset: Path) -> Path:
    config = {
        "path": str(dataset.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": {0: "organism"},
    }
    (dataset / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dataset / "data.yaml"


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
    write_separator_yaml(root / SEPARATOR)
    return {"seed": seed, "vignettes": n, "multiples": classes.count("multiple")}


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
    budget = {"time": hours} if hours else {}
    return fit(
        architecture,
        task,
        data,
        out_dir,
        task,
        epochs,
        device,
        desc,
        seed=0,
        amp=device != "cpu",
        patience=1000,
        **budget,
        **overrides,
    )


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
        **CLASSIFIER_AUGMENTATION,
    )


def train_plankton(
    family_dir: Path,
    work_dir: Path,
    recipe: PlanktonRecipe = PLANKTON_RECIPE,
    device: str = "cpu",
    only: str | None = None,
) -> dict:
    """Generate data, train both models (or `only` one), evaluate them on held-out vignettes
    against the watershed baseline, and install them into `family_dir`."""
    from imagine_assist.training.plankton_eval import evaluate_plankton

    started = time.time()
    data_root = work_dir / "data"
    lineage = write_training_data(data_root, recipe.images, recipe.seed, recipe.classifier_imgsz)
    files: dict[str, Path] = {}
    if only in (None, SEPARATOR):
        best = train_separator(data_root, work_dir, recipe, device)
        files["separator.pt"] = best
        files["separator.onnx"] = export_onnx(best, recipe.separator_imgsz, "segment")
    if only in (None, CLASSIFIER):
        best = train_classifier(data_root, work_dir, recipe, device)
        files["classifier.pt"] = best
        files["classifier.onnx"] = export_onnx(best, recipe.classifier_imgsz, "classify")
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
    install_files(family_dir, files, metrics)
    return metrics
