"""The burrow tracker and reid functions, driven as CVAT drives them."""

import base64
import json

import numpy as np
import pytest

from imagine_assist.errors import BadRequest
from imagine_assist.functions.catalog import load_function
from imagine_assist.images import encode_jpeg
from imagine_assist.nuclio.cvat_requests import answer
from imagine_assist.samples import generate_tow

TEST_SEED = 31  # used by no training run


def b64(image) -> str:
    return base64.b64encode(encode_jpeg(image, quality=95)).decode()


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def over_json(function, body: dict):
    """The function sees what came over the wire, and answers what goes back over it."""
    return json.loads(json.dumps(answer(function, json.loads(json.dumps(body)))))


@pytest.fixture(scope="module")
def tracker():
    return load_function("burrow-tracker")


@pytest.mark.slow  # renders and tracks 12 s of tow
def test_300_frames_one_request_per_frame_keep_each_box_on_its_burrow(tracker):
    tow = generate_tow(12.0, seed=TEST_SEED)  # 300 frames
    active: dict[int, tuple[list[float], dict | None]] = {}
    overlaps: list[float] = []
    for frame in tow.frames():
        truth = {o.track_id: o.xyxy for o in frame.objects}
        # a burrow that has left the frame is no longer tracked (its track ends)
        active = {tid: value for tid, value in active.items() if tid in truth}
        # the user draws a box on each burrow the first time it is fully in view
        for tid, box in truth.items():
            if tid not in active and box[1] > 0 and box[3] < tow.geometry.height:
                active[tid] = (list(box), None)
        if not active:
            continue
        ids = list(active)
        body = {
            "image": b64(frame.image),
            "shapes": [active[t][0] for t in ids],
            "states": [active[t][1] for t in ids],
        }
        answer = over_json(tracker, body)
        assert len(answer["shapes"]) == len(answer["states"]) == len(ids)
        for tid, shape, state in zip(ids, answer["shapes"], answer["states"], strict=True):
            if active[tid][1] is not None:  # a tracked frame, not the user's own box
                overlaps.append(iou(shape, truth[tid]))
            active[tid] = (shape, state)
    assert len(overlaps) > 100  # tracked (burrow, frame) pairs after the user's boxes
    print(f"tracker: mean IoU {np.mean(overlaps):.3f} over {len(overlaps)} tracked boxes")
    assert np.mean(overlaps) >= 0.7, f"mean IoU {np.mean(overlaps):.3f}"


def test_bad_states_get_400_and_the_tracker_keeps_serving(tracker):
    frame = next(iter(generate_tow(1.0, seed=TEST_SEED).frames())).image
    box = [300.0, 200.0, 340.0, 240.0]
    started = over_json(tracker, {"image": b64(frame), "shapes": [box], "states": [None]})
    good = started["states"][0]
    bad_states = [
        {**good, "box": [0, 0, 640, 480]},  # tampered
        {k: v for k, v in good.items() if k != "template"},  # truncated
        {**good, "padding": "x" * 10_000},  # oversized
        {**good, "v": 99},  # another version
        "not a state",
    ]
    for bad in bad_states:
        with pytest.raises(BadRequest):
            answer(tracker, {"image": b64(frame), "shapes": [box], "states": [bad]})
    for not_a_list in (0, "", {}):  # was read as "no states" and every track restarted
        with pytest.raises(BadRequest, match="'states' must be a list"):
            answer(tracker, {"image": b64(frame), "shapes": [box], "states": not_a_list})
    again = over_json(tracker, {"image": b64(frame), "shapes": [box], "states": [good]})
    assert len(again["shapes"]) == 1


def test_boxes_come_back_inside_the_frame(tracker):
    """A box drawn over the frame's edge, or a huge one, is answered cut to the frame, on
    the first frame and when followed: CVAT draws whatever it is given."""
    frame = next(iter(generate_tow(1.0, seed=TEST_SEED).frames())).image
    height, width = frame.shape[:2]
    boxes = [[width - 40.0, height - 40.0, width + 60.0, height + 40.0], [-30.0, 5.0, 20.0, 60.0]]
    boxes.append([0.0, 0.0, 1e11, 1e11])
    started = over_json(tracker, {"image": b64(frame), "shapes": boxes, "states": [None] * 3})
    followed = over_json(
        tracker, {"image": b64(frame), "shapes": started["shapes"], "states": started["states"]}
    )
    for answer_ in (started, followed):
        for x1, y1, x2, y2 in answer_["shapes"]:
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert started["shapes"][0] == pytest.approx([width - 40, height - 40, width, height])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"shapes": "x"}, "shapes"),
        ({"shapes": [[1, 2, 3]]}, "x1, y1, x2, y2"),
        ({"shapes": [[5, 5, 1, 1]]}, "x1 < x2"),
        ({"shapes": [[0, 0, 5, 5]] * 201}, "at most"),
        ({"shapes": [[10, 10, 50, 10, 50, 50, 10, 50]]}, "rectangle .* got 8 numbers"),
    ],
)
def test_bad_shapes_are_refused(tracker, body, fragment):
    frame = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(BadRequest, match=fragment):
        answer(tracker, {"image": b64(frame), **body})


