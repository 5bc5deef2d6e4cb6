"""The spec of a served function: everything CVAT, Nuclio and the gateway need to know.

One `FunctionSpec` per function, in code. The Nuclio folders (`serverless/<id>/`), the
cvat-sdk label specs and the gateway's listing are all generated from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from imagine_assist.images import DEFAULT_MAX_PIXELS

FUNCTION_KINDS = ("detector", "interactor", "tracker", "reid")
LABEL_TYPES = ("rectangle", "polygon", "mask", "polyline", "points", "ellipse", "tag", "any")
_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*$")  # a CVAT function id and a DNS-safe name
MIB = 1024 * 1024


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
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    tile_size: int | None = None  # None: the whole frame goes to the model at once
    model_file: str = "model.onnx"  # in <models dir>/<family>/; others may sit beside it
    tile_overlap: int = 0  # pixels; larger than the largest expected object
    framework: str = "onnxruntime"

    def __post_init__(self) -> None:
        if not _ID_PATTERN.match(self.id):
            raise ValueError(
                f"function id {self.id!r} must be lower-case letters, digits, '-' or '.'"
            )
        if self.kind not in FUNCTION_KINDS:
            raise ValueError(f"{self.id}: kind {self.kind!r} is not one of {FUNCTION_KINDS}")
        names = [label.name for label in self.labels]
        if len(set(names)) != len(names) or len({label.id for label in self.labels}) != len(names):
            raise ValueError(f"{self.id}: label names and ids must be unique, got {names}")
        if not 0.0 <= self.default_threshold <= 1.0:
            raise ValueError(f"{self.id}: default_threshold must lie in [0, 1]")
        if self.tile_size is not None and not 0 <= self.tile_overlap < self.tile_size:
            raise ValueError(f"{self.id}: tile_overlap must lie in [0, tile_size)")

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
