"""The ground of the synthetic litter frames and the things on it that are not litter.

Four settings: open water; a sand beach, sometimes with the waterline in view; a
vegetated mud shore like the littered tropical shores of real drone surveys (dark soil,
dry grass and leaf litter, green clumps, puddles, strong shadows); and the dry, partly burnt
ground of a dumping site, which the litter generator heaps with litter. Ground textures are made
at 1/LOW resolution and upscaled once; grass, leaves and plants are drawn at full resolution
in a few vectorised calls, so a 12 MP frame stays well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imagine_assist.samples.sprites import (
    Sprite,
    blob,
    patch_for,
    pick,
    shard,
    smooth_noise,
    wander,
)

LOW = 4  # ground textures are made at 1/LOW resolution

_WATERS = np.array(
    [[0.20, 0.33, 0.38], [0.22, 0.38, 0.33], [0.30, 0.36, 0.42], [0.14, 0.26, 0.30]],
    dtype=np.float32,
)
_SANDS = np.array(
    [[0.80, 0.72, 0.58], [0.72, 0.64, 0.50], [0.68, 0.65, 0.58], [0.84, 0.78, 0.66]],
    dtype=np.float32,
)
_WET_SAND = np.array([0.52, 0.46, 0.37], dtype=np.float32)
_SOILS = ((0.36, 0.28, 0.20), (0.42, 0.34, 0.25), (0.48, 0.42, 0.35), (0.28, 0.22, 0.17))
_MUD = np.array([0.22, 0.19, 0.16], dtype=np.float32)
_DUSTS = ((0.36, 0.32, 0.26), (0.30, 0.27, 0.22), (0.40, 0.37, 0.32), (0.27, 0.25, 0.22))
_ASH = np.array([0.13, 0.12, 0.11], dtype=np.float32)


# --- low-resolution ground ------------------------------------------------------------------


@dataclass(frozen=True)
class Ground:
    """A low-resolution ground: colour (h, w, 3), where sun glints go (h, w), and how much
    of each pixel is land rather than water (h, w; stones lie on land, litter floats on water)."""

    colour: np.ndarray
    glitter: np.ndarray
    land: np.ndarray


def _waves(rng: np.random.Generator, w: int, h: int, wavelengths: tuple[float, ...]) -> np.ndarray:
    """Wind waves or sand ripples: a few crossing swells, bent by low-frequency noise."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    wind = rng.uniform(0.0, np.pi)
    bend = smooth_noise(rng, w, h, 7) * rng.uniform(1.0, 4.0)
    total = np.zeros((h, w), dtype=np.float32)
    for _ in range(3):
        angle = wind + rng.normal(0.0, 0.35)
        k = 2 * np.pi / rng.uniform(*wavelengths)
        phase = k * (xs * np.cos(angle) + ys * np.sin(angle)) + bend
        total += rng.uniform(0.3, 1.0) * (np.sin(phase) + 0.3 * np.sin(2 * phase))
    return total / (np.abs(total).max() + 1e-6)


