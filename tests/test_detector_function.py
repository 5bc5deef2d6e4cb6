"""DetectorFunction: the same boxes whether the frame arrives as an array or as a JPEG body."""

import base64

from imagine_assist.functions.catalog import load_function
from imagine_assist.images import decode_image_reduced, encode_jpeg
from imagine_assist.nuclio.cvat_requests import answer
from imagine_assist.samples import generate_fish


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_reduced_jpeg_decoding_keeps_the_full_size():
    image = next(iter(generate_fish(1, seed=60, width=1280, height=960))).image
    reduced, size = decode_image_reduced(encode_jpeg(image), reduce_to=320)
    assert size == (1280, 960)
    assert reduced.shape == (240, 320, 3)  # 1/4 scale: the longest side is still >= 320
    full, _ = decode_image_reduced(encode_jpeg(image))
    assert full.shape == (960, 1280, 3)


def test_handler_boxes_are_in_full_frame_coordinates():
    function = load_function("fish-detector")
    compared = 0
    for sample in generate_fish(4, seed=61, width=1280, height=960):
        body = {"image": base64.b64encode(encode_jpeg(sample.image)).decode(), "threshold": 0.5}
        served = answer(function, body)
        direct = function.detect(sample.image, 0.5)
        for item in served:
            assert max(iou(item["points"], box) for box in direct.xyxy) > 0.85
            compared += 1
        assert abs(len(served) - len(direct)) <= 1
        assert all(0 <= v <= 1280 for item in served for v in item["points"][::2])
    assert compared > 0
