"""Synthetic samples: reproducible, exact ground truth, and dataset files that agree with it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import yaml

from imagine_assist.families import get_family
from imagine_assist.samples import (
    FISH_SPECIES,
    LITTER_CATEGORIES,
    Sample,
    generate_fish,
    generate_litter,
    write_dataset,
)
from imagine_assist.samples import litter as litter_module
from imagine_assist.samples.fish import MIN_VISIBLE_PIXELS, fish_scene
from imagine_assist.samples.litter import litter_frame
from imagine_assist.samples.litter_items import DRAW_ITEM, MIN_LENGTH
from imagine_assist.samples.sprites import Sun, box, paint

SMALL = {"width": 1600, "height": 1200}  # litter frames, except for the default-size check


@pytest.fixture(scope="module")
def fish() -> list[Sample]:
    return list(generate_fish(24, seed=7))


@pytest.fixture(scope="module")
def litter() -> list[Sample]:
    return list(generate_litter(3, seed=7, **SMALL))


def same(a: list[Sample], b: list[Sample]) -> bool:
    return all(
        x.name == y.name
        and np.array_equal(x.image, y.image)
        and [(o.label, o.xyxy) for o in x.objects] == [(o.label, o.xyxy) for o in y.objects]
        for x, y in zip(a, b, strict=True)
    )


def test_fish_is_reproducible_and_seeded(fish):
    again = list(generate_fish(4, seed=7))
    assert same(fish[:4], again)
    pairs = zip(fish[0].objects, again[0].objects, strict=True)
    assert all(np.array_equal(o.mask, p.mask) for o, p in pairs)
    other = list(generate_fish(4, seed=8))
    assert not any(np.array_equal(x.image, y.image) for x, y in zip(fish[:4], other, strict=True))


def test_a_fish_frame_can_be_regenerated_alone(fish):
    image, objects = fish_scene(np.random.default_rng([7, 5]))
    assert np.array_equal(image, fish[5].image)
    assert [o.xyxy for o in objects] == [o.xyxy for o in fish[5].objects]


def test_litter_is_reproducible_and_seeded(litter):
    assert same(litter[:2], list(generate_litter(2, seed=7, **SMALL)))
    other = list(generate_litter(2, seed=8, **SMALL))
    assert not any(np.array_equal(x.image, y.image) for x, y in zip(litter, other, strict=False))


def test_fish_boxes_are_the_exact_extent_of_disjoint_visible_masks(fish):
    for sample in fish:
        height, width = sample.image.shape[:2]
        assert sample.image.dtype == np.uint8 and sample.image.shape == (288, 384, 3)
        assert len(sample.objects) <= 6
        if sample.objects:
            stacked = np.stack([o.mask for o in sample.objects])
            assert stacked.sum(0).max() == 1  # a pixel shows one fish at most
        for obj in sample.objects:
            assert obj.label in FISH_SPECIES
            assert obj.mask.dtype == bool and obj.mask.shape == (height, width)
            assert obj.mask.sum() >= MIN_VISIBLE_PIXELS
            ys, xs = np.nonzero(obj.mask)
            assert obj.xyxy == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            x1, y1, x2, y2 = obj.xyxy
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height


def test_fish_frames_show_every_species(fish):
    assert {o.label for s in fish for o in s.objects} == set(FISH_SPECIES)
    assert sum(len(s.objects) for s in fish) >= 24


def test_litter_boxes_lie_in_the_frame_and_never_overlap(litter):
    for sample in litter:
        assert sample.image.shape == (1200, 1600, 3) and sample.image.dtype == np.uint8
        assert 10 <= len(sample.objects) <= 120
        for obj in sample.objects:
            x1, y1, x2, y2 = obj.xyxy
            assert obj.label in LITTER_CATEGORIES and obj.mask is None
            assert 0 <= x1 < x2 <= 1600 and 0 <= y1 < y2 <= 1200
            assert 8 <= max(x2 - x1, y2 - y1) <= 200
        for a, b in combinations([o.xyxy for o in sample.objects], 2):
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    assert {o.label for s in litter for o in s.objects} == set(LITTER_CATEGORIES)


def test_a_litter_frame_can_be_regenerated_alone(litter):
    image, objects = litter_frame(np.random.default_rng([7, 2]), **SMALL)
    assert np.array_equal(image, litter[2].image)
    assert [(o.label, o.xyxy) for o in objects] == [(o.label, o.xyxy) for o in litter[2].objects]


def test_litter_categories_keep_the_first_models_classes_first():
    assert LITTER_CATEGORIES[:4] == ("bottle", "bag", "can", "rope")
    assert set(LITTER_CATEGORIES[4:]) == {"fragment", "polystyrene", "film", "textile"}
    assert get_family("litter").labels == LITTER_CATEGORIES
    assert set(DRAW_ITEM) == set(LITTER_CATEGORIES)


@pytest.mark.parametrize("category", LITTER_CATEGORIES)
def test_a_litter_item_box_is_the_exact_extent_of_what_it_paints(category):
    """On a flat ground, an item changes no pixel outside its box, and its shape touches all
    four sides of the box, at every ground scale and for see-through film too."""
    rng = np.random.default_rng(11)
    for scale in (0.45, 0.7, 1.0):
        for _ in range(4):
            sprite = DRAW_ITEM[category](rng, scale)
            frame = np.full((260, 260, 3), 90, dtype=np.uint8)
            paint(frame, sprite, 20, 30, Sun(None))
            x1, y1, x2, y2 = (int(v) for v in box(sprite, 20, 30))
            changed = np.any(frame != 90, axis=2)
            outside = changed.copy()
            outside[y1:y2, x1:x2] = False
            assert not outside.any()
            inside = sprite.coverage[y1 - 30 : y2 - 30, x1 - 20 : x2 - 20] > 0
            assert (
                inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            )
            assert max(x2 - x1, y2 - y1) >= MIN_LENGTH - 2


def test_distractors_get_no_box(monkeypatch):
    """Stones, shells, wood, seaweed, leaves and plants are drawn but never labelled: with no
    litter drawn, a frame full of them has no objects."""
    monkeypatch.setattr(
        litter_module, "_ITEM_COUNTS", dict.fromkeys(("water", "beach", "mud", "dump"), (0, 0))
    )
    for index in range(6):  # mud shores, a beach, open water and a dump
        image, objects = litter_frame(np.random.default_rng([7, index]), 800, 600)
        assert objects == []
        assert image.std() > 5  # not a blank ground: the distractors and cover are there


def test_litter_frames_default_to_drone_resolution():
    sample = next(iter(generate_litter(1, seed=3)))
    height, width = sample.image.shape[:2]
    assert width >= 4000 and height >= 3000
    assert sample.name == "litter_00000.jpg"


def read_yolo(path: Path, width: int, height: int) -> list[tuple[int, list[float]]]:
    rows = []
    for line in path.read_text().splitlines():
        cls, cx, cy, w, h = line.split()
        rows.append((int(cls), [float(cx), float(cy), float(w), float(h)]))
    return rows


def yolo_of(xyxy: tuple[float, ...], width: int, height: int) -> list[float]:
    x1, y1, x2, y2 = xyxy
    return [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]


@pytest.mark.parametrize("family", ["fish", "litter"])
def test_written_dataset_matches_the_ground_truth(family, fish, litter, tmp_path):
    samples, labels = (fish[:6], FISH_SPECIES) if family == "fish" else (litter, LITTER_CATEGORIES)
    files = write_dataset(tmp_path / family, samples, labels)
    assert files.image_count == len(samples) and files.labels == tuple(labels)
    config = yaml.safe_load(files.data_yaml.read_text())
    assert config["names"] == dict(enumerate(labels))

    root = ET.parse(files.cvat_xml).getroot()
    images = {node.get("name"): node for node in root.iter("image")}
    assert [n.findtext("name") for n in root.iter("label")] == list(labels)
    for sample in samples:
        width, height = sample.size
        label_file = tmp_path / family / "labels" / sample.split / f"{Path(sample.name).stem}.txt"
        rows = read_yolo(label_file, width, height)
        assert len(rows) == len(sample.objects)
        for (cls, values), obj in zip(rows, sample.objects, strict=True):
            assert labels[cls] == obj.label
            assert values == pytest.approx(yolo_of(obj.xyxy, width, height), rel=1e-4, abs=1e-6)
        assert (tmp_path / family / "images" / sample.split / sample.name).is_file()
        node = images[sample.name]
        assert (int(node.get("width")), int(node.get("height"))) == (width, height)
        check_cvat_shapes(node, sample)


def check_cvat_shapes(node: ET.Element, sample: Sample) -> None:
    """Boxes for litter; fish carry masks, which CVAT stores as `<mask>` with a bbox crop."""
    shapes = list(node)
    assert len(shapes) == len(sample.objects)
    for shape, obj in zip(shapes, sample.objects, strict=True):
        assert shape.get("label") == obj.label
        if obj.mask is None:
            assert shape.tag == "box"
            got = [float(shape.get(k)) for k in ("xtl", "ytl", "xbr", "ybr")]
        else:
            assert shape.tag == "mask"
            left, top = float(shape.get("left")), float(shape.get("top"))
            got = [left, top, left + float(shape.get("width")), top + float(shape.get("height"))]
        assert got == pytest.approx(obj.xyxy, abs=0.01)


def test_the_samples_command_refuses_no_images_and_a_folder_holding_a_dataset(tmp_path, capsys):
    from imagine_assist.app.main import main

    for count in ("0", "-2"):  # was a traceback: data.yaml written into a folder never made
        with pytest.raises(SystemExit):
            main(["samples", "fish", "--out", str(tmp_path / "none"), "-n", count])
        assert "must be 1 or more" in capsys.readouterr().err
    out = tmp_path / "fish"
    assert main(["samples", "fish", "--out", str(out), "-n", "3"]) == 0
    images = sorted(out.rglob("*.jpg"))
    # a second, smaller set over it would leave the first one's images beside its labels
    assert main(["samples", "fish", "--out", str(out), "-n", "1", "--seed", "5"]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    assert sorted(out.rglob("*.jpg")) == images
