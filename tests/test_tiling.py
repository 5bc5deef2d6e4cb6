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
