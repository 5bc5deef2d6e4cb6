"""Small appearance templates of boxed objects, compared by normalised cross-correlation."""

from __future__ import annotations

import cv2
import numpy as np

TEMPLATE_SIZE = 24  # pixels a side: enough for a burrow's dark centre and its rim


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def crop(image_grey: np.ndarray, box, pad: float = 0.0) -> np.ndarray | None:
    height, width = image_grey.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * pad, (y2 - y1) * pad
    x1, y1 = max(int(np.floor(x1 - dx)), 0), max(int(np.floor(y1 - dy)), 0)
    x2, y2 = min(int(np.ceil(x2 + dx)), width), min(int(np.ceil(y2 + dy)), height)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return image_grey[y1:y2, x1:x2]


def template(image_grey: np.ndarray, box) -> np.ndarray | None:
    """The box (with a margin of its surroundings) resized to a small square."""
    patch = crop(image_grey, box, pad=0.25)
    if patch is None:
        return None
    # A box the size of a 60 MP frame took 170 ms to average down, and a reid request of
    # 500 such boxes held its worker for minutes: rows and columns are first taken every
    # n-th, down to 16 times the template, which the averaging then smooths as before.
    limit = 16 * TEMPLATE_SIZE
    step_y, step_x = max(1, patch.shape[0] // limit), max(1, patch.shape[1] // limit)
    if step_y > 1 or step_x > 1:
        patch = patch[::step_y, ::step_x]
    return cv2.resize(patch, (TEMPLATE_SIZE, TEMPLATE_SIZE), interpolation=cv2.INTER_AREA)


def similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Normalised cross-correlation in [-1, 1]; 0 when either side is missing or flat."""
    if a is None or b is None:
        return 0.0
    a = a.astype(np.float32) - a.mean()
    b = b.astype(np.float32) - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 1e-6 else 0.0
