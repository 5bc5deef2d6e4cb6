"""The images and labels that trained a registry version, rebuilt from its exports, and the
facts the cards state about them (counts per class and split, resolutions, label checks).

The rebuild runs the retraining's own `build_dataset` with the version's recorded recipe, so
the published split is the one the model saw; the counts are checked against the card.

Package layout (documented in docs/publishing.md)::

    <family>-<version>/
        README.md          the dataset card
        dataset.yaml       ultralytics/YOLO dataset file (names, splits beside it)
        images/<split>/    the images as exported from CVAT (not resized)
        labels/<split>/    one YOLO txt per image: class x_center y_center width height (0-1)
        MANIFEST.sha256    a checksum per file (`sha256sum -c MANIFEST.sha256`)
"""

from __future__ import annotations

import shutil
import zipfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import PIL.Image
import yaml

from imagine_assist.checksums import file_sha256, write_manifest
from imagine_assist.errors import UserError
from imagine_assist.home import Home
from imagine_assist.models.registry import ModelVersion

SPLITS = ("train", "val", "test")
# a box under this many pixels on its short side is hard to see, let alone to label
TINY_BOX_PX = 4


@dataclass
class DatasetFacts:
    classes: list[str]
    images: dict[str, int]  # per split
    boxes: dict[str, dict[str, int]]  # class -> split -> boxes
    resolutions: Counter  # (width, height) -> images
    images_without_boxes: int = 0
    tiny_boxes: int = 0
    duplicates_dropped: int = 0
    exports: list[dict] = field(default_factory=list)

    @property
    def total_images(self) -> int:
        return sum(self.images.values())

    @property
    def total_boxes(self) -> int:
        return sum(sum(per_split.values()) for per_split in self.boxes.values())


LINEAGES = ("exports", "validation_exports")  # trained on; held out whole (`--val`)


def find_exports(version: ModelVersion, extra: list[Path]) -> dict[str, Path]:
    """The export files the version was trained and validated on, by SHA-256, located by
    checksum: the home's copy, where the card says they were, then among `extra` (for
    exports moved since)."""
    data = version.card.get("data", {})
    lineage = [entry for key in LINEAGES for entry in data.get(key) or []]
    if not data.get("exports"):
        raise UserError(
            f"{version.family} {version.name} has no export lineage in its card; only versions "
            "trained with `imagine-assist train --from` or `loop` can be published"
        )
    by_digest: dict[str, Path] = {}
    # the home keeps every export that trained a version, by content (`train` stores it there)
    home = Home.resolve().root
    kept = [home / entry["stored"] for entry in lineage if entry.get("stored")]
    for candidate in kept + [Path(entry["path"]) for entry in lineage] + list(extra):
        if candidate.is_file():
            by_digest.setdefault(file_sha256(candidate), candidate)
    missing = [
        f"{entry['path']} (sha256 {entry['sha256'][:12]})"
        for entry in lineage
        if entry["sha256"] not in by_digest
    ]
    if missing:
        raise UserError(
            "the exports that trained this version are not where its card says, nor among "
            f"--export: {'; '.join(missing)}. Give their new paths with --export FILE"
        )
    return by_digest


def rebuild(version: ModelVersion, exports: dict[str, Path], out_dir: Path, work_dir: Path) -> Path:
    """The version's training data, in the package layout, under out_dir/<family>-<version>:
    the exports read and split as training read and split them (label maps, held-out
    validation exports included)."""
    from imagine_assist.training.exports import GROUND_TRUTH, load_export, relabel, unpacked
    from imagine_assist.training.retrain import Gate, RetrainRecipe, build_dataset, delete_dataset

    card = version.card
    recorded = dict(card["recipe"])
    recorded.pop("epochs", None)
    recipe = RetrainRecipe(
        **{
            **{k: v for k, v in recorded.items() if k in RetrainRecipe.__dataclass_fields__},
            "classes": tuple(recorded["classes"]),
            "gate": Gate(**recorded.get("gate", {})),
        }
    )

    def read(key: str, cleanup: ExitStack) -> list:
        datasets = []
        for entry in card.get("data", {}).get(key) or []:
            sha = entry["sha256"]
            info = cleanup.enter_context(unpacked(exports[sha], work_dir / "exports", sha))
            dataset = load_export(info)
            cleanup.callback(delete_dataset, dataset)  # runs before its folder is removed
            relabel(dataset, GROUND_TRUTH, entry.get("label_map"))
            datasets.append(dataset)
        return datasets

    folder = out_dir / f"{version.family}-{version.name}"
    # The unpacked exports live only until their images are copied into `folder`.
    with ExitStack() as cleanup:
        datasets, held_out = read("exports", cleanup), read("validation_exports", cleanup)
        if folder.exists():
            shutil.rmtree(folder)
        _, counts = build_dataset(datasets, recipe, folder, held_out)
    expected = card.get("data", {}).get("split", {})
    if expected and {k: counts.get(k, 0) for k in SPLITS} != {
        k: expected.get(k, 0) for k in SPLITS
    }:
        raise UserError(
            f"the exports now split as {counts}, but {version.name} trained on {expected}; "
            "were they edited? Publish from the exports as they were"
        )
    # no `path`: ultralytics then reads the splits beside dataset.yaml, wherever it is unzipped
    config = {"names": dict(enumerate(recipe.classes))}
    for split in SPLITS:
        if counts.get(split):
            config[split] = f"images/{split}"
    config.setdefault("val", "images/train")  # as in training: ultralytics insists on val
    (folder / "dataset.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def dataset_facts(folder: Path, classes: list[str], lineage: list[dict]) -> DatasetFacts:
    boxes = {name: dict.fromkeys(SPLITS, 0) for name in classes}
    images = dict.fromkeys(SPLITS, 0)
    resolutions: Counter = Counter()
    without, tiny = 0, 0
    for split in SPLITS:
        for image in sorted((folder / "images" / split).glob("*")):
            images[split] += 1
            with PIL.Image.open(image) as opened:  # reads the header only
                width, height = opened.size
            resolutions[(width, height)] += 1
            label = folder / "labels" / split / f"{image.stem}.txt"
            rows = label.read_text().split("\n") if label.is_file() else []
            rows = [row.split() for row in rows if row.strip()]
            without += not rows
            for row in rows:
                name = classes[int(row[0])]
                boxes[name][split] += 1
                box_w, box_h = float(row[3]) * width, float(row[4]) * height
                tiny += min(box_w, box_h) < TINY_BOX_PX
    exported = sum(entry.get("images", 0) for entry in lineage)
    return DatasetFacts(
        classes=list(classes),
        images=images,
        boxes=boxes,
        resolutions=resolutions,
        images_without_boxes=without,
        tiny_boxes=tiny,
        duplicates_dropped=max(0, exported - sum(images.values())),
        exports=lineage,
    )


def zip_folder(folder: Path, target: Path) -> Path:
    """The folder with its checksum manifest, zipped under its own name."""
    write_manifest(folder)
    partial = target.with_name(f".{target.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    partial.replace(target)
    return target
