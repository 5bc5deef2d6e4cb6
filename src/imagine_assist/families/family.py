"""The `Family` type: one declarative YAML file says everything about a family.

A family is a set of labels with the functions that serve them, the files of its models,
how to retrain it from CVAT exports and when to promote the result, and how to describe it
when it is published. The built-in families ship as files in `families/builtin/`; a user's
own live in `<home>/families/`, one file each, written by `imagine-assist families create`
or by hand.

Everything else (the CLI, the function catalog, the gateway listing, `functions render`,
the registry, `publish`) reads families; nothing else lists them. This module imports
nothing of ours but the error type, so every layer may read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imagine_assist.errors import UserError

# The CVAT function kinds a family may serve (CVAT's interactors are not among ours).
SERVED_KINDS = ("detector", "tracker", "reid")
# What answers a function's requests: a box detector model, the plankton separator and
# classifier pair, a tracker around a detector, or motion and appearance alone.
RUNTIMES = ("detector", "separator", "tracker", "reid")
LABELS_FROM_MODEL = "from-model"
# CVAT's longest label name: the SDK refuses a longer one, so cvat-cli stopped with a trace
MAX_LABEL_CHARS = 64
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")  # becomes part of a DNS-safe function id


@dataclass(frozen=True)
class LabelDef:
    name: str
    type: str = "rectangle"
    text_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionDef:
    """One served function of a family, in the family's own words."""

    id: str
    kind: str
    name: str
    description: str
    runtime: str
    threshold: float
    timeout_s: int = 30
    max_body_mib: int = 32
    tile_size: int | None = None
    tile_overlap: int = 0
    model: str = "model.onnx"  # in the family's model directory
    labels: tuple[LabelDef, ...] | None = None  # None: the family's labels as rectangles


@dataclass(frozen=True)
class Gate:
    """When a retrained model may replace the live one."""

    min_map50_gain: float = 0.0  # the candidate must beat the live model by more than this
    max_class_recall_drop: float = 0.10
    # Fewer held-out boxes than this and the comparison means nothing: no decision is made.
    min_heldout_boxes: int = 50


@dataclass(frozen=True)
class TrainingRecipe:
    """How `train --from <export>` retrains the family's detector."""

    start_from: str = "deployed"  # the live model's weights, or "scratch" (architecture yaml)
    architecture: str = "yolov8n.yaml"
    imgsz: int = 320
    epochs: int = 20
    batch: int = 16
    train_args: dict = field(default_factory=dict)  # ultralytics: optimiser, augmentation
    val_share: float = 0.15
    test_share: float = 0.15
    gate: Gate = Gate()
    # One box per object whatever its label: when two labels are kinds of one thing (fish
    # species), overlapping boxes of different labels are one object named twice, and only
    # the most confident stays. A family started from this one keeps the recipe, and so this.
    class_agnostic_nms: bool = False


@dataclass(frozen=True)
class DefaultTraining:
    """How `train <family>` (no exports) trains the default model on synthetic scenes."""

    images: int
    test_images: int
    imgsz: int = 320
    epochs: int = 60
    tile_size: int | None = None
    tile_overlap: int = 0


@dataclass(frozen=True)
class Publication:
    subject: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    labels: tuple[str, ...] | None  # None: read from the live model's metadata
    functions: tuple[FunctionDef, ...]
    training: TrainingRecipe | None
    publication: Publication
    default_training: DefaultTraining | None = None
    synthetic: str | None = None  # name of a samples generator that draws these labels
    base: str | None = None  # the family whose model this one started from
    source: Path | None = None
    builtin: bool = False

    @property
    def detector(self) -> FunctionDef | None:
        """The function whose model retraining replaces: the family's box detector."""
        return next((f for f in self.functions if f.runtime == "detector"), None)

    def function(self, function_id: str) -> FunctionDef:
        for function in self.functions:
            if function.id == function_id:
                return function
        raise UserError(f"family {self.name} serves no function {function_id!r}")


def _require(raw: dict, key: str, where: str) -> Any:
    if key not in raw:
        raise UserError(f"{where}: missing {key!r}")
    return raw[key]


