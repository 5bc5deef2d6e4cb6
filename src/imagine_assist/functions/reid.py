"""A CVAT re-identification function (contract §2.4): match boxes between two frames.

CVAT's batch "automatic annotation" calls it on consecutive frames and chains the matches
into tracks, which is how per-frame burrow detections become tracks on Community CVAT.
Boxes are matched by where the camera motion says they should be, and by appearance.
"""

from __future__ import annotations

import numpy as np

from imagine_assist.errors import BadRequest
from imagine_assist.functions.appearance import grey, similarity, template
from imagine_assist.functions.requests import parse_image
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.models.track import MOTION_WIDTH, camera_shift, small_grey

MAX_BOXES = 500


def _boxes(value, name: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) > MAX_BOXES:
        raise BadRequest(f"'{name}' must be a list of at most {MAX_BOXES} CVAT shapes")
    boxes = []
    for shape in value:
        points = shape.get("points") if isinstance(shape, dict) else None
        if not isinstance(points, list) or len(points) < 4:
            raise BadRequest(f"each shape in '{name}' needs 'points': [x1, y1, x2, y2]")
        try:
            xs, ys = [float(v) for v in points[0::2]], [float(v) for v in points[1::2]]
        except (TypeError, ValueError):
            raise BadRequest(f"'points' in '{name}' must be numbers") from None
        boxes.append([min(xs), min(ys), max(xs), max(ys)])
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


class ReidFunction:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec

    def match(
        self,
        image0: np.ndarray,
        image1: np.ndarray,
        boxes0: np.ndarray,
        boxes1: np.ndarray,
        threshold: float,
        max_distance: float,
    ) -> list[int]:
        """Index into boxes1 for each of boxes0, or -1. Two boxes can match when their
        appearance similarity (correlation of their templates) is at least `threshold`, in
        [0, 1], and their centres lie within `max_distance` pixels once the camera motion is
        taken out."""
        from scipy.optimize import linear_sum_assignment

        if len(boxes0) == 0 or len(boxes1) == 0:
            return [-1] * len(boxes0)
        dx, dy = camera_shift(small_grey(image0), small_grey(image1))
        scale = image0.shape[1] / MOTION_WIDTH
        centres0 = (boxes0[:, :2] + boxes0[:, 2:]) / 2 + np.array([dx, dy]) * scale
        centres1 = (boxes1[:, :2] + boxes1[:, 2:]) / 2
        distance = np.linalg.norm(centres0[:, None] - centres1[None], axis=2)
        grey0, grey1 = grey(image0), grey(image1)
        looks0 = [template(grey0, b) for b in boxes0]
        looks1 = [template(grey1, b) for b in boxes1]
        alike = np.array([[similarity(a, b) for b in looks1] for a in looks0])
        allowed = (distance <= max_distance) & (alike >= threshold)
        # near and alike is cheap: distance as a share of the limit, plus dissimilarity
        cost = np.where(allowed, distance / max(max_distance, 1e-9) + (1 - alike), 1e6)
        rows, cols = linear_sum_assignment(cost)
        matches = [-1] * len(boxes0)
        for row, col in zip(rows, cols, strict=True):
            if allowed[row, col]:
                matches[row] = int(col)
        return matches

    def handle(self, body: dict) -> list[int]:
        boxes0, boxes1 = _boxes(body.get("boxes0"), "boxes0"), _boxes(body.get("boxes1"), "boxes1")
        threshold = self.spec.check_threshold(body.get("threshold"))
        max_distance = _number(body, "max_distance", 50.0, 0.0, 1e5)
        image0 = parse_image(body, self.spec.max_image_pixels, "image0")
        image1 = parse_image(body, self.spec.max_image_pixels, "image1")
        if image0.shape != image1.shape:
            raise BadRequest("image0 and image1 must be frames of the same size")
        return self.match(image0, image1, boxes0, boxes1, threshold, max_distance)
