"""Synthetic ZooScan vignettes: reproducible, exact disjoint masks, touching multiples."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from imagine_assist.samples import (
    PLANKTON_LABELS,
    SAMPLE_FAMILIES,
    PlanktonSample,
    generate_plankton,
    vignette,
    write_dataset,
)
from imagine_assist.samples.plankton import ORGANISM_KINDS, PIXELS_PER_MM

COUNT = 200


@pytest.fixture(scope="module")
def samples() -> list[PlanktonSample]:
    return list(generate_plankton(COUNT, seed=11))


def touching(masks: list[np.ndarray]) -> bool:
    """Whether the masks form one group, each linked to the rest by 8-connected contact."""
    kernel = np.ones((3, 3), np.uint8)
    grown = [cv2.dilate(m.astype(np.uint8), kernel).astype(bool) for m in masks]
    reached, frontier = {0}, [0]
    while frontier:
        i = frontier.pop()
        for j in range(len(masks)):
            if j not in reached and (grown[i] & masks[j]).any():
                reached.add(j)
                frontier.append(j)
    return len(reached) == len(masks)


def test_vignettes_are_reproducible_and_seeded(samples):
    again = list(generate_plankton(4, seed=11))
    for x, y in zip(samples[:4], again, strict=True):
        assert x.name == y.name and np.array_equal(x.image, y.image)
        assert [o.xyxy for o in x.objects] == [o.xyxy for o in y.objects]
        assert all(
            np.array_equal(o.mask, p.mask) for o, p in zip(x.objects, y.objects, strict=True)
        )
    other = list(generate_plankton(4, seed=12))
    assert not any(
        x.image.shape == y.image.shape and np.array_equal(x.image, y.image)
        for x, y in zip(again, other, strict=True)
    )


def test_a_vignette_can_be_regenerated_alone(samples):
    rng = np.random.default_rng([11, 7])
    multiple = bool(rng.random() < 0.45)
    image, objects, meta = vignette(rng, multiple)
    assert np.array_equal(image, samples[7].image)
    assert meta["multiple"] == samples[7].multiple
    assert [o.xyxy for o in objects] == [o.xyxy for o in samples[7].objects]


@pytest.mark.slow  # seconds of work: the full tier
def test_images_look_like_zooscan_vignettes(samples):
    for s in samples:
        height, width = s.image.shape[:2]
        assert s.image.dtype == np.uint8 and s.image.ndim == 3
        assert np.array_equal(s.image[..., 0], s.image[..., 1])  # grey in three channels
        assert np.array_equal(s.image[..., 0], s.image[..., 2])
        assert 150 <= max(width, height) <= 1400
        assert s.name.startswith("plankton_") and s.name.endswith(".jpg")
        assert s.split in ("train", "val", "test")
        grey = s.image[..., 0]
        background = ~np.any([o.mask for o in s.objects], axis=0)
        background[-s.scale_bar_rows :] = False
        assert np.median(grey[background]) >= 240
        for obj in s.objects:  # translucent, but darker than the white around them
            assert grey[obj.mask].mean() < np.median(grey[background]) - 10


def test_masks_are_exact_disjoint_and_boxed(samples):
    for s in samples:
        height, width = s.image.shape[:2]
        assert len(s.kinds) == len(s.objects)
        assert set(s.kinds) <= set(ORGANISM_KINDS)
        stacked = np.stack([o.mask for o in s.objects])
        assert stacked.sum(0).max() == 1
        for obj in s.objects:
            assert obj.label == PLANKTON_LABELS[0]
            assert obj.mask.dtype == bool and obj.mask.shape == (height, width)
            assert obj.mask.any()
            ys, xs = np.nonzero(obj.mask)
            assert obj.xyxy == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_singles_hold_one_organism_and_multiples_touching_ones(samples):
    for s in samples:
        if s.multiple:
            assert 2 <= len(s.objects) <= 4 and s.vignette_class == "multiple"
            assert touching([o.mask for o in s.objects]), s.name
        else:
            assert len(s.objects) == 1 and s.vignette_class == "single"


def test_the_scale_bar_strip_holds_no_organism(samples):
    for s in samples:
        strip = s.scale_bar_rows
        assert strip > 0
        assert not any(o.mask[-strip:].any() for o in s.objects)
        bar = s.image[-strip:, :, 0] < 60
        longest = bar.sum(1).max()
        assert PIXELS_PER_MM <= longest <= PIXELS_PER_MM + 40  # the bar, and a little label


def test_the_share_of_multiples_is_as_asked(samples):
    share = np.mean([s.multiple for s in samples])
    assert 0.35 <= share <= 0.55
    assert not any(s.multiple for s in generate_plankton(8, seed=1, multiple_share=0.0))
    assert all(s.multiple for s in generate_plankton(8, seed=1, multiple_share=1.0))


def test_a_size_limit_is_respected():
    for s in generate_plankton(12, seed=3, multiple_share=1.0, max_size=400):
        assert max(s.size) <= 400 and len(s.objects) >= 2


def test_written_dataset_has_yolo_labels_and_cvat_masks(samples, tmp_path):
    assert SAMPLE_FAMILIES["plankton"].labels == PLANKTON_LABELS
    chosen = samples[:10]
    files = write_dataset(tmp_path / "plankton", chosen, PLANKTON_LABELS)
    assert files.image_count == len(chosen)
    images = {n.get("name"): n for n in ET.parse(files.cvat_xml).getroot().iter("image")}
    for s in chosen:
        stem = s.name.rsplit(".", 1)[0]
        lines = (tmp_path / "plankton" / "labels" / s.split / f"{stem}.txt").read_text().split("\n")
        assert len([x for x in lines if x]) == len(s.objects)
        assert all(x.startswith("0 ") for x in lines if x)
        shapes = list(images[s.name])
        assert [shape.tag for shape in shapes] == ["mask"] * len(s.objects)
        for shape, obj in zip(shapes, s.objects, strict=True):
            left, top = float(shape.get("left")), float(shape.get("top"))
            box = (left, top, left + float(shape.get("width")), top + float(shape.get("height")))
            assert box == pytest.approx(obj.xyxy)


def test_a_tiny_partner_that_fills_its_box_is_still_attached() -> None:
    # A real organism shrunk to a few pixels can fill its whole box; the layout once found
    # no outline on it and crashed mid-dataset (a 3x8 px partner, seed 3 of the real recipe).
    from imagine_assist.samples.plankton import Organism

    def source(rng: np.random.Generator, count: int, scale: float) -> list[Organism]:
        disc = np.zeros((61, 61), np.float32)
        cv2.circle(disc, (30, 30), 28, 0.8, -1)
        block = np.full((3, 8), 0.8, np.float32)
        kinds = [("disc", disc)] + [("speck", block)] * (count - 1)
        return [Organism(kind, alpha, alpha > 0, np.zeros(2, int)) for kind, alpha in kinds]

    rng = np.random.default_rng(0)
    for _ in range(20):  # many contact points, none without an outline
        image, objects, meta = vignette(rng, multiple=True, source=source)
        assert meta["multiple"]
        assert sorted(set(meta["kinds"])) == ["disc", "speck"]
        assert len(objects) == len(meta["kinds"])
        assert touching([o.mask for o in objects])


def test_a_partner_shrunk_to_nothing_is_drawn_again() -> None:
    # A real organism scaled to a 3x8 px box can keep no pixel at all; the layout crashed on
    # it (seed 3 of the real separator recipe) where it should draw new organisms.
    from imagine_assist.samples.plankton import Organism

    def source(rng: np.random.Generator, count: int, scale: float) -> list[Organism]:
        disc = np.zeros((61, 61), np.float32)
        cv2.circle(disc, (30, 30), 28, 0.8, -1)
        vanished = np.zeros((3, 8), np.float32) if rng.random() < 0.5 else disc[20:40, 20:40]
        kinds = [("disc", disc)] + [("partner", vanished)] * (count - 1)
        return [Organism(kind, alpha, alpha > 0, np.zeros(2, int)) for kind, alpha in kinds]

    rng = np.random.default_rng(1)
    for _ in range(10):
        image, objects, meta = vignette(rng, multiple=True, source=source)
        assert len(objects) == len(meta["kinds"]) >= 2
        assert all(o.mask.any() for o in objects)
