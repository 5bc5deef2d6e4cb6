"""Synthetic nadir drone frames of littered shores, dumps and floating litter, with exact boxes.

A frame is open water, a sand beach, a vegetated mud shore or a dump (`samples.shore`),
scattered with things that are not litter (stones, shells, wood, seaweed, leaves, plants) and
with litter items of eight categories (`samples.litter_items`). Nothing is drawn over an item
but later items, the light (cloud, plant and item shadows) and the sensor noise.

On water, beach and mud, 10-120 items lie apart and never overlap, so an item's box is exactly
the extent of its pixels. A dump (DUMP_SHARE of the frames) is dry, partly burnt ground with
about 1000-3000 weathered items per 12 MP, mostly white, grey and clear plastic: where a
low-frequency map says the heap is thick they touch and overlap, covering the ground nearly
edge to edge; elsewhere they thin out. No item is thrown where it would hide more than half of
an earlier one's solid pixels, and a dump item's box is the extent of its pixels that no later
item hides.

Sizes are in pixels of a 4000x3000 frame at the usual altitude, times the frame's ground scale
(0.45-1: flown higher, items look smaller); they do not scale with the frame size: a smaller
frame is a smaller field of view, which is what tiled inference sees. Items are 10-160 px
long; in a dump frame the longest side of a box is 30-60 px at the median (40 px over many
frames) and 14-80 px for the middle 80 %, hidden parts left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from imagine_assist.samples import shore
from imagine_assist.samples.base import Sample, SampleObject, split_for
from imagine_assist.samples.litter_items import DRAW_ITEM, worn
from imagine_assist.samples.sprites import Stamp, Sun, box, paint, place, smooth_noise

# The first four are the categories of the first litter models; new ones go at the end, so a
# model's class ids keep their meaning.
LITTER_CATEGORIES = ("bottle", "bag", "can", "rope", "fragment", "polystyrene", "film", "textile")
assert set(LITTER_CATEGORIES) == set(DRAW_ITEM)

_AFLOAT = Sun(None)  # floating things shade the water below them, out of sight
SETTINGS = ("water", "beach", "mud", "dump")
DUMP_SHARE = 0.3
_SETTING_SHARES = (0.25, 0.35, 0.40)  # of the frames that are not dumps
# Items per frame, by setting: real littered shores are dense, open water is not. A dump's
# count is per 12 MP of frame, and items that would hide too much of earlier ones are dropped.
_ITEM_COUNTS = {"water": (10, 30), "beach": (10, 60), "mud": (25, 120), "dump": (1200, 3000)}
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
    "dump": (
        (shore.stone, 10, 80),
        (shore.wood, 1, 8),
        (shore.leaf, 5, 40),
        (shore.shell, 0, 4),
    ),
}
# A dump's mix of categories (Dirichlet weights): broken hard plastic, bags, film, bottles and
# foam; few cans, ropes and rags.
_DUMP_MIX = np.array([3.0, 3.0, 1.0, 0.7, 5.0, 2.5, 3.0, 0.8])
_ITEM_AREA = 2000.0  # px: mean area an item covers in a dump at ground scale 1
_PACKING = 1.3  # items' summed area over the thick dump's area (they overlap and leave gaps)
_MIN_VISIBLE = 0.5  # of its solid pixels: no item may hide more of an earlier one
_THROWS = 12  # times a dump throws each item it draws, turned or mirrored


def draw_setting(rng: np.random.Generator) -> str:
    """A frame's setting, from one uniform draw. The dump takes the top DUMP_SHARE of each
    other setting's range, so frames that are not dumps are drawn as before dumps existed."""
    u = rng.random()
    ends = np.cumsum(_SETTING_SHARES)
    ends /= ends[-1]  # as Generator.choice does, which drew the setting before dumps
    k = int(np.searchsorted(ends, u, side="right"))
    start = ends[k - 1] if k else 0.0
    return "dump" if u - start > (1.0 - DUMP_SHARE) * (ends[k] - start) else SETTINGS[k]


