"""Tiled inference for frames much larger than the model input (12-20 MP drone photos).

The frame is cut into overlapping windows, each window is detected on its own, and the
results are merged so that an object cut by a window border is reported once:
- a box touching a window's inner border is *clipped* (it may show only part of the object);
- a clipped box lying mostly inside a whole box from another window is dropped in favour
  of that whole view (`merge_tiles` says when labels differ);
- two clipped parts of an object larger than the overlap are joined into their union.
The tiler knows nothing about models: it takes a callback, like supervision's slicer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import supervision as sv

DetectFn = Callable[[np.ndarray], sv.Detections]


def tile_windows(
    width: int, height: int, tile: int, overlap: int
) -> list[tuple[int, int, int, int]]:
    """Windows (x1, y1, x2, y2) covering the frame; the last row and column end at the border."""
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(
            f"need tile > 0 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}"
        )

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        positions = list(range(0, length - tile, tile - overlap))
        return positions + [length - tile]

    return [
        (x, y, min(x + tile, width), min(y + tile, height))
        for y in starts(height)
        for x in starts(width)
    ]


def _clipped_flags(
    xyxy: np.ndarray, window: tuple[int, int, int, int], width: int, height: int, margin: float
) -> np.ndarray:
    x1, y1, x2, y2 = window
    inner_left, inner_top = x1 > 0, y1 > 0
    inner_right, inner_bottom = x2 < width, y2 < height
    return (
        (inner_left & (xyxy[:, 0] <= x1 + margin))
        | (inner_top & (xyxy[:, 1] <= y1 + margin))
        | (inner_right & (xyxy[:, 2] >= x2 - margin))
        | (inner_bottom & (xyxy[:, 3] >= y2 - margin))
    )


def _pair_overlaps(
    box: np.ndarray, others: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU, intersection over the smaller box, and the best 1-D IoU along x or y."""
    ix1 = np.maximum(box[0], others[:, 0])
    iy1 = np.maximum(box[1], others[:, 1])
    ix2 = np.minimum(box[2], others[:, 2])
    iy2 = np.minimum(box[3], others[:, 3])
    iw, ih = np.clip(ix2 - ix1, 0, None), np.clip(iy2 - iy1, 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    iou = inter / np.maximum(area + areas - inter, 1e-9)
    ios = inter / np.maximum(np.minimum(area, areas), 1e-9)
    span_x = np.maximum(box[2], others[:, 2]) - np.minimum(box[0], others[:, 0])
    span_y = np.maximum(box[3], others[:, 3]) - np.minimum(box[1], others[:, 1])
    axis_iou = np.maximum(iw / np.maximum(span_x, 1e-9), ih / np.maximum(span_y, 1e-9))
    return iou, np.where(inter > 0, ios, 0.0), np.where(inter > 0, axis_iou, 0.0)


def merge_tiles(
    detections: sv.Detections,
    clipped: np.ndarray,
    iou_threshold: float = 0.5,
    containment: float = 0.6,
    aligned: float = 0.8,
) -> sv.Detections:
    """Merge detections gathered from overlapping windows (frame coordinates), so that an
    object cut by a window border is reported once, in three steps:
    1. whole boxes (cut by no window's edge) seen by two windows merge under one label;
    2. each cut part joins the whole box it overlaps most, when it lies in it under the
       same label, or is the smaller box under another label (a model shown half a bottle
       may call it a fragment); the whole box gives the object's box and label;
    3. parts no whole box took (an object larger than the overlap) join into their union.
    Two whole boxes never merge across labels, so a bottle lying on a bag stays two
    objects whichever window was surest of a part."""
    if len(detections) == 0:
        return detections
    confidence = detections.confidence
    xyxy = detections.xyxy.astype(np.float64)
    class_id = detections.class_id
    order = np.argsort(-confidence, kind="stable")
    objects: list[list[int]] = []  # members, the first being the whole box that names it
    for i in order[~clipped[order]]:
        if objects:
            leaders = np.array([members[0] for members in objects])
            iou, _, _ = _pair_overlaps(xyxy[i], xyxy[leaders])
            same = (class_id[leaders] == class_id[i]) & (iou > iou_threshold)
            if same.any():
                objects[int(np.argmax(np.where(same, iou, -1.0)))].append(int(i))
                continue
        objects.append([int(i)])
    leftover: list[int] = []
    for i in order[clipped[order]]:
        if objects:
            leaders = np.array([members[0] for members in objects])
            iou, ios, _ = _pair_overlaps(xyxy[i], xyxy[leaders])
            same_label = class_id[leaders] == class_id[i]
            area = (xyxy[i, 2] - xyxy[i, 0]) * (xyxy[i, 3] - xyxy[i, 1])
            areas = (xyxy[leaders, 2] - xyxy[leaders, 0]) * (xyxy[leaders, 3] - xyxy[leaders, 1])
            fits = (same_label & ((iou > iou_threshold) | (ios > containment))) | (
                ~same_label & (area < areas) & (ios > containment)
            )
            if fits.any():
                # the tightest whole box it lies in: a bottle's part, not the bag under it
                objects[int(np.argmax(np.where(fits, iou + 1e-6 * same_label, -1.0)))].append(
                    int(i)
                )
                continue
        leftover.append(int(i))
    keep_index = [members[0] for members in objects]
    keep_box = [xyxy[members[0]] for members in objects]
    keep_conf = [float(confidence[members].max()) for members in objects]
    joined = _parts_joined(xyxy, class_id, leftover, iou_threshold, containment, aligned)
    for named, box, members in joined:
        keep_index.append(named)
        keep_box.append(box)
        keep_conf.append(float(confidence[members].max()))
    merged = detections[np.array(keep_index)]
    merged.xyxy = np.array(keep_box, dtype=np.float32)
    merged.confidence = np.array(keep_conf, dtype=np.float32)
    return merged[np.argsort(-merged.confidence, kind="stable")]  # surest first, as NMS gives


def _parts_joined(
    xyxy: np.ndarray,
    class_id: np.ndarray,
    parts: list[int],
    iou_threshold: float,
    containment: float,
    aligned: float,
) -> list[tuple[int, np.ndarray, list[int]]]:
    """Cut parts of objects no window saw whole, joined into their union: the surest part
    (first in `parts`) names each object, and a part joined can bring the next in reach."""
    taken = dict.fromkeys(parts, False)
    joined = []
    for i in parts:
        if taken[i]:
            continue
        taken[i] = True
        members, box = [i], xyxy[i]
        while True:
            rest = np.array([j for j in parts if not taken[j]], dtype=int)
            if len(rest) == 0:
                break
            same_label = class_id[rest] == class_id[i]
            # a part in a larger part under another label: a model shown less of the
            # object may have named it otherwise
            iou, ios, axis_iou = _pair_overlaps(box, xyxy[rest])
            same = (
                same_label & ((iou > iou_threshold) | (ios > containment) | (axis_iou > aligned))
            ) | (~same_label & (ios > containment))
            if not same.any():
                break
            for j in rest[same]:
                taken[int(j)] = True
            members.extend(int(j) for j in rest[same])
            box = np.concatenate([xyxy[members, :2].min(axis=0), xyxy[members, 2:].max(axis=0)])
        joined.append((i, box, members))
    return joined


def surest(detections: sv.Detections, count: int) -> np.ndarray:
    """The indices of the `count` most confident detections, surest first (ties in their
    order); all of them, in order, when there are no more or no confidences."""
    if detections.confidence is None or len(detections) <= count:
        return np.arange(len(detections))
    return np.argsort(-detections.confidence, kind="stable")[:count]


def detect_tiled(
    image: np.ndarray,
    detect: DetectFn,
    tile: int,
    overlap: int,
    edge_margin: float = 2.0,
    max_boxes: int | None = None,
) -> sv.Detections:
    """Run `detect` on overlapping windows of `image` and merge the results; `max_boxes`:
    the most confident of the windows' boxes kept for the merge (at threshold 0 a 20 MP
    frame gave 25,666, and merging them took seconds)."""
    height, width = image.shape[:2]
    parts: list[sv.Detections] = []
    flags: list[np.ndarray] = []
    for window in tile_windows(width, height, tile, overlap):
        x1, y1, x2, y2 = window
        found = detect(image[y1:y2, x1:x2])
        if len(found) == 0:
            continue
        found.xyxy = found.xyxy + np.array([x1, y1, x1, y1], dtype=found.xyxy.dtype)
        found.mask = None  # window-sized masks cannot be merged; tiled output is boxes
        parts.append(found)
        flags.append(_clipped_flags(found.xyxy, window, width, height, edge_margin))
    if not parts:
        return sv.Detections.empty()
    found, clipped = sv.Detections.merge(parts), np.concatenate(flags)
    if max_boxes is not None and len(found) > max_boxes:
        kept = np.sort(surest(found, max_boxes))  # in the windows' order, as merged
        found, clipped = found[kept], clipped[kept]
    return merge_tiles(found, clipped)
