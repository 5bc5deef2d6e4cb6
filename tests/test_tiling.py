"""Tiled inference: an object cut by a tile border is reported once, with its whole box."""

import cv2
import numpy as np
import pytest
import supervision as sv

from imagine_assist.models.tiling import detect_tiled, merge_tiles, tile_windows


def blob_detector(window: np.ndarray) -> sv.Detections:
    """A real (if simple) detector: dark blobs on a light background, one box per blob."""
    dark = (window.mean(axis=2) < 100).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(dark)
    boxes = [[x, y, x + w, y + h] for x, y, w, h, area in stats[1:] if area >= 4]
    if not boxes:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array(boxes, dtype=np.float32),
        confidence=np.full(len(boxes), 0.9, dtype=np.float32),
        class_id=np.zeros(len(boxes), dtype=int),
        data={"class_name": np.array(["bottle"] * len(boxes))},
    )


def frame_with(boxes, width=1000, height=700) -> np.ndarray:
    frame = np.full((height, width, 3), 230, dtype=np.uint8)
    for x1, y1, x2, y2 in boxes:
        frame[y1:y2, x1:x2] = 20
    return frame


def test_windows_cover_the_frame_and_end_at_the_border():
    windows = tile_windows(1000, 700, tile=320, overlap=80)
    covered = np.zeros((700, 1000), bool)
    for x1, y1, x2, y2 in windows:
        assert x2 - x1 == 320 and y2 - y1 == 320
        covered[y1:y2, x1:x2] = True
    assert covered.all()
    assert max(w[2] for w in windows) == 1000 and max(w[3] for w in windows) == 700
    assert tile_windows(200, 100, tile=320, overlap=80) == [(0, 0, 200, 100)]


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_bad_tile_settings_are_refused(tile, overlap):
    with pytest.raises(ValueError):
        tile_windows(1000, 1000, tile, overlap)


def test_object_cut_by_a_border_is_reported_once_with_its_whole_box():
    # Windows start at x = 0, 240, 480, ...: the first window ends at 320, inside this object.
    obj = (290, 100, 350, 140)
    found = detect_tiled(frame_with([obj]), blob_detector, tile=320, overlap=80)
    assert len(found) == 1
    np.testing.assert_allclose(found.xyxy[0], obj)


def test_object_larger_than_the_overlap_is_joined_from_its_parts():
    obj = (200, 300, 600, 340)  # 400 px wide: no window holds it whole
    found = detect_tiled(frame_with([obj]), blob_detector, tile=320, overlap=80)
    assert len(found) == 1
    np.testing.assert_allclose(found.xyxy[0], obj)


def test_neighbours_on_both_sides_of_a_border_stay_two():
    objs = [(300, 100, 318, 130), (322, 100, 345, 130)]
    found = detect_tiled(frame_with(objs), blob_detector, tile=320, overlap=80)
    assert sorted(map(tuple, found.xyxy.astype(int).tolist())) == objs


def test_many_objects_in_a_large_frame_are_each_found_once():
    rng = np.random.default_rng(3)
    objs = []
    for _ in range(40):
        x, y = int(rng.integers(0, 1900)), int(rng.integers(0, 1400))
        box = (x, y, x + int(rng.integers(15, 60)), y + int(rng.integers(15, 60)))
        if all(
            box[2] + 3 < o[0] or o[2] + 3 < box[0] or box[3] + 3 < o[1] or o[3] + 3 < box[1]
            for o in objs
        ):
            objs.append(box)
    found = detect_tiled(frame_with(objs, 2000, 1500), blob_detector, tile=320, overlap=80)
    assert sorted(map(tuple, found.xyxy.astype(int).tolist())) == sorted(objs)


def test_merge_keeps_different_classes_apart():
    dets = sv.Detections(
        xyxy=np.array([[0, 0, 50, 50], [0, 0, 50, 50]], dtype=np.float32),
        confidence=np.array([0.9, 0.8], dtype=np.float32),
        class_id=np.array([0, 1]),
    )
    assert len(merge_tiles(dets, np.array([False, True]))) == 2


