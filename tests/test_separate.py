"""The classical separator, the separation-line image and the object-level scores."""

import numpy as np
import pytest

from imagine_assist.models.separate import (
    crop_scale_bar,
    organism_mask,
    partition_foreground,
    score_separation,
    separation_lines,
    summarise,
    watershed_split,
)


def disc(shape, centre, radius) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(yy - centre[0], xx - centre[1]) <= radius


SHAPE = (120, 200)
LEFT, RIGHT = disc(SHAPE, (60, 60), 38), disc(SHAPE, (60, 130), 38)  # they overlap a little


def vignette(masks) -> np.ndarray:
    image = np.full((*SHAPE, 3), 245, np.uint8)
    for mask in masks:
        image[mask] = 120
    return image


def test_two_touching_discs_are_split_in_two():
    union = LEFT | RIGHT
    assert organism_mask(vignette([LEFT, RIGHT])).sum() == pytest.approx(union.sum(), rel=0.02)
    parts = watershed_split(union)
    assert len(parts) == 2
    assert sum(p.sum() for p in parts) == union.sum()  # every pixel goes to one organism
    truth = [LEFT & (np.arange(SHAPE[1]) < 95)[None, :], RIGHT & (np.arange(SHAPE[1]) >= 95)]
    scores = score_separation(parts, truth)
    assert scores["tp"] == 2 and scores["over_split"] == 0 and scores["under_split"] == 0


def test_a_single_round_organism_is_not_split():
    assert len(watershed_split(disc(SHAPE, (60, 100), 35))) == 1


def test_separation_lines_run_between_organisms_only():
    union = LEFT | RIGHT
    parts = watershed_split(union)
    lines = separation_lines(parts, SHAPE)
    ys, xs = np.nonzero(lines)
    assert len(xs) > 0 and np.all(np.abs(xs - 95) <= 3)  # along the neck between the discs
    assert separation_lines([LEFT], SHAPE).sum() == 0


def test_scores_count_over_and_under_splits():
    left_half = LEFT & (np.arange(SHAPE[1]) < 45)[None, :]  # a third: no IoU match
    right_half = LEFT & ~left_half
    over = score_separation([left_half, right_half, RIGHT], [LEFT, RIGHT])
    assert over["over_split"] == 1 and over["fp"] == 1  # the larger part still matches
    under = score_separation([LEFT | RIGHT], [LEFT, RIGHT])
    assert under["under_split"] == 1 and under["fn"] == 1
    perfect = summarise([score_separation([LEFT, RIGHT], [LEFT, RIGHT])])
    assert perfect["f1"] == 1.0 and perfect["over_split_rate"] == 0.0


def test_scale_bar_crop():
    image = np.zeros((100, 50, 3), np.uint8)
    assert crop_scale_bar(image, 12).shape == (88, 50, 3)
    assert crop_scale_bar(image, 0).shape == (100, 50, 3)
    with pytest.raises(ValueError):
        crop_scale_bar(image, 100)


def test_partition_gives_disjoint_masks_covering_the_foreground():
    foreground = LEFT | RIGHT | disc(SHAPE, (20, 185), 8)  # plus a blob the model missed

    def logits(mask, sure):
        return np.where(mask, sure, -5.0).astype(np.float32)

    sure_left, sure_right = logits(LEFT, 3.0), logits(RIGHT, 2.0)
    coarse_left = logits(disc(SHAPE, (60, 60), 30), 3.0)  # too small: misses a rim
    duplicate = logits(LEFT & (np.arange(SHAPE[1]) < 70), 1.0)
    masks = partition_foreground(np.stack([coarse_left, sure_right, duplicate]), foreground)
    assert len(masks) == 3  # left, right, and the missed blob; the duplicate is dropped
    stacked = np.stack(masks)
    assert (stacked.sum(axis=0) <= 1).all()  # disjoint
    np.testing.assert_array_equal(stacked.any(axis=0), foreground)  # cover it exactly
    left = max(masks, key=lambda m: (m & LEFT).sum())
    assert (left & LEFT).sum() / (left | LEFT).sum() > 0.9  # the rim went to the nearest organism
    assert masks[2].sum() == disc(SHAPE, (20, 185), 8).sum()
    assert partition_foreground(np.stack([sure_left]), np.zeros(SHAPE, bool)) == []
    assert len(partition_foreground(np.zeros((0, *SHAPE), np.float32), LEFT)) == 1


def test_an_instance_box_reaching_an_organism_that_does_not_touch_its_own_gives_it_back():
    """A vignette's instance masks are read over their whole boxes: a box that took in a
    second organism 60 px away put both into one EcoTaxa object (a cut-out of two animals).
    Parts of one organism a few pixels apart (a leg the threshold cut off) stay together."""
    body, apart = disc(SHAPE, (60, 50), 30), disc(SHAPE, (60, 170), 15)
    wide = np.where(disc(SHAPE, (60, 110), 200), 3.0, -5.0)[None].astype(np.float32)
    masks = partition_foreground(wide, body | apart)
    assert sorted(int(m.sum()) for m in masks) == sorted([int(apart.sum()), int(body.sum())])
    # the far organism found by a less sure instance goes to it, not to the wide one
    own = np.where(apart, 1.0, -5.0)[None].astype(np.float32)
    masks = partition_foreground(np.concatenate([wide, own]), body | apart)
    assert sorted(int(m.sum()) for m in masks) == sorted([int(apart.sum()), int(body.sum())])
    leg = np.zeros(SHAPE, bool)
    leg[59:61, 96:110] = True  # 16 px from the body
    masks = partition_foreground(wide, body | leg)
    assert len(masks) == 1 and masks[0].sum() == (body | leg).sum()