def _labels(raw: Any, where: str) -> tuple[str, ...] | None:
    if raw == LABELS_FROM_MODEL:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) and x for x in raw):
        raise UserError(
            f"{where}: labels must be a list of names, or {LABELS_FROM_MODEL!r} to take them "
            "from the model"
        )
    if len(set(raw)) != len(raw):
        raise UserError(f"{where}: labels are not unique: {raw}")
    check_label_names(raw, where)
    return tuple(raw)


def check_label_names(names, where: str) -> None:
    """Label names CVAT can hold: at most MAX_LABEL_CHARS, no space at either end (CVAT
    strips it, and "fish " beside "fish" was two classes)."""
    for name in names:
        if len(name) > MAX_LABEL_CHARS:
            raise UserError(
                f"{where}: the label {name[:40]!r}... has {len(name)} characters; CVAT takes "
                f"at most {MAX_LABEL_CHARS} (shorten it, or map it with --map OLD=NEW)"
            )
        if name != name.strip():
            raise UserError(f"{where}: the label {name!r} starts or ends with a space")


def _function(raw: dict, family: str, where: str) -> FunctionDef:
    if not isinstance(raw, dict):
        raise UserError(f"{where}: each function is a mapping with at least 'kind'")
    kind = _require(raw, "kind", where)
    if kind not in SERVED_KINDS:
        raise UserError(f"{where}: kind {kind!r} is not one of {', '.join(SERVED_KINDS)}")
    function_id = str(raw.get("id") or f"{family}-{kind}")
    runtime = str(raw.get("runtime") or kind)
    if runtime not in RUNTIMES:
        raise UserError(f"{where}: runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    labels = None
    if raw.get("labels") is not None:
        labels = tuple(
            LabelDef(
                str(_require(label, "name", where)),
                str(label.get("type", "rectangle")),
                tuple(label.get("text_attributes") or ()),
            )
            for label in raw["labels"]
        )
        check_label_names([label.name for label in labels], where)
    tile_size = int(raw.get("tile_size") or 0) or None
    tile_overlap = int(raw.get("tile_overlap", 0))
    if tile_size is not None and not 0 <= tile_overlap <= tile_size // 2:
        # as a served function checks it (functions.detector), but when the file is read
        raise UserError(
            f"{where}: tile_overlap {tile_overlap} must lie in [0, {tile_size // 2}] for "
            f"tile_size {tile_size} (at most half a tile)"
        )
    return FunctionDef(
        id=function_id,
        kind=kind,
        name=str(raw.get("name") or f"{function_id} (imagine-assist)"),
        description=str(raw.get("description") or f"{family} {kind}").strip(),
        runtime=runtime,
        threshold=float(raw.get("threshold", 0.35 if kind == "detector" else 0.5)),
        timeout_s=int(raw.get("timeout_s", 30)),
        max_body_mib=int(raw.get("max_body_mib", 32)),
        tile_size=tile_size,
        tile_overlap=tile_overlap,
        model=str(raw.get("model", "model.onnx")),
        labels=labels,
    )


def _training(raw: dict | None) -> TrainingRecipe | None:
    if raw is None:
        return None
    split = raw.get("split") or {}
    return TrainingRecipe(
        start_from=str(raw.get("start_from", "deployed")),
        architecture=str(raw.get("architecture", "yolov8n.yaml")),
        imgsz=int(raw.get("imgsz", 320)),
        epochs=int(raw.get("epochs", 20)),
        batch=int(raw.get("batch", 16)),
        train_args=dict(raw.get("train_args") or {}),
        val_share=float(split.get("val", 0.15)),
        test_share=float(split.get("test", 0.15)),
        gate=Gate(**(raw.get("gate") or {})),
        class_agnostic_nms=_flag(raw.get("class_agnostic_nms", False), "class_agnostic_nms"),
    )


def _flag(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"training.{key} must be true or false, not {value!r}")
    return value


def check_training(recipe: TrainingRecipe, where: str) -> None:
    if recipe.start_from not in ("deployed", "scratch"):
        raise UserError(f"{where}: start_from must be 'deployed' or 'scratch'")
    if not (0 <= recipe.val_share and 0 <= recipe.test_share) or (
        recipe.val_share + recipe.test_share >= 1
    ):
        raise UserError(f"{where}: split shares must lie in [0, 1) and leave images to train on")
    if recipe.gate.min_heldout_boxes < 0:
        raise UserError(f"{where}: gate.min_heldout_boxes must be 0 or more")


def family_from_dict(raw: Any, source: Path | None = None, builtin: bool = False) -> Family:
    where = str(source) if source else "family"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a family file is a YAML mapping (name, labels, functions)")
    try:
        name = str(_require(raw, "name", where))
        if not _NAME.match(name):
            raise UserError(
                f"{where}: family name {name!r} must be lower-case letters, digits and '-', "
                "starting with a letter (it becomes part of the function id)"
            )
        labels = _labels(_require(raw, "labels", where), where)
        functions = tuple(
            _function(item, name, f"{where}: functions[{index}]")
            for index, item in enumerate(raw.get("functions") or [{"kind": "detector"}])
        )
        ids = [f.id for f in functions]
        if len(set(ids)) != len(ids):
            raise UserError(f"{where}: function ids are not unique: {ids}")
        training = _training(raw.get("training"))
        if training is not None:
            check_training(training, where)
        default = raw.get("default_training")
        publication = raw.get("publication") or {}
        title = str(raw.get("title") or f"{name.capitalize()} in images")
        return Family(
            name=name,
            title=title,
            labels=labels,
            functions=functions,
            training=training,
            publication=Publication(
                str(publication.get("subject") or title), tuple(publication.get("keywords") or ())
            ),
            default_training=DefaultTraining(**default) if default else None,
            synthetic=raw.get("synthetic"),
            base=raw.get("base"),
            source=source,
            builtin=builtin,
        )
    except (TypeError, ValueError, AttributeError) as error:
        raise UserError(f"{where} is not a valid family file: {error}") from None


def load_family_file(path: Path, builtin: bool = False) -> Family:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"cannot read the family file {path}: {error}") from None
    family = family_from_dict(raw, path, builtin)
    if family.name != path.stem:
        raise UserError(f"{path} defines family {family.name!r}; name the file {family.name}.yaml")
    return family


