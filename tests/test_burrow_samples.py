"""Synthetic Nephrops tows: reproducible, exact boxes, stable tracks, files that agree."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections import defaultdict

import cv2
import numpy as np
import pytest

from imagine_assist.samples import (
    BURROW_LABELS,
    SAMPLE_FAMILIES,
    TowGeometry,
    counts_per_minute,
    generate_tow,
    tow_detection_samples,
    write_dataset,
    write_tow,
)
from imagine_assist.samples.burrows import MIN_VISIBLE_FRACTION

SEED, DENSITY = 11, 1.5  # dense seabed: plenty of openings in a few seconds


@pytest.fixture(scope="module")
def tow():
    return generate_tow(6, seed=SEED, density_per_m2=DENSITY)


@pytest.fixture(scope="module")
def frames(tow):
    return list(tow.frames())


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def grow(mask: np.ndarray, r: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def unclipped(box: tuple[float, ...], g: TowGeometry) -> bool:
    return box[0] > 0 and box[1] > 0 and box[2] < g.width and box[3] < g.height


def test_geometry_describes_a_standard_tow():
    g = TowGeometry()
    assert (g.fps, g.width, g.height) == (25, 640, 480)
    assert g.metres_per_pixel == pytest.approx(1 / 640)
    assert g.pixels_per_frame == pytest.approx(0.33 / 25 * 640)
    assert g.area_per_metre_m2 == pytest.approx(1.0)
    assert g.frame_area_m2 == pytest.approx(0.75)


def test_tows_are_reproducible_prefix_stable_and_seeded(tow, frames):
    short = generate_tow(2, seed=SEED, density_per_m2=DENSITY)
    assert short.frame_count == 50 and tow.frame_count == 150
    for a, b in zip(short.frames(), frames[:50], strict=True):
        assert np.array_equal(a.image, b.image)
        assert a.objects == b.objects
    alone = generate_tow(6, seed=SEED, density_per_m2=DENSITY).frame(97)
    assert np.array_equal(alone.image, frames[97].image) and alone.objects == frames[97].objects
    other = generate_tow(2, seed=SEED + 1, density_per_m2=DENSITY).frame(10)
    assert not np.array_equal(other.image, frames[10].image)


def test_frames_are_rgb_and_objects_are_well_formed(tow, frames):
    g = tow.geometry
    assert sum(len(f.objects) for f in frames) > 100
    for frame in frames:
        assert frame.image.shape == (g.height, g.width, 3) and frame.image.dtype == np.uint8
        ids = [o.track_id for o in frame.objects]
        assert ids == sorted(set(ids))
        for obj in frame.objects:
            x1, y1, x2, y2 = obj.xyxy
            assert all(float(v).is_integer() for v in obj.xyxy)
            assert 0 <= x1 < x2 <= g.width and 0 <= y1 < y2 <= g.height
            assert MIN_VISIBLE_FRACTION <= obj.visible_fraction <= 1.0


def others_than(masks: dict[int, np.ndarray], track_id: int) -> np.ndarray:
    others = np.zeros_like(masks[track_id])
    for other_id, other in masks.items():
        if other_id != track_id:
            others |= other
    return others


def test_boxes_are_the_exact_extent_of_dark_opening_pixels(tow, frames):
    areas = defaultdict(set)
    for frame in frames[::3]:
        masks = tow.masks(frame.index)
        assert sorted(masks) == [o.track_id for o in frame.objects]
        lum = grey(frame.image)
        for obj in frame.objects:
            mask = masks[obj.track_id]
            ys, xs = np.nonzero(mask)
            assert obj.xyxy == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            areas[obj.track_id].add(round(mask.sum() / obj.visible_fraction, 6))
            around = grow(mask, 8) & ~grow(mask, 3) & ~grow(others_than(masks, obj.track_id), 3)
            assert np.median(lum[mask]) < 0.7 * np.median(lum[around])
    assert all(len(area) == 1 for area in areas.values())  # the fraction is of one whole opening


def test_masks_sit_exactly_on_the_dark_edges(tow, frames):
    """Across each side of the openings, the step from dark to mud is sharpest exactly at the
    mask's boundary: a mask off by one pixel either way would see a weaker step."""
    shifts, sides = (-1, 0, 1), ((0, 1), (0, -1), (1, 1), (1, -1))  # (axis, outward step)
    inner = {(shift, side): [] for shift in shifts for side in sides}
    outer = {key: [] for key in inner}
    for frame in frames[::3]:
        if frame.motion_blur:
            continue
        lum, masks = grey(frame.image), tow.masks(frame.index)
        for track_id, mask in masks.items():
            others = others_than(masks, track_id)
            for shift, (axis, step) in inner:
                moved = np.roll(mask, shift * step, axis)
                edge = moved & ~np.roll(moved | others, -step, axis)
                edge[[0, -1], :] = edge[:, [0, -1]] = False
                inner[shift, (axis, step)].extend(lum[edge])
                outer[shift, (axis, step)].extend(lum[np.roll(edge, step, axis)])
    for side in sides:
        step = {s: np.median(inner[s, side]) / np.median(outer[s, side]) for s in shifts}
        assert len(inner[0, side]) > 500
        assert step[0] < 0.85 and step[0] < step[-1] and step[0] < step[1]


