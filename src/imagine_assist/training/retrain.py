"""Retrain a family from corrected CVAT exports, evaluate against the deployed model, version
the result in the registry, and promote it only if it passes the recipe's gate.

`imagine-assist train <family> --from <export.zip> [--from ...]` runs this.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import yaml

import imagine_assist
from imagine_assist.checksums import file_sha256
from imagine_assist.errors import ModelNotFound, UserError
from imagine_assist.families import Family, Gate, TrainingRecipe, family_from_dict, get_family
from imagine_assist.home import Home, configure_offline
from imagine_assist.images import rewrite_wide_samples
from imagine_assist.models.registry import DamagedCurrent, ModelVersion, Registry
from imagine_assist.models.store import live_model
from imagine_assist.training.detector import evaluate_yolo, export_onnx, train_yolo
from imagine_assist.training.exports import (
    GROUND_TRUTH,
    SPLIT_GROUP,
    check_export,
    check_label_map,
    fiftyone,
    load_export,
    relabel,
    split_key,
    training_split,
    unpacked,
)
from imagine_assist.training.recipes import DetectorRecipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainRecipe(TrainingRecipe):
    """A family's training recipe with what one run needs besides: the family, the classes it
    trains (the family's labels, in order) and where the recipe came from."""

    family: str = ""
    classes: tuple[str, ...] = ()
    source: str = ""


def recipe_of(family: Family, path: str | Path | None = None) -> RetrainRecipe:
    """The family's recipe; `path` names a YAML file of the same shape as the family file's
    `training:` section, to try other settings without editing the family."""
    training = family.training
    source = str(family.source or family.name)
    if path is not None:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise UserError(f"cannot read the recipe {path}: {error}") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path}: a recipe is a YAML mapping like a family's `training:`")
        raw = raw.get("training", raw)
        try:
            training = family_from_dict(
                {"name": family.name, "labels": ["x"], "training": raw}, path
            ).training
        except UserError as error:
            raise UserError(f"{path} is not a valid recipe: {error}") from None
        source = str(path)
    if training is None:
        raise UserError(
            f"family {family.name} has no training recipe (its models are trained with "
            f"`imagine-assist train {family.name}`)"
        )
    if not family.labels:
        raise UserError(f"family {family.name} takes its labels from its model: name them first")
    return RetrainRecipe(
        **training.__dict__, family=family.name, classes=tuple(family.labels), source=source
    )


def load_recipe(family: str, path: str | Path | None = None) -> RetrainRecipe:
    return recipe_of(get_family(family), path)


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


def build_dataset(
    datasets: list, recipe: RetrainRecipe, out_dir: Path, held_out: list | None = None
) -> tuple[Path, dict]:
    """One YOLO dataset in `out_dir` from exactly these exports, split by image content:
    whatever an earlier run left there is removed first. An image in several exports keeps
    the labels of the last one given: a later export is a later correction. An image without
    boxes is a negative, with an empty label file.

    `held_out` datasets (a fixed validation export, `--val`) form the test split whole, and
    their images are kept out of training wherever else they appear."""
    fo = fiftyone()
    held_out = held_out or []
    every = datasets + held_out
    by_content: dict[str, tuple[int, str, str]] = {}  # sha256 -> (export, sample id, split)
    fixed: set[str] = set()
    for index, dataset in enumerate(every):
        fields = [GROUND_TRUTH] + ([SPLIT_GROUP] if dataset.has_sample_field(SPLIT_GROUP) else [])
        for sample in dataset.select_fields(fields):
            digest = file_sha256(sample.filepath)
            if index >= len(datasets):
                fixed.add(digest)
                by_content[digest] = (index, sample.id, "test")
            elif digest not in fixed:
                split = training_split(
                    split_key(sample, digest), recipe.val_share, recipe.test_share, bool(held_out)
                )
                by_content[digest] = (index, sample.id, split)
    ids: dict[tuple[int, str], list[str]] = {}  # (export index, split) -> sample ids
    for index, sample_id, split in by_content.values():
        ids.setdefault((index, split), []).append(sample_id)
    counts = {"train": 0, "val": 0, "test": 0}
    empty_dataset_folder(out_dir)
    # Each split and export is merged into one folder, as YOLO datasets are laid out;
    # FiftyOne warns at every merge, which is the intent here, not a problem to report.
    collections_log = logging.getLogger("fiftyone.core.collections")
    level = collections_log.level
    collections_log.setLevel(logging.ERROR)
    try:
        for (index, split), selected in sorted(ids.items()):
            # Each export goes to a folder of its own first: FiftyOne names an exported
            # image by its file name, and exports of different tasks repeat names (CVAT's
            # frame_000000.PNG, a camera's counter), so one written over another's would
            # lose its image and keep a wrong label.
            part = out_dir / f"{_PART_PREFIX}{index}-{split}"
            every[index].select(selected).export(
                export_dir=str(part),
                dataset_type=fo.types.YOLOv5Dataset,
                label_field=GROUND_TRUTH,
                split=split,
                classes=list(recipe.classes),
                progress=False,
            )
            _merge_part(part, out_dir, split, f"e{index}-")
            counts[split] += len(selected)
    finally:
        collections_log.setLevel(level)
    for split, count in counts.items():
        if count:
            label_negatives(out_dir, split)
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