@pytest.mark.slow  # renders 8 s of tow
def test_reid_links_burrows_between_consecutive_frames():
    reid = load_function("burrow-reid")
    frames = list(generate_tow(8.0, seed=TEST_SEED + 1).frames())
    consecutive = zip(frames, frames[1:], strict=False)
    pairs = [(a, b) for a, b in consecutive if a.objects and b.objects][::10]
    correct = total = 0
    for before, after in pairs:
        ids0 = [o.track_id for o in before.objects]
        ids1 = [o.track_id for o in after.objects]
        body = {
            "image0": b64(before.image),
            "image1": b64(after.image),
            "boxes0": [{"points": list(o.xyxy), "label_id": 1, "frame": 0} for o in before.objects],
            "boxes1": [{"points": list(o.xyxy), "label_id": 1, "frame": 1} for o in after.objects],
            "threshold": 0.5,
            "max_distance": 50,
        }
        matches = over_json(reid, body)
        assert len(matches) == len(ids0)
        for tid, match in zip(ids0, matches, strict=True):
            expected = ids1.index(tid) if tid in ids1 else -1
            correct += match == expected
            total += 1
    assert total > 10 and correct / total >= 0.95


def test_reid_refuses_bad_bodies():
    reid = load_function("burrow-reid")
    frame = b64(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(BadRequest, match="boxes0"):
        answer(reid, {"image0": frame, "image1": frame, "boxes0": "x", "boxes1": []})
    with pytest.raises(BadRequest, match="max_distance"):
        answer(
            reid, {"image0": frame, "image1": frame, "boxes0": [], "boxes1": [], "max_distance": -3}
        )
    assert answer(reid, {"image0": frame, "image1": frame, "boxes0": [], "boxes1": []}) == []


def test_reid_threshold_is_a_minimum_similarity_in_0_1():
    reid = load_function("burrow-reid")
    frame = b64(np.zeros((48, 64, 3), np.uint8))
    empty = {"image0": frame, "image1": frame, "boxes0": [], "boxes1": []}
    # 1.5 was an allowed appearance distance before; a threshold now lies in [0, 1]
    with pytest.raises(BadRequest, match=r"minimum appearance similarity .* in \[0, 1\]"):
        answer(reid, {**empty, "threshold": 1.5})
    assert answer(reid, {**empty, "threshold": "0.5"}) == []

    frames = [f for f in generate_tow(2.0, seed=TEST_SEED + 2).frames() if len(f.objects) >= 2]
    before, after = frames[0], frames[1]
    boxes0 = np.array([o.xyxy for o in before.objects], dtype=np.float64)
    boxes1 = np.array([o.xyxy for o in after.objects], dtype=np.float64)

    def matched(image1, boxes, threshold) -> list[int]:
        return reid.match(before.image, image1, boxes0, boxes, threshold, max_distance=50)

    # higher keeps less, as for a detector's confidence
    loose, strict = matched(after.image, boxes1, 0.0), matched(after.image, boxes1, 0.99)
    assert sum(m >= 0 for m in strict) < sum(m >= 0 for m in loose)
    # a box is as similar as can be to itself
    assert matched(before.image, boxes0, 0.99) == list(range(len(boxes0)))


def test_a_template_of_a_huge_box_looks_as_the_full_average_does():
    """A box the size of a 60 MP frame is thinned before it is averaged (it took 170 ms a
    box, and a reid request of 500 held its worker for minutes): the template keeps what
    the full average shows."""
    import cv2

    from imagine_assist.functions.appearance import TEMPLATE_SIZE, similarity, template

    rng = np.random.default_rng(4)
    seabed = cv2.resize(
        rng.integers(0, 255, (60, 100), dtype=np.uint8),
        (10000, 6000),
        interpolation=cv2.INTER_CUBIC,
    )
    fast = template(seabed, (2000, 1000, 8000, 5000))
    x1, y1, x2, y2 = 500, 0, 9500, 6000  # the same box with its 25 % margin, cut to the frame
    full = cv2.resize(
        seabed[y1:y2, x1:x2], (TEMPLATE_SIZE, TEMPLATE_SIZE), interpolation=cv2.INTER_AREA
    )
    assert fast.shape == full.shape and similarity(fast, full) > 0.98


def test_reid_between_two_dark_frames_takes_no_camera_motion():
    """Phase correlation of two flat frames answers half the frame: boxes in the same place
    on two frames of a lamp dropout were moved 320 px apart and never matched."""
    reid = load_function("burrow-reid")
    dark = np.zeros((480, 640, 3), np.uint8)  # the lamp off
    shape = {"points": [300, 200, 340, 240], "label_id": 1, "frame": 0}
    body = {"image0": b64(dark), "image1": b64(dark), "boxes0": [shape], "boxes1": [shape]}
    assert over_json(reid, {**body, "threshold": 0.0, "max_distance": 50}) == [0]
