"""What real underwater cameras do to a picture, as random augmentations for training.

ultralytics' own augmentations vary hue, saturation, brightness, scale and flips. Real
observatory and survey cameras also differ in what those do not cover: turbid water that
veils everything in its colour, strong colour casts (red is lost first), low light with
sensor noise, soft focus or motion blur, heavy video compression and low resolution. Each
training image gets a random chain of these, so the model meets them before a user's camera
shows them to it. Boxes do not move: none of these effects changes geometry.
"""

from __future__ import annotations

import cv2
import numpy as np


def turbidity(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A veil of the water's own colour, and the loss of contrast and detail it brings."""
    water = np.array([rng.uniform(30, 110), rng.uniform(90, 170), rng.uniform(60, 160)])  # RGB
    veil = rng.uniform(0.2, 0.6)
    soft = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    return soft * (1 - veil) + water * veil


def colour_cast(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Channel gains as the water column gives them: red weak, green or blue strong."""
    gains = np.array([rng.uniform(0.4, 1.0), rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.3)])
    return image * gains


def low_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark, with a steep gamma and the sensor noise of high gain."""
    dark = 255 * (image / 255) ** rng.uniform(1.3, 2.2) * rng.uniform(0.4, 0.8)
    return dark + rng.normal(0, rng.uniform(2, 8), image.shape)


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Soft focus, or a short motion streak (a drifting camera, a fast fish)."""
    if rng.random() < 0.5:
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.8, 2.0))
    length = int(rng.integers(3, 9))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1 / length
    angle = rng.uniform(0, 180)
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


def low_resolution(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Detail lost to a smaller sensor or a downscaled stream, back at the frame's size."""
    height, width = image.shape[:2]
    factor = rng.uniform(0.35, 0.7)
    small = cv2.resize(
        image,
        (max(8, int(width * factor)), max(8, int(height * factor))),
        interpolation=cv2.INTER_AREA,
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def compression(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blocky, smeared JPEG at the qualities streamed video reaches."""
    quality = int(rng.integers(12, 45))
    ok, encoded = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[:, :, ::-1] if ok else image


# In the order a camera applies them: the water, then the sensor, then the encoder.
EFFECTS = (turbidity, colour_cast, low_light, blur, low_resolution, compression)


def degrade(image: np.ndarray, rng: np.random.Generator, chance: float = 0.35) -> np.ndarray:
    """An RGB uint8 image with each effect applied with probability `chance`."""
    out = image.astype(np.float32)
    for effect in EFFECTS:
        if rng.random() < chance:
            out = np.clip(
                effect(out if effect is not compression else out.astype(np.uint8), rng), 0, 255
            ).astype(np.float32)
    return out.astype(np.uint8)
