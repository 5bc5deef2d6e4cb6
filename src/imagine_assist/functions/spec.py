"""The spec of a served function: everything CVAT, Nuclio and the gateway need to know.

One `FunctionSpec` per function, in code. The Nuclio folders (`serverless/<id>/`), the
cvat-sdk label specs and the gateway's listing are all generated from it.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass

from imagine_assist.errors import BadRequest, PayloadTooLarge
from imagine_assist.images import DEFAULT_MAX_PIXELS

FUNCTION_KINDS = ("detector", "interactor", "tracker", "reid")
# What `threshold` means for each kind. CVAT's dialogs offer one number (0.5 unless the user
# changes it) whatever the function, so every kind reads it in [0, 1], and a higher value
# always keeps less. For reid that is a minimum similarity: CVAT's reference reid function
# reads a maximum distance instead, which would turn the same knob the other way.
THRESHOLD_MEANINGS = {
    "detector": "the minimum confidence of a detection",
    "interactor": "the minimum confidence of a mask pixel",
    "tracker": "the minimum confidence of a detection the tracker snaps a box to",
    "reid": "the minimum appearance similarity (template correlation) of two matched boxes",
}
# The plankton separator keeps every organism it finds: its threshold is the classifier's,
# as in `evaluate --threshold`, so the one number CVAT's dialog offers moves the tag.
P_MULTIPLE_MEANING = "the P(multiple) at or above which a vignette is cut into organisms"
THRESHOLD_RANGE = (0.0, 1.0)
LABEL_TYPES = ("rectangle", "polygon", "mask", "polyline", "points", "ellipse", "tag", "any")
# A CVAT function id and a Nuclio function name: a DNS-1123 label (no dots, which Nuclio
# refuses, and ending in a letter or digit) short enough that Kubernetes' service name
# `nuclio-<id>` stays within 63 characters.
_ID_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,54}[a-z0-9])?$")
MIB = 1024 * 1024
# No function can say anything about a frame smaller than this on a side: a model's letterbox
# would blow up a few pixels into invented objects (a 1x1 frame got a litter "can" at 0.95).
MIN_IMAGE_SIDE = 16
# No camera frame or vignette is 50 times longer than wide (a long chaetognath vignette:
# about 17). A thin strip within the pixel limit would still cost what its long side costs:
# a square canvas of its long side, or thousands of mostly empty tiles. A tiled function
# reads a drone transect strip tile by tile, so it takes strips up to 200 tiles long: no
# more tiles than a frame at its pixel limit has.
MAX_SIDE_RATIO = 50
MAX_TILED_SIDE_RATIO = 200
# The plankton separator works at the vignette's own resolution, with one mask per organism:
# larger frames are refused (413), not downscaled. ZooScan vignettes at 2400 dpi are up to
# about 1,340 px on a side; this leaves room for 4800 dpi scans (docs/gateway.md).
SEPARATOR_MAX_PIXELS = 2048 * 2048


@dataclass(frozen=True)
class LabelSpec:
    id: int
    name: str
    type: str = "rectangle"
    # free-text attributes the function fills in (CVAT keeps only declared ones)
    text_attributes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in LABEL_TYPES:
            raise ValueError(f"label {self.name!r}: type {self.type!r} is not one of {LABEL_TYPES}")

    def to_cvat(self) -> dict:
        attributes = [
            {"id": index, "name": name, "input_type": "text", "values": []}
            for index, name in enumerate(self.text_attributes)
        ]
        return {"id": self.id, "name": self.name, "type": self.type, "attributes": attributes}


@dataclass(frozen=True)
class FunctionSpec:
    id: str
    name: str
    kind: str
    family: str
    description: str
    labels: tuple[LabelSpec, ...]
    default_threshold: float = 0.5
    event_timeout_s: int = 30
    max_body_bytes: int = 32 * MIB
    max_image_pixels: int = DEFAULT_MAX_PIXELS  # larger frames are refused with 413
    min_image_side: int = MIN_IMAGE_SIDE  # a narrower or lower frame is refused with 400
    tile_size: int | None = None  # None: the whole frame goes to the model at once
    model_file: str = "model.onnx"  # in <models dir>/<family>/; others may sit beside it
    tile_overlap: int = 0  # pixels; larger than the largest expected object
    framework: str = "onnxruntime"
    # "confidence": the threshold drops detections; "p_multiple": it is the classifier's
    # P(multiple) threshold, and left out it is the one written in the classifier's file
    threshold_on: str = "confidence"

    def __post_init__(self) -> None:
        if not _ID_PATTERN.match(self.id):
            raise ValueError(
                f"function id {self.id!r} must be at most 56 lower-case letters, digits and "
                "'-', starting and ending with a letter or digit (Nuclio's names)"
            )
        if self.event_timeout_s < 1 or self.max_body_bytes < 1:
            raise ValueError(f"{self.id}: timeout_s and max_body_mib must be 1 or more")
        if self.kind not in FUNCTION_KINDS:
            raise ValueError(f"{self.id}: kind {self.kind!r} is not one of {FUNCTION_KINDS}")
        names = [label.name for label in self.labels]
        if len(set(names)) != len(names) or len({label.id for label in self.labels}) != len(names):
            raise ValueError(f"{self.id}: label names and ids must be unique, got {names}")
        if self.threshold_on not in ("confidence", "p_multiple"):
            raise ValueError(f"{self.id}: threshold_on {self.threshold_on!r} is not known")
        low, high = self.threshold_range
        if not low <= self.default_threshold <= high:
            raise ValueError(f"{self.id}: default_threshold must lie in [{low:g}, {high:g}]")
        if self.tile_size is not None and not 0 <= self.tile_overlap < self.tile_size:
            raise ValueError(f"{self.id}: tile_overlap must lie in [0, tile_size)")
        if not 1 <= self.min_image_side**2 <= self.max_image_pixels:
            raise ValueError(f"{self.id}: min_image_side must be >= 1 and fit max_image_pixels")

    def check_image_size(self, width: int, height: int, name: str = "image") -> None:
        """Refuse a frame this function cannot answer for: a `BadRequest` when a side is under
        `min_image_side` or one side is over `MAX_SIDE_RATIO` times the other,
        `PayloadTooLarge` when it has more than `max_image_pixels`."""
        if min(width, height) < self.min_image_side:
            raise BadRequest(
                f"{name} is {width}x{height} pixels; {self.id} needs at least "
                f"{self.min_image_side} pixels on each side"
            )
        long, short = max(width, height), min(width, height)
        if self.tile_size is None:
            longest = MAX_SIDE_RATIO * short
            limit = f"frames at most {MAX_SIDE_RATIO} times longer than wide"
        else:
            longest = MAX_TILED_SIDE_RATIO * max(short, self.tile_size)
            limit = f"strips this wide at most {longest:,} pixels long"
        if long > longest:
            raise BadRequest(
                f"{name} is {width}x{height} pixels, a strip {long / short:,.0f} times longer "
                f"than wide; {self.id} takes {limit}"
            )
        if width * height > self.max_image_pixels:
            raise PayloadTooLarge(
                f"{name} is {width}x{height} = {width * height:,} pixels, over {self.id}'s "
                f"limit of {self.max_image_pixels:,}; downscale it"
            )

    @property
    def threshold_range(self) -> tuple[float, float]:
        return THRESHOLD_RANGE

    @property
    def threshold_meaning(self) -> str:
        if self.threshold_on == "p_multiple":
            return P_MULTIPLE_MEANING
        return THRESHOLD_MEANINGS[self.kind]

    @property
    def threshold_help(self) -> str:
        """What the threshold means, its range and default, e.g. for a `--threshold` help."""
        low, high = self.threshold_range
        default = (
            "the classifier's own, written in its model file"
            if self.threshold_on == "p_multiple"
            else f"{self.default_threshold:g}"
        )
        return f"{self.threshold_meaning}, in [{low:g}, {high:g}] (default {default})"

    @property
    def cvat_description(self) -> str:
        """The description CVAT shows in its model list. Where CVAT lets the user set a
        threshold (not for trackers), it says what the threshold means: the field in CVAT's
        dialog has no explanation of its own."""
        if self.kind == "tracker":
            return self.description
        return f"{self.description}. Threshold: {self.threshold_help}"

    def check_threshold(self, value: object) -> float:
        """`value` as this function's threshold: the default when it is None or "" (CVAT
        sends a threshold only when the user set one), else a number in `threshold_range`.
        Anything else is a `BadRequest` saying what the threshold means here."""
        if value is None or value == "":
            return self.default_threshold
        low, high = self.threshold_range
        refused = BadRequest(
            f"{self.id}: 'threshold' is {self.threshold_meaning}, a number in "
            f"[{low:g}, {high:g}]; got {value!r}"
        )
        if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
            raise refused
        try:
            threshold = float(value)
        except ValueError:
            raise refused from None
        if math.isnan(threshold) or not low <= threshold <= high:
            raise refused
        return threshold

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def label_types(self) -> dict[str, str]:
        return {label.name: label.type for label in self.labels}

    def cvat_labels_json(self) -> str:
        """The `spec` annotation of function.yaml: CVAT's label list as a JSON string."""
        return json.dumps([label.to_cvat() for label in self.labels], indent=2)


def labels_of(
    names: tuple[str, ...] | list[str], shape_type: str = "rectangle"
) -> tuple[LabelSpec, ...]:
    return tuple(LabelSpec(i, name, shape_type) for i, name in enumerate(names))
