"""CVAT's requests and answers per function kind (contract §2), for both front doors.

`answer(function, body)` reads the fields CVAT sends to a function of that kind, calls the
function's own method (`detect_encoded`, `split`, `track`, `match`) and writes CVAT's
answer with the codec (`imagine_assist.cvat.shapes`). The function objects know only
arrays, boxes and `Detections`; the bytes of a request become `body` in
`nuclio.protocol.parse_body`, and its errors become HTTP statuses in `protocol.status_for`.
"""

from __future__ import annotations

import numpy as np

from imagine_assist.cvat.shapes import to_detector_response
from imagine_assist.errors import BadRequest
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.functions.reid import ReidFunction
from imagine_assist.functions.separator import MULTIPLE, SeparatorFunction
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.functions.tracker import TrackerFunction
from imagine_assist.images import decode_base64, decode_image
from imagine_assist.nuclio.protocol import MAX_MAGNITUDE

MAX_SHAPES = 200  # tracker: more boxes than a frame can hold, someone is testing the limits
MAX_BOXES = 500  # reid: boxes per frame
DEFAULT_MAX_DISTANCE = 50.0  # reid: pixels a box may move between frames, camera motion aside

Function = DetectorFunction | SeparatorFunction | TrackerFunction | ReidFunction


def answer(function: Function, body: dict) -> list | dict:
    """CVAT's answer to `body` from `function`: a list of shapes for a detector (and the
    plankton separator), `{"shapes", "states"}` for a tracker, a list of matches for reid."""
    if isinstance(function, SeparatorFunction):
        return answer_separator(function, body)
    if isinstance(function, DetectorFunction):
        return answer_detector(function, body)
    if isinstance(function, TrackerFunction):
        return answer_tracker(function, body)
    if isinstance(function, ReidFunction):
        return answer_reid(function, body)
    raise TypeError(f"{type(function).__name__} is not a function CVAT can call")


# --- fields -------------------------------------------------------------------------------
def image_bytes(body: dict, field: str = "image") -> bytes:
    if field not in body:
        raise BadRequest(f"the request has no '{field}' field (base64 JPEG or PNG bytes)")
    return decode_base64(body[field], field)


