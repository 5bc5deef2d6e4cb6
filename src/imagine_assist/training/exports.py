"""CVAT export zips into FiftyOne datasets, and from there into a YOLO training dataset.

Reading goes through FiftyOne's own importers (CVAT for images 1.1, COCO 1.0, Ultralytics
YOLO Detection 1.0), chosen from what the zip holds; CVAT for video 1.1 tracks, which
FiftyOne reads only beside the video file, are read from the XML into one sample per
exported frame. Writing goes through FiftyOne's YOLO exporter. The split is decided by each
image's content hash, so an image lands in the same split in every round, whatever export
it came in, and the held-out images never reach training; video frames are split by
stretches of video instead, so neighbouring frames share their split.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from imagine_assist.checksums import file_sha256
from imagine_assist.errors import UserError
from imagine_assist.home import Home, configure_offline

log = logging.getLogger(__name__)
GROUND_TRUTH = "ground_truth"
SPLIT_GROUP = "split_group"
# 100 video frames, 4 s at 25 fps: the camera has moved on by more than a frame's height
VIDEO_SEGMENT_FRAMES = 100
_FRAME = re.compile(r"^frame_(\d+)$")  # CVAT's names for video frames: frame_000123.PNG
FORMATS = (
    "CVAT for images 1.1",
    "CVAT for video 1.1",
    "COCO 1.0",
    "Ultralytics YOLO Detection 1.0",
)


def fiftyone():
    """Import FiftyOne only after its database directory and telemetry are set."""
    configure_offline(Home.resolve())
    import fiftyone as fo

    return fo


@dataclass(frozen=True)
class ExportInfo:
    path: Path
    format: str
    sha256: str
    root: Path  # where it was unpacked


def unpack(export: str | Path, work_dir: Path, sha256: str | None = None) -> ExportInfo:
    """`sha256`, when the caller has just computed it, saves reading the export again."""
    export = Path(export)
    if not export.is_file():
        raise UserError(f"no export at {export}")
    sha = sha256 or file_sha256(export)
    root = work_dir / f"export-{sha[:12]}"
    try:
        with zipfile.ZipFile(export) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise UserError(f"{export} is damaged: {bad} does not match its checksum")
            names = archive.namelist()
            for name in names:  # never write outside the unpack directory
                if name.startswith("/") or ".." in Path(name).parts:
                    raise UserError(f"{export} holds an unsafe path: {name}")
            archive.extractall(root)
    except zipfile.BadZipFile as error:
        raise UserError(
            f"{export} is not a readable zip ({error}); export the task again"
        ) from None
    return ExportInfo(export, detect_format(root, export), sha, root)


def _first_annotation(xml_path: Path) -> str:
    """ "image" or "track", whichever element comes first, or "" when neither does (then
    the task's mode, "interpolation" for video, is returned with a "mode:" prefix). Read
    line by line: the meta before them (labels, one <segment> per job) can be long, the
    annotations after them longer still."""
    video_mode = False
    with xml_path.open(errors="replace") as handle:
        for line in handle:
            image, track = line.find("<image "), line.find("<track ")
            if image >= 0 or track >= 0:
                return "track" if track >= 0 and (image < 0 or track < image) else "image"
            video_mode = video_mode or "<mode>interpolation</mode>" in line
    return "mode:interpolation" if video_mode else ""


def detect_format(root: Path, export: Path) -> str:
    if (root / "annotations.xml").is_file():
        first = _first_annotation(root / "annotations.xml")
        is_video = first in ("track", "mode:interpolation")
        return "CVAT for video 1.1" if is_video else "CVAT for images 1.1"
    if list(root.glob("annotations/*.json")):
        return "COCO 1.0"
    if (root / "data.yaml").is_file():
        return "Ultralytics YOLO Detection 1.0"
    raise UserError(
        f"{export} is not an export this tool reads. Export the task from CVAT as one of: "
        + ", ".join(FORMATS)
    )


def _images_dir(root: Path) -> Path:
    for name in ("images", "data"):
        if (root / name).is_dir():
            return root / name
    return root


def load_export(info: ExportInfo, name: str | None = None):
    """A FiftyOne dataset of the export, labels in the `ground_truth` field."""
    fo = fiftyone()
    name = name or f"export-{info.sha256[:12]}"
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    root = info.root
    # CVAT importers return several label kinds; keep the boxes, under one field name
    boxes = {"name": name, "label_field": {"detections": GROUND_TRUTH}}
    common = {"name": name, "label_field": GROUND_TRUTH}
    try:
        if info.format == "CVAT for images 1.1":
            dataset = fo.Dataset.from_dir(
                dataset_type=fo.types.CVATImageDataset,
                data_path=str(_images_dir(root)),
                labels_path=str(root / "annotations.xml"),
                **boxes,
            )
        elif info.format == "CVAT for video 1.1":
            dataset = _load_cvat_video(fo, root, name, info.path)
        elif info.format == "COCO 1.0":
            labels = sorted(root.glob("annotations/*.json"))[0]
            dataset = fo.Dataset.from_dir(
                dataset_type=fo.types.COCODetectionDataset,
                data_path=str(_images_dir(root)),
                labels_path=str(labels),
                label_types="detections",
                **common,
            )
        else:
            dataset = _load_yolo(fo, root, common)
    except UserError:
        raise
    except Exception as error:  # FiftyOne's importers raise many kinds on malformed files
        raise UserError(
            f"{info.path}: FiftyOne could not read it as {info.format}: {error}"
        ) from None
    dataset.info["export"] = {"path": str(info.path), "sha256": info.sha256, "format": info.format}
    dataset.save()
    return dataset


def _video_identity(tree, xml_path: Path) -> str:
    """The video the export is of: its source file name, else the task's name ("" for a job
    export, which names neither)."""
    if tree.find("meta/project") is not None:
        raise UserError(
            f"{xml_path} is a project export, whose frame numbers restart in every task: "
            "export each video task on its own (Actions > Export task dataset)"
        )
    for path in ("meta/task", "meta/job"):
        node = tree.find(path)
        if node is not None:
            return (node.findtext("source") or node.findtext("name") or "").strip()
    return ""


def _rotated_bounds(x1, y1, x2, y2, degrees: float) -> tuple[float, float, float, float]:
    """Axis-aligned bounds of a box turned about its centre (CVAT turns clockwise)."""
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w, half_h = (x2 - x1) / 2, (y2 - y1) / 2
    cos, sin = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    reach_x, reach_y = half_w * cos + half_h * sin, half_w * sin + half_h * cos
    return cx - reach_x, cy - reach_y, cx + reach_x, cy + reach_y


def shape_bounds(shape) -> tuple[float, float, float, float] | None:
    """The box around a CVAT shape that outlines an object (box, polygon, ellipse, mask);
    None for shapes without an area (polyline, points) and for skeletons and cuboids."""
    number = lambda key: float(shape.get(key))  # noqa: E731
    if shape.tag == "box":
        box = (number("xtl"), number("ytl"), number("xbr"), number("ybr"))
        degrees = float(shape.get("rotation") or 0)
        return _rotated_bounds(*box, degrees) if degrees % 180 else box
    if shape.tag == "polygon":
        points = [tuple(map(float, pair.split(","))) for pair in shape.get("points").split(";")]
        xs, ys = [x for x, _ in points], [y for _, y in points]
        return min(xs), min(ys), max(xs), max(ys)
    if shape.tag == "ellipse":
        cx, cy, rx, ry = (number(key) for key in ("cx", "cy", "rx", "ry"))
        angle = math.radians(float(shape.get("rotation") or 0))
        reach_x = math.hypot(rx * math.cos(angle), ry * math.sin(angle))
        reach_y = math.hypot(rx * math.sin(angle), ry * math.cos(angle))
        return cx - reach_x, cy - reach_y, cx + reach_x, cy + reach_y
    if shape.tag == "mask":
        left, top = number("left"), number("top")
        return left, top, left + number("width"), top + number("height")
    return None


def video_boxes(xml_path: Path) -> tuple[dict[int, list[tuple]], str, set[str]]:
    """Visible shapes per video frame from CVAT for video 1.1 tracks, as boxes (label, x1,
    y1, x2, y2); the video's identity; the kinds of shape left out. CVAT writes a shape for
    every frame of a track, interpolated ones included, numbered as in the video (a frame
    step leaves gaps), and an `outside` one where the object leaves."""
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, OSError) as error:
        raise UserError(f"{xml_path} is not readable CVAT XML: {error}") from None
    by_frame: dict[int, list[tuple]] = {}
    left_out: set[str] = set()
    try:
        for track in tree.iter("track"):
            label = track.get("label", "")
            for shape in track:
                if shape.get("frame") is None or shape.get("outside") == "1":
                    continue
                bounds = shape_bounds(shape)
                if bounds is None:
                    left_out.add(shape.tag)
                    continue
                by_frame.setdefault(int(shape.get("frame")), []).append((label, *bounds))
    except (TypeError, ValueError, AttributeError):
        raise UserError(
            f"{xml_path} has a track shape without a frame number or coordinates"
        ) from None
    return by_frame, _video_identity(tree, xml_path), left_out


def _load_cvat_video(fo, root: Path, name: str, export: Path):
    """Each exported frame as a sample with its boxes; frames of one stretch of video share
    a split group, so near-identical neighbours never straddle training and testing."""
    import PIL.Image

    by_frame, video, left_out = video_boxes(root / "annotations.xml")
    if left_out:
        log.warning(
            "%s: %s shapes have no area to train a box on and were left out",
            export,
            ", ".join(sorted(left_out)),
        )
    frames = {}
    for path in _images_dir(root).rglob("*"):
        match = _FRAME.match(path.stem)
        if match and path.is_file():
            frames[int(match.group(1))] = path
    if not frames:
        raise UserError(
            f"{export} holds the tracks but no frames: export the task again with "
            "'Save images' (cvat-sdk: include_images=True)"
        )
    # The loop names exports by task (task-12.zip), so a job export, which names no video,
    # keeps its groups from round to round too.
    group_base = video or export.name
    # every frame of a video has its size: one header read, not one per frame
    with PIL.Image.open(frames[min(frames)]) as image:
        width, height = image.size
    samples = []
    for frame, path in sorted(frames.items()):
        detections = []
        for label, x1, y1, x2, y2 in by_frame.get(frame, []):
            x1, y1 = max(0.0, x1), max(0.0, y1)
            x2, y2 = min(float(width), x2), min(float(height), y2)
            if x2 > x1 and y2 > y1:
                box = [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]
                detections.append(fo.Detection(label=label, bounding_box=box))
        sample = fo.Sample(filepath=str(path))
        sample[GROUND_TRUTH] = fo.Detections(detections=detections)
        sample[SPLIT_GROUP] = f"{group_base}#{frame // VIDEO_SEGMENT_FRAMES}"
        samples.append(sample)
    dataset = fo.Dataset(name)
    dataset.add_samples(samples)
    return dataset


def split_key(sample, digest: str) -> str:
    """What decides a sample's split: its split group when it has one (video frames), else
    its own content digest."""
    group = sample[SPLIT_GROUP] if sample.has_field(SPLIT_GROUP) else None
    return hashlib.sha256(group.encode()).hexdigest() if group else digest


def _load_yolo(fo, root: Path, common: dict):
    import yaml

    config = yaml.safe_load((root / "data.yaml").read_text()) or {}
    dataset = fo.Dataset(common["name"])
    for split in ("train", "val", "valid", "test", "Train", "Validation"):
        if (root / "images" / split).is_dir():
            dataset.add_dir(
                dataset_dir=str(root),
                dataset_type=fo.types.YOLOv5Dataset,
                yaml_path=str(root / "data.yaml"),
                split=split,
                label_field=common["label_field"],
                include_all_data=True,  # images without a label file are background, not noise
            )
    if not len(dataset) and config:
        raise UserError(f"{root}: data.yaml names no image folder under images/")
    return dataset


def labels_in(dataset) -> set[str]:
    if not dataset.has_sample_field(GROUND_TRUTH):  # an export without a single box
        return set()
    return set(dataset.distinct(f"{GROUND_TRUTH}.detections.label"))


def check_export(dataset, classes: tuple[str, ...], export: Path) -> None:
    """An empty export, or one whose labels are not the family's, gets a clear error."""
    if len(dataset) == 0:
        raise UserError(f"{export} holds no images")
    labelled = (
        dataset.count(f"{GROUND_TRUTH}.detections") if dataset.has_sample_field(GROUND_TRUTH) else 0
    )
    if labelled == 0:
        raise UserError(f"{export} holds {len(dataset)} images but no boxes")
    unknown = labels_in(dataset) - set(classes)
    if unknown:
        raise UserError(
            f"{export} has labels this family does not know: {', '.join(sorted(unknown))}. "
            f"The family's classes are: {', '.join(classes)}. Map them with --map "
            "EXPORT_LABEL=FAMILY_LABEL, rename them in CVAT, or start a family of your own "
            "(`imagine-assist families create NAME --from EXPORT`)"
        )


