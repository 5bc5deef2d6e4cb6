"""Train, evaluate and export a YOLO detector with ultralytics, offline and with progress."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from imagine_assist.home import Home, configure_offline
from imagine_assist.models.compact import halve_weights
from imagine_assist.training.recipes import DetectorRecipe


def _ultralytics():
    """Import ultralytics only after the offline settings are in place."""
    configure_offline(Home.resolve())
    import ultralytics
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update({"sync": False})
    return ultralytics


def train_yolo(
    data_yaml: Path, out_dir: Path, recipe: DetectorRecipe, device: str = "cpu", **overrides
) -> Path:
    """Train from the recipe's architecture (a yaml, or a .pt to fine-tune); return the best
    checkpoint. `overrides` are further ultralytics train arguments (augmentation)."""
    out_dir = Path(out_dir).resolve()  # ultralytics puts a relative project under its runs_dir
    ultralytics = _ultralytics()
    model = ultralytics.YOLO(recipe.architecture, task="detect")
    progress = tqdm(total=recipe.epochs, desc=f"training {recipe.family}", unit="epoch")

    def on_epoch_end(trainer) -> None:
        metrics = trainer.metrics or {}
        progress.set_postfix(mAP50=f"{metrics.get('metrics/mAP50(B)', 0):.3f}")
        # ultralytics calls this once more after the final validation: count epochs, not calls
        progress.update(min(trainer.epoch + 1, recipe.epochs) - progress.n)

    model.add_callback("on_fit_epoch_end", on_epoch_end)
    try:
        model.train(
            data=str(data_yaml),
            imgsz=recipe.imgsz,
            epochs=recipe.epochs,
            batch=recipe.batch,
            seed=recipe.seed,
            deterministic=True,
            patience=recipe.patience,
            project=str(out_dir),
            name="run",
            exist_ok=True,
            device=device,
            # On a 2-core CPU, loader processes only compete with the model for the cores.
            workers=0 if device == "cpu" else min(8, os.cpu_count() or 1),
            plots=False,
            verbose=False,
            amp=False,
            **overrides,
        )
    finally:
        progress.close()
    best = out_dir / "run" / "weights" / "best.pt"
    if not best.is_file():
        raise RuntimeError(f"training finished without writing {best}")
    return best


def evaluate_yolo(
    weights: Path, data_yaml: Path, split: str, imgsz: int, device: str = "cpu"
) -> dict:
    """mAP50, mAP50-95, precision and recall overall and per class on one split."""
    ultralytics = _ultralytics()
    model = ultralytics.YOLO(str(weights), task="detect")
    result = model.val(
        data=str(data_yaml),
        split=split,
        imgsz=imgsz,
        batch=8,
        device=device,
        plots=False,
        verbose=False,
        workers=0,
        project=str(weights.parent.parent),
        name=f"val-{split}",
        exist_ok=True,
    )
    names = model.names
    per_class = {}
    for index, class_id in enumerate(result.box.ap_class_index):
        per_class[names[int(class_id)]] = {
            "precision": float(result.box.p[index]),
            "recall": float(result.box.r[index]),
            "mAP50": float(result.box.ap50[index]),
        }
    return {
        "split": split,
        "mAP50": float(result.box.map50),
        "mAP50-95": float(result.box.map),
        "precision": float(result.box.mp),
        "recall": float(result.box.mr),
        "per_class": per_class,
    }


def export_onnx(weights: Path, imgsz: int) -> Path:
    ultralytics = _ultralytics()
    model = ultralytics.YOLO(str(weights), task="detect")
    # onnxslim is in the train extra; without it (a bare GPU box) export unsimplified
    # rather than let ultralytics try to pip-install it.
    simplify = importlib.util.find_spec("onnxslim") is not None
    exported = model.export(
        format="onnx", imgsz=imgsz, dynamic=False, simplify=simplify, verbose=False
    )
    return halve_weights(exported)


@dataclass(frozen=True)
class TrainedModel:
    family: str
    pt: Path
    onnx: Path
    metrics: dict


def install_model(family_dir: Path, best_pt: Path, onnx: Path, metrics: dict) -> TrainedModel:
    """Copy the weights next to each other and write metrics.json last, atomically, so a
    half-written directory never looks like a finished model."""
    family_dir.mkdir(parents=True, exist_ok=True)
    for source, name in ((best_pt, "model.pt"), (onnx, "model.onnx")):
        partial = family_dir / f".{name}.partial"
        shutil.copyfile(source, partial)
        partial.replace(family_dir / name)
    partial = family_dir / ".metrics.json.partial"
    partial.write_text(json.dumps(metrics, indent=2))
    partial.replace(family_dir / "metrics.json")
    return TrainedModel(
        metrics["family"], family_dir / "model.pt", family_dir / "model.onnx", metrics
    )


def train_and_install(
    data_yaml: Path,
    test_yaml: Path,
    work_dir: Path,
    family_dir: Path,
    recipe: DetectorRecipe,
    lineage: dict,
    device: str = "cpu",
) -> TrainedModel:
    started = time.time()
    best = train_yolo(data_yaml, work_dir, recipe, device)
    test = evaluate_yolo(best, test_yaml, "test", recipe.imgsz, device)
    onnx = export_onnx(best, recipe.imgsz)
    metrics = {
        "family": recipe.family,
        "recipe": {k: v for k, v in recipe.__dict__.items()},
        "test": test,
        "data": lineage,
        "train_seconds": round(time.time() - started, 1),
        "device": device,
    }
    return install_model(family_dir, best, onnx, metrics)
