"""What every sample generator produces: images with exact ground truth, and the files for them.

A generator yields `Sample`s. `write_dataset` turns any stream of them into the two layouts
users meet: an Ultralytics YOLO dataset (for training) and a CVAT for images 1.1 XML (for
importing into a CVAT task), both with the same labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import supervision as sv
import yaml
from PIL import Image

SPLITS = ("train", "val", "test")


@dataclass
class SampleObject:
    label: str
    # Exact box of the rendered pixels: x1, y1 inclusive, x2, y2 exclusive (so w = x2 - x1).
    xyxy: tuple[float, float, float, float]
    mask: np.ndarray | None = None  # bool (H, W) over the whole frame, when the generator has one


@dataclass
class Sample:
    name: str  # file name, unique within a dataset, e.g. "fish_000012.jpg"
    image: np.ndarray  # RGB uint8 (H, W, 3)
    objects: list[SampleObject] = field(default_factory=list)
    split: str = "train"

    @property
    def size(self) -> tuple[int, int]:
        height, width = self.image.shape[:2]
        return width, height

    def detections(self, labels: Sequence[str]) -> sv.Detections:
        """Ground truth as `Detections`, class ids indexing `labels`."""
        if not self.objects:
            return sv.Detections.empty()
        index = {name: i for i, name in enumerate(labels)}
        masks = [o.mask for o in self.objects]
        return sv.Detections(
            xyxy=np.array([o.xyxy for o in self.objects], dtype=np.float32),
            class_id=np.array([index[o.label] for o in self.objects], dtype=int),
            confidence=np.ones(len(self.objects), dtype=np.float32),
            mask=np.stack(masks) if all(m is not None for m in masks) else None,
            data={"class_name": np.array([o.label for o in self.objects])},
        )


@dataclass(frozen=True)
class DatasetFiles:
    root: Path
    data_yaml: Path  # Ultralytics dataset config
    cvat_xml: Path  # CVAT for images 1.1
    labels: tuple[str, ...]
    image_count: int


def split_for(index: int, fractions: Sequence[float]) -> str:
    """Deterministic split of the i-th generated image, interleaved so every split sees
    the whole range of scene parameters."""
    slot = (index * 0.6180339887498949) % 1.0  # golden-ratio sequence: evenly spread, no RNG
    cumulative = 0.0
    for name, fraction in zip(SPLITS, fractions, strict=False):
        cumulative += fraction
        if slot < cumulative:
            return name
    return SPLITS[len(fractions) - 1]


def yolo_lines(sample: Sample, labels: Sequence[str]) -> list[str]:
    width, height = sample.size
    index = {name: i for i, name in enumerate(labels)}
    lines = []
    for obj in sample.objects:
        x1, y1, x2, y2 = obj.xyxy
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        w, h = (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{index[obj.label]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def write_dataset(
    out_dir: str | Path,
    samples: Iterable[Sample],
    labels: Sequence[str],
    jpeg_quality: int = 92,
) -> DatasetFiles:
    """Write samples as a YOLO dataset plus a CVAT for images 1.1 XML of the same labels."""
    from imagine_assist.cvat.xml import write_cvat_images_xml

    root = Path(out_dir)
    written: list[tuple[str, int, int, sv.Detections, str]] = []
    used_splits: set[str] = set()
    for sample in samples:
        image_dir = root / "images" / sample.split
        label_dir = root / "labels" / sample.split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.image).save(image_dir / sample.name, quality=jpeg_quality)
        stem = Path(sample.name).stem
        (label_dir / f"{stem}.txt").write_text(
            "".join(f"{line}\n" for line in yolo_lines(sample, labels))
        )
        width, height = sample.size
        written.append((sample.name, width, height, sample.detections(labels), sample.split))
        used_splits.add(sample.split)

    config = {"path": str(root.resolve()), "names": dict(enumerate(labels))}
    for split in SPLITS:
        if split in used_splits:
            config[split] = f"images/{split}"
    # Ultralytics insists on train and val keys; point a missing one at an existing split.
    fallback = next(s for s in SPLITS if s in used_splits) if used_splits else "train"
    config.setdefault("train", f"images/{fallback}")
    config.setdefault("val", f"images/{fallback}")
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(config, sort_keys=False))

    cvat_xml = root / "annotations.xml"
    write_cvat_images_xml(
        cvat_xml,
        [(name, w, h, dets) for name, w, h, dets, _ in written],
        labels=labels,
        subsets=[split for *_, split in written],
    )
    return DatasetFiles(root, data_yaml, cvat_xml, tuple(labels), len(written))


def write_cvat_export(
    path: str | Path,
    samples: Iterable[Sample],
    labels: Sequence[str],
    jpeg_quality: int = 92,
    masks: bool = False,
) -> Path:
    """A zip laid out as CVAT's "CVAT for images 1.1" export with images: `annotations.xml`
    and `images/<name>`. Stands in for a corrected task exported from CVAT: a box task, or
    with `masks` a mask task (one RLE <mask> per object, as CVAT writes them)."""
    import io
    import zipfile

    from imagine_assist.cvat.xml import cvat_images_tree

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for sample in samples:
            buffer = io.BytesIO()
            Image.fromarray(sample.image).save(buffer, format="JPEG", quality=jpeg_quality)
            archive.writestr(f"images/{sample.name}", buffer.getvalue())
            width, height = sample.size
            shapes = sample.detections(labels)
            if not masks:
                shapes.mask = None  # a box task: CVAT exports rectangles
            entries.append((sample.name, width, height, shapes))
        label_type = "mask" if masks else "rectangle"
        tree = cvat_images_tree(entries, labels, None, label_type=label_type)
        xml = io.BytesIO()
        tree.write(xml, encoding="utf-8", xml_declaration=True)
        archive.writestr("annotations.xml", xml.getvalue())
    return path


def with_labels(
    samples: Iterable[Sample], rename: dict[str, str] | Callable[[SampleObject], str]
) -> Iterator[Sample]:
    """The same scenes under a user's own label names: a dict from the generator's names, or
    a function of each object (to split one generated kind into several labels)."""
    for sample in samples:
        objects = [
            replace(o, label=rename(o) if callable(rename) else rename.get(o.label, o.label))
            for o in sample.objects
        ]
        yield replace(sample, objects=objects)
