"""The litter items of the synthetic shore frames, one drawing function per category.

Each takes the frame's ground scale (1.0: a 4000x3000 frame seen from the usual altitude;
0.5: flown twice as high) and returns a `Sprite` whose coverage is the item's exact shape.
With `weathered=True` it draws from the palettes of a dump instead (mostly white, grey and
clear plastic, little bright colour); `worn` adds the sun-bleaching and dirt on top.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from imagine_assist.samples.sprites import (
    Sprite,
    blob,
    cylinder,
    fit,
    outline,
    patch_for,
    pick,
    rounded_half,
    shard,
    shine,
    smooth_noise,
    wander,
)

_BOTTLES = (
    (0.86, 0.90, 0.92, 0.45),
    (0.48, 0.68, 0.90, 0.6),
    (0.32, 0.62, 0.42, 0.65),
    (0.92, 0.92, 0.90, 0.95),
    (0.55, 0.35, 0.15, 0.7),
)  # clear, blue, green PET, opaque milk, brown (RGB, opacity)
_CAPS = ((0.95, 0.95, 0.95), (0.1, 0.3, 0.8), (0.85, 0.1, 0.1), (0.1, 0.6, 0.2), (0.95, 0.5, 0.1))
_LABELS = ((0.85, 0.1, 0.1), (0.1, 0.3, 0.8), (0.95, 0.8, 0.1), (0.95, 0.95, 0.95))
_BAGS = (
    (0.95, 0.95, 0.93),
    (0.75, 0.85, 0.95),
    (0.12, 0.12, 0.13),
    (0.2, 0.2, 0.22),
    (0.9, 0.45, 0.55),
    (0.55, 0.8, 0.5),
    (0.95, 0.88, 0.45),
    (0.25, 0.45, 0.8),
)
_CANS = (
    (0.78, 0.08, 0.10),
    (0.78, 0.79, 0.81),
    (0.10, 0.22, 0.70),
    (0.10, 0.50, 0.22),
    (0.82, 0.66, 0.22),
)
_ROPES = ((0.96, 0.45, 0.08), (0.12, 0.35, 0.82), (0.12, 0.55, 0.25), (0.92, 0.82, 0.12))
_HARD_PLASTICS = (
    (0.92, 0.92, 0.90),
    (0.15, 0.35, 0.75),
    (0.85, 0.15, 0.12),
    (0.95, 0.80, 0.15),
    (0.15, 0.60, 0.30),
    (0.12, 0.12, 0.12),
    (0.95, 0.55, 0.15),
    (0.35, 0.75, 0.85),
)
_FOAMS = ((0.96, 0.96, 0.94), (0.93, 0.92, 0.88), (0.90, 0.88, 0.80))  # clean to sun-yellowed
_FILMS = ((0.92, 0.94, 0.96), (0.96, 0.96, 0.94), (0.75, 0.85, 0.95), (0.85, 0.92, 0.88))
# A dump's plastics: bleached, greyed and grubby, mostly white, grey and clear, some colour.
_WORN_BOTTLES = (
    (0.86, 0.90, 0.92, 0.45),
    (0.86, 0.90, 0.92, 0.45),
    (0.82, 0.84, 0.82, 0.7),
    (0.80, 0.80, 0.76, 0.8),
    (0.90, 0.90, 0.86, 0.95),
    (0.70, 0.80, 0.88, 0.55),
    (0.62, 0.74, 0.64, 0.6),
    (0.55, 0.40, 0.24, 0.75),
)  # clear, scuffed clear, yellowed, milky, pale blue, pale green, brown
_WORN_BAGS = (
    (0.93, 0.93, 0.90),
    (0.90, 0.90, 0.88),
    (0.86, 0.84, 0.78),
    (0.80, 0.80, 0.78),
    (0.62, 0.62, 0.60),
    (0.45, 0.45, 0.45),
    (0.22, 0.22, 0.23),
    (0.72, 0.80, 0.90),
    (0.86, 0.64, 0.66),
    (0.40, 0.55, 0.80),
)
_WORN_CANS = (
    (0.78, 0.79, 0.81),
    (0.70, 0.70, 0.68),
    (0.62, 0.62, 0.60),
    (0.80, 0.78, 0.72),
    (0.70, 0.20, 0.20),
    (0.25, 0.35, 0.65),
)  # mostly bare or bleached metal
_WORN_ROPES = ((0.30, 0.50, 0.75), (0.30, 0.55, 0.35), (0.90, 0.55, 0.30), (0.82, 0.80, 0.74))
_WORN_HARD_PLASTICS = (
    (0.94, 0.94, 0.92),
    (0.92, 0.92, 0.90),
    (0.88, 0.87, 0.82),
    (0.84, 0.84, 0.82),
    (0.72, 0.72, 0.70),
    (0.60, 0.62, 0.62),
    (0.55, 0.70, 0.85),
    (0.30, 0.50, 0.78),
    (0.80, 0.35, 0.30),
    (0.92, 0.80, 0.40),
    (0.20, 0.20, 0.20),
)
_WORN_FILMS = (*_FILMS, (0.80, 0.80, 0.78), (0.90, 0.90, 0.86))
_CLOTHS = (
    (0.25, 0.35, 0.55),
    (0.60, 0.15, 0.15),
    (0.55, 0.50, 0.35),
    (0.35, 0.35, 0.38),
    (0.80, 0.75, 0.65),
    (0.20, 0.40, 0.30),
    (0.75, 0.45, 0.60),
    (0.90, 0.90, 0.88),
)

_WORN_CLOTHS = tuple(tuple(0.6 * c + 0.28 for c in cloth) for cloth in _CLOTHS)  # sun-faded


MIN_LENGTH = 10.0  # px: smaller items are not labelled in drone surveys, so none are drawn


def _length(rng: np.random.Generator, shortest: float, longest: float, scale: float) -> float:
    """An item's length at the frame's ground scale, never below MIN_LENGTH."""
    return max(rng.uniform(shortest, longest) * scale, MIN_LENGTH)


def bottle(rng: np.random.Generator, scale: float, weathered: bool = False) -> Sprite:
    length = _length(rng, 40.0, 110.0, scale)
    width = length * rng.uniform(0.26, 0.36)
    half, neck = width / 2, 0.21 * width
    x0, cap_x = -length / 2, length / 2 - 0.07 * length
    neck_x = cap_x - 0.08 * length
    shoulder_x = neck_x - 0.16 * length
    patch = patch_for(rng, np.hypot(length, width))
    xs = np.linspace(x0, cap_x, 60)
    ease = np.clip((xs - shoulder_x) / (neck_x - shoulder_x), 0.0, 1.0)
    body = rounded_half(xs, x0, cap_x + half, half, 0.3 * width)
    profile = np.where(xs < shoulder_x, body, neck + (half - neck) * (1 + np.cos(np.pi * ease)) / 2)
    canvas = patch.fill(patch.canvas(), outline(xs, profile))
    cap = outline(np.array([cap_x - 0.5, length / 2]), np.full(2, 1.2 * neck))
    cap_canvas = patch.fill(patch.canvas(), cap)
    along, across = patch.local()
    *tint, opacity = pick(rng, _WORN_BOTTLES if weathered else _BOTTLES)
    cyl = cylinder(across, half)[..., None]
    colour = np.asarray(tint, dtype=np.float32) * (0.72 + 0.38 * cyl)
    glint = shine(across, half, rng.choice([-0.45, 0.45]), 0.14) * (along < shoulder_x)[..., None]
    colour = colour + (1.0 - colour) * 0.85 * glint
    alpha = opacity + (1.0 - opacity) * (0.5 * (1.0 - cyl[..., 0]) + 0.8 * glint[..., 0])
    if rng.random() < (0.15 if weathered else 0.4):  # a printed sleeve round the middle
        sleeve = (along > x0 + 0.25 * length) & (along < x0 + 0.55 * length)
        colour[sleeve] = (pick(rng, _LABELS) * (0.7 + 0.35 * cyl))[sleeve]
        alpha[sleeve] = 1.0
    if rng.random() < 0.3:  # sand or mud caked on it
        dirt = np.clip(smooth_noise(rng, patch.size, patch.size, 4), 0.0, 1.0)[..., None]
        colour = colour + (np.float32([0.45, 0.38, 0.28]) - colour) * dirt
    capped = patch.coverage(cap_canvas) > 0
    colour[capped] = (pick(rng, _CAPS) * (0.75 + 0.3 * cyl))[capped]
    alpha[capped] = 1.0
    return Sprite(patch.coverage(np.maximum(canvas, cap_canvas)), colour, alpha)


def bag(rng: np.random.Generator, scale: float, weathered: bool = False) -> Sprite:
    """A carrier bag, flat or bunched, often with its two handles showing."""
    length = _length(rng, 35.0, 120.0, scale)
    aspect = rng.uniform(0.45, 1.0)
    body = blob(rng, length, aspect, rng.uniform(0.2, 0.7), 0.05)
    patch = patch_for(rng, np.hypot(*np.ptp(body, axis=0)) * 1.15)
    canvas = patch.fill(patch.canvas(), body * 0.87)
    if rng.random() < (0.25 if weathered else 0.6):  # handles: two loops past one end
        end = body[:, 0].max() * 0.87
        for side in (-1.0, 1.0):
            loop = np.array([[0.0, 0.0], [0.12, 0.02], [0.15, 0.1], [0.1, 0.16], [0.0, 0.15]])
            loop = loop * length + [end - 0.05 * length, side * aspect * length * 0.12]
            patch.stroke(canvas, loop, max(1.0, 0.04 * length))
    folds = smooth_noise(rng, patch.size, patch.size, 5)
    wrinkles = smooth_noise(rng, patch.size, patch.size, 12)
    # Film catches light on its ridges: bright where the wrinkle field crosses zero.
    sheen = (0.03, 0.12) if weathered else (0.1, 0.3)  # dull when scuffed and dusty
    ridges = np.exp(-((wrinkles / 0.12) ** 2)) * rng.uniform(*sheen)
    shade = 0.8 + 0.22 * folds + ridges
    colour = pick(rng, _WORN_BAGS if weathered else _BAGS) * shade[..., None]
    thinnest = 0.55 if weathered else 0.75  # a dump's thin bags let the ground show through
    opacity = np.clip(rng.uniform(thinnest, 1.0) + 0.15 * folds, 0.5, 1.0)
    return Sprite(patch.coverage(canvas), colour, opacity, relief=0.5)


def can(rng: np.random.Generator, scale: float, weathered: bool = False) -> Sprite:
    length = _length(rng, 30.0, 62.0, scale)
    width = length * rng.uniform(0.52, 0.62)
    half = width / 2
    patch = patch_for(rng, np.hypot(length, width))
    xs = np.linspace(-length / 2, length / 2, 40)
    profile = rounded_half(xs, -length / 2, length / 2, half, 0.12 * width)
    crushed = rng.random() < 0.3
    if crushed:  # a stepped-on can: dented outline, rippled sheen
        profile = profile * (1.0 - 0.12 * np.abs(np.sin(xs / length * rng.uniform(6, 14))))
    canvas = patch.fill(patch.canvas(), outline(xs, profile))
    along, across = patch.local()
    metal = cylinder(across, half)[..., None] ** 2
    paint = pick(rng, _WORN_CANS if weathered else _CANS)
    rim = (np.abs(along) > length / 2 - 0.07 * length)[..., None]
    base = np.where(rim, np.float32(0.78), paint)
    colour = base * (0.4 + 0.75 * metal)
    if crushed:
        colour = colour * (0.85 + 0.3 * np.sin(along * 1.3)[..., None] ** 2)
    colour = colour + (1.0 - colour) * 0.9 * shine(across, half, rng.uniform(0.2, 0.45), 0.1)
    return Sprite(patch.coverage(canvas), colour, 1.0, relief=0.8)


def rope(rng: np.random.Generator, scale: float, weathered: bool = False) -> Sprite:
    ropes = _WORN_ROPES if weathered else _ROPES
    if rng.random() < 0.3:
        return _net(rng, scale, ropes)
    length = _length(rng, 40.0, 130.0, scale)
    thickness = rng.uniform(4.0, 10.0) * max(scale, 0.6)
    line = wander(rng, length - thickness, rng.uniform(0.3, 0.8))
    patch = patch_for(rng, length, turn=False)  # the curve already heads anywhere
    outer = patch.coverage(patch.stroke(patch.canvas(), line, thickness))
    core = patch.coverage(patch.stroke(patch.canvas(), line, thickness * 0.45))
    along, across = patch.local()
    twist = 0.85 + 0.15 * np.sin(2 * np.pi * (along + across) / (1.3 * thickness))
    colour = pick(rng, ropes) * ((0.6 + 0.45 * core) * twist)[..., None]
    return Sprite(outer, colour, 1.0, relief=0.4)


def _net(rng: np.random.Generator, scale: float, ropes) -> Sprite:
    """A scrap of fishing net: a mesh of thin twine inside a ragged outline."""
    length = _length(rng, 50.0, 120.0, scale)
    ragged = blob(rng, length, rng.uniform(0.5, 1.0), 1.2)
    patch = patch_for(rng, np.hypot(*np.ptp(ragged, axis=0)))
    mesh = patch.canvas()
    spacing, twine = rng.uniform(7.0, 13.0) * scale, rng.uniform(1.3, 2.2)
    reach = np.arange(-length, length, spacing)
    for turn in (0.0, rng.uniform(1.0, 1.6)):
        c, s = np.cos(turn), np.sin(turn)
        for offset in reach + rng.uniform(0, spacing):
            ends = np.array([[offset, -length], [offset, length]]) @ np.array([[c, s], [-s, c]])
            patch.stroke(mesh, ends, twine)
    inside = patch.fill(patch.canvas(), ragged)
    cover = patch.coverage(np.minimum(mesh, inside))
    colour = np.broadcast_to(pick(rng, ropes) * 0.85, (*cover.shape, 3)).copy()
    return Sprite(cover, colour, 1.0, relief=0.2)


def fragment(rng: np.random.Generator, scale: float, weathered: bool = False) -> Sprite:
    """A piece of hard plastic: a few straight broken edges, one colour, sun-faded."""
    length = _length(rng, 12.0, 55.0, scale)
    piece = shard(rng, length, int(rng.integers(4, 8)), rng.uniform(0.35, 0.9))
    patch = patch_for(rng, np.hypot(*np.ptp(piece, axis=0)))
    along, across = patch.local()
    tint = pick(rng, _WORN_HARD_PLASTICS if weathered else _HARD_PLASTICS)
    tint = tint + (np.float32(0.8) - tint) * rng.uniform(0.0, 0.4)  # weathering greys it
    tilt = rng.normal(0.0, 0.25, 2)  # a curved piece of a crate or bucket catches light unevenly
    shade = 0.9 + (tilt[0] * along + tilt[1] * across) / length
    colour = tint * shade[..., None]
    return Sprite(patch.coverage(patch.fill(patch.canvas(), piece)), colour, 1.0, relief=0.4)


def polystyrene(rng: np.random.Generator, scale: float, weathered: bool = False) -> Sprite:
    """Expanded polystyrene: a white block with chipped corners and a shaded side, or a crumb."""
    crumb = rng.random() < 0.35
    length = _length(rng, 8.0, 22.0 if crumb else 120.0, scale)
    if crumb:
        shape = blob(rng, length, rng.uniform(0.6, 1.0), 0.3)
    else:  # a rectangle whose corners broke off at random
        a, b = 1.0, rng.uniform(0.35, 1.0)
        corners = np.array([[a, b], [-a, b], [-a, -b], [a, -b]])
        cut = rng.uniform(0.0, 0.35, (4, 2))
        points = []
        for i, ((cx, cy), (cu, cv)) in enumerate(zip(corners, cut, strict=True)):
            on_top_or_bottom = [cx - np.sign(cx) * cu * 2, cy]
            on_side = [cx, cy - np.sign(cy) * cv * 2 * b]
            # Counter-clockwise, corners 0 and 2 are reached along a side, 1 and 3 along
            # the top or bottom edge.
            points += [on_side, on_top_or_bottom] if i % 2 == 0 else [on_top_or_bottom, on_side]
        shape = fit(np.array(points), length)
    patch = patch_for(rng, np.hypot(*np.ptp(shape, axis=0)))
    along, across = patch.local()
    beads = rng.normal(0.0, 0.035, (patch.size, patch.size)).astype(np.float32)
    shade = 0.94 + beads
    if not crumb:  # its thickness shows as a darker face on one long side
        half = np.abs(shape[:, 1]).max()
        side = rng.choice([-1.0, 1.0])
        shade = shade - 0.18 * (side * across > half * rng.uniform(0.55, 0.8))
    colour = pick(rng, _FOAMS) * shade[..., None]
    if rng.random() < (0.6 if weathered else 0.3):  # grubby from the mud
        dirt = np.clip(smooth_noise(rng, patch.size, patch.size, 5), 0.0, 0.6)[..., None]
        colour = colour + (np.float32([0.42, 0.36, 0.28]) - colour) * dirt
    cover = patch.coverage(patch.fill(patch.canvas(), shape))
    return Sprite(cover, colour, 1.0, relief=0.5 if crumb else 1.3)


def film(rng: np.random.Generator, scale: float, weathered: bool = False) -> Sprite:
    """Thin plastic sheet: crumpled, see-through, bright where its creases catch the sun."""
    length = _length(rng, 30.0, 150.0, scale)
    sheet = blob(
        rng, length, rng.uniform(0.35, 1.0), rng.uniform(0.5, 1.1), rng.uniform(0.05, 0.15)
    )
    patch = patch_for(rng, np.hypot(*np.ptp(sheet, axis=0)))
    folds = smooth_noise(rng, patch.size, patch.size, 4)
    creases = smooth_noise(rng, patch.size, patch.size, max(4, patch.size // 10))
    sheen = (0.05, 0.2) if weathered else (0.15, 0.4)  # dull when scuffed and dusty
    bright = np.exp(-((creases / 0.2) ** 2)) * rng.uniform(*sheen)
    colour = (
        pick(rng, _WORN_FILMS if weathered else _FILMS) * (0.88 + 0.1 * folds + bright)[..., None]
    )
    opacity = np.clip(rng.uniform(0.3, 0.6) + 0.15 * folds + bright, 0.2, 1.0)
    return Sprite(patch.coverage(patch.fill(patch.canvas(), sheet)), colour, opacity, relief=0.15)


def textile(rng: np.random.Generator, scale: float, weathered: bool = False) -> Sprite:
    """A rag or a lost garment: frayed outline, soft folds, plain, striped or checked."""
    length = _length(rng, 40.0, 160.0, scale)
    cloth = blob(rng, length, rng.uniform(0.4, 0.9), rng.uniform(0.1, 0.5), 0.04)
    patch = patch_for(rng, np.hypot(*np.ptp(cloth, axis=0)))
    along, across = patch.local()
    cloths = _WORN_CLOTHS if weathered else _CLOTHS
    ground, other = pick(rng, cloths), pick(rng, cloths)
    period = rng.uniform(4.0, 14.0) * scale
    pattern = rng.choice(["plain", "stripes", "checks"], p=[0.5, 0.3, 0.2])
    if pattern == "plain":
        second = np.zeros(along.shape, dtype=bool)
    elif pattern == "stripes":
        second = np.sin(2 * np.pi * along / period) > 0.3
    else:
        second = (np.sin(2 * np.pi * along / period) > 0) ^ (
            np.sin(2 * np.pi * across / period) > 0
        )
    colour = np.where(second[..., None], other, ground)
    turn = rng.uniform(0.0, np.pi)
    waves = np.sin(
        (np.cos(turn) * along + np.sin(turn) * across) / (rng.uniform(0.06, 0.15) * length)
    )
    shade = 0.8 + 0.12 * waves + 0.1 * smooth_noise(rng, patch.size, patch.size, 5)
    weave = rng.normal(0.0, 0.03, along.shape).astype(np.float32)
    colour = colour * (shade + weave)[..., None]
    return Sprite(patch.coverage(patch.fill(patch.canvas(), cloth)), colour, 1.0, relief=0.4)


DRAW_ITEM: dict[str, Callable[..., Sprite]] = {
    "bottle": bottle,
    "bag": bag,
    "can": can,
    "rope": rope,
    "fragment": fragment,
    "polystyrene": polystyrene,
    "film": film,
    "textile": textile,
}


_DIRT = np.float32([0.33, 0.29, 0.23])  # dust and ash ground into a dump's plastic


def worn(rng: np.random.Generator, label: str, scale: float) -> Sprite:
    """An item of a dump: drawn from the dump's palettes, then bleached, greyed and dirtied."""
    sprite = DRAW_ITEM[label](rng, scale, weathered=True)
    colour = sprite.colour
    grey = colour.mean(axis=-1, keepdims=True)
    colour = (grey + (colour - grey) * rng.uniform(0.35, 0.85)) * rng.uniform(0.9, 1.1)
    size = colour.shape[0]
    grime = smooth_noise(rng, size, size, 5) * rng.uniform(0.2, 0.7) + rng.uniform(-0.5, 0.05)
    colour = colour + (_DIRT - colour) * np.clip(grime, 0.0, 0.7)[..., None]
    sprite.colour = colour.astype(np.float32)
    return sprite