def test_a_cut_part_given_another_label_joins_its_whole_object():
    """A window shown the lower quarter of a textile called it polystyrene: both were
    reported. A whole item lying on a larger cut one keeps its own box."""
    dets = sv.Detections(
        xyxy=np.array([[0, 0, 50, 100], [2, 78, 48, 100]], dtype=np.float32),
        confidence=np.array([0.85, 0.24], dtype=np.float32),
        class_id=np.array([7, 5]),
    )
    merged = merge_tiles(dets, np.array([False, True]))
    assert len(merged) == 1 and merged.class_id[0] == 7
    np.testing.assert_allclose(merged.xyxy[0], [0, 0, 50, 100])
    surer_half = sv.Detections(  # the cut half is surer of its (wrong) label
        xyxy=np.array([[100, 100, 200, 150], [150, 100, 200, 150]], dtype=np.float32),
        confidence=np.array([0.8, 0.9], dtype=np.float32),
        class_id=np.array([0, 4]),
    )
    merged = merge_tiles(surer_half, np.array([False, True]))
    assert len(merged) == 1 and merged.class_id[0] == 0 and merged.confidence[0] == 0.9
    np.testing.assert_allclose(merged.xyxy[0], [100, 100, 200, 150])
    bottle_on_a_bag = sv.Detections(
        xyxy=np.array([[0, 0, 200, 100], [20, 20, 60, 50]], dtype=np.float32),
        confidence=np.array([0.9, 0.8], dtype=np.float32),
        class_id=np.array([1, 0]),
    )
    assert len(merge_tiles(bottle_on_a_bag, np.array([True, False]))) == 2


def test_a_part_cut_twice_joins_the_whole_box_it_lies_in():
    """Litter's 640/160 windows saw one object whole, cut at the bottom, cut at the left,
    and cut at both: the left-cut sliver overlapped only the first part and was counted
    as a second object."""
    whole, bottom, corner, left = (
        [1267, 2530, 1554, 2772],
        [1267, 2530, 1554, 2560],
        [1440, 2530, 1554, 2560],
        [1440, 2530, 1554, 2772],
    )
    dets = sv.Detections(
        xyxy=np.array([whole, bottom, corner, left], dtype=np.float32),
        confidence=np.array([0.6, 0.9, 0.5, 0.55], dtype=np.float32),
        class_id=np.zeros(4, dtype=int),
    )
    merged = merge_tiles(dets, np.array([False, True, True, True]))
    assert len(merged) == 1 and merged.confidence[0] == pytest.approx(0.9)
    np.testing.assert_allclose(merged.xyxy[0], whole)


@pytest.mark.parametrize("surest", ["bottle", "bag"])
def test_a_bottle_on_a_bag_at_a_window_border_stays_two_objects(surest):
    """Each was seen whole by one window and cut by the other; when the bottle's cut part
    was the surest box, bag and bottle were one group and the less sure one was lost."""
    boxes = [[500, 100, 800, 400], [620, 200, 660, 240], [620, 200, 640, 240], [500, 100, 640, 400]]
    bottle = 0.55 if surest == "bottle" else 0.45
    dets = sv.Detections(
        xyxy=np.array(boxes, dtype=np.float32),
        confidence=np.array([0.5, bottle, 0.6, 0.4], dtype=np.float32),
        class_id=np.array([1, 0, 0, 1]),  # bag, bottle, bottle cut, bag cut
    )
    merged = merge_tiles(dets, np.array([False, False, True, True]))
    assert sorted(merged.class_id.tolist()) == [0, 1]
    by_label = dict(zip(merged.class_id.tolist(), merged.xyxy.tolist(), strict=True))
    assert by_label == {1: boxes[0], 0: boxes[1]}


def test_every_object_is_found_once_however_sure_each_window_is():
    """A detector that boxes an object in every window showing more than 30 % of it, at a
    confidence that has nothing to do with how much it sees (as a real model's does not)."""
    rng = np.random.default_rng(11)
    width, height, tile, overlap = 4000, 3000, 640, 160
    windows = tile_windows(width, height, tile, overlap)
    for _ in range(60):
        objects: list[list[int]] = []
        while len(objects) < 6:
            w, h = (int(v) for v in rng.integers(10, 400, size=2))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            box = [x, y, x + w, y + h]
            if all(
                box[2] + 5 < o[0] or o[2] + 5 < box[0] or box[3] + 5 < o[1] or o[3] + 5 < box[1]
                for o in objects
            ):
                objects.append(box)
        seen, flags = [], []
        for x1, y1, x2, y2 in windows:
            for box in objects:
                cut = [max(box[0], x1), max(box[1], y1), min(box[2], x2), min(box[3], y2)]
                area = (box[2] - box[0]) * (box[3] - box[1])
                if (
                    cut[0] < cut[2]
                    and cut[1] < cut[3]
                    and ((cut[2] - cut[0]) * (cut[3] - cut[1]) > 0.3 * area)
                ):
                    seen.append(cut)
                    flags.append(cut != box)
        dets = sv.Detections(
            xyxy=np.array(seen, dtype=np.float32),
            confidence=rng.uniform(0.5, 0.9, len(seen)).astype(np.float32),
            class_id=np.zeros(len(seen), dtype=int),
        )
        merged = merge_tiles(dets, np.array(flags))
        assert sorted(map(tuple, merged.xyxy.astype(int).tolist())) == sorted(map(tuple, objects))
        assert (np.diff(merged.confidence) <= 0).all()  # surest first, as NMS gives them