def family_to_dict(family: Family) -> dict:
    """The YAML form of a family, as `families create` writes it."""

    def function(f: FunctionDef) -> dict:
        out = {
            "id": f.id,
            "kind": f.kind,
            "name": f.name,
            "description": f.description,
            "threshold": f.threshold,
            "timeout_s": f.timeout_s,
        }
        if f.max_body_mib != FunctionDef.max_body_mib:
            out["max_body_mib"] = f.max_body_mib
        if f.tile_size:
            out.update(tile_size=f.tile_size, tile_overlap=f.tile_overlap)
        if f.model != FunctionDef.model:
            out["model"] = f.model
        if f.runtime != f.kind:
            out["runtime"] = f.runtime
        if f.labels is not None:
            out["labels"] = [
                {"name": x.name, "type": x.type, "text_attributes": list(x.text_attributes)}
                for x in f.labels
            ]
        return out

    raw: dict = {
        "name": family.name,
        "title": family.title,
        "labels": list(family.labels) if family.labels is not None else LABELS_FROM_MODEL,
        "functions": [function(f) for f in family.functions],
    }
    if family.base:
        raw["base"] = family.base
    if family.training is not None:
        t = family.training
        raw["training"] = {
            "start_from": t.start_from,
            "architecture": t.architecture,
            "imgsz": t.imgsz,
            "epochs": t.epochs,
            "batch": t.batch,
            "train_args": dict(t.train_args),
            "split": {"val": t.val_share, "test": t.test_share},
            "gate": dict(t.gate.__dict__),
        }
        if t.class_agnostic_nms:
            raw["training"]["class_agnostic_nms"] = True
    raw["publication"] = {
        "subject": family.publication.subject,
        "keywords": list(family.publication.keywords),
    }
    return raw
