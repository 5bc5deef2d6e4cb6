"""A CVAT tracker (contract §2.3): follow the user's boxes frame by frame.

For each box: predict where it moves (last velocity), find its appearance template near
that prediction (correlation weighed against distance, since the openings of one burrow
system look alike), and take the detector's box there when one overlaps, for its size and
position; where the detector finds nothing (turbidity, blur) the template match stands.
One request per frame: the states go to the browser and back as JSON signed with this
installation's key (`sign` and `verify`); the serving edge reads CVAT's request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import supervision as sv

from imagine_assist.errors import BadRequest
from imagine_assist.functions.appearance import grey, template
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.functions.tracker_state import (
    TrackState,
    decode_state,
    encode_state,
)
from imagine_assist.models.detector import Detector

SEARCH_MARGIN = 1.0  # search a window this many box sizes around the prediction
SMOOTHING = 0.5  # weight of the newest motion in the velocity
DISTANCE_PENALTY = 0.3  # correlation lost per (box size of distance from the prediction)^2
MIN_CORRELATION = 0.3  # below this the template is not seen: keep the prediction
MIN_SNAP_IOU = 0.4  # a detection this close to the template match replaces it


class TrackerFunction:
    def __init__(
        self, spec: FunctionSpec, detector: Detector, key: bytes, threshold: float | None = None
    ) -> None:
        self.spec = spec
        self.detector = detector
        self.key = key
        self.threshold = spec.check_threshold(threshold)

    # --- one box ------------------------------------------------------------------------
    def start(self, image_grey: np.ndarray, box: np.ndarray) -> TrackState:
        patch = template(image_grey, box)
        if patch is None:
            raise BadRequest(f"shape {box.tolist()} lies outside the frame")
        return TrackState(box, np.zeros(2), patch)

    def search_window(self, box: np.ndarray, width: int, height: int) -> tuple[int, ...]:
        w, h = box[2] - box[0], box[3] - box[1]
        margin = max(w, h) * SEARCH_MARGIN + 16
        return (
            max(int(box[0] - margin), 0),
            max(int(box[1] - margin), 0),
            min(int(math.ceil(box[2] + margin)), width),
            min(int(math.ceil(box[3] + margin)), height),
        )

    def follow(self, detected: np.ndarray, image_grey: np.ndarray, state: TrackState) -> TrackState:
        """One step: template match near the prediction, snapped to a detection there.

        `detected` holds the detector's boxes on the whole frame: the model works at the
        scale it was trained on, and one pass serves every tracked box."""
        height, width = image_grey.shape
        predicted = state.box + np.tile(state.velocity, 2)
        x1, y1, x2, y2 = self.search_window(predicted, width, height)
        box = predicted
        if x2 - x1 >= 8 and y2 - y1 >= 8:
            origin = np.array([x1, y1, x1, y1], dtype=np.float64)
            matched = self._by_template(
                image_grey[y1:y2, x1:x2], predicted - origin, state.template
            )
            anchor = predicted if matched is None else matched + origin
            snapped = self._snap_to_detection(detected, anchor)
            if snapped is not None:
                box = snapped
            elif matched is not None:
                box = anchor
        motion = ((box[:2] + box[2:]) - (state.box[:2] + state.box[2:])) / 2
        velocity = (1 - SMOOTHING) * state.velocity + SMOOTHING * motion
        patch = template(image_grey, box)
        blended = (
            state.template if patch is None else cv2.addWeighted(state.template, 0.8, patch, 0.2, 0)
        )
        return TrackState(box, velocity, blended)

    def _by_template(
        self, window_grey: np.ndarray, predicted: np.ndarray, reference: np.ndarray
    ) -> np.ndarray | None:
        """Where the object's template fits best near the prediction (window coordinates).

        Neighbouring openings of a burrow system look alike, so the correlation is
        weighed against the distance from where the object was expected to be."""
        w, h = predicted[2] - predicted[0], predicted[3] - predicted[1]
        pad_w, pad_h = int(round(w * 1.5)), int(round(h * 1.5))  # template covers box + 25 %
        if pad_w < 4 or pad_h < 4 or pad_w >= window_grey.shape[1] or pad_h >= window_grey.shape[0]:
            return None
        scaled = cv2.resize(reference, (pad_w, pad_h), interpolation=cv2.INTER_LINEAR)
        scores = cv2.matchTemplate(window_grey, scaled, cv2.TM_CCOEFF_NORMED)
        expected_x = predicted[0] - (pad_w - w) / 2
        expected_y = predicted[1] - (pad_h - h) / 2
        ys, xs = np.mgrid[: scores.shape[0], : scores.shape[1]]
        distance = np.hypot(xs - expected_x, ys - expected_y) / max(w, h)
        weighed = scores - DISTANCE_PENALTY * distance**2
        top, left = np.unravel_index(int(np.argmax(weighed)), weighed.shape)
        if scores[top, left] < MIN_CORRELATION:
            return None
        x1, y1 = left + (pad_w - w) / 2, top + (pad_h - h) / 2
        return np.array([x1, y1, x1 + w, y1 + h])

    @staticmethod
    def _snap_to_detection(detected: np.ndarray, anchor: np.ndarray) -> np.ndarray | None:
        """The detector's box for the object, when one overlaps where it was found."""
        if len(detected) == 0:
            return None
        overlap = sv.box_iou_batch(anchor[None], detected)[0]
        best = int(np.argmax(overlap))
        return detected[best] if overlap[best] >= MIN_SNAP_IOU else None

    # --- one frame ---------------------------------------------------------------------
    def track(
        self, image: np.ndarray, boxes: Sequence[np.ndarray], states: Sequence[TrackState | None]
    ) -> list[TrackState]:
        """The states after this frame, index-aligned with `boxes`: a box without a state
        starts a track where it is drawn, a box with one follows its object."""
        image_grey = grey(image)
        detected = np.zeros((0, 4))
        if any(state is not None for state in states):
            detected = self.detector(image, self.threshold).xyxy.astype(np.float64)
        height, width = image_grey.shape
        return [
            _inside_frame(
                self.start(image_grey, box)
                if state is None
                else self.follow(detected, image_grey, state),
                width,
                height,
            )
            for box, state in zip(boxes, states, strict=True)
        ]

    # --- states that travel through the browser -----------------------------------------
    def sign(self, state: TrackState) -> dict:
        return encode_state(state, self.key)

    def verify(self, state: object) -> TrackState:
        """A state that came back from the browser; `BadRequest` when it was altered, cut
        short, made huge, or signed by another installation or version."""
        return decode_state(state, self.key)


def _inside_frame(state: TrackState, width: int, height: int) -> TrackState:
    """The state with its box cut to the frame: CVAT draws what it is given, and a box
    that was drawn over the edge, or followed out of it, would come back partly or wholly
    outside the image. An object gone past the edge keeps a one-pixel box at it."""
    x1, y1, x2, y2 = state.box
    x1, x2 = min(max(x1, 0.0), width - 1.0), min(max(x2, 1.0), float(width))
    y1, y2 = min(max(y1, 0.0), height - 1.0), min(max(y2, 1.0), float(height))
    box = np.array([x1, y1, max(x2, x1 + 1.0), max(y2, y1 + 1.0)], dtype=np.float64)
    return TrackState(box, state.velocity, state.template)