def content_split(image_path: str, val: float, test: float) -> str:
    """train, val or test, from the image bytes alone: stable across rounds and exports."""
    return split_of_digest(file_sha256(image_path), val, test)


def split_of_digest(sha256_hex: str, val: float, test: float) -> str:
    slot = int(sha256_hex[:16], 16) / 2**64  # the first 8 bytes, uniform in [0, 1)
    if slot < test:
        return "test"
    if slot < test + val:
        return "val"
    return "train"


def parse_label_map(items: list[str] | None) -> dict[str, str]:
    """`["fish=diplodus", "map.yaml"]` -> {"fish": "diplodus", ...}: an export's labels onto a
    family's. Each item is SOURCE=TARGET, or a YAML file of such pairs."""
    mapping: dict[str, str] = {}
    for item in items or []:
        if "=" in item:
            source, _, target = item.partition("=")
            pairs = {source.strip(): target.strip()}
        else:
            path = Path(item)
            try:
                pairs = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError) as error:
                raise UserError(
                    f"--map {item!r} is neither SOURCE=TARGET nor a readable YAML file: {error}"
                ) from None
            if not isinstance(pairs, dict):
                raise UserError(f"{path}: a label map is a YAML mapping, export label: label")
        for source, target in pairs.items():
            if not str(source) or not str(target):
                raise UserError(f"--map {item!r}: both sides need a label name")
            mapping[str(source)] = str(target)
    return mapping


def check_label_map(mapping: dict[str, str] | None, classes: tuple[str, ...], family: str) -> None:
    """Every target of a label map must be one of the family's labels."""
    unknown = sorted({target for target in (mapping or {}).values() if target not in classes})
    if unknown:
        raise UserError(
            f"--map targets {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} "
            f"not among {family}'s labels ({', '.join(classes)})"
        )


def relabel(dataset, field: str, mapping: dict[str, str] | None = None, to: str | None = None):
    """Rename the labels of `field` in place: through `mapping` (labels not in it stay), or
    all to one label `to` (a class-agnostic comparison), keeping the old one as `class`.
    Written in one bulk update: saving sample by sample costs seconds per hundred images."""
    if (not mapping and to is None) or not dataset.has_sample_field(field):
        return
    path = f"{field}.detections.label"
    labels = dataset.values(path)  # per sample: a list of labels, or None without the field
    if to is not None:
        dataset.set_values(f"{field}.detections.class", labels)
        renamed = [None if row is None else [to] * len(row) for row in labels]
    else:
        renamed = [None if row is None else [mapping.get(x, x) for x in row] for row in labels]
    dataset.set_values(path, renamed)
