"""The dump setting of the litter frames: dense, overlapping, weathered litter, honest boxes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from imagine_assist.samples import generate_litter, sprites
from imagine_assist.samples.litter import (
    DUMP_SHARE,
    LITTER_CATEGORIES,
    SETTINGS,
    draw_setting,
    litter_frame,
)
from imagine_assist.samples.litter_items import DRAW_ITEM, worn

WIDTH, HEIGHT = 1600, 1200
SEED = 11


def dump_indices(seed: int, count: int) -> list[int]:
    """The first `count` frame indices of a seed whose setting is a dump."""
    found = (i for i in range(1000) if draw_setting(np.random.default_rng([seed, i])) == "dump")
    return [next(found) for _ in range(count)]


def recorded_dump(index: int):
    """A dump frame, the items' pastes in throwing order, and the same frame with no item."""
    pasted = []
    paste = sprites.Turned.paste

    def record(turned, frame, x0, y0):
        pasted.append((turned, x0, y0))
        paste(turned, frame, x0, y0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sprites.Turned, "paste", record)
        image, objects = litter_frame(np.random.default_rng([SEED, index]), WIDTH, HEIGHT)
        patch.setattr(sprites.Turned, "paste", lambda turned, frame, x0, y0: None)
        bare, again = litter_frame(np.random.default_rng([SEED, index]), WIDTH, HEIGHT)
    assert [o.xyxy for o in again] == [o.xyxy for o in objects]  # the same throws, unpainted
    return image, objects, pasted, bare


@pytest.fixture(scope="module")
def dumps():
    return [recorded_dump(index) for index in dump_indices(SEED, 2)]


def test_a_dump_takes_its_share_and_the_other_settings_keep_theirs_in_proportion():
    drawn = Counter(draw_setting(np.random.default_rng([5, i])) for i in range(10000))
    assert set(drawn) == set(SETTINGS)
    expected = {"water": 0.25, "beach": 0.35, "mud": 0.40}
    assert drawn["dump"] / 10000 == pytest.approx(DUMP_SHARE, abs=0.015)
    for setting, share in expected.items():
        assert drawn[setting] / 10000 == pytest.approx(share * (1 - DUMP_SHARE), abs=0.015)


def test_a_frame_that_is_not_a_dump_draws_its_setting_as_before_dumps_existed():
    """Before dumps, the setting was one `choice` among three; frames that are not dumps get
    the same setting from the same draw, and the rest of the frame from the same stream."""
    for i in range(500):
        ours, before = np.random.default_rng([5, i]), np.random.default_rng([5, i])
        setting = draw_setting(ours)
        old = ("water", "beach", "mud")[before.choice(3, p=(0.25, 0.35, 0.40))]
        assert setting in ("dump", old)
        assert ours.random() == before.random()


@pytest.mark.slow  # seconds of work: the full tier
def test_a_full_size_dump_frame_holds_many_touching_items():
    index = dump_indices(3, 1)[0]
    image, objects = litter_frame(np.random.default_rng([3, index]), 4000, 3000)
    assert image.shape == (3000, 4000, 3)
    assert len(objects) >= 500
    assert {o.label for o in objects} <= set(LITTER_CATEGORIES)
    boxes = np.array([o.xyxy for o in objects])
    x1, y1, x2, y2 = boxes.T
    apart = (x2[:, None] <= x1) | (x2 <= x1[:, None]) | (y2[:, None] <= y1) | (y2 <= y1[:, None])
    overlapping = (~apart).sum(1) - 1  # each box overlaps itself
    assert (overlapping > 0).mean() > 0.3  # a heap, not a scatter