def parse_image(body: dict, spec: FunctionSpec, field: str = "image") -> np.ndarray:
    """The decoded frame of `field`, within the function's pixel limit and minimum side."""
    image = decode_image(image_bytes(body, field), max_pixels=spec.max_image_pixels)
    spec.check_image_size(image.shape[1], image.shape[0], f"'{field}'")
    return image


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRequest(f"'{name}' must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _tracker_box(value) -> np.ndarray:
    """One of a tracker request's `shapes`: [x1, y1, x2, y2]."""
    if not isinstance(value, list | tuple):
        raise BadRequest("each shape must be [x1, y1, x2, y2]")
    if len(value) != 4:  # a polygon's points, or a cut-off list: not a rectangle
        raise BadRequest(
            f"each shape must be a rectangle [x1, y1, x2, y2], got {len(value)} numbers: "
            "the tracker follows rectangles"
        )
    try:
        box = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        raise BadRequest("each shape must hold numbers [x1, y1, x2, y2]") from None
    if not np.isfinite(box).all() or box[0] >= box[2] or box[1] >= box[3]:
        raise BadRequest(f"shape {list(value)} is not a box with x1 < x2 and y1 < y2")
    return box


def _reid_boxes(value, name: str) -> np.ndarray:
    """A reid request's `boxes0` or `boxes1`: CVAT shapes, each read by its `points`' extent."""
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
        if not all(abs(v) <= MAX_MAGNITUDE for v in xs + ys):  # False for NaN too
            raise BadRequest(f"'points' in '{name}' must be finite numbers")
        boxes.append([min(xs), min(ys), max(xs), max(ys)])
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


# --- kinds --------------------------------------------------------------------------------
def answer_detector(function: DetectorFunction, body: dict) -> list[dict]:
    """§2.1: `{"image", "threshold"?}` -> shapes."""
    threshold = function.spec.check_threshold(body.get("threshold"))
    detections, size = function.detect_encoded(image_bytes(body), threshold)
    return to_detector_response(detections, function.spec.label_types, size)


def answer_separator(function: SeparatorFunction, body: dict) -> list[dict]:
    """§2.1 with `"scale_bar_rows"?`: one mask per organism, then the single/multiple tag
    with P(multiple) as its `p_multiple` attribute when a classifier made the call."""
    rows = body.get("scale_bar_rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise BadRequest(f"'scale_bar_rows' must be a whole number >= 0, got {rows!r}")
    # Every organism found is sent: the threshold is the classifier's P(multiple) threshold
    # (spec.threshold_on), and CVAT sends one only when the user set it.
    value = body.get("threshold")
    threshold = (
        function.multiple_threshold
        if value is None or value == ""
        else function.spec.check_threshold(value)
    )
    image = parse_image(body, function.spec)
    separation = function.split(image, rows, threshold)
    height, width = image.shape[:2]
    tag: dict = {"label": separation.tag}
    if separation.p_multiple is not None:
        p = separation.p_multiple
        if separation.tag == MULTIPLE:
            tag["confidence"] = f"{p:.4f}"
        elif p < threshold:
            tag["confidence"] = f"{1 - p:.4f}"
        # else the classifier said multiple and the cut left one organism: no probability
        # speaks for "single", so the tag carries none (P(multiple) stays an attribute)
        tag["attributes"] = [{"name": "p_multiple", "value": f"{p:.4f}"}]
    # a blank vignette (no organism found) is neither single nor multiple: no tag, as
    # `separate` says "no organism" for it
    return to_detector_response(
        separation.detections,
        function.spec.label_types,
        (width, height),
        tags=[tag] if len(separation.detections) else [],
    )


def answer_tracker(function: TrackerFunction, body: dict) -> dict:
    """§2.3: `{"image", "shapes", "states"}` -> `{"shapes", "states"}`, index-aligned."""
    shapes = body.get("shapes")
    if not isinstance(shapes, list):
        raise BadRequest("the request needs 'shapes': a list of [x1, y1, x2, y2]")
    if len(shapes) > MAX_SHAPES:
        raise BadRequest(f"at most {MAX_SHAPES} shapes per request, got {len(shapes)}")
    states = body.get("states")
    states = [] if states is None else states  # a falsy 0 or "" is a mistake, not "none"
    if not isinstance(states, list):
        raise BadRequest("'states' must be a list (null entries start new tracks)")
    boxes = [_tracker_box(shape) for shape in shapes]
    # every state is checked before any work, so a bad one costs nothing
    previous = [
        function.verify(states[i]) if i < len(states) and states[i] is not None else None
        for i in range(len(boxes))
    ]
    image = parse_image(body, function.spec)
    tracked = function.track(image, boxes, previous)
    return {
        "shapes": [[round(float(v), 2) for v in state.box] for state in tracked],
        "states": [function.sign(state) for state in tracked],
    }


def answer_reid(function: ReidFunction, body: dict) -> list[int]:
    """§2.4: `{"image0", "image1", "boxes0", "boxes1", "threshold"?, "max_distance"?}` ->
    for each of boxes0 the index of its match in boxes1, or -1."""
    boxes0 = _reid_boxes(body.get("boxes0"), "boxes0")
    boxes1 = _reid_boxes(body.get("boxes1"), "boxes1")
    threshold = function.spec.check_threshold(body.get("threshold"))
    max_distance = _number(body, "max_distance", DEFAULT_MAX_DISTANCE, 0.0, 1e5)
    image0 = parse_image(body, function.spec, "image0")
    image1 = parse_image(body, function.spec, "image1")
    return function.match(image0, image1, boxes0, boxes1, threshold, max_distance)
