"""Synthetic nadir drone frames of littered shores and floating litter, with exact boxes.

A frame is open water, a sand beach or a vegetated mud shore (`samples.shore`), scattered
with things that are not litter (stones, shells, wood, seaweed, leaves, plants) and with
litter items of eight categories (`samples.litter_items`). Items never overlap and nothing is
drawn over them but the light (cloud and plant shadows) and the sensor noise, so an item's box
is exactly the extent of its pixels. Sizes are in pixels of a 4000x3000 frame at the usual
altitude, times the frame's ground scale (0.45-1: flown higher, items look smaller); they do
not scale with the frame size: a smaller frame is a smaller field of view, which is what tiled
inference sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from imagine_assist.samples import shore
from imagine_assist.samples.base import Sample, SampleObject, split_for
from imagine_assist.samples.litter_items import DRAW_ITEM
from imagine_assist.samples.sprites import Sun, box, paint, place, smooth_noise

# The first four are the categories of the first litter models; new ones go at the end, so a
# model's class ids keep their meaning.
LITTER_CATEGORIES = ("bottle", "bag", "can", "rope", "fragment", "polystyrene", "film", "textile")
assert set(LITTER_CATEGORIES) == set(DRAW_ITEM)

_AFLOAT = Sun(None)  # floating things shade the water below them, out of sight
_SETTINGS = ("water", "beach", "mud")
_SETTING_SHARES = (0.25, 0.35, 0.40)
# Items per frame, by setting: real littered shores are dense, open water is not.
_ITEM_COUNTS = {"water": (10, 30), "beach": (10, 60), "mud": (25, 120)}
_SINKING = (shore.stone, shore.shell)  # the distractors that never float
# Distractors per 12 MP frame, by setting: (draw, fewest, most) at ground scale 1.
_DISTRACTORS = {
    "water": ((shore.foam, 5, 40), (shore.seaweed, 0, 12), (shore.wood, 0, 2), (shore.leaf, 0, 10)),
    "beach": (
        (shore.stone, 40, 250),
        (shore.shell, 10, 60),
        (shore.seaweed, 3, 25),
        (shore.wood, 0, 4),
        (shore.leaf, 0, 15),
    ),
    "mud": (
        (shore.stone, 5, 60),
        (shore.shell, 0, 10),
        (shore.wood, 1, 6),
        (shore.leaf, 10, 60),
        (shore.seaweed, 0, 5),
    ),
}


def _ground(
    rng: np.random.Generator, setting: str, width: int, height: int, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bare ground at full resolution with grass, leaves and plants on it; a low-resolution
    map of where plants stand (their shadows go into the light); and one of where land is."""
    w, h = -(-width // shore.LOW), -(-height // shore.LOW)
    make = {"water": shore.water, "beach": shore.sand, "mud": shore.mud_shore}[setting]
    ground = make(rng, w, h)
    frame = shore.upscale(ground.colour, width, height)
    shore.glints(rng, frame, ground.glitter)
    per_mp = width * height / 1e6  # cover counts are per million pixels of frame
    if setting == "mud":
        grass = np.clip(smooth_noise(rng, w, h, 4) + rng.uniform(0.3, 0.9), 0.0, 1.0)
        shore.dry_grass(
            rng, frame, grass * ground.land, int(rng.integers(4000, 9000) * per_mp), scale
        )
        leaves = (1.0 - grass * 0.6) * ground.land
        shore.leaf_litter(rng, frame, leaves, int(rng.integers(500, 2500) * per_mp), scale)
        meadow = np.clip(smooth_noise(rng, w, h, 3) * 2.5 - rng.uniform(0.5, 2.5), 0.0, 1.0)
        meadow *= ground.land
        shore.ground_cover(rng, frame, meadow, int(rng.integers(2000, 5000) * per_mp), scale)
        clumps = rng.integers(2, 16)
    elif setting == "beach":
        wrack = np.clip(smooth_noise(rng, w, h, 3) - 0.3, 0.0, 1.0) * ground.land  # tide line
        shore.dry_grass(rng, frame, wrack, int(rng.integers(0, 1500) * per_mp), scale)
        shore.leaf_litter(rng, frame, wrack, int(rng.integers(0, 800) * per_mp), scale)
        clumps = rng.integers(0, 5) if rng.random() < 0.4 else 0
    else:
        clumps = 0
    clumps = int(clumps * per_mp / 12)
    plant_map = shore.plants(rng, frame, clumps, scale, ground.land)
    return frame, plant_map, ground.land


def _light(
    rng: np.random.Generator, setting: str, plant_map: np.ndarray, sun: np.ndarray
) -> np.ndarray:
    """Low-resolution brightness of the scene, 1.0 for full sun: cloud or tree shadows,
    the shadows plants cast, and the lens's vignette."""
    h, w = plant_map.shape
    light = np.ones((h, w), dtype=np.float32)
    if rng.random() < 0.4:  # a cloud or an out-of-frame tree shades part of the ground
        shade = np.clip(smooth_noise(rng, w, h, 3) * 2.0 - rng.uniform(0.0, 1.0), 0.0, 1.0)
        light -= shade * rng.uniform(0.25, 0.5)
    if plant_map.any():
        reach = rng.uniform(2.0, 8.0)
        shift = np.float32([[1, 0, sun[0] * reach], [0, 1, sun[1] * reach]])
        cast = cv2.warpAffine(plant_map, shift, (w, h))
        cast = cv2.GaussianBlur(np.clip(cast - plant_map, 0.0, 1.0), (0, 0), 1.5)
        light -= cast * rng.uniform(0.3, 0.55)
    ys, xs = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j].astype(np.float32)
    light *= 1.0 - rng.uniform(0.05, 0.25) * (xs**2 + ys**2) / 2
    return light * rng.uniform(0.9, 1.1)


