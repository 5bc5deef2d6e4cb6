"""`supervision.Detections` to what CVAT accepts: the one codec at the edge.

- `to_detector_response`: the JSON list a Nuclio detector returns (contract §2.1).
- `to_sdk_annotations`: cvat-sdk shapes for `cvat-cli task auto-annotate` modules (§4.1).
The label type each detection is drawn as comes from the function's spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import supervision as sv

from imagine_assist.cvat.masks import (
    box_mask,
    has_pixels,
    mask_of,
    mask_to_polygon,
    to_cvat_rle,
    to_nuclio_mask,
)


def _names(detections: sv.Detections) -> np.ndarray:
    names = detections.data.get("class_name")
    if names is None:
        raise ValueError("detections need data['class_name'] to be sent to CVAT")
    return names


def _rectangle_polygon(xyxy: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return [x1, y1, x2, y1, x2, y2, x1, y2]


def to_detector_response(
    detections: sv.Detections,
    label_types: Mapping[str, str],
    image_size: tuple[int, int],
    tags: Sequence[str | dict] = (),
) -> list[dict]:
    """Detections as a Nuclio detector's answer. Names missing from `label_types` are dropped.

    Masks go as the uncompressed crop plus inclusive bbox, always with a polygon in `points`
    so CVAT's "convert masks to polygons" works; every item carries `attributes: []`
    (the UI's AI tools fail on items without it, cvat-ai/cvat#8182).
    """
    width, height = image_size
    response: list[dict] = []
    names = _names(detections) if len(detections) else []
    for i, name in enumerate(names):
        shape_type = label_types.get(str(name))
        if shape_type is None:
            continue
        item: dict = {"label": str(name), "type": shape_type, "attributes": []}
        if detections.confidence is not None:
            item["confidence"] = f"{float(detections.confidence[i]):.4f}"
        xyxy = detections.xyxy[i]
        mask = mask_of(detections, i)
        if shape_type == "mask":
            mask = mask if has_pixels(mask) else box_mask(xyxy, width, height)
            item["points"] = mask_to_polygon(mask)
            item["mask"] = to_nuclio_mask(mask)
        elif shape_type == "polygon":
            has_mask = has_pixels(mask)
            item["points"] = mask_to_polygon(mask) if has_mask else _rectangle_polygon(xyxy)
        else:
            item["type"] = "rectangle"
            item["points"] = [float(v) for v in xyxy]
        response.append(item)
    for tag in tags:  # a name, or {"label", "confidence"?, "attributes"?}
        fields = {"label": tag} if isinstance(tag, str) else dict(tag)
        response.append({"type": "tag", "attributes": [], **fields})
    return response


def to_sdk_annotations(
    detections: sv.Detections,
    label_ids: Mapping[str, int],
    label_types: Mapping[str, str],
    conv_mask_to_poly: bool = False,
    tags: Sequence[str] = (),
) -> list:
    """Detections as cvat-sdk `LabeledShapeRequest`/`LabeledImageRequest` objects.

    Masks are `encode_mask` RLE, or polygons when the user asked for `conv_mask_to_poly`
    (cvat-sdk rejects any mask then).
    """
    import cvat_sdk.auto_annotation as cvataa

    annotations: list = []
    names = _names(detections) if len(detections) else []
    for i, name in enumerate(names):
        name = str(name)
        if name not in label_ids:
            continue
        label_id, shape_type = label_ids[name], label_types[name]
        xyxy = detections.xyxy[i]
        mask = mask_of(detections, i)
        has_mask = has_pixels(mask)
        if shape_type in ("mask", "polygon") and (shape_type == "polygon" or conv_mask_to_poly):
            points = mask_to_polygon(mask) if has_mask else _rectangle_polygon(xyxy)
            annotations.append(cvataa.polygon(label_id, points))
        elif shape_type == "mask":
            bitmap = mask if has_mask else box_mask(xyxy, *(int(np.ceil(v)) + 1 for v in xyxy[2:]))
            annotations.append(cvataa.mask(label_id, to_cvat_rle(bitmap)))
        else:
            annotations.append(cvataa.rectangle(label_id, [float(v) for v in xyxy]))
    annotations.extend(cvataa.tag(label_ids[tag]) for tag in tags)
    return annotations
