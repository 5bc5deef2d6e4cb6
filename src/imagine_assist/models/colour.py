"""Per-frame colour normalisation in front of a detector, the same in training and serving.

Why: underwater cameras differ most in colour cast and haze, and a detector trained on a
few cameras is unsure on a new one's colours (docs/models.md: on unseen DeepFish habitats the
fish model puts its peak on the fish but scores it low). Taking the cast out (grey world:
each channel scaled to the frame's mean grey) and the haze (CLAHE on the lightness: local
contrast stretched, clipped so noise is not) makes frames of different cameras look more
alike before the network sees them. A model records which normalisation it was trained with
(checkpoint and ONNX metadata), so serving can never apply another one.
"""

from __future__ import annotations

import cv2
import numpy as np

from imagine_assist.errors import UserError

NONE = "none"
GREYWORLD_CLAHE = "greyworld-clahe"
NORMALISATIONS = (NONE, GREYWORLD_CLAHE)
# CLAHE's clip limit and tile grid: OpenCV's usual values; stronger clips amplify noise in
# dark, turbid frames (a limit of 4 scored no better on unseen cameras than 2)
CLAHE_CLIP, CLAHE_TILES = 2.0, (8, 8)


def check(name: str) -> str:
    if name not in NORMALISATIONS:
        raise UserError(
            f"unknown colour normalisation {name!r}: expected one of {', '.join(NORMALISATIONS)}"
        )
    return name


def greyworld(rgb: np.ndarray) -> np.ndarray:
    """Each channel scaled so that its mean is the mean of all three: a uniform cast goes."""
    means = rgb.reshape(-1, 3).mean(axis=0)
    gains = means.mean() / np.maximum(means, 1.0)
    return np.clip(rgb * gains.astype(np.float32), 0, 255).astype(np.uint8)


def clahe(rgb: np.ndarray) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of the lightness (Lab's L) only."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(CLAHE_CLIP, CLAHE_TILES).apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def normalise(rgb: np.ndarray, name: str) -> np.ndarray:
    """An RGB uint8 frame (H, W, 3) normalised by `name` (one of NORMALISATIONS)."""
    if check(name) == NONE:
        return rgb
    return clahe(greyworld(rgb))
