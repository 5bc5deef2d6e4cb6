"""DetectorFunction: the same boxes whether the frame arrives as an array or as a JPEG body."""

import base64

import pytest

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


@pytest.mark.slow  # seconds of work: the full tier
def test_handler_boxes_are_in_full_frame_coordinates():
    function = load_function("fish-detector")
    compared = 0
    for sample in generate_fish(4, seed=61, width=1280, height=960):
        body = {"image": base64.b64encode(encode_jpeg(sample.image)).decode(), "threshold": 0.5}
        served = answer(function, body)
        direct = function.detect(sample.image, 0.5)
        # The served frame is decoded at reduced scale: a box near the threshold may land on
        # either side of it, so served boxes are looked for among the direct call's at 0.25.
        candidates = function.detect(sample.image, 0.25).xyxy
        for item in served:
            assert max(iou(item["points"], box) for box in candidates) > 0.85
            compared += 1
        assert abs(len(served) - len(direct)) <= 1
        assert all(0 <= v <= 1280 for item in served for v in item["points"][::2])
    assert compared > 0


def test_letterbox_bars_never_reach_the_model():
    """DeepFish-style frames: a picture between black bars gets the picture's own boxes,
    shifted, and nothing in the bars (the synthetic model boxed a bar's corner in 84 % of
    DeepFish frames)."""
    import numpy as np

    function = load_function("fish-detector")
    compared = 0
    for sample in generate_fish(3, seed=62, width=480, height=270):
        framed = np.zeros((480, 480, 3), np.uint8)
        framed[105:375] = sample.image
        framed[105:375][sample.image.max(axis=2) < 3] = 3  # JPEG-like: the picture is not a bar
        inside = function.detect(sample.image, 0.25)
        outside = function.detect(framed, 0.25)
        assert len(inside) == len(outside)
        assert np.allclose(outside.xyxy, inside.xyxy + [0, 105, 0, 105], atol=0.5)
        assert (outside.xyxy[:, 1] >= 105).all() and (outside.xyxy[:, 3] <= 375).all()
        compared += len(inside)
    assert compared > 0


def test_picture_box_finds_bars_and_leaves_dark_scenes_whole():
    import numpy as np

    from imagine_assist.models.borders import picture_box

    picture = np.full((200, 300, 3), 90, np.uint8)
    framed = np.zeros((300, 400, 3), np.uint8)
    framed[40:240, 60:360] = picture
    framed[5, 10:20] = 255  # a few ringing pixels in a bar do not make it picture
    assert picture_box(framed) == (60, 40, 360, 240)
    assert picture_box(picture) == (0, 0, 300, 200)
    night = np.zeros((200, 300, 3), np.uint8)
    night[90:110, 140:160] = 200  # a lit fish in a black night scene: not a letterbox
    assert picture_box(night) == (0, 0, 300, 200)
    thin = np.full((200, 300, 3), 90, np.uint8)
    thin[:2] = 0  # two dark rows are a sensor edge, not a bar
    assert picture_box(thin) == (0, 0, 300, 200)
    # a drone frame with a dark strip along its top: a 40 px object in it is picture (2 % of
    # a 20 MP frame's width is 109 px, and such an object was cut away as bar)
    drone = np.full((1200, 2400, 3), 120, np.uint8)
    drone[:400] = 8
    assert picture_box(drone) == (0, 400, 2400, 1200)
    drone[150:190, 1000:1040] = 200
    assert picture_box(drone)[1] <= 150


@pytest.mark.parametrize("tile_size", [None, 128])
def test_a_frame_answers_at_most_max_boxes_the_surest_first(tile_size):
    """At threshold 0 (CVAT allows it) a 20 MP litter frame gave 5,511 boxes through an
    NMS whose IoU matrix grows with their square: 43 s and 2.3 GB for one request."""
    import numpy as np
    import supervision as sv

    from imagine_assist.functions import detector as served
    from imagine_assist.functions.spec import FunctionSpec, LabelSpec

    class Dense:
        """Boxes of 3x3 px on a 4 px grid over the window, scores from its grey level."""

        class_names = ["litter"]
        input_size = 128

        def __call__(self, image, threshold):
            height, width = image.shape[:2]
            ys, xs = np.mgrid[0 : height - 3 : 4, 0 : width - 3 : 4]
            xy = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
            score = image[ys.ravel(), xs.ravel(), 0] / 255.0
            return sv.Detections(
                xyxy=np.concatenate([xy, xy + 3], 1),
                confidence=score.astype(np.float32),
                class_id=np.zeros(len(xy), int),
                data={"class_name": np.array(["litter"] * len(xy))},
            )

    spec = FunctionSpec(
        id="dense",
        name="dense",
        kind="detector",
        family="litter",
        description="d",
        labels=(LabelSpec(0, "litter"),),
    )
    function = served.DetectorFunction(
        spec, Dense(), tile_size=tile_size, tile_overlap=0, class_agnostic_nms=True
    )
    image = np.random.default_rng(0).integers(20, 256, (400, 400, 3), dtype=np.uint8)
    found = function.detect(image, 0.0)  # 10,000 boxes, none overlapping
    assert len(found) == served.MAX_BOXES
    assert found.confidence.min() >= np.sort(image[0:397:4, 0:397:4, 0].ravel())[-2000] / 255.0
