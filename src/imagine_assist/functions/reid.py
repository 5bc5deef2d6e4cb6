"""A CVAT re-identification function (contract §2.4): match boxes between two frames.

CVAT's batch "automatic annotation" calls it on consecutive frames and chains the matches
into tracks, which is how per-frame burrow detections become tracks on Community CVAT.
Boxes are matched by where the camera motion says they should be, and by appearance.
The serving edge reads CVAT's request (`imagine_assist.nuclio.cvat_requests`).
"""

from __future__ import annotations

import numpy as np

from imagine_assist.functions.appearance import grey, similarity, template
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.models.track import MOTION_WIDTH, seabed_shift, small_grey


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

        # Frames of different sizes are different images (an image task of mixed
        # cameras), not one video: nothing tracks across them. A 400 here would end
        # CVAT's whole automatic-annotation request, which does not retry.
        if len(boxes0) == 0 or len(boxes1) == 0 or image0.shape[:2] != image1.shape[:2]:
            return [-1] * len(boxes0)
        # two frames too flat to follow (a lamp dropout) say nothing of the motion: none
        dx, dy = seabed_shift(small_grey(image0), small_grey(image1)) or (0.0, 0.0)
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