def _glare(rng: np.random.Generator, w: int, h: int, strength: float) -> np.ndarray:
    """The sun's reflection on wet surfaces: one broad bright spot somewhere in the frame."""
    gx, gy = rng.uniform(0.0, 1.0, 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    spread = rng.uniform(0.05, 0.3)
    return np.exp(-((xs / w - gx) ** 2 + (ys / h - gy) ** 2) / spread) * strength


def water(rng: np.random.Generator, w: int, h: int) -> Ground:
    """Low-resolution open water."""
    colour, glitter = _sea(rng, w, h)
    return Ground(colour, glitter, np.zeros((h, w), dtype=np.float32))


def _sea(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Low-resolution water and its glitter field (for placing sun glints)."""
    weights = rng.dirichlet(np.ones(len(_WATERS)))
    colour = weights @ _WATERS * rng.uniform(0.85, 1.2, 3).astype(np.float32)
    depth = smooth_noise(rng, w, h, 4) * 0.10 + smooth_noise(rng, w, h, 15) * 0.04
    waves = _waves(rng, w, h, (6.0, 20.0))
    ground = colour * (1.0 + depth[..., None] + rng.uniform(0.04, 0.1) * waves[..., None])
    glare = _glare(rng, w, h, 1.0)
    ground = ground + (0.85 - ground) * (glare * rng.uniform(0.0, 0.45))[..., None]
    return ground, waves * glare


def sand(rng: np.random.Generator, w: int, h: int) -> Ground:
    """Low-resolution beach, with the waterline in view half the time, and its glitter field."""
    colour = pick(rng, _SANDS) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    wet = np.clip(smooth_noise(rng, w, h, 3) * 1.5 - rng.uniform(0.0, 1.5), 0.0, 1.0)
    ground = colour + (_WET_SAND - colour) * wet[..., None]
    ripples = _waves(rng, w, h, (10.0, 30.0)) * rng.uniform(0.0, 0.08)
    mottle = smooth_noise(rng, w, h, 40) * 0.04 + rng.normal(0.0, 0.025, (h, w)).astype(np.float32)
    ground = ground * (1.0 + ripples + mottle)[..., None]
    if rng.random() < 0.5:
        return _waterline(rng, ground, w, h)
    return Ground(ground, np.zeros((h, w), dtype=np.float32), np.ones((h, w), dtype=np.float32))


def _waterline(rng: np.random.Generator, beach: np.ndarray, w: int, h: int) -> Ground:
    """The sea over one part of the beach: a band of glossy wet sand, then a line of surf."""
    sea, glitter = _sea(rng, w, h)
    angle = rng.uniform(0.0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    across = xs * np.cos(angle) + ys * np.sin(angle)
    reach = np.percentile(across, rng.uniform(15.0, 45.0))
    ashore = across - reach + smooth_noise(rng, w, h, 6) * rng.uniform(5.0, 25.0)
    wet = np.exp(-np.maximum(ashore, 0.0) / rng.uniform(10.0, 40.0))[..., None]
    shore = beach + (_WET_SAND * 0.8 - beach) * wet * 0.8
    surf = np.exp(-((ashore / rng.uniform(1.5, 4.0)) ** 2))
    surf = surf * np.clip(0.6 + smooth_noise(rng, w, h, 30), 0.0, 1.0)
    under = np.clip(-ashore / 3.0, 0.0, 1.0)[..., None]  # soft edge where the sea starts
    ground = shore + (sea - shore) * under
    ground = ground + (0.95 - ground) * surf[..., None]
    return Ground(ground, glitter * under[..., 0], 1.0 - under[..., 0])


def mud_shore(rng: np.random.Generator, w: int, h: int) -> Ground:
    """Low-resolution dark soil with patches of wet mud and puddles, and the puddles' glitter."""
    colour = pick(rng, _SOILS) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    wet = np.clip(smooth_noise(rng, w, h, 5) * 1.4 - rng.uniform(0.2, 1.2), 0.0, 1.0)
    ground = colour + (_MUD - colour) * wet[..., None]
    mottle = smooth_noise(rng, w, h, 30) * 0.08 + rng.normal(0.0, 0.04, (h, w)).astype(np.float32)
    ground = ground * (1.0 + mottle)[..., None]
    # Puddles mirror the sky: dull grey-blue, bright only where the sun's glare falls.
    puddles = np.clip((wet - 0.8) * 5.0, 0.0, 1.0)
    glare = _glare(rng, w, h, 1.0)
    sky = np.float32([0.26, 0.29, 0.32]) * (1.0 + 1.2 * glare)[..., None]
    ground = ground + (sky - ground) * (puddles * rng.uniform(0.4, 0.8))[..., None]
    return Ground(ground, puddles * glare, 1.0 - puddles)


def dump_ground(rng: np.random.Generator, w: int, h: int) -> Ground:
    """Low-resolution ground of a dumping site: dry, trodden dusty soil, burnt black in patches
    where rubbish was set alight."""
    colour = pick(rng, _DUSTS) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    burnt = smooth_noise(rng, w, h, 4) + 0.5 * smooth_noise(rng, w, h, 12)
    burnt = np.clip(burnt * 1.6 - rng.uniform(-0.3, 1.5), 0.0, 1.0)
    ground = colour + (_ASH - colour) * burnt[..., None]
    mottle = smooth_noise(rng, w, h, 30) * 0.1 + rng.normal(0.0, 0.05, (h, w)).astype(np.float32)
    ground = ground * (1.0 + mottle)[..., None]
    return Ground(ground, np.zeros((h, w), dtype=np.float32), np.ones((h, w), dtype=np.float32))


def upscale(ground: np.ndarray, width: int, height: int) -> np.ndarray:
    small = np.clip(ground * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def glints(rng: np.random.Generator, frame: np.ndarray, field: np.ndarray) -> None:
    """Sun glitter: tiny bright flecks on the wave crests, densest in the glare."""
    h, w = field.shape
    ys, xs = rng.integers(0, h, 20000), rng.integers(0, w, 20000)
    keep = np.flatnonzero(field[ys, xs] > rng.uniform(0.25, 0.6))[:3000]
    if not len(keep):
        return
    jitter = rng.integers(0, LOW, (len(keep), 2))
    lengths, levels = rng.integers(1, 4, len(keep)), rng.integers(200, 256, len(keep))
    turns = rng.uniform(0.0, 180.0, len(keep))
    for i, k in enumerate(keep):
        centre = (int(xs[k] * LOW + jitter[i, 0]), int(ys[k] * LOW + jitter[i, 1]))
        colour = (int(levels[i]),) * 3
        cv2.ellipse(frame, centre, (int(lengths[i]), 1), turns[i], 0, 360, colour, -1, cv2.LINE_AA)


# --- full-resolution cover: dry grass, leaf litter, plants ----------------------------------

_STRAWS = (
    (0.62, 0.55, 0.40),
    (0.50, 0.43, 0.30),
    (0.72, 0.66, 0.52),
    (0.40, 0.35, 0.26),
    (0.30, 0.26, 0.20),
    (0.55, 0.52, 0.46),
)
_DEAD_LEAVES = ((0.45, 0.32, 0.18), (0.35, 0.25, 0.15), (0.55, 0.42, 0.25), (0.25, 0.20, 0.14))
_GREENS = ((0.20, 0.42, 0.15), (0.28, 0.55, 0.20), (0.36, 0.62, 0.25), (0.15, 0.32, 0.12))
_SHIFT = 3  # fixed-point bits for the cover's polygons


def _spots(rng: np.random.Generator, density: np.ndarray, n: int) -> np.ndarray:
    """About `n` full-resolution points drawn where the low-resolution `density` is high."""
    h, w = density.shape
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    keep = rng.random(n) < density[ys, xs]
    jitter = rng.uniform(0.0, LOW, (int(keep.sum()), 2))
    return np.stack([xs[keep], ys[keep]], 1) * LOW + jitter


def _draw_shapes(
    frame: np.ndarray,
    shapes: np.ndarray,
    colours: np.ndarray,
    which: np.ndarray,
    closed: bool,
    thickness: int = 1,
) -> None:
    """Fill (or stroke) many small polygons, one cv2 call per colour."""
    fixed = np.round(shapes * (1 << _SHIFT)).astype(np.int32)
    for k, colour in enumerate(colours):
        chosen = list(fixed[which == k])
        if not chosen:
            continue
        rgb = tuple(float(c) for c in np.clip(colour * 255.0, 0, 255))
        if closed:
            cv2.fillPoly(frame, chosen, rgb, cv2.LINE_AA, _SHIFT)
        else:
            cv2.polylines(frame, chosen, False, rgb, thickness, cv2.LINE_AA, _SHIFT)


def _shaded(rng: np.random.Generator, palette, k: int) -> np.ndarray:
    """`k` colours from a palette, each a little lighter or darker."""
    base = np.asarray(palette, dtype=np.float32)[rng.integers(len(palette), size=k)]
    return base * rng.uniform(0.7, 1.15, (k, 1)).astype(np.float32)


def dry_grass(
    rng: np.random.Generator, frame: np.ndarray, density: np.ndarray, n: int, scale: float
):
    """Blades and stalks of dead grass: short, slightly bent strokes, straw to brown."""
    centres = _spots(rng, density, n)
    m = len(centres)
    length = rng.uniform(10.0, 70.0, m) * scale
    heading = rng.uniform(0.0, np.pi, m)
    bend = rng.normal(0.0, 0.35, m)
    t = np.array([-0.5, 0.0, 0.5])
    angle = heading[:, None] + bend[:, None] * t
    pts = centres[:, None, :] + (length[:, None] * t)[..., None] * np.stack(
        [np.cos(angle), np.sin(angle)], -1
    )
    colours = _shaded(rng, _STRAWS, 8)
    which = rng.integers(0, len(colours), m)
    _draw_shapes(frame, pts, colours, which, closed=False)


def _leaf_shapes(
    rng: np.random.Generator, centres: np.ndarray, size: tuple[float, float], scale: float
) -> np.ndarray:
    """Lens-shaped leaves at the given centres, any heading."""
    m = len(centres)
    length = rng.uniform(*size, m) * scale
    width = length * rng.uniform(0.25, 0.6, m)
    t = np.linspace(-1.0, 1.0, 5)
    half = np.sqrt(1.0 - t**2)
    local_x = np.concatenate([t, t[::-1][1:-1]]) / 2
    local_y = np.concatenate([half, -half[::-1][1:-1]]) / 2
    heading = rng.uniform(0.0, 2 * np.pi, m)[:, None]
    x = local_x * length[:, None]
    y = local_y * width[:, None]
    return centres[:, None, :] + np.stack(
        [x * np.cos(heading) - y * np.sin(heading), x * np.sin(heading) + y * np.cos(heading)], -1
    )


def leaf_litter(
    rng: np.random.Generator, frame: np.ndarray, density: np.ndarray, n: int, scale: float
):
    """Fallen leaves, brown and curled, in drifts."""
    centres = _spots(rng, density, n)
    colours = _shaded(rng, _DEAD_LEAVES, 8)
    which = rng.integers(0, len(colours), len(centres))
    _draw_shapes(frame, _leaf_shapes(rng, centres, (6.0, 24.0), scale), colours, which, closed=True)


def ground_cover(
    rng: np.random.Generator, frame: np.ndarray, density: np.ndarray, n: int, scale: float
):
    """Low green creepers and weeds over wide patches of the shore, leaf by leaf."""
    centres = _spots(rng, density, n)
    palette = _shaded(rng, _GREENS, 4)
    colours = np.concatenate([palette * f for f in (0.5, 0.7, 0.9)])
    which = rng.integers(0, len(colours), len(centres))
    _draw_shapes(frame, _leaf_shapes(rng, centres, (4.0, 12.0), scale), colours, which, closed=True)


def plants(
    rng: np.random.Generator, frame: np.ndarray, clumps: int, scale: float, land: np.ndarray
) -> np.ndarray:
    """Clumps of low green vegetation on land, drawn leaf by leaf; returns their footprint at
    low resolution so the caller can cast their shadows."""
    height, width = frame.shape[:2]
    footprint = np.zeros(land.shape, dtype=np.float32)
    centres, shades = [], []
    for _ in range(clumps):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if land[min(int(cy / LOW), land.shape[0] - 1), min(int(cx / LOW), land.shape[1] - 1)] < 0.5:
            continue
        size = rng.uniform(25.0, 200.0) * scale
        # A clump is a few overlapping tufts, so its outline is ragged, not a disc.
        for _ in range(int(rng.integers(2, 8))):
            radius = size * rng.uniform(0.35, 0.8)
            tx, ty = np.array([cx, cy]) + rng.normal(0.0, size * 0.5, 2)
            count = int(np.clip(radius**2 / (10.0 * scale * scale), 15, 3000))
            r = radius * np.sqrt(rng.random(count))
            phi = rng.uniform(0.0, 2 * np.pi, count)
            centres.append(np.stack([tx + r * np.cos(phi), ty + r * np.sin(phi)], 1))
            # Leaves nearer the top of a tuft are lighter: the sun reaches them.
            shades.append(1.0 - 0.6 * r / radius + rng.normal(0.0, 0.15, count))
            at = (int(tx / LOW), int(ty / LOW))
            cv2.circle(footprint, at, max(1, int(radius / LOW)), 1.0, -1)
    if not centres:
        return footprint
    points = np.concatenate(centres)
    shade = np.concatenate(shades)
    palette = _shaded(rng, _GREENS, 4)
    colours = np.concatenate([palette * f for f in (0.45, 0.6, 0.75, 0.92)])
    which = rng.integers(0, 4, len(points)) + 4 * np.clip((shade * 4).astype(int), 0, 3)
    leaves = _leaf_shapes(rng, points, (5.0, 16.0), scale)
    _draw_shapes(frame, leaves, colours, which, closed=True)
    return footprint


# --- distractors: sprites that look a little like litter but are not -----------------------

_PEBBLES = ((0.45, 0.43, 0.40), (0.55, 0.45, 0.33), (0.30, 0.29, 0.28), (0.70, 0.60, 0.42))
_SHELLS = ((0.95, 0.93, 0.88), (0.90, 0.82, 0.72), (0.88, 0.78, 0.78))
_WEEDS = ((0.22, 0.20, 0.10), (0.17, 0.24, 0.11), (0.42, 0.33, 0.20), (0.30, 0.22, 0.12))
_WOODS = ((0.45, 0.35, 0.25), (0.60, 0.55, 0.48), (0.35, 0.27, 0.20), (0.70, 0.66, 0.60))


def stone(rng: np.random.Generator, scale: float, light: np.ndarray) -> Sprite:
    """A pebble or a cobble, rounded or broken, lit from the sun's side."""
    length = rng.uniform(5.0, 50.0) * scale
    if rng.random() < 0.3:
        shape = shard(rng, length, int(rng.integers(5, 9)), rng.uniform(0.5, 0.95))
    else:
        shape = blob(rng, length, rng.uniform(0.5, 0.95), 0.3)
    patch = patch_for(rng, np.hypot(*np.ptp(shape, axis=0)))
    along, across = patch.local()
    lx, ly = patch.light_along(light)
    shade = 0.85 - 0.5 * (along * lx + across * ly) / length
    colour = pick(rng, _PEBBLES) * shade[..., None]
    return Sprite(patch.coverage(patch.fill(patch.canvas(), shape)), colour, 1.0, relief=0.6)


def shell(rng: np.random.Generator, scale: float, light: np.ndarray) -> Sprite:
    size = rng.uniform(8.0, 30.0) * scale
    phi = np.linspace(-1.2, 1.2, 24)
    scallop = 1.0 + 0.06 * np.abs(np.sin(phi * 9))
    fan = np.concatenate([[[0.0, 0.0]], np.stack([np.cos(phi), np.sin(phi)], 1) * scallop[:, None]])
    fan = (fan - [0.5, 0.0]) * size / 1.9
    patch = patch_for(rng, np.hypot(*np.ptp(fan, axis=0)))
    along, across = patch.local()
    ribs = 0.85 + 0.15 * np.cos(9 * np.arctan2(across, along + size / 4)) ** 2
    colour = pick(rng, _SHELLS) * ribs[..., None]
    return Sprite(patch.coverage(patch.fill(patch.canvas(), fan)), colour, 1.0, relief=0.3)


def seaweed(rng: np.random.Generator, scale: float, light: np.ndarray) -> Sprite:
    """A washed-up strand of weed: thick, dark, rope-like."""
    length = rng.uniform(40.0, 260.0) * scale
    thickness = rng.uniform(3.0, 9.0) * max(scale, 0.6)
    patch = patch_for(rng, length + thickness, turn=False)
    canvas = patch.stroke(patch.canvas(), wander(rng, length, rng.uniform(0.1, 0.7)), thickness)
    noise = 0.8 + 0.25 * smooth_noise(rng, patch.size, patch.size, 8)
    colour = pick(rng, _WEEDS) * noise[..., None]
    return Sprite(patch.coverage(canvas), colour, rng.uniform(0.85, 1.0), relief=0.3)


def wood(rng: np.random.Generator, scale: float, light: np.ndarray) -> Sprite:
    """Driftwood: a bent branch, or a weathered plank with its grain."""
    length = rng.uniform(50.0, 400.0) * scale
    patch = patch_for(rng, length + 12)
    canvas = patch.canvas()
    if rng.random() < 0.5:
        thickness = rng.uniform(5.0, 16.0) * max(scale, 0.6)
        patch.stroke(canvas, wander(rng, length - thickness, rng.uniform(0.05, 0.3)), thickness)
    else:
        half = rng.uniform(0.06, 0.15) * length / 2
        xs = np.array([-length / 2, length / 2])
        end_cut = rng.uniform(-1.0, 1.0, 2) * half
        patch.fill(
            canvas,
            np.array(
                [
                    [xs[0], -half],
                    [xs[1] + end_cut[0], -half],
                    [xs[1] + end_cut[1], half],
                    [xs[0], half],
                ]
            ),
        )
    along, across = patch.local()
    grain = 0.9 + 0.1 * np.sin(
        across * rng.uniform(1.0, 2.5) + 0.3 * smooth_noise(rng, patch.size, patch.size, 6) * 10
    )
    colour = pick(rng, _WOODS) * grain[..., None]
    return Sprite(patch.coverage(canvas), colour, 1.0, relief=1.0)


def foam(rng: np.random.Generator, scale: float, light: np.ndarray) -> Sprite:
    """A streak of foam on the water: white and bag-like, but faint and soft-edged."""
    length = rng.uniform(30.0, 300.0) * scale
    streak = blob(rng, length, rng.uniform(0.06, 0.3), 0.6, 0.08)
    patch = patch_for(rng, np.hypot(*np.ptp(streak, axis=0)) + 8)  # room for the soft edge
    cover = patch.coverage(patch.fill(patch.canvas(), streak))
    cover = cv2.GaussianBlur(cover, (0, 0), rng.uniform(1.0, 3.0))
    colour = np.full((*cover.shape, 3), 0.92, dtype=np.float32)
    bubbles = smooth_noise(rng, patch.size, patch.size, max(3, patch.size // 20))
    opacity = np.clip(0.4 + 0.8 * bubbles, 0.0, 1.0)
    return Sprite(cover, colour, opacity * rng.uniform(0.15, 0.45), relief=0.0)


def leaf(rng: np.random.Generator, scale: float, light: np.ndarray) -> Sprite:
    """One big fallen leaf (a palm leaflet, a mangrove or almond leaf), with its midrib."""
    length = rng.uniform(20.0, 90.0) * scale
    width = length * rng.uniform(0.15, 0.5)
    xs = np.linspace(-length / 2, length / 2, 24)
    half = width / 2 * np.sqrt(np.clip(1.0 - (2 * xs / length) ** 2, 0.0, 1.0)) ** 0.8
    patch = patch_for(rng, np.hypot(length, width))
    shape = np.concatenate([np.stack([xs, -half], 1), np.stack([xs, half], 1)[::-1]])
    along, across = patch.local()
    midrib = np.exp(-((across / max(width * 0.06, 0.6)) ** 2))[..., None]
    base = pick(rng, _DEAD_LEAVES + _GREENS[:1]) * rng.uniform(0.8, 1.2)
    colour = base * (0.9 + 0.1 * smooth_noise(rng, patch.size, patch.size, 4))[..., None]
    colour = colour + (0.75 - colour) * 0.35 * midrib
    return Sprite(patch.coverage(patch.fill(patch.canvas(), shape)), colour, 1.0, relief=0.2)
