"""Small, faint fish pasted into training frames (`training.copy_paste`)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imagine_assist.errors import UserError
from imagine_assist.training import centernet
from imagine_assist.training.copy_paste import LARGEST, SMALLEST, FishCutouts

WATER = 60  # grey water in the source frames
FISH = 220


def _frames(folder, boxes_per_frame):
    """Frames of grey water with a bright elliptic fish filling each labelled box."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    for index, boxes in enumerate(boxes_per_frame):
        image = np.full((120, 160, 3), WATER, np.uint8)
        rows = []
        for x0, y0, x1, y1 in boxes:
            centre, axes = ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2)
            cv2.ellipse(image, centre, axes, 0, 0, 360, (FISH, FISH, FISH), -1)
            cx, cy, w, h = (x0 + x1) / 320, (y0 + y1) / 240, (x1 - x0) / 160, (y1 - y0) / 120
            rows.append(f"0 {cx} {cy} {w} {h}")
        cv2.imwrite(str(folder / "images" / f"{index}.png"), image)
        (folder / "labels" / f"{index}.txt").write_text("\n".join(rows) + "\n")
    return centernet.read_yolo_images(folder / "images")


def _read(path):
    return cv2.imread(str(path))[:, :, ::-1]


def test_fish_are_cut_at_their_boxes_and_too_small_ones_are_left(tmp_path):
    frames = _frames(tmp_path, [[(20, 30, 80, 60)], [(10, 10, 18, 40), (90, 50, 150, 90)], []])
    cutouts = FishCutouts.from_frames(frames, _read)
    # the 8 px wide fish is too narrow to shrink further; the two others are cut whole
    assert sorted(crop.shape[:2] for crop in cutouts.crops) == [(30, 60), (40, 60)]
    for crop in cutouts.crops:
        assert crop[crop.shape[0] // 2, crop.shape[1] // 2, 0] == FISH  # the body
        assert crop[0, 0, 0] == WATER  # a corner of the box is water
    assert len(FishCutouts.from_frames(frames, _read, limit=1)) == 1
    with pytest.raises(UserError, match="no fish"):
        FishCutouts.from_frames(frames[2:], _read)


def test_pasted_fish_are_small_faint_boxed_and_keep_the_frame_and_its_fish(tmp_path):
    cutouts = FishCutouts.from_frames(_frames(tmp_path, [[(20, 30, 100, 70)]]), _read)
    rng = np.random.default_rng(0)
    frame = np.full((300, 400, 3), 100, np.uint8)
    frame[40:80, 40:120] = 30  # a labelled dark fish in the frame
    own = np.array([[80 / 400, 60 / 300, 80 / 400, 40 / 300]], np.float32)
    pasted_count = 0
    for _ in range(30):
        image, cxcywh, class_id = cutouts.paste(frame, own, np.array([0]), rng, most=3)
        assert image.shape == frame.shape and frame[0, 0, 0] == 100  # the input is kept
        assert len(cxcywh) == len(class_id) and 2 <= len(cxcywh) <= 4
        assert (cxcywh[0] == own[0]).all()
        assert (image[40:80, 40:120] == 30).all()  # its own fish is never covered
        changed = np.zeros(frame.shape[:2], bool)
        for cx, cy, w, h in cxcywh[1:]:
            x0, y0 = round((cx - w / 2) * 400), round((cy - h / 2) * 300)
            x1, y1 = round((cx + w / 2) * 400), round((cy + h / 2) * 300)
            assert 0 <= x0 < x1 <= 400 and 0 <= y0 < y1 <= 300
            longer = max(x1 - x0, y1 - y0) / 400
            assert SMALLEST * 0.9 <= longer <= LARGEST * 1.1
            inside = image[y0:y1, x0:x1].astype(int)
            # its middle stands out by at least a quarter of the source fish's contrast (half
            # at the faintest veil, less what shrinking blurs); its corners are the frame's
            # own water
            h3, w3 = (y1 - y0) // 3, (x1 - x0) // 3
            middle = inside[h3 : y1 - y0 - h3, w3 : x1 - x0 - w3]
            assert middle[..., 0].max() > 100 + 0.25 * (FISH - WATER)
            assert abs(inside[0, 0, 0] - 100) <= 2
            changed[y0:y1, x0:x1] = True
            pasted_count += 1
        # nothing outside the pasted boxes moved
        assert (image[~changed] == frame[~changed]).all()
    assert pasted_count >= 40  # one to three a time, a free spot nearly always found


def test_augmented_samples_carry_the_pasted_fishs_boxes(tmp_path):
    frames = _frames(tmp_path, [[(20, 30, 100, 70)]])
    cutouts = FishCutouts.from_frames(frames, _read)
    rng = np.random.default_rng(2)
    plain = [len(centernet.augmented(frames[0], 96, rng)[1]) for _ in range(10)]
    pasted = [
        len(centernet.augmented(frames[0], 96, rng, cutouts=cutouts, paste_chance=1.0)[1])
        for _ in range(10)
    ]
    assert max(plain) <= 1 and sum(pasted) > sum(plain) + 5
