"""The codec from Detections to CVAT, checked against cvat-sdk's own mask decoder."""

import numpy as np
import pytest
import supervision as sv
from cvat_sdk import models
from cvat_sdk.masks import decode_mask, encode_mask

from imagine_assist.cvat.masks import from_nuclio_mask, mask_to_polygon, to_nuclio_mask
from imagine_assist.cvat.shapes import to_detector_response, to_sdk_annotations
from imagine_assist.cvat.xml import cvat_images_tree

WIDTH, HEIGHT = 80, 60


def blob_masks() -> np.ndarray:
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    ellipse = ((xx - 25) / 12.0) ** 2 + ((yy - 20) / 8.0) ** 2 <= 1
    ring = (np.hypot(xx - 60, yy - 40) <= 10) & (np.hypot(xx - 60, yy - 40) >= 4)
    edge = np.zeros((HEIGHT, WIDTH), bool)
    edge[50:60, 0:5] = True  # touches the frame border
    return np.stack([ellipse, ring, edge])


def detections(with_masks=True) -> sv.Detections:
    masks = blob_masks()
    xyxy = np.array([sv.mask_to_xyxy(m[None])[0] for m in masks], dtype=np.float32)
    return sv.Detections(
        xyxy=xyxy,
        mask=masks if with_masks else None,
        confidence=np.array([0.9, 0.8, 0.7], np.float32),
        class_id=np.array([0, 1, 2]),
        data={"class_name": np.array(["copepod", "egg", "unknown-label"])},
    )


def test_nuclio_mask_round_trip_is_pixel_exact():
    for mask in blob_masks():
        encoded = to_nuclio_mask(mask)
        x1, y1, x2, y2 = encoded[-4:]
        assert len(encoded) == (x2 - x1 + 1) * (y2 - y1 + 1) + 4  # inclusive bbox crop
        assert set(encoded[:-4]) <= {0, 1}
        np.testing.assert_array_equal(from_nuclio_mask(encoded, WIDTH, HEIGHT), mask)


def test_xml_rle_is_encode_mask_with_the_bbox_as_attributes():
    tree = cvat_images_tree([("a.png", WIDTH, HEIGHT, detections())], ["copepod", "egg"])
    nodes = tree.getroot().findall("image/mask")
    assert len(nodes) == len(blob_masks())
    for node, mask in zip(nodes, blob_masks(), strict=True):
        runs = [int(v) for v in node.get("rle").split(", ")]
        x1, y1 = int(node.get("left")), int(node.get("top"))
        x2, y2 = x1 + int(node.get("width")) - 1, y1 + int(node.get("height")) - 1
        assert runs + [x1, y1, x2, y2] == encode_mask(mask)
        decoded = decode_mask(runs + [x1, y1, x2, y2], image_width=WIDTH, image_height=HEIGHT)
        np.testing.assert_array_equal(decoded, mask)


def test_detector_response_follows_the_contract():
    types = {"copepod": "mask", "egg": "polygon"}
    response = to_detector_response(detections(), types, (WIDTH, HEIGHT))
    assert [item["label"] for item in response] == ["copepod", "egg"]  # unknown label dropped
    mask_item, polygon_item = response
    assert mask_item["type"] == "mask" and mask_item["attributes"] == []
    assert len(mask_item["points"]) >= 6 and len(mask_item["points"]) % 2 == 0
    np.testing.assert_array_equal(
        from_nuclio_mask(mask_item["mask"], WIDTH, HEIGHT), blob_masks()[0]
    )
    assert float(mask_item["confidence"]) == pytest.approx(0.9, abs=1e-4)
    assert polygon_item["type"] == "polygon" and "mask" not in polygon_item


def test_rectangles_are_xyxy_floats_and_tags_are_appended():
    response = to_detector_response(
        detections(with_masks=False),
        {"copepod": "rectangle", "multiple": "tag"},
        (WIDTH, HEIGHT),
        tags=["multiple"],
    )
    box, tag = response
    assert box["type"] == "rectangle"
    assert box["points"] == pytest.approx(detections().xyxy[0].tolist())
    assert tag == {"label": "multiple", "type": "tag", "attributes": []}


def test_polygon_of_a_mask_covers_it():
    mask = blob_masks()[0]
    import cv2

    points = np.array(mask_to_polygon(mask), dtype=np.int32).reshape(-1, 2)
    drawn = np.zeros_like(mask, dtype=np.uint8)
    cv2.fillPoly(drawn, [points], 1)
    iou = (drawn.astype(bool) & mask).sum() / (drawn.astype(bool) | mask).sum()
    assert iou > 0.9


def test_the_polygon_of_a_mask_in_parts_covers_every_part():
    """Under "Convert masks to polygons" CVAT stores the polygon, not the mask: the largest
    part alone dropped 45 % of a real single whose legs the threshold cut off."""
    import cv2

    mask = np.zeros((120, 220), bool)
    mask[10:50, 10:60] = True  # the body
    mask[60:100, 100:190] = True  # a larger part, apart
    mask[5:9, 150:156] = True  # a speck of a leg
    mask[70:80, 20:40] = True
    mask[75:77, 25:30] = False  # a hole stays filled, as in every outline of ours
    points = np.array(mask_to_polygon(mask), dtype=np.float64).reshape(-1, 2)
    drawn = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(drawn, [points.round().astype(np.int32)], 1)
    assert (drawn.astype(bool) & mask).sum() >= mask.sum() - 10  # the hole's pixels
    assert drawn.sum() - (drawn.astype(bool) & mask).sum() < 0.05 * mask.sum()


def test_sdk_masks_decode_pixel_for_pixel():
    ids = {"copepod": 0, "egg": 1}
    types = {"copepod": "mask", "egg": "mask"}
    shapes = to_sdk_annotations(detections(), ids, types)
    assert [s.type.value for s in shapes] == ["mask", "mask"]
    for shape, mask in zip(shapes, blob_masks()[:2], strict=True):
        assert isinstance(shape, models.LabeledShapeRequest)
        decoded = decode_mask(shape.points, image_width=WIDTH, image_height=HEIGHT)
        np.testing.assert_array_equal(decoded, mask)


def test_sdk_conv_mask_to_poly_gives_polygons_only():
    shapes = to_sdk_annotations(
        detections(), {"copepod": 0}, {"copepod": "mask"}, conv_mask_to_poly=True
    )
    assert [s.type.value for s in shapes] == ["polygon"]


def test_sdk_rectangles():
    shapes = to_sdk_annotations(detections(False), {"egg": 5}, {"egg": "rectangle"})
    assert shapes[0].type.value == "rectangle" and shapes[0].label_id == 5
    assert shapes[0].points == pytest.approx(detections().xyxy[1].tolist())
