"""Mask encodings CVAT uses, and polygons from masks.

- Nuclio detector responses carry masks *uncompressed*: the bbox crop flattened row-major,
  then ``[xtl, ytl, xbr, ybr]`` (inclusive), always with a polygon in ``points``.
- CVAT's stored RLE (cvat-sdk shapes, XML ``rle=``) comes from cvat-sdk's ``encode_mask``: run
  lengths over the row-major crop, starting with background, then the inclusive bbox (which
  XML gives as separate attributes). cvat-sdk has no encoder for the Nuclio form, hence ours.

Both are box-local, so a mask may come as a `BoxMask` (the mask cut to its box, placed at its
corner) and never needs a frame of its own; a whole-frame bool array works too.
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from imagine_assist.models.separate import BOX_MASKS, BoxMask

Mask = np.ndarray | BoxMask


def mask_of(detections: sv.Detections, index: int) -> BoxMask | None:
    """Detection `index`'s mask: from `data[BOX_MASKS]` where a function keeps its masks in
    their boxes, else from the whole-frame `mask`, else None."""
    box_masks = detections.data.get(BOX_MASKS)
    if box_masks is not None:
        return box_masks[index]
    if detections.mask is not None:
        return BoxMask(np.asarray(detections.mask[index], dtype=bool), 0, 0)
    return None


def box_mask(xyxy: np.ndarray, width: int, height: int) -> BoxMask:
    """A box (x1, y1, x2, y2) as a mask within a `width` x `height` frame, at least a pixel."""
    x1, y1 = max(int(np.floor(xyxy[0])), 0), max(int(np.floor(xyxy[1])), 0)
    x2 = min(max(int(np.ceil(xyxy[2])), x1 + 1), max(width, x1 + 1))
    y2 = min(max(int(np.ceil(xyxy[3])), y1 + 1), max(height, y1 + 1))
    return BoxMask(np.ones((y2 - y1, x2 - x1), bool), x1, y1)


def _local(mask: Mask) -> tuple[np.ndarray, int, int]:
    if isinstance(mask, BoxMask):
        return mask.crop, mask.x, mask.y
    return mask, 0, 0


def has_pixels(mask: Mask | None) -> bool:
    return mask is not None and bool(_local(mask)[0].any())


def mask_bbox(mask: Mask) -> tuple[int, int, int, int]:
    """Inclusive bbox (x1, y1, x2, y2) of the set pixels. Raises on an empty mask."""
    local, x, y = _local(mask)
    rows, cols = np.flatnonzero(local.any(1)), np.flatnonzero(local.any(0))
    if len(cols) == 0:
        raise ValueError("the mask is empty")
    return int(cols[0]) + x, int(rows[0]) + y, int(cols[-1]) + x, int(rows[-1]) + y


def to_nuclio_mask(mask: Mask) -> list[int]:
    local, x, y = _local(mask)
    x1, y1, x2, y2 = mask_bbox(mask)
    crop = local[y1 - y : y2 - y + 1, x1 - x : x2 - x + 1].astype(np.uint8)
    return crop.ravel().tolist() + [x1, y1, x2, y2]


def to_cvat_rle(mask: Mask) -> list[int]:
    """cvat-sdk's `encode_mask` of the whole-frame mask (runs, then the inclusive bbox),
    computed on the box alone."""
    from cvat_sdk.masks import encode_mask

    local, x, y = _local(mask)
    *runs, x1, y1, x2, y2 = encode_mask(np.asarray(local, dtype=bool))
    return [*runs, x1 + x, y1 + y, x2 + x, y2 + y]


def from_nuclio_mask(values: list[int], width: int, height: int) -> np.ndarray:
    """Inverse of `to_nuclio_mask`: a full-frame bool mask."""
    x1, y1, x2, y2 = (int(v) for v in values[-4:])
    crop = np.asarray(values[:-4], dtype=np.uint8).reshape(y2 - y1 + 1, x2 - x1 + 1)
    mask = np.zeros((height, width), dtype=bool)
    mask[y1 : y2 + 1, x1 : x2 + 1] = crop > 0
    return mask


MAX_JOINED_PARTS = 32  # parts of one mask outlined in its polygon, the largest first


def _joined(rings: list[np.ndarray]) -> np.ndarray:
    """Rings (the largest first) as one: each next ring, the one nearest to what is joined
    so far, goes in at its closest point, out and back along the same bridge."""
    joined, rest = rings[0], list(rings[1:])
    while rest:
        best = None  # (distance, ring index, vertex in joined, vertex in the ring)
        for index, ring in enumerate(rest):
            gaps = np.linalg.norm(joined[:, None, :] - ring[None, :, :], axis=2)
            at, to = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
            if best is None or gaps[at, to] < best[0]:
                best = (gaps[at, to], index, at, to)
        _, index, at, to = best
        ring = rest.pop(index)
        tour = np.concatenate([ring[to:], ring[: to + 1]])  # around it, back to where it began
        joined = np.concatenate([joined[: at + 1], tour, joined[at:]])
    return joined


def mask_to_polygon(mask: Mask, tolerance: float = 1.0) -> list[float]:
    """The mask's outline as one polygon, a flat [x1, y1, x2, y2, ...] list: each part's
    outer contour, the parts joined in one ring by bridges of no width from each to the
    nearest part already in it. CVAT stores this polygon instead of the mask under "Convert
    masks to polygons", and one shape holds one polygon: the largest part alone dropped up
    to half of an organism whose legs the threshold cut off.

    CVAT needs at least 3 points; a tiny or thin mask falls back to its bbox corners.
    """
    local, x, y = _local(mask)
    # cv2 traces as if the image had a border of background, so a box gives the frame's contour
    contours, _ = cv2.findContours(
        local.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y)
    )
    rings = []
    # the largest parts only: joining costs the square of the points joined for every part,
    # and a mask of hundreds of specks took seconds a shape (the specks are a few pixels)
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:MAX_JOINED_PARTS]:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, tolerance, True)
        points = contour.reshape(-1, 2).astype(np.float64)
        if len(points) >= 3:
            rings.append(points)
    if rings:
        return [float(v) for v in _joined(rings).ravel()]
    x1, y1, x2, y2 = mask_bbox(mask)
    return [float(x1), float(y1), float(x2), float(y1), float(x2), float(y2), float(x1), float(y2)]
