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


def use_cpu_threads(model, threads: int | None = None) -> None:
    """Let the model's training and validation use `threads` CPU threads (default: every
    core). ultralytics sets torch to cores - 1 whenever it picks the CPU (`select_device`),
    which on a 2-core machine is one core for a process that has nothing else to do; its
    callbacks run just after that choice. docs/benchmarks.md, training threads."""
    import torch

    threads = threads or os.cpu_count() or 1

    def set_threads(_) -> None:
        torch.set_num_threads(threads)

    for event in ("on_pretrain_routine_start", "on_val_start"):
        model.add_callback(event, set_threads)


def fit(
    architecture: str,
    task: str,
    data: str,
    out_dir: Path,
    name: str,
    epochs: int,
    device: str,
    desc: str,
    threads: int | None = None,
    **train_args,
) -> Path:
    """Train an ultralytics model with progress; return the best checkpoint.

    `architecture` is a yaml (from scratch) or a .pt (fine-tune); `train_args` are further
    ultralytics train arguments. With a time budget (`time`), ultralytics re-plans the epoch
    count after the first epoch, and the progress bar follows it. `threads`: torch's CPU
    threads (`use_cpu_threads`)."""
    out_dir = Path(out_dir).resolve()  # ultralytics puts a relative project under its runs_dir
    ultralytics = _ultralytics()
    model = ultralytics.YOLO(architecture, task=task)
    use_cpu_threads(model, threads)
    progress = tqdm(total=epochs, desc=desc, unit="epoch")

    def on_epoch_end(trainer) -> None:
        map50 = (trainer.metrics or {}).get("metrics/mAP50(B)")
        if map50 is not None:
            progress.set_postfix(mAP50=f"{map50:.3f}")
        progress.total = trainer.epochs
        # ultralytics calls this once more after the final validation: count epochs, not calls
        progress.update(min(trainer.epoch + 1, trainer.epochs) - progress.n)

    model.add_callback("on_fit_epoch_end", on_epoch_end)
    args = dict(
        data=data,
        epochs=epochs,
        deterministic=True,
        project=str(out_dir),
        name=name,
        exist_ok=True,
        device=device,
        # On a 2-core CPU, loader processes only compete with the model for the cores.
        workers=0 if device == "cpu" else min(8, os.cpu_count() or 1),
        plots=False,
        verbose=False,
    )
    try:
        model.train(**(args | train_args))
    finally:
        progress.close()
    best = out_dir / name / "weights" / "best.pt"
    if not best.is_file():
        raise RuntimeError(f"training finished without writing {best}")
    return best


def train_yolo(
    data_yaml: Path, out_dir: Path, recipe: DetectorRecipe, device: str = "cpu", **overrides
) -> Path:
    """Train a detector from the recipe's architecture (a yaml, or a .pt to fine-tune);
    `overrides` are further ultralytics train arguments (augmentation, optimiser)."""
    return fit(
        recipe.architecture,
        "detect",
        str(data_yaml),
        out_dir,
        "run",
        recipe.epochs,
        device,
        f"training {recipe.family}",
        imgsz=recipe.imgsz,
        batch=recipe.batch,
        seed=recipe.seed,
        patience=recipe.patience,
        amp=False,
        **overrides,
    )


def evaluate_yolo(
    weights: Path, data_yaml: Path, split: str, imgsz: int, device: str = "cpu"
) -> dict:
    """mAP50, mAP50-95, precision and recall overall and per class on one split."""
    import tempfile

    ultralytics = _ultralytics()
    model = ultralytics.YOLO(str(weights), task="detect")
    use_cpu_threads(model)
    # ultralytics writes a folder per validation even without plots: never beside the
    # weights (the live model may be the bundled one, inside the installed package)
    with tempfile.TemporaryDirectory(prefix="imagine-assist-val-") as scratch:
        result = model.val(
            data=str(data_yaml),
            split=split,
            imgsz=imgsz,
            batch=8,
            device=device,
            plots=False,
            verbose=False,
            workers=0,
            project=scratch,
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


def name_classes(weights: Path, names: list[str], out: Path) -> Path:
    """A copy of an ultralytics checkpoint whose classes carry `names` (a run trained with
    `single_cls` calls its one class "item"); the ONNX exported from it carries them too."""
    import torch

    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    for key in ("model", "ema"):
        model = checkpoint.get(key)
        if model is not None:
            if len(model.names) != len(names):
                raise ValueError(f"{weights} has {len(model.names)} classes, not {len(names)}")
            model.names = dict(enumerate(names))
    checkpoint.get("train_args", {})["single_cls"] = False
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    _ultralytics()
    from ultralytics.utils.torch_utils import strip_optimizer

    strip_optimizer(out)  # weights only, as ultralytics leaves a finished run's best.pt
    return out


def export_onnx(weights: Path, imgsz: int, task: str = "detect") -> Path:
    """ONNX without NMS, weights stored as float16 (`models.compact`)."""
    ultralytics = _ultralytics()
    model = ultralytics.YOLO(str(weights), task=task)
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


def write_run_record(
    out: Path, facts: dict, started: float, device: str, best: Path, onnx: Path
) -> dict:
    """A finished run's `metrics.json` in `out`: its `facts` (recipe, data, figures), then
    how long it took, where, and the weights it left; returned as written."""
    metrics = facts | {
        "train_seconds": round(time.time() - started, 1),
        "device": device,
        "best": str(best),
        "onnx": str(onnx),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def install_files(family_dir: Path, files: dict[str, Path], metrics: dict) -> None:
    """Copy model files in (name in the folder -> source), each atomically, and write
    metrics.json last, so a half-written directory never looks like a finished model."""
    family_dir.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        partial = family_dir / f".{name}.partial"
        shutil.copyfile(source, partial)
        partial.replace(family_dir / name)
    partial = family_dir / ".metrics.json.partial"
    partial.write_text(json.dumps(metrics, indent=2))
    partial.replace(family_dir / "metrics.json")


def install_model(family_dir: Path, best_pt: Path, onnx: Path, metrics: dict) -> TrainedModel:
    install_files(family_dir, {"model.pt": best_pt, "model.onnx": onnx}, metrics)
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
