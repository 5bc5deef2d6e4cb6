"""`plankton-separator`: one mask per organism in a ZooScan vignette, plus a single or
multiple tag, as a CVAT detector (contract §2.1: masks as crop + bbox, with a polygon).

The separator behind it is a callable from an image to masks. Today that is the classical
watershed baseline (`models.separate`); a trained separator plugs in the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import supervision as sv

from imagine_assist.cvat.shapes import to_detector_response
from imagine_assist.errors import BadRequest
from imagine_assist.functions.requests import parse_image
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.models.separate import crop_scale_bar, separate_touching

Separator = Callable[[np.ndarray], list[np.ndarray]]
ORGANISM, SINGLE, MULTIPLE = "organism", "single", "multiple"


def as_detections(masks: list[np.ndarray], shape: tuple[int, int]) -> sv.Detections:
    """Masks on the cropped vignette as full-vignette `Detections` of class "organism"."""
    if not masks:
        return sv.Detections.empty()
    full = np.zeros((len(masks), *shape), dtype=bool)
    for index, mask in enumerate(masks):
        full[index, : mask.shape[0], : mask.shape[1]] = mask
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(full).astype(np.float32),
        mask=full,
        class_id=np.zeros(len(masks), dtype=int),
        confidence=np.ones(len(masks), dtype=np.float32),
        data={"class_name": np.array([ORGANISM] * len(masks))},
    )


class SeparatorFunction:
    def __init__(
        self, spec: FunctionSpec, scale_bar_rows: int, separate: Separator = separate_touching
    ) -> None:
        self.spec = spec
        self.scale_bar_rows = scale_bar_rows
        self.separate = separate

    def split(self, image: np.ndarray, scale_bar_rows: int | None = None) -> sv.Detections:
        rows = self.scale_bar_rows if scale_bar_rows is None else scale_bar_rows
        if rows >= image.shape[0]:
            rows = 0  # a vignette smaller than the strip has no scale bar to crop
        masks = self.separate(crop_scale_bar(image, rows))
        return as_detections(masks, image.shape[:2])

    @staticmethod
    def tag(detections: sv.Detections) -> str:
        return MULTIPLE if len(detections) >= 2 else SINGLE

    def handle(self, body: dict) -> list[dict]:
        rows = body.get("scale_bar_rows")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
            raise BadRequest(f"'scale_bar_rows' must be a whole number >= 0, got {rows!r}")
        image = parse_image(body, self.spec.max_image_pixels)
        detections = self.split(image, rows)
        height, width = image.shape[:2]
        return to_detector_response(
            detections, self.spec.label_types, (width, height), tags=[self.tag(detections)]
        )
