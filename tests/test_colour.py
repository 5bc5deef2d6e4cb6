"""Per-frame colour normalisation (`models.colour`): what it does to a frame a user would
recognise as "blue and hazy", and that a model's normalisation name is checked."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imagine_assist.errors import UserError
from imagine_assist.models import colour


def hazy_blue_frame() -> np.ndarray:
    """A dark fish on sand under a blue-green cast and haze: every channel squeezed into a
    narrow band, blue far above red."""
    rng = np.random.default_rng(0)
    grey = np.full((120, 160), 150.0)
    grey[40:80, 50:110] = 60.0  # the fish
    grey += rng.normal(0, 4, grey.shape)
    haze = 0.35 * grey + 0.65 * 170  # contrast lost to scattered light
    cast = np.array([0.55, 0.9, 1.1])  # red absorbed first
    return np.clip(haze[:, :, None] * cast, 0, 255).astype(np.uint8)


def test_greyworld_takes_the_cast_out():
    frame = hazy_blue_frame()
    means = frame.reshape(-1, 3).mean(0)
    assert means[2] - means[0] > 60  # blue well above red before
    balanced = colour.greyworld(frame).reshape(-1, 3).mean(0)
    assert np.ptp(balanced) < 2.0  # the three channels' means meet
    assert abs(balanced.mean() - means.mean()) < 2.0  # and the brightness stays


def test_clahe_gives_back_some_of_the_contrast_the_haze_took():
    frame = hazy_blue_frame()

    def spread(rgb):  # of the lightness, from its 5th to its 95th percentile
        low, high = np.percentile(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[:, :, 0], (5, 95))
        return high - low

    assert spread(colour.clahe(frame)) > 1.2 * spread(frame)


def test_normalise_is_both_steps_and_none_leaves_the_frame_alone():
    frame = hazy_blue_frame()
    assert colour.normalise(frame, colour.NONE) is frame
    normalised = colour.normalise(frame, colour.GREYWORLD_CLAHE)
    assert normalised.shape == frame.shape and normalised.dtype == np.uint8
    assert np.array_equal(normalised, colour.clahe(colour.greyworld(frame)))


def test_an_unknown_normalisation_is_a_clear_error():
    with pytest.raises(UserError, match="unknown colour normalisation 'sepia'"):
        colour.normalise(hazy_blue_frame(), "sepia")


def test_a_black_channel_does_not_divide_by_zero():
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[:, :, 1] = 100
    assert np.isfinite(colour.greyworld(frame).astype(float)).all()