def _illuminate(frame: np.ndarray, light: np.ndarray) -> None:
    """Multiply the frame by the low-resolution light, in 8-bit fixed point (1.0 is 128)."""
    height, width = frame.shape[:2]
    level = np.clip(light * 128.0 + 0.5, 0, 255).astype(np.uint8)
    level = cv2.cvtColor(cv2.resize(level, (width, height)), cv2.COLOR_GRAY2RGB)
    cv2.multiply(frame, level, dst=frame, scale=1.0 / 128.0)


def litter_frame(
    rng: np.random.Generator, width: int = 4000, height: int = 3000
) -> tuple[np.ndarray, list[SampleObject]]:
    """One nadir drone frame (RGB uint8) of water, beach or mud shore with 10-120 litter items."""
    setting = _SETTINGS[rng.choice(len(_SETTINGS), p=_SETTING_SHARES)]
    scale = float(rng.uniform(0.45, 1.0))
    angle = rng.uniform(0.0, 2 * np.pi)
    sun_dir = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)
    frame, plant_map, land = _ground(rng, setting, width, height, scale)
    if setting == "water":
        sun = _AFLOAT
    else:
        reach = rng.uniform(2.0, 6.0) * scale  # a low sun casts long shadows
        sun = Sun((reach * sun_dir[0], reach * sun_dir[1]), float(rng.uniform(0.25, 0.5)))
    per_frame = width * height / 12e6
    for draw, fewest, most in _DISTRACTORS[setting]:
        for _ in range(int(rng.integers(fewest, most + 1) * per_frame / scale)):
            sprite = draw(rng, scale, sun_dir)
            x0, y0 = int(rng.integers(-20, width - 20)), int(rng.integers(-20, height - 20))
            on_land = _on_land(land, sprite, x0, y0)
            if on_land or draw not in _SINKING:
                paint(frame, sprite, x0, y0, sun if on_land else _AFLOAT)
    objects = _litter(rng, frame, sun, land, setting, scale)
    _illuminate(frame, _light(rng, setting, plant_map, sun_dir))
    noise = cv2.cvtColor(
        np.frombuffer(rng.bytes(width * height), np.uint8).reshape(height, width),
        cv2.COLOR_GRAY2RGB,
    )
    grain = 0.035 if setting == "water" else 0.07  # land is grainier than water at this scale
    cv2.addWeighted(frame, 1.0, noise, grain, -127.5 * grain, dst=frame)
    return frame, objects


def _on_land(land: np.ndarray, sprite, x0: int, y0: int) -> bool:
    h, w = land.shape
    centre = x0 + sprite.coverage.shape[1] / 2, y0 + sprite.coverage.shape[0] / 2
    col = min(max(int(centre[0] / shore.LOW), 0), w - 1)
    return bool(land[min(max(int(centre[1] / shore.LOW), 0), h - 1), col] >= 0.5)


def _litter(
    rng: np.random.Generator,
    frame: np.ndarray,
    sun: Sun,
    land: np.ndarray,
    setting: str,
    scale: float,
) -> list[SampleObject]:
    height, width = frame.shape[:2]
    weights = rng.dirichlet(np.full(len(LITTER_CATEGORIES), 2.0))
    taken: list[tuple[float, float, float]] = []
    objects = []
    for _ in range(int(rng.integers(*_ITEM_COUNTS[setting], endpoint=True))):
        label = LITTER_CATEGORIES[rng.choice(len(LITTER_CATEGORIES), p=weights)]
        sprite = DRAW_ITEM[label](rng, scale)
        spot = place(rng, taken, sprite.coverage.shape[0], width, height)
        if spot is None:
            continue
        on_land = _on_land(land, sprite, *spot)
        if not on_land:  # floating items sit partly under water, which mutes them
            sprite.opacity = sprite.opacity * rng.uniform(0.65, 1.0)
        paint(frame, sprite, *spot, sun if on_land else _AFLOAT)
        objects.append(SampleObject(label, box(sprite, *spot)))
    return objects


def generate_litter(
    n: int,
    seed: int = 0,
    width: int = 4000,
    height: int = 3000,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
) -> Iterator[Sample]:
    """`n` drone frames; frame i depends only on (seed, i), so any one can be regenerated alone."""
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        image, objects = litter_frame(rng, width, height)
        yield Sample(f"litter_{i:05d}.jpg", image, objects, split_for(i, fractions))