_DATASET_PARTS = frozenset({"images", "labels", "dataset.yaml", "data.yaml"})
_PART_PREFIX = ".part-"  # one export's share of a split, before it is merged in


def _merge_part(part: Path, out_dir: Path, split: str, prefix: str) -> None:
    """Move one export's images and labels of `split` into the dataset. An image whose name
    another export's image already has is renamed (`prefix`, then a counter), its label
    with it. A 16-bit frame is rewritten in 8 bits as the served function decodes it.
    """
    images, labels = out_dir / "images" / split, out_dir / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    source = part / "images" / split
    for image in sorted(source.iterdir()) if source.is_dir() else []:
        name, n = image.name, 1
        while (images / name).exists():
            name = f"{prefix}{image.name}" if n == 1 else f"{prefix}{n}-{image.name}"
            n += 1
        label = part / "labels" / split / f"{image.stem}.txt"
        os.replace(image, images / name)
        rewrite_wide_samples(images / name)  # trained on what is served, not 1/256 of it
        if label.exists():
            os.replace(label, labels / f"{Path(name).stem}.txt")
    shutil.rmtree(part)


def empty_dataset_folder(folder: Path) -> None:
    """`folder`, empty, with any dataset an earlier run built there removed. A folder holding
    anything else is refused, not emptied: it is not ours to delete."""
    if folder.exists():
        others = sorted(
            path.name
            for path in folder.iterdir()
            if path.name not in _DATASET_PARTS and not path.name.startswith(_PART_PREFIX)
        )
        if others:
            raise UserError(
                f"{folder} holds {', '.join(others[:3])}, which no dataset built here has: "
                "name another work folder (--work)"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def label_negatives(out_dir: Path, split: str) -> None:
    """An empty label file for each image of the split that has none: FiftyOne's exporter
    writes none for an image without boxes, which is a negative, not a missing label."""
    labels = out_dir / "labels" / split
    labels.mkdir(parents=True, exist_ok=True)
    for image in (out_dir / "images" / split).iterdir():
        label = labels / f"{image.stem}.txt"
        if not label.exists():
            label.write_text("")


def boxes_in_split(data_yaml: Path, split: str) -> int:
    """Ground-truth boxes of one split of a YOLO dataset (one line per box)."""
    folder = data_yaml.parent / "labels" / split
    if not folder.is_dir():
        return 0
    return sum(
        sum(1 for line in path.read_text().splitlines() if line.strip())
        for path in folder.glob("*.txt")
    )


def read_by_trainer(data_yaml: Path, built: dict[str, int]) -> tuple[dict, dict]:
    """Images and boxes per split as ultralytics read them, from the label cache it writes
    beside each split's labels (`labels/<split>.cache`) when it scans the split: an image it
    found corrupt is not counted, a duplicated box once. A split it has no cache of (one it
    could not write) is counted from the label files."""
    configure_offline(Home.resolve())
    from ultralytics.data.utils import load_dataset_cache_file

    images, boxes = dict.fromkeys(built, 0), dict.fromkeys(built, 0)
    for split, count in built.items():
        if not count:
            continue
        cache = data_yaml.parent / "labels" / f"{split}.cache"
        try:
            read = load_dataset_cache_file(cache)
        except (OSError, ValueError) as error:
            # none at all is normal (a trainer that is not ultralytics'); a damaged one is not
            level = logging.INFO if isinstance(error, FileNotFoundError) else logging.WARNING
            log.log(
                level, "no label cache of the %s split (%s): counted from its files", split, error
            )
            images[split], boxes[split] = count, boxes_in_split(data_yaml, split)
            continue
        images[split] = len(read["labels"])
        boxes[split] = sum(len(label["cls"]) for label in read["labels"])
        if images[split] != count:
            log.warning(
                "ultralytics read %d of the %d %s images: %s",
                images[split],
                count,
                split,
                "; ".join(read.get("msgs") or []) or "it gave no reason",
            )
    return images, boxes


def deployed_weights(registry: Registry, family: str) -> tuple[Path | None, str]:
    """The live model's .pt (what retraining fine-tunes and gates against) and where it
    comes from, by the one rule of `models.store.live_model`; (None, "none") only when
    nothing serves the family yet. A damaged CURRENT, or a live version without its .pt,
    stops the run with its own error: starting from scratch instead, with no live model to
    beat, would pass the gate and replace the live model unchecked."""
    if registry.current(family) is not None:  # raises DamagedCurrent itself
        live = live_model(family, registry.root, fmt="pt")
        return live.path, live.source
    try:
        live = live_model(family, registry.root, fmt="pt")
    except ModelNotFound:  # a new family: nothing to start from, nothing to beat
        return None, "none"
    return live.path, live.source


def check_gate(
    candidate: dict,
    deployed: dict | None,
    gate: Gate,
    heldout_boxes: int | None = None,
    fixed_validation: bool = False,
) -> dict:
    """Whether the candidate may replace the live model. `decided` is False when there is
    too little held-out evidence to compare them at all."""
    if heldout_boxes is not None and heldout_boxes < gate.min_heldout_boxes:
        minimum = gate.min_heldout_boxes
        return undecided_gate(heldout_boxes, minimum, "boxes", "images", fixed_validation)
    if deployed is None:
        return {"passed": True, "decided": True, "reasons": ["no live model to compare with"]}
    reasons = []
    wanted = deployed["mAP50"] + gate.min_map50_gain
    if candidate["mAP50"] <= wanted:  # a tie is no reason to change the live model
        reasons.append(
            f"mAP50 {candidate['mAP50']:.3f} does not beat {wanted:.3f} (live model + gain)"
        )
    for name, old in deployed.get("per_class", {}).items():
        new = candidate.get("per_class", {}).get(name, {"recall": 0.0})
        if new["recall"] < old["recall"] - gate.max_class_recall_drop:
            reasons.append(
                f"{name} recall fell from {old['recall']:.3f} to {new['recall']:.3f} "
                f"(more than {gate.max_class_recall_drop:.2f})"
            )
    return {"passed": not reasons, "decided": True, "reasons": reasons or ["passed every rule"]}


def undecided_gate(
    found: int, minimum: int, things: str, items: str, fixed_validation: bool = False
) -> dict:
    """The gate's answer when too little is held out to compare two models at all."""
    more = (
        f"Give a larger validation export with --val (more corrected {items})"
        if fixed_validation
        else f"Export more corrected {items}, or name a fixed validation export with --val"
    )
    return {
        "passed": False,
        "decided": False,
        "reasons": [
            f"not enough held-out data: {found} held-out {things}, the recipe asks for at "
            f"least {minimum}. {more}"
        ],
    }


def promote_if_gated(
    registry: Registry,
    version: ModelVersion,
    gate: dict,
    classes,
    force: bool = False,
    always_promote: bool = False,
    gated_against: str = "none",
) -> bool:
    """Promote the version if the gate passed, `force`, or `always_promote` (a family's first
    model, with nothing to replace); the reason recorded says which. `gated_against` is the
    live model the run started from and was gated against (a version name, or "installed",
    "bundled", "none"): if another process promoted or rolled back meanwhile, the candidate
    was never compared with what serves now, so it is kept, not promoted (`gate["live_changed"]`
    says so), and an operator's rollback is not undone behind their back."""
    if not (gate["passed"] or force or always_promote):
        return False
    try:
        current = registry.current(version.family)
    except DamagedCurrent as error:  # sound when the run started (deployed_weights)
        gate["live_changed"] = (
            f"the registry's CURRENT was damaged while {version.name} trained, so it was not "
            f"promoted ({error})"
        )
        return False
    now = current.name if current is not None else None
    then = gated_against if re.fullmatch(r"v\d+", gated_against) else None
    if now != then:
        gate["live_changed"] = (
            f"{then or 'the default model'} was live when {version.name} was trained and "
            f"gated; {now or 'the default model'} is live now (promoted or rolled back "
            f"meanwhile), so {version.name} was not promoted: compare them, then `imagine-assist "
            f"models promote {version.family} {version.name}"
            # a gate that did not pass is promoted by hand only with --force, as here
            + ("" if gate["passed"] else " --force")
            + "` if it should serve"
        )
        return False
    reasons = "; ".join(gate["reasons"])
    if gate["passed"]:
        reason = reasons
    elif always_promote:
        reason = "the family's first model; " + reasons
    else:
        reason = "forced: " + reasons
    registry.promote(
        version.family, version.name, reason, forced=not gate["passed"], classes=classes
    )
    return True


def export_record(export: str | Path, sha256: str, found_format: str, home: Home) -> dict:
    """An export as a card names it: where it was, its copy in the home, hash and format."""
    kept = keep_export(Path(export), sha256, home)
    return {
        "path": str(Path(export).resolve()),
        "stored": str(kept.relative_to(home.root)),
        "sha256": sha256,
        "format": found_format,
    }


def keep_export(export: Path, sha256: str, home: Home) -> Path:
    """A copy of the export in the home, named by its content: the card can always find it
    again, from any directory, whatever happens to the file the user gave."""
    home.exports.mkdir(parents=True, exist_ok=True)
    kept = home.exports / f"{sha256}.zip"
    if not kept.is_file():
        partial = kept.with_name(f".{kept.name}.{os.getpid()}.partial")
        shutil.copyfile(export, partial)
        os.replace(partial, kept)
    return kept


def _read_exports(
    exports: list[str | Path],
    work_dir: Path,
    classes: tuple[str, ...],
    home: Home,
    cleanup: ExitStack,
    label_map: dict[str, str] | None = None,
) -> tuple[list, list[dict]]:
    """The exports as FiftyOne datasets, with their lineage. `cleanup` deletes the datasets
    and removes their unpacked folders when it closes."""
    datasets, lineage = [], []
    for export in exports:
        info = cleanup.enter_context(unpacked(export, work_dir / "exports"))
        dataset = load_export(info)
        # before its folder goes: callbacks run last first
        cleanup.callback(delete_dataset, dataset)
        relabel(dataset, GROUND_TRUTH, label_map)
        check_export(dataset, classes, info.path)
        datasets.append(dataset)
        lineage.append(
            export_record(export, info.sha256, info.format, home)
            | {"images": len(dataset), **({"label_map": label_map} if label_map else {})}
        )
    return datasets, lineage


def delete_dataset(dataset) -> None:
    if not dataset.deleted:  # deleted already when the run's cleanup came first
        dataset.delete()


def _is_centernet(weights: Path) -> bool:
    """A CenterNet checkpoint of `training.centernet` (the bundled fish model) rather than an
    ultralytics one: each is fine-tuned by its own trainer."""
    from imagine_assist.training import centernet

    return centernet.is_checkpoint(weights)


def _fit_yolo(
    family, architecture, live, data_yaml, counts, eval_split, recipe, epochs, work_dir, device
):
    run_recipe = DetectorRecipe(
        family=family,
        images=counts["train"] + counts["val"],
        test_images=counts["test"],
        imgsz=recipe.imgsz,
        epochs=epochs or recipe.epochs,
        batch=recipe.batch,
        architecture=architecture,
    )
    train_args = dict(recipe.train_args)
    if architecture == recipe.architecture and train_args.pop("freeze", None):
        # frozen layers are kept as they are: from an architecture yaml, that is random
        log.info(
            "training %s from %s: every layer learns (the recipe's freeze is for fine-tuning)",
            family,
            architecture,
        )
    best = train_yolo(data_yaml, work_dir / "train", run_recipe, device, **train_args)
    candidate = evaluate_yolo(best, data_yaml, eval_split, recipe.imgsz, device)
    deployed = evaluate_yolo(live, data_yaml, eval_split, recipe.imgsz, device) if live else None
    return best, candidate, deployed, export_onnx(best, recipe.imgsz), run_recipe.epochs


def _fit_centernet(start, live, data_yaml, counts, eval_split, recipe, epochs, work_dir):
    """Fine-tune a CenterNet for the recipe's epochs (passes; no clock), and evaluate the
    candidate and the live model on the same held-out split with the same metrics."""
    from imagine_assist.training import centernet

    root = data_yaml.parent
    frames = {
        split: centernet.read_yolo_images(root / "images" / split, root / "labels" / split)
        for split, count in counts.items()
        if count
    }
    model = centernet.with_classes(centernet.load_checkpoint(start), list(recipe.classes))
    passes = epochs or recipe.epochs
    result = centernet.fit(
        model,
        frames["train"],
        frames.get("val", frames["train"]),
        work_dir / "train",
        minutes=24 * 60,
        batch=recipe.batch,
        lr=centernet.FINE_TUNE_LR,
        passes=passes,
        progress=log.info,
    )
    held_out = frames[eval_split]
    best = centernet.load_checkpoint(result.best)
    candidate = {"split": eval_split, **centernet.evaluate(best, held_out)}
    deployed = None
    if live is not None and _is_centernet(live):
        live_net = centernet.with_classes(centernet.load_checkpoint(live), list(recipe.classes))
        deployed = {"split": eval_split, **centernet.evaluate(live_net, held_out)}
    elif live is not None:  # a live YOLO model (trained before the CenterNet default)
        deployed = evaluate_yolo(live, data_yaml, eval_split, recipe.imgsz)
    onnx = centernet.export_onnx(best, work_dir / "model.onnx")
    return result.best, candidate, deployed, onnx, passes


def retrain(
    family: str,
    exports: list[str | Path],
    registry: Registry,
    work_dir: Path,
    recipe: RetrainRecipe | None = None,
    device: str = "cpu",
    force: bool = False,
    epochs: int | None = None,
    val_exports: list[str | Path] | None = None,
    start_weights: Path | None = None,
    always_promote: bool = False,
    label_map: dict[str, str] | None = None,
) -> RetrainResult:
    """Train a candidate from the exports, compare it with the live model on the same
    held-out images, store it as a new version, and promote it if the gate lets it (or
    `force`). `start_weights` overrides where training starts (a new family starts from
    another family's model); `always_promote` is for a family's first model, which has
    nothing to replace. `label_map` renames the exports' labels onto the family's."""
    if not exports:
        raise UserError("give at least one export with --from")
    recipe = recipe or load_recipe(family)
    check_label_map(label_map, recipe.classes, family)
    home = Home.resolve()
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    # the unpacked exports are needed until their images are copied into the dataset
    with ExitStack() as cleanup:
        datasets, lineage = _read_exports(
            exports, work_dir, recipe.classes, home, cleanup, label_map
        )
        held_out, val_lineage = _read_exports(
            val_exports or [], work_dir, recipe.classes, home, cleanup, label_map
        )
        data_yaml, counts = build_dataset(datasets, recipe, work_dir / "dataset", held_out)
    eval_split = "test" if counts["test"] else "val" if counts["val"] else "train"
    live, deployed_name = deployed_weights(registry, family)
    if start_weights is not None:
        start, started_name = start_weights, str(start_weights)
        live = None  # a first model has no live model of its own to beat
    else:
        start, started_name = live, deployed_name
    architecture = str(start) if recipe.start_from == "deployed" and start else recipe.architecture
    from_centernet = start is not None and recipe.start_from == "deployed" and _is_centernet(start)
    if from_centernet:
        best, candidate, deployed, onnx, run_epochs = _fit_centernet(
            start, live, data_yaml, counts, eval_split, recipe, epochs, work_dir
        )
    else:
        best, candidate, deployed, onnx, run_epochs = _fit_yolo(
            family,
            architecture,
            live,
            data_yaml,
            counts,
            eval_split,
            recipe,
            epochs,
            work_dir,
            device,
        )
    # every split has been read by now: train and val in training, test in evaluation
    images, boxes = read_by_trainer(data_yaml, counts)
    heldout_boxes = boxes[eval_split] if eval_split != "train" else 0
    gate = check_gate(candidate, deployed, recipe.gate, heldout_boxes, bool(val_exports))
    card = {
        "classes": list(recipe.classes),
        "architecture": "centernet-mobilenetv3" if from_centernet else "yolov8",
        "metrics": {
            "candidate": candidate,
            "deployed": deployed,
            "deployed_version": deployed_name if live else None,
        },
        "evaluated_on": {
            "split": eval_split,
            "images": images[eval_split],
            "boxes": boxes[eval_split],
            "fixed_validation": bool(val_exports),
        },
        # images and boxes per split as the trainer read them
        "data": {
            "exports": lineage,
            "validation_exports": val_lineage,
            "split": images,
            "boxes": boxes,
        },
        "recipe": {
            **{k: v for k, v in recipe.__dict__.items() if k != "gate"},
            "gate": recipe.gate.__dict__,
            "epochs": run_epochs,
        },
        "started_from": started_name if recipe.start_from == "deployed" else architecture,
        "code_version": code_version(),
        "device": device,
        "gate": gate,
    }
    version = registry.add(family, {"model.onnx": onnx, "model.pt": best}, card)
    promoted = promote_if_gated(
        registry, version, gate, recipe.classes, force, always_promote, deployed_name
    )
    log.info("%s %s: gate %s", family, version.name, json.dumps(gate))
    return RetrainResult(version, promoted, gate, card)