def test_dump_litter_lies_in_patches(dumps):
    """A low-frequency map decides where the dump is thick: most items lie in a small part
    of the frame, and some lie outside it."""
    for _, objects, _, _ in dumps:
        centres = np.array(
            [((x1 + x2) / 2, (y1 + y2) / 2) for x1, y1, x2, y2 in (o.xyxy for o in objects)]
        )
        tiles = np.bincount(
            (centres[:, 1] // 200).astype(int) * 8 + (centres[:, 0] // 200).astype(int),
            minlength=48,
        )
        busiest = np.sort(tiles)[::-1]
        assert busiest[:12].sum() > 0.5 * len(objects)  # a quarter of the frame holds most
        assert (tiles > 0).sum() > 12  # and the litter thins out, it does not stop


def test_dump_boxes_lie_in_the_frame(dumps):
    for image, objects, _, _ in dumps:
        assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
        assert len(objects) >= 100
        for obj in objects:
            x1, y1, x2, y2 = obj.xyxy
            assert obj.label in LITTER_CATEGORIES and obj.mask is None
            assert 0 <= x1 < x2 <= WIDTH and 0 <= y1 < y2 <= HEIGHT
            assert max(x2 - x1, y2 - y1) <= 200


def test_each_dump_box_is_the_extent_of_what_later_items_leave_visible(dumps):
    """Replaying the throws: every labelled item keeps at least half of its solid pixels in
    view, its box is exactly the extent of its pixels no later item hides, and those pixels
    are visibly different from the ground without items."""
    for image, objects, pasted, bare in dumps:
        assert len(pasted) == len(objects)
        hider = np.zeros((HEIGHT, WIDTH), dtype=np.int32)
        for number, (turned, x0, y0) in enumerate(pasted, start=1):
            h, w = turned.solid.shape
            hider[y0 : y0 + h, x0 : x0 + w][turned.solid] = number
        change = np.abs(image.astype(int) - bare.astype(int)).max(axis=2)
        for number, ((turned, x0, y0), obj) in enumerate(zip(pasted, objects, strict=True), 1):
            h, w = turned.solid.shape
            above = hider[y0 : y0 + h, x0 : x0 + w]
            ys, xs = np.nonzero(turned.touched & (above <= number))
            assert obj.xyxy == (x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1)
            shown = turned.solid & (above == number)
            assert shown.sum() >= 0.5 * turned.solid.sum()
            assert change[y0 : y0 + h, x0 : x0 + w][shown].mean() >= 10


def test_dump_frames_are_reproducible_per_seed_and_index(dumps):
    index = dump_indices(SEED, 1)[0]
    image, objects = litter_frame(np.random.default_rng([SEED, index]), WIDTH, HEIGHT)
    assert np.array_equal(image, dumps[0][0])
    assert [(o.label, o.xyxy) for o in objects] == [(o.label, o.xyxy) for o in dumps[0][1]]
    sample = list(generate_litter(index + 1, seed=SEED, width=WIDTH, height=HEIGHT))[-1]
    assert np.array_equal(sample.image, image)
    other = litter_frame(np.random.default_rng([SEED + 1, index]), WIDTH, HEIGHT)[0]
    assert not np.array_equal(other, image)


def saturation(colour: np.ndarray, weight: np.ndarray) -> float:
    """Mean spread between the strongest and weakest channel, weighted by coverage."""
    spread = colour.max(axis=-1) - colour.min(axis=-1)
    return float((spread * weight).sum() / weight.sum())


@pytest.mark.parametrize("category", LITTER_CATEGORIES)
def test_a_dump_item_is_paler_in_colour_than_a_fresh_one(category):
    rng = np.random.default_rng(4)
    fresh = [DRAW_ITEM[category](rng, 0.8) for _ in range(12)]
    weathered = [worn(rng, category, 0.8) for _ in range(12)]
    assert np.mean([saturation(s.colour, s.coverage) for s in weathered]) < np.mean(
        [saturation(s.colour, s.coverage) for s in fresh]
    )


@pytest.mark.parametrize("category", ["bottle", "bag", "film", "rope"])
def test_a_stamp_pastes_what_paint_paints(category):
    """A dump throws its items as stamps: unturned, a paste gives what `paint` gives, shadow
    included; turned, it is the same stamp turned."""
    rng = np.random.default_rng(8)
    sun = sprites.Sun((3.0, -2.0), 0.5)
    ground = rng.integers(40, 200, (200, 200, 3), dtype=np.uint8)
    for _ in range(3):
        sprite = DRAW_ITEM[category](rng, 0.7)
        painted, pasted = ground.copy(), ground.copy()
        sprites.paint(painted, sprite, 30, 40, sun)
        sprites.Stamp(sprite, sun).at(0).paste(pasted, 30, 40)
        assert np.abs(painted.astype(int) - pasted.astype(int)).max() <= 1
    stamp = sprites.Stamp(sprite, sprites.Sun(None))
    for turn in range(8):
        expected = np.rot90(sprite.coverage, turn % 4)
        expected = expected[:, ::-1] if turn >= 4 else expected
        assert np.array_equal(stamp.at(turn).touched, expected > 0)
