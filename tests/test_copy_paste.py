"""Small, faint fish pasted into training frames (`training.copy_paste`)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imagine_assist.errors import UserError
from imagine_assist.training import centernet
from imagine_assist.training.copy_paste import (
    LARGEST,
    MIN_PASTED_SIDE,
    SMALLEST,
    FishCutouts,
)

WATER = 60  # grey water in the source frames
FISH = 220
FISH_CLASS = 1


def _frames(folder, boxes_per_frame, fish_share=1.0):
    """Frames of grey water, each labelled box holding a bright elliptic fish that spans
    `fish_share` of the box each way (the rest of the box is water)."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for index, boxes in enumerate(boxes_per_frame):
        image = np.full((120, 160, 3), WATER, np.uint8)
        rows = []
        for x0, y0, x1, y1 in boxes:
            centre = ((x0 + x1) // 2, (y0 + y1) // 2)
            axes = (round((x1 - x0) * fish_share / 2), round((y1 - y0) * fish_share / 2))
            cv2.ellipse(image, centre, axes, 0, 0, 360, (FISH, FISH, FISH), -1)
            cx, cy, w, h = (x0 + x1) / 320, (y0 + y1) / 240, (x1 - x0) / 160, (y1 - y0) / 120
            rows.append(f"{FISH_CLASS} {cx} {cy} {w} {h}")
        cv2.imwrite(str(folder / "images" / f"{index}.png"), image)
        (folder / "labels" / f"{index}.txt").write_text("\n".join(rows) + "\n")
    return centernet.read_yolo_images(folder / "images")


def _read(path):
    return cv2.imread(str(path))[:, :, ::-1]


def _pixel_box(row, width, height):
    cx, cy, w, h = row
    return (
        round((cx - w / 2) * width),
        round((cy - h / 2) * height),
        round((cx + w / 2) * width),
        round((cy + h / 2) * height),
    )


def test_fish_are_cut_at_their_boxes_and_too_small_or_cut_off_ones_are_left(tmp_path):
    frames = _frames(
        tmp_path,
        [[(20, 30, 80, 60)], [(10, 10, 18, 40), (90, 50, 150, 90), (130, 0, 170, 30)], []],
    )
    cutouts = FishCutouts.from_frames(frames, _read)
    # the 8 px wide fish is too narrow, and the one past the frame's right edge would be
    # half a fish; the two others are cut whole
    assert sorted(crop.shape[:2] for crop in cutouts.crops) == [(30, 60), (40, 60)]
    assert cutouts.class_ids == (FISH_CLASS, FISH_CLASS)
    for crop, water in zip(cutouts.crops, cutouts.waters, strict=True):
        assert crop[crop.shape[0] // 2, crop.shape[1] // 2, 0] == FISH  # the body
        assert crop[0, 0, 0] == WATER  # a corner of the box is water
        assert WATER <= water[0] < (WATER + FISH) / 2  # the rim is mostly water
    assert len(FishCutouts.from_frames(frames, _read, limit=1)) == 1
    with pytest.raises(UserError, match="no fish"):
        FishCutouts.from_frames(frames[2:], _read)


def test_pasted_fish_are_small_faint_boxed_and_keep_the_frame_and_its_fish(tmp_path):
    # the source fish spans the middle half of its box: the rest of the box is its water
    cutouts = FishCutouts.from_frames(
        _frames(tmp_path, [[(0, 20, 160, 100)]], fish_share=0.5), _read
    )
    rng = np.random.default_rng(0)
    frame = np.full((300, 400, 3), 40, np.uint8)
    frame[40:80, 40:120] = 30  # a labelled dark fish of the frame's own
    own, own_class = np.array([[80 / 400, 60 / 300, 80 / 400, 40 / 300]], np.float32), [0]
    frame_before, own_before = frame.copy(), own.copy()
    pasted_count, checked_water = 0, 0
    for _ in range(30):
        image, cxcywh, class_id = cutouts.paste(frame, own, np.array(own_class), rng, most=3)
        assert np.array_equal(frame, frame_before) and np.array_equal(own, own_before)
        assert image.shape == frame.shape and 1 <= len(cxcywh) <= 4  # up to 3 pasted
        # the frame's fish first, with its class; each pasted fish with its source's
        assert class_id.tolist() == [0] + [FISH_CLASS] * (len(cxcywh) - 1)
        assert (cxcywh[0] == own[0]).all()
        assert (image[40:80, 40:120] == 30).all()  # its own fish is never covered
        changed = np.zeros(frame.shape[:2], bool)
        for row in cxcywh[1:]:
            x0, y0, x1, y1 = _pixel_box(row, 400, 300)
            w, h = x1 - x0, y1 - y0
            assert 0 <= x0 < x1 <= 400 and 0 <= y0 < y1 <= 300
            assert SMALLEST * 0.9 <= max(w, h) / 400 <= LARGEST * 1.1
            assert min(w, h) >= MIN_PASTED_SIDE
            inside = image[y0:y1, x0:x1, 0].astype(int)
            # its middle shows the fish's difference from its own water at an opacity of
            # 0.5-1, on the frame's water: between 40 + 80 and 40 + 160
            if w >= 16:
                assert (
                    40 + 0.5 * (FISH - WATER) - 3 <= inside[h // 2, w // 2] <= 40 + FISH - WATER + 2
                )
                # and where the source box held water, the frame keeps its own water (a
                # plain blend of the cut-out would bring the source's 60 with it)
                assert abs(inside[h // 2, w // 8] - 40) <= 2
                checked_water += 1
            assert abs(inside[0, 0] - 40) <= 2  # the box's corner: the frame's water
            changed[y0:y1, x0:x1] = True
            pasted_count += 1
        assert (image[~changed] == frame[~changed]).all()  # nothing else moved
    assert pasted_count >= 40 and checked_water >= 10


def test_frames_without_fish_take_pasted_ones_and_tiny_frames_take_none(tmp_path):
    cutouts = FishCutouts.from_frames(_frames(tmp_path, [[(20, 30, 100, 70)]]), _read)
    rng = np.random.default_rng(1)
    empty, no_class = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    image, cxcywh, class_id = cutouts.paste(
        np.full((300, 400, 3), 50, np.uint8), empty, no_class, rng
    )
    assert 1 <= len(cxcywh) == len(class_id) <= 3 and (image != 50).any()
    tiny = np.full((5, 5, 3), 50, np.uint8)  # no fish fits: left as it is
    image, cxcywh, class_id = cutouts.paste(tiny, empty, no_class, rng)
    assert np.array_equal(image, tiny) and len(cxcywh) == len(class_id) == 0


def test_augmented_samples_carry_the_pasted_fishs_boxes(tmp_path):
    frames = _frames(tmp_path, [[(20, 30, 100, 70)]])
    cutouts = FishCutouts.from_frames(frames, _read)
    plain = [centernet.augmented(frames[0], 96, np.random.default_rng(seed)) for seed in range(10)]
    # with no chance of pasting, the same draws as a run without cut-outs: runs repeat
    unpasted = [
        centernet.augmented(frames[0], 96, np.random.default_rng(seed), cutouts=cutouts)
        for seed in range(10)
    ]
    for (a, a_boxes, _), (b, b_boxes, _) in zip(plain, unpasted, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a_boxes, b_boxes)
    rng = np.random.default_rng(2)
    pasted = [
        centernet.augmented(frames[0], 96, rng, cutouts=cutouts, paste_chance=1.0)
        for _ in range(10)
    ]
    assert all(len(xyxy) == len(class_id) for _, xyxy, class_id in pasted)
    assert max(len(boxes) for _, boxes, _ in plain) <= 1
    assert sum(len(boxes) for _, boxes, _ in pasted) > sum(len(b) for _, b, _ in plain) + 5
