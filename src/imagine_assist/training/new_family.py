"""Start a family from a user's own CVAT export: its labels become a served, retrainable
`<name>-detector`.

The first model starts from the closest built-in model: ultralytics keeps every layer whose
shape still fits (the backbone and neck) and gives the head the new classes. The family file
goes to `<home>/families/<name>.yaml`, the model to the registry as v1, promoted: there is
nothing older to protect, and its held-out figure is in its card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.families import (
    Family,
    FunctionDef,
    Publication,
    builtin_families,
    check_label_names,
    family_from_dict,
    read_families,
    save_family,
)
from imagine_assist.home import Home
from imagine_assist.models.registry import Registry
from imagine_assist.models.store import live_model
from imagine_assist.training.exports import (
    GROUND_TRUTH,
    declared_labels,
    labels_in,
    load_export,
    relabel,
    unpacked,
)
from imagine_assist.training.retrain import RetrainResult, recipe_of, retrain

log = logging.getLogger(__name__)
DEFAULT_BASE = "fish"  # underwater scenes: the closest start for most of our users' tasks


@dataclass
class CreatedFamily:
    family: Family
    path: Path
    base: str
    result: RetrainResult


def export_labels(
    exports: list[str | Path], work_dir: Path, label_map: dict[str, str] | None = None
) -> tuple[str, ...]:
    """The labels of the exports (CVAT images/video 1.1, COCO, YOLO): those the task declares,
    with or without a box yet (`exports.declared_labels`), so that a later round's first box
    of a rare species is not refused, in the task's order; then any drawn that no task
    declares. Only the labels are read: each export's unpacked folder is removed straight
    after."""
    declared: list[str] = []  # in the task's own order, as CVAT will show them
    drawn: set[str] = set()
    rename = label_map or {}
    for export in exports:
        with unpacked(export, work_dir) as info:
            dataset = load_export(info)
            try:
                relabel(dataset, GROUND_TRUTH, label_map)
                drawn |= labels_in(dataset)
                for name in declared_labels(dataset):
                    if rename.get(name, name) not in declared:
                        declared.append(rename.get(name, name))
            finally:
                dataset.delete()
    if not drawn and not declared:
        raise UserError(f"{', '.join(map(str, exports))}: no boxes with labels to learn from")
    return (*declared, *sorted(drawn - set(declared)))


def closest_base(labels: tuple[str, ...]) -> str:
    """The built-in detector family sharing most labels with these, else the default."""
    candidates = {
        name: family
        for name, family in builtin_families().items()
        if family.training is not None and family.labels
    }
    overlap = {name: len(set(labels) & set(f.labels)) for name, f in candidates.items()}
    best = max(overlap, key=lambda name: overlap[name], default=DEFAULT_BASE)
    return best if overlap.get(best) else DEFAULT_BASE


def new_family(name: str, labels: tuple[str, ...], base: Family) -> Family:
    """A family like `base` (its detector settings, recipe and gate) with its own labels."""
    detector = base.detector
    if detector is None or base.training is None:
        raise UserError(f"{base.name} has no box detector to start a family from")
    # validate the name and labels as a family file would be
    family_from_dict({"name": name, "labels": list(labels)})
    function = FunctionDef(
        id=f"{name}-detector",
        kind="detector",
        name=f"{name} detector (imagine-assist)",
        description=f"{name}: boxes of {', '.join(labels)} (fine-tuned from the {base.name} model)",
        runtime="detector",
        threshold=detector.threshold,
        timeout_s=detector.timeout_s,
        max_body_mib=detector.max_body_mib,
        tile_size=detector.tile_size,
        tile_overlap=detector.tile_overlap,
    )
    return Family(
        name=name,
        title=f"{name.capitalize()} in images",
        labels=labels,
        functions=(function,),
        training=replace(base.training, start_from="deployed"),
        publication=Publication(f"{', '.join(labels)} in images", tuple(labels)),
        base=base.name,
    )


def create_family(
    name: str,
    exports: list[str | Path],
    work_dir: Path,
    models_dir: str | Path | None = None,
    base: str | None = None,
    val_exports: list[str | Path] | None = None,
    label_map: dict[str, str] | None = None,
    epochs: int | None = None,
    device: str = "cpu",
) -> CreatedFamily:
    check_new_name(name)
    if not exports:
        raise UserError("give the export to start from with --from")
    work_dir = Path(work_dir).resolve()
    # the fixed validation export is of the same task: its labels are the family's too
    labels = export_labels([*exports, *(val_exports or [])], work_dir / "labels", label_map)
    check_label_names(labels, "the export's labels")  # before an hour of training
    base_name = base or closest_base(labels)
    builtin = builtin_families()
    if base_name not in builtin:
        raise UserError(f"--base must be a built-in family: {', '.join(builtin)}")
    family = new_family(name, labels, builtin[base_name])
    start = live_model(base_name, models_dir, fmt="pt").path
    log.info("family %s: labels %s, starting from %s (%s)", name, labels, base_name, start)
    registry = Registry(Path(models_dir).expanduser() if models_dir else Home.resolve().models)
    result = retrain(
        name,
        exports,
        registry,
        work_dir / "train",
        recipe_of(family),
        device=device,
        epochs=epochs,
        val_exports=val_exports,
        start_weights=start,
        always_promote=True,
        label_map=label_map,
    )
    # The family file comes last: until its model is promoted, nothing lists a function that
    # could not load. A run killed before this point leaves versions no family names, and a
    # new `families create NAME` simply adds and promotes the next one.
    path = save_family(family, Home.resolve())
    return CreatedFamily(family, path, base_name, result)


def check_new_name(name: str) -> None:
    """Before any work: a valid name that no family has taken."""
    family_from_dict({"name": name, "labels": ["x"]})  # the name rule of family files
    families, unusable = read_families(None)
    for path, error in unusable.items():
        if path.stem == name:  # the user's own file, with a typo: never written over
            raise UserError(
                f"the family file {path} exists but cannot be used ({error}); fix it, or "
                "move it away to start the family anew"
            )
    if name in families:
        raise UserError(
            f"a family {name!r} exists already; retrain it with `imagine-assist train {name} "
            "--from export.zip`, or choose another name"
        )