def test_tracks_are_stable_and_move_down_with_the_camera(tow, frames):
    g = tow.geometry
    system_of: dict[int, int] = {}
    compared = 0
    for before, after in zip(frames, frames[1:], strict=False):
        then = {o.track_id: o.xyxy for o in before.objects}
        shifts = set()
        for obj in after.objects:
            assert system_of.setdefault(obj.track_id, obj.system_id) == obj.system_id
            box = then.get(obj.track_id)
            if box is not None and unclipped(box, g) and unclipped(obj.xyxy, g):
                assert (box[2] - box[0], box[3] - box[1]) == (
                    obj.xyxy[2] - obj.xyxy[0],
                    obj.xyxy[3] - obj.xyxy[1],
                )
                shifts.add((obj.xyxy[0] - box[0], obj.xyxy[1] - box[1]))
        assert len(shifts) <= 1  # everything on the seabed moves together
        assert shifts <= {tuple(tow.offsets[before.index] - tow.offsets[after.index])}
        for dx, dy in shifts:
            assert 0.4 * g.pixels_per_frame <= dy <= 1.6 * g.pixels_per_frame
            assert abs(dx) <= 4
        compared += len(shifts)
    assert compared > 100


def test_systems_group_two_to_four_openings_and_know_when_they_appear(tow, frames):
    assert tow.systems
    seen_first: dict[int, int] = {}
    for frame in frames:
        for obj in frame.objects:
            seen_first.setdefault(obj.system_id, frame.index)
    by_id = {s.system_id: s for s in tow.systems}
    assert [s.system_id for s in tow.systems] == list(range(1, len(tow.systems) + 1))
    assert seen_first == {s.system_id: s.first_frame for s in tow.systems}
    firsts = [s.first_frame for s in tow.systems]
    assert firsts == sorted(firsts)
    opening_ids = [i for s in tow.systems for i in s.opening_ids]
    assert opening_ids == list(range(1, len(opening_ids) + 1))
    for system in tow.systems:
        assert 2 <= len(system.opening_ids) <= 4
    for frame in frames:
        for obj in frame.objects:
            assert obj.track_id in by_id[obj.system_id].opening_ids


def test_counts_per_minute_cover_the_tow_and_match_the_density():
    tow = generate_tow(150, seed=2)
    counts = counts_per_minute(tow)
    assert [minute for minute, _ in counts] == [0, 1, 2]
    assert sum(n for _, n in counts) == len(tow.systems)
    for minute, n in counts:
        assert n == sum(tow.minute_of(s.first_frame) == minute for s in tow.systems)
    assert tow.tow_length_m == pytest.approx(150 * 0.33, rel=0.1)
    # systems straddling the strip's edges are counted too, so slightly above the density
    assert 0.45 < len(tow.systems) / tow.surveyed_area_m2 < 0.85


@pytest.mark.slow  # renders a tow to video
def test_write_tow_writes_a_video_cvat_xml_and_csvs_that_agree(tmp_path):
    tow = generate_tow(4, seed=3, density_per_m2=DENSITY)
    files = write_tow(tow, tmp_path / "tow")
    g = tow.geometry

    video = cv2.VideoCapture(str(files.video))
    count = 0
    while True:
        ok, image = video.read()
        if not ok:
            break
        assert image.shape == (g.height, g.width, 3)
        count += 1
    video.release()
    assert count == tow.frame_count

    with files.ground_truth.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    truth = {
        (int(r["frame"]), int(r["system_id"]), *(float(r[k]) for k in ("x1", "y1", "x2", "y2")))
        for r in rows
    }
    tracks_in_csv = {int(r["track_id"]) for r in rows}

    root = ET.parse(files.annotations).getroot()
    assert root.findtext("meta/task/size") == str(tow.frame_count)
    assert [n.text for n in root.iter("name")] == list(BURROW_LABELS)
    tracks = root.findall("track")
    assert len(tracks) == len(tracks_in_csv)
    boxes = set()
    for track in tracks:
        assert track.get("label") == "burrow"
        for box in track.findall("box"):
            if box.get("outside") == "0":
                coords = (float(box.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
                boxes.add((int(box.get("frame")), int(track.get("group_id")), *coords))
    assert boxes == truth

    with files.counts.open() as handle:
        assert [(int(r["minute"]), int(r["new_systems"])) for r in csv.DictReader(handle)] == (
            counts_per_minute(tow)
        )


@pytest.mark.slow  # seconds of work: the full tier
def test_detection_samples_are_deterministic_and_make_a_dataset(tmp_path):
    assert SAMPLE_FAMILIES["burrow"].labels == BURROW_LABELS
    samples = list(SAMPLE_FAMILIES["burrow"].generate(6, seed=4))
    again = list(tow_detection_samples(6, seed=4))
    assert [s.name for s in samples] == [f"burrow_{i:05d}.jpg" for i in range(6)]
    for a, b in zip(samples, again, strict=True):
        assert np.array_equal(a.image, b.image) and a.split == b.split
        assert [(o.label, o.xyxy) for o in a.objects] == [(o.label, o.xyxy) for o in b.objects]
    assert sum(len(s.objects) for s in samples) > 0
    files = write_dataset(tmp_path / "ds", samples, BURROW_LABELS)
    assert files.image_count == 6
    per_split = defaultdict(int)
    for sample in samples:
        per_split[sample.split] += 1
        label = files.root / "labels" / sample.split / sample.name.replace(".jpg", ".txt")
        lines = label.read_text().splitlines()
        assert len(lines) == len(sample.objects)
        assert all(line.startswith("0 ") for line in lines)
    assert set(per_split) <= {"train", "val", "test"}
