"""Mask encodings CVAT uses, and polygons from masks.

- Nuclio detector responses carry masks *uncompressed*: the bbox crop flattened row-major,
  then ``[xtl, ytl, xbr, ybr]`` (inclusive), always with a polygon in ``points``.
- CVAT's stored RLE (cvat-sdk shapes, XML ``rle=``) comes from cvat-sdk's ``encode_mask``: run
  lengths over the row-major crop, starting with background, then the inclusive bbox (which
  XML gives as separate attributes). cvat-sdk has no encoder for the Nuclio form, hence ours.
"""

from __future__ import annotations

import cv2
import numpy as np


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Inclusive bbox (x1, y1, x2, y2) of the set pixels. Raises on an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("the mask is empty")
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def to_nuclio_mask(mask: np.ndarray) -> list[int]:
    x1, y1, x2, y2 = mask_bbox(mask)
    crop = mask[y1 : y2 + 1, x1 : x2 + 1].astype(np.uint8)
    return crop.ravel().tolist() + [x1, y1, x2, y2]


def from_nuclio_mask(values: list[int], width: int, height: int) -> np.ndarray:
    """Inverse of `to_nuclio_mask`: a full-frame bool mask."""
    x1, y1, x2, y2 = (int(v) for v in values[-4:])
    crop = np.asarray(values[:-4], dtype=np.uint8).reshape(y2 - y1 + 1, x2 - x1 + 1)
    mask = np.zeros((height, width), dtype=bool)
    mask[y1 : y2 + 1, x1 : x2 + 1] = crop > 0
    return mask


def mask_to_polygon(mask: np.ndarray, tolerance: float = 1.0) -> list[float]:
    """Outer contour of the largest component as a flat [x1, y1, x2, y2, ...] list.

    CVAT needs at least 3 points; a tiny or thin mask falls back to its bbox corners.
    """
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    if contours:
        contour = max(contours, key=cv2.contourArea)
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, tolerance, True)
        points = contour.reshape(-1, 2)
        if len(points) >= 3:
            return [float(v) for v in points.ravel()]
    x1, y1, x2, y2 = mask_bbox(mask)
    return [float(x1), float(y1), float(x2), float(y1), float(x2), float(y2), float(x1), float(y2)]
