"""CVAT for images 1.1 XML: the format CVAT imports and exports for image tasks."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import supervision as sv


def _fmt(value: float) -> str:
    return f"{float(value):.2f}"


# CVAT's number attributes are whole numbers (min, max, step): a score goes in as percent, so
# that CVAT's filter can compare it ("score < 50").
SCORE_ATTRIBUTE = "score"


def score_percent(confidence: float) -> str:
    return str(round(float(confidence) * 100))


def _declare_score(attributes: ET.Element) -> None:
    """The `score` attribute in a label's meta, as CVAT writes a number attribute: without it
    CVAT drops the boxes' score values on import."""
    spec = ET.SubElement(attributes, "attribute")
    ET.SubElement(spec, "name").text = SCORE_ATTRIBUTE
    ET.SubElement(spec, "mutable").text = "False"
    ET.SubElement(spec, "input_type").text = "number"
    ET.SubElement(spec, "default_value").text = "0"
    ET.SubElement(spec, "values").text = "0\n100\n1"  # min, max, step


def _class_name(detections: sv.Detections, i: int, labels: Sequence[str]) -> str:
    names = detections.data.get("class_name")
    if names is not None:
        return str(names[i])
    return labels[int(detections.class_id[i])]


def cvat_images_tree(
    images: Sequence[tuple[str, int, int, sv.Detections]],
    labels: Sequence[str],
    subsets: Sequence[str] | None = None,
    label_type: str = "any",
    source: str = "auto",
    scores: bool = False,
) -> ET.ElementTree:
    """Build the XML tree. Each detection becomes a `<mask>` when it has a mask, else a `<box>`.
    With `scores`, each shape carries its confidence as the `score` attribute, in percent
    (declared on every label in the meta)."""
    from cvat_sdk.masks import encode_mask  # cvat_sdk takes 0.3 s to import: only when needed

    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    ET.SubElement(task, "size").text = str(len(images))
    ET.SubElement(task, "mode").text = "annotation"
    label_list = ET.SubElement(task, "labels")
    for name in labels:
        label = ET.SubElement(label_list, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = label_type
        attributes = ET.SubElement(label, "attributes")
        if scores:
            _declare_score(attributes)

    for image_id, (name, width, height, detections) in enumerate(images):
        attrs = {"id": str(image_id), "name": name, "width": str(width), "height": str(height)}
        if subsets is not None:
            attrs["subset"] = subsets[image_id]
        node = ET.SubElement(root, "image", attrs)
        for i in range(len(detections)):
            common = {
                "label": _class_name(detections, i, labels),
                "source": source,
                "occluded": "0",
                "z_order": "0",
            }
            if detections.mask is not None:
                # XML keeps encode_mask's runs and gives its inclusive bbox as attributes
                *runs, x1, y1, x2, y2 = encode_mask(np.asarray(detections.mask[i], dtype=bool))
                shape = ET.SubElement(
                    node,
                    "mask",
                    {
                        **common,
                        "rle": ", ".join(str(c) for c in runs),
                        "left": str(x1),
                        "top": str(y1),
                        "width": str(x2 - x1 + 1),
                        "height": str(y2 - y1 + 1),
                    },
                )
            else:
                x1, y1, x2, y2 = detections.xyxy[i]
                shape = ET.SubElement(
                    node,
                    "box",
                    {
                        **common,
                        "xtl": _fmt(x1),
                        "ytl": _fmt(y1),
                        "xbr": _fmt(x2),
                        "ybr": _fmt(y2),
                    },
                )
            if scores and detections.confidence is not None:
                score = ET.SubElement(shape, "attribute", {"name": SCORE_ATTRIBUTE})
                score.text = score_percent(detections.confidence[i])
    ET.indent(root)
    return ET.ElementTree(root)


def write_cvat_images_xml(
    path: str | Path,
    images: Sequence[tuple[str, int, int, sv.Detections]],
    labels: Sequence[str],
    subsets: Sequence[str] | None = None,
    label_type: str = "any",
    scores: bool = False,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = cvat_images_tree(images, labels, subsets, label_type=label_type, scores=scores)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path


@dataclass
class VideoTrack:
    """One object over time: boxes by frame index, for CVAT for video 1.1."""

    track_id: int
    label: str
    boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    group_id: int | None = None  # e.g. the burrow system an opening belongs to


def cvat_video_tree(
    tracks: Sequence[VideoTrack],
    labels: Sequence[str],
    frame_count: int,
    size: tuple[int, int],
    source: str = "auto",
    task_name: str = "",
    frame_step: int = 1,
) -> ET.ElementTree:
    """Tracks as CVAT writes them: a keyframe box per frame present, and an `outside`
    box on the frame after each run of frames ends, so the track stops there. Frames are
    numbered as in the video, as CVAT does: with a frame step, the task's frames are 0,
    step, 2 * step, ... (`frame_count` of them)."""
    width, height = size
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    if task_name:
        ET.SubElement(task, "name").text = task_name
    ET.SubElement(task, "size").text = str(frame_count)
    ET.SubElement(task, "mode").text = "interpolation"
    ET.SubElement(task, "start_frame").text = "0"
    ET.SubElement(task, "stop_frame").text = str(max(frame_count - 1, 0) * frame_step)
    if frame_step > 1:
        ET.SubElement(task, "frame_filter").text = f"step={frame_step}"
    original = ET.SubElement(task, "original_size")
    ET.SubElement(original, "width").text = str(width)
    ET.SubElement(original, "height").text = str(height)
    label_list = ET.SubElement(task, "labels")
    for name in labels:
        label = ET.SubElement(label_list, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "rectangle"
        ET.SubElement(label, "attributes")
    for index, track in enumerate(tracks):
        attrs = {"id": str(index), "label": track.label, "source": source}
        if track.group_id is not None:
            attrs["group_id"] = str(track.group_id)
        node = ET.SubElement(root, "track", attrs)
        frames = sorted(track.boxes)
        for position, frame in enumerate(frames):
            x1, y1, x2, y2 = track.boxes[frame]
            box = {
                "frame": str(frame),
                "keyframe": "1",
                "outside": "0",
                "occluded": "0",
                "xtl": _fmt(x1),
                "ytl": _fmt(y1),
                "xbr": _fmt(x2),
                "ybr": _fmt(y2),
                "z_order": "0",
            }
            ET.SubElement(node, "box", box)
            following = frame + frame_step
            gap = position + 1 == len(frames) or frames[position + 1] != following
            if gap and following < frame_count * frame_step:
                ET.SubElement(node, "box", {**box, "frame": str(following), "outside": "1"})
    ET.indent(root)
    return ET.ElementTree(root)


def write_cvat_video_xml(
    path: str | Path,
    tracks: Sequence[VideoTrack],
    labels: Sequence[str],
    frame_count: int,
    size: tuple[int, int],
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = cvat_video_tree(tracks, labels, frame_count, size)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
