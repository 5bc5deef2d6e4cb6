"""Retrain a family from corrected CVAT exports, evaluate against the deployed model, version
the result in the registry, and promote it only if it passes the recipe's gate.

`imagine-assist train <family> --from <export.zip> [--from ...]` runs this.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import imagine_assist
from imagine_assist.checksums import file_sha256
from imagine_assist.errors import UserError
from imagine_assist.models.registry import ModelVersion, Registry
from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.training.detector import evaluate_yolo, export_onnx, train_yolo
from imagine_assist.training.exports import (
    GROUND_TRUTH,
    SPLIT_GROUP,
    check_export,
    fiftyone,
    load_export,
    split_key,
    split_of_digest,
    unpack,
)
from imagine_assist.training.recipes import DetectorRecipe

log = logging.getLogger(__name__)
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


@dataclass(frozen=True)
class Gate:
    min_map50_gain: float = 0.0
    max_class_recall_drop: float = 0.1


@dataclass(frozen=True)
class RetrainRecipe:
    family: str
    classes: tuple[str, ...]
    start_from: str = "deployed"  # or "scratch"
    architecture: str = "yolov8n.yaml"
    imgsz: int = 320
    epochs: int = 20
    batch: int = 16
    train_args: dict = field(default_factory=dict)  # ultralytics: optimiser, augmentation
    val_share: float = 0.15
    test_share: float = 0.15
    gate: Gate = Gate()
    source: str = ""


def load_recipe(family: str, path: str | Path | None = None) -> RetrainRecipe:
    path = Path(path) if path else RECIPES_DIR / f"{family}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(RECIPES_DIR.glob("*.yaml")))
        raise UserError(f"no retraining recipe at {path} (recipes: {known})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        split = raw.get("split", {})
        recipe = RetrainRecipe(
            family=raw.get("family", family),
            classes=tuple(raw["classes"]),
            start_from=raw.get("start_from", "deployed"),
            architecture=raw.get("architecture", "yolov8n.yaml"),
            imgsz=int(raw.get("imgsz", 320)),
            epochs=int(raw.get("epochs", 20)),
            batch=int(raw.get("batch", 16)),
            train_args=dict(raw.get("train_args") or {}),
            val_share=float(split.get("val", 0.15)),
            test_share=float(split.get("test", 0.15)),
            gate=Gate(**(raw.get("gate") or {})),
            source=str(path),
        )
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as error:
        raise UserError(f"{path} is not a valid recipe: {error}") from None
    if recipe.family != family:
        raise UserError(f"{path} is the recipe for {recipe.family!r}, not {family!r}")
    if recipe.start_from not in ("deployed", "scratch"):
        raise UserError(f"{path}: start_from must be 'deployed' or 'scratch'")
    if not 0 <= recipe.val_share + recipe.test_share < 1:
        raise UserError(f"{path}: split shares must leave images for training")
    return recipe


@dataclass
class RetrainResult:
    version: ModelVersion
    promoted: bool
    gate: dict
    card: dict


def code_version() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{imagine_assist.__version__}" + (f"+{commit}" if commit else "")


def build_dataset(datasets: list, recipe: RetrainRecipe, out_dir: Path) -> tuple[Path, dict]:
    """One YOLO dataset from all exports, split by image content. An image in several exports
    keeps the labels of the last one given: a later export is a later correction."""
    fo = fiftyone()
    by_content: dict[str, tuple[int, str, str]] = {}  # sha256 -> (export, sample id, split key)
    for index, dataset in enumerate(datasets):
        fields = [GROUND_TRUTH] + ([SPLIT_GROUP] if dataset.has_sample_field(SPLIT_GROUP) else [])
        for sample in dataset.select_fields(fields):
            digest = file_sha256(sample.filepath)
            by_content[digest] = (index, sample.id, split_key(sample, digest))
    ids: dict[tuple[int, str], list[str]] = {}  # (export index, split) -> sample ids
    for index, sample_id, key in by_content.values():
        split = split_of_digest(key, recipe.val_share, recipe.test_share)
        ids.setdefault((index, split), []).append(sample_id)
    counts = {"train": 0, "val": 0, "test": 0}
    # Each split and export is merged into one folder, as YOLO datasets are laid out;
    # FiftyOne warns at every merge, which is the intent here, not a problem to report.
    collections_log = logging.getLogger("fiftyone.core.collections")
    level = collections_log.level
    collections_log.setLevel(logging.ERROR)
    try:
        for (index, split), selected in sorted(ids.items()):
            datasets[index].select(selected).export(
                export_dir=str(out_dir),
                dataset_type=fo.types.YOLOv5Dataset,
                label_field=GROUND_TRUTH,
                split=split,
                classes=list(recipe.classes),
                progress=False,
            )
            counts[split] += len(selected)
    finally:
        collections_log.setLevel(level)
    if counts["train"] == 0:
        raise UserError(
            "the exports hold too few images to train on (none fell in the train split)"
        )
    config = {"path": str(out_dir.resolve()), "names": dict(enumerate(recipe.classes))}
    for split, count in counts.items():
        if count:
            config[split] = f"images/{split}"
    config.setdefault("val", "images/train")  # ultralytics insists on a val split
    data_yaml = out_dir / "dataset.yaml"
    data_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
    return data_yaml, counts


def deployed_weights(registry: Registry, family: str) -> tuple[Path | None, str]:
    """The deployed model's .pt and what it is: the promoted version, else the model
    installed in the family directory, else the bundled default."""
    current = registry.current(family)
    if current is not None and current.file("model.pt").is_file():
        return current.file("model.pt"), current.name
    installed = registry.family_dir(family) / "model.pt"
    if installed.is_file():
        return installed, "installed"
    bundled = BUNDLED_DIR / family / "model.pt"
    if bundled.is_file():
        return bundled, "bundled"
    return None, "none"


def check_gate(candidate: dict, deployed: dict | None, gate: Gate) -> dict:
    if deployed is None:
        return {"passed": True, "reasons": ["no deployed model to compare with"]}
    reasons = []
    wanted = deployed["mAP50"] + gate.min_map50_gain
    if candidate["mAP50"] < wanted:
        reasons.append(f"mAP50 {candidate['mAP50']:.3f} is below {wanted:.3f} (deployed + gain)")
    for name, old in deployed.get("per_class", {}).items():
        new = candidate.get("per_class", {}).get(name, {"recall": 0.0})
        if new["recall"] < old["recall"] - gate.max_class_recall_drop:
            reasons.append(
                f"{name} recall fell from {old['recall']:.3f} to {new['recall']:.3f} "
                f"(more than {gate.max_class_recall_drop:.2f})"
            )
    return {"passed": not reasons, "reasons": reasons or ["passed every rule"]}


def retrain(
    family: str,
    exports: list[str | Path],
    registry: Registry,
    work_dir: Path,
    recipe: RetrainRecipe | None = None,
    device: str = "cpu",
    force: bool = False,
    epochs: int | None = None,
) -> RetrainResult:
    if not exports:
        raise UserError("give at least one export with --from")
    recipe = recipe or load_recipe(family)
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    datasets, lineage = [], []
    for export in exports:
        info = unpack(export, work_dir / "exports")
        dataset = load_export(info)
        check_export(dataset, recipe.classes, info.path)
        datasets.append(dataset)
        lineage.append(
            {
                "path": str(info.path),
                "sha256": info.sha256,
                "format": info.format,
                "images": len(dataset),
            }
        )
    data_yaml, counts = build_dataset(datasets, recipe, work_dir / "dataset")
    eval_split = "test" if counts["test"] else "val" if counts["val"] else "train"
    start, deployed_name = deployed_weights(registry, family)
    architecture = str(start) if recipe.start_from == "deployed" and start else recipe.architecture
    run_recipe = DetectorRecipe(
        family=family,
        images=counts["train"] + counts["val"],
        test_images=counts["test"],
        imgsz=recipe.imgsz,
        epochs=epochs or recipe.epochs,
        batch=recipe.batch,
        architecture=architecture,
    )
    best = train_yolo(data_yaml, work_dir / "train", run_recipe, device, **recipe.train_args)
    candidate = evaluate_yolo(best, data_yaml, eval_split, recipe.imgsz, device)
    deployed = evaluate_yolo(start, data_yaml, eval_split, recipe.imgsz, device) if start else None
    gate = check_gate(candidate, deployed, recipe.gate)
    onnx = export_onnx(best, recipe.imgsz)
    card = {
        "metrics": {
            "candidate": candidate,
            "deployed": deployed,
            "deployed_version": deployed_name,
        },
        "evaluated_on": {"split": eval_split, "images": counts[eval_split]},
        "data": {"exports": lineage, "split": counts},
        "recipe": {**recipe.__dict__, "gate": recipe.gate.__dict__, "epochs": run_recipe.epochs},
        "started_from": architecture,
        "code_version": code_version(),
        "device": device,
        "gate": gate,
    }
    version = registry.add(family, {"model.onnx": onnx, "model.pt": best}, card)
    promoted = gate["passed"] or force
    if promoted:
        reason = (
            "; ".join(gate["reasons"])
            if gate["passed"]
            else "forced: " + "; ".join(gate["reasons"])
        )
        registry.promote(family, version.name, reason, forced=not gate["passed"])
    log.info("%s %s: gate %s", family, version.name, json.dumps(gate))
    return RetrainResult(version, promoted, gate, card)