def _heap(
    rng: np.random.Generator, width: int, height: int, scale: float
) -> tuple[np.ndarray, int]:
    """Where a dump's litter lies thick (1.0) and thin, at low resolution, and how many items
    to throw on it: the thick part is sized so those items cover it edge to edge."""
    w, h = -(-width // shore.LOW), -(-height // shore.LOW)
    n = int(rng.integers(*_ITEM_COUNTS["dump"], endpoint=True) * width * height / 12e6)
    thick_share = min(n * _ITEM_AREA * scale**2 / (_PACKING * width * height), 0.85)
    field = smooth_noise(rng, w, h, int(rng.integers(2, 5)))
    edge = np.quantile(field[::4, ::4], 1.0 - thick_share)
    heap = np.clip((field - edge) * rng.uniform(2.5, 6.0) + 0.5, 0.0, 1.0)
    # Outside it the litter thins out but never stops: a twentieth to a sixth of the items.
    stray = rng.uniform(0.05, 0.16)
    return np.maximum(heap, stray * thick_share / ((1.0 - stray) * (1.0 - thick_share))), n


def _ground(
    rng: np.random.Generator,
    setting: str,
    width: int,
    height: int,
    scale: float,
    heap: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bare ground at full resolution with grass, leaves and plants on it; a low-resolution
    map of where plants stand (their shadows go into the light); and one of where land is.
    A dump's creepers grow where its `heap` of litter is thin."""
    w, h = -(-width // shore.LOW), -(-height // shore.LOW)
    make = {
        "water": shore.water,
        "beach": shore.sand,
        "mud": shore.mud_shore,
        "dump": shore.dump_ground,
    }[setting]
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
    elif setting == "dump":
        grass = np.clip(smooth_noise(rng, w, h, 4) * 0.8 + rng.uniform(0.3, 1.0), 0.0, 1.0)
        grass *= 1.0 - 0.6 * heap  # the heap hides most of the grass it lies on
        shore.dry_grass(rng, frame, grass, int(rng.integers(3000, 8000) * per_mp), scale)
        leaves = 1.0 - grass * 0.6
        shore.leaf_litter(rng, frame, leaves, int(rng.integers(300, 1500) * per_mp), scale)
        meadow = np.clip(smooth_noise(rng, w, h, 3) * 4.0 - rng.uniform(0.5, 3.0), 0.0, 1.0)
        meadow *= np.clip(1.5 - 1.5 * heap, 0.0, 1.0)
        shore.ground_cover(rng, frame, meadow, int(rng.integers(6000, 15000) * per_mp), scale)
        clumps = rng.integers(3, 12)
    else:
        clumps = 0
    clumps = int(clumps * per_mp / 12)
    plant_map = shore.plants(rng, frame, clumps, scale, ground.land)
    return frame, plant_map, ground.land


def _light(
    rng: np.random.Generator, setting: str, plant_map: np.ndarray, sun: np.ndarray
) -> np.ndarray:
    """Low-resolution brightness of the scene, 1.0 for full sun: cloud or tree shadows (more
    often and deeper over a dump), the shadows plants cast, and the lens's vignette."""
    h, w = plant_map.shape
    light = np.ones((h, w), dtype=np.float32)
    if rng.random() < (0.6 if setting == "dump" else 0.4):
        # A cloud or an out-of-frame tree shades part of the ground; trees stand over dumps.
        shade = np.clip(smooth_noise(rng, w, h, 3) * 2.0 - rng.uniform(0.0, 1.0), 0.0, 1.0)
        light -= shade * rng.uniform(0.25, 0.65 if setting == "dump" else 0.5)
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
    """One nadir drone frame (RGB uint8) of water, beach or mud shore with 10-120 litter items,
    or of a dump with a thousand or more."""
    setting = draw_setting(rng)
    scale = float(rng.uniform(0.45, 1.0))
    angle = rng.uniform(0.0, 2 * np.pi)
    sun_dir = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)
    heap, n = _heap(rng, width, height, scale) if setting == "dump" else (None, 0)
    frame, plant_map, land = _ground(rng, setting, width, height, scale, heap)
    if setting == "water":
        sun = _AFLOAT
    else:
        reach = rng.uniform(2.0, 6.0) * scale  # a low sun casts long shadows
        darkness = rng.uniform(0.4, 0.7) if setting == "dump" else rng.uniform(0.25, 0.5)
        sun = Sun((reach * sun_dir[0], reach * sun_dir[1]), float(darkness))
    per_frame = width * height / 12e6
    for draw, fewest, most in _DISTRACTORS[setting]:
        for _ in range(int(rng.integers(fewest, most + 1) * per_frame / scale)):
            sprite = draw(rng, scale, sun_dir)
            x0, y0 = int(rng.integers(-20, width - 20)), int(rng.integers(-20, height - 20))
            on_land = _on_land(land, sprite, x0, y0)
            if on_land or draw not in _SINKING:
                paint(frame, sprite, x0, y0, sun if on_land else _AFLOAT)
    if setting == "dump":
        objects = _dump_litter(rng, frame, sun, heap * (1.0 - plant_map), n, scale)
    else:
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


def _dump_litter(
    rng: np.random.Generator,
    frame: np.ndarray,
    sun: Sun,
    density: np.ndarray,
    n: int,
    scale: float,
) -> list[SampleObject]:
    """Up to `n` weathered items thrown where the low-resolution `density` is high, touching
    and overlapping. An item goes to another spot (of three) if it would leave an earlier one
    less than _MIN_VISIBLE of its solid pixels, so every item drawn keeps most of itself in
    view; its box is the extent of the pixels no later item hides. To stay fast, a dump draws
    a pool of items and throws each several times, turned and mirrored."""
    if n == 0:
        return []
    height, width = frame.shape[:2]
    low_w = density.shape[1]
    weights = rng.dirichlet(_DUMP_MIX)
    labels = rng.choice(len(LITTER_CATEGORIES), size=max(n // _THROWS, 1), p=weights)
    stamps = [Stamp(worn(rng, LITTER_CATEGORIES[k], scale), sun) for k in labels]
    # Each item lies three ways (of the eight turns and mirrorings), each made once.
    ways = rng.permuted(np.tile(np.arange(8), (len(stamps), 1)), axis=1)[:, :3]
    picks = rng.integers(0, len(stamps), n)
    turns = ways[picks, rng.integers(0, 3, n)]
    tries = 3
    cells = rng.choice(density.size, size=n * tries, p=(density / density.sum()).ravel())
    spots = np.stack([cells % low_w, cells // low_w], 1) + rng.random((n * tries, 2))
    spots = (spots * shore.LOW).astype(int).reshape(n, tries, 2)
    hider = np.zeros((height, width), dtype=np.int32)  # the latest item solid at each pixel
    solid = np.zeros(n + 1, dtype=np.int64)  # pixels each item covers at least half
    shown = np.zeros(n + 1, dtype=np.int64)  # ... and how many of them no later item hides
    laid = []
    for k, turn, tried in zip(picks, turns, spots, strict=True):
        stamp = stamps[k].at(int(turn))
        h, w = stamp.solid.shape
        if h > height or w > width or not stamp.solid.any():
            continue
        for cx, cy in tried:
            x0, y0 = min(max(cx - w // 2, 0), width - w), min(max(cy - h // 2, 0), height - h)
            below = hider[y0 : y0 + h, x0 : x0 + w]
            under = below[stamp.solid]
            if under.any():
                counts = np.bincount(under)
                hidden = np.flatnonzero(counts[1:]) + 1
                if np.any(shown[hidden] - counts[hidden] < _MIN_VISIBLE * solid[hidden]):
                    continue
                shown[hidden] -= counts[hidden]
            i = len(laid) + 1  # ids count from 1 in throwing order
            below[stamp.solid] = i
            solid[i] = shown[i] = len(under)
            stamp.paste(frame, x0, y0)
            laid.append((labels[k], stamp, x0, y0))
            break
    objects = []
    for i, (label, stamp, x0, y0) in enumerate(laid, start=1):
        h, w = stamp.touched.shape
        above = hider[y0 : y0 + h, x0 : x0 + w]
        seen = stamp.touched & (above <= i) if above.max() > i else stamp.touched
        ys, xs = np.nonzero(seen)
        xyxy = x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1
        objects.append(SampleObject(LITTER_CATEGORIES[label], tuple(float(v) for v in xyxy)))
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
