"""Synthetic nadir drone frames of beach and floating litter, with exact boxes.

Ground textures are made at a quarter of the resolution and upscaled once, so a 12 MP frame
costs well under a second. Every item and distractor is drawn as polygons or thick polylines
on a 4x supersampled canvas of its own small patch; the downsampled coverage gives antialiased
edges, and an item's box is exactly the extent of the pixels its coverage touches. Items never
overlap and nothing is drawn over them except the final sensor noise. Sizes are in pixels of
a 4000x3000 frame and do not scale with the frame: a smaller frame is a smaller field of view
at the same ground resolution, which is what tiled inference sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from imagine_assist.samples.base import Sample, SampleObject, split_for

LITTER_CATEGORIES = ("bottle", "bag", "can", "rope")

_SS = 4  # supersampling factor of the patch canvases
_SHIFT = 4  # fixed-point bits for cv2 drawing: sub-pixel vertex positions
_MIN_COVER = 2 / _SS**2  # one stray subsample is not a rendered pixel
_LOW = 4  # ground textures are made at 1/_LOW resolution
_GAP = 6  # px between the circles round item patches, so items and shadows stay apart

_WATERS = np.array(
    [[0.20, 0.33, 0.38], [0.22, 0.38, 0.33], [0.30, 0.36, 0.42], [0.14, 0.26, 0.30]],
    dtype=np.float32,
)
_SANDS = np.array(
    [[0.80, 0.72, 0.58], [0.72, 0.64, 0.50], [0.68, 0.65, 0.58], [0.84, 0.78, 0.66]],
    dtype=np.float32,
)
_WET_SAND = np.array([0.52, 0.46, 0.37], dtype=np.float32)


@dataclass
class _Sprite:
    coverage: np.ndarray  # float32 (h, w): share of each pixel the shape covers
    colour: np.ndarray  # float32 (h, w, 3) in [0, 1]
    opacity: np.ndarray | float  # see-through film and clear plastic let the ground show


# --- drawing in a local patch ---------------------------------------------------------------


@dataclass(frozen=True)
class _Patch:
    """A square patch of `size` px; shapes are given centred on the origin, unrotated."""

    size: int
    angle: float

    def _to_canvas(self, points: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.angle), np.sin(self.angle)
        turned = points @ np.array([[c, s], [-s, c]]) + (self.size - 1) / 2
        # INTER_AREA averages canvas pixels SS*j .. SS*j + SS-1 into patch pixel j, so patch
        # coordinate p sits at canvas coordinate SS*p + (SS-1)/2.
        return np.round((turned * _SS + (_SS - 1) / 2) * (1 << _SHIFT)).astype(np.int32)

    def canvas(self) -> np.ndarray:
        return np.zeros((self.size * _SS, self.size * _SS), dtype=np.uint8)

    def fill(self, canvas: np.ndarray, polygon: np.ndarray) -> np.ndarray:
        cv2.fillPoly(canvas, [self._to_canvas(polygon)], 255, cv2.LINE_8, _SHIFT)
        return canvas

    def stroke(self, canvas: np.ndarray, points: np.ndarray, thickness: float) -> np.ndarray:
        width = max(1, round(thickness * _SS))
        cv2.polylines(canvas, [self._to_canvas(points)], False, 255, width, cv2.LINE_8, _SHIFT)
        return canvas

    def coverage(self, canvas: np.ndarray) -> np.ndarray:
        small = cv2.resize(canvas, (self.size, self.size), interpolation=cv2.INTER_AREA)
        cover = small.astype(np.float32) / 255.0
        cover[cover < _MIN_COVER] = 0.0
        return cover

    def local(self) -> tuple[np.ndarray, np.ndarray]:
        """Shape coordinates (along, across) of every patch pixel centre."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float32) - (self.size - 1) / 2
        return c * xs + s * ys, -s * xs + c * ys


def _patch(rng: np.random.Generator, extent: float, turn: bool = True) -> _Patch:
    """A patch that holds a shape of diagonal `extent` at any angle (or unturned)."""
    return _Patch(int(np.ceil(extent)) + 4, float(rng.uniform(0.0, 2.0 * np.pi)) if turn else 0.0)


def _outline(xs: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Closed polygon of a shape symmetric about the x axis, from its half-widths."""
    return np.concatenate([np.stack([xs, -half], 1), np.stack([xs, half], 1)[::-1]])


def _rounded_half(xs: np.ndarray, x0: float, x1: float, half: float, r: float) -> np.ndarray:
    """Half-width of a rounded rectangle from x0 to x1 with corner radius r."""
    into = np.clip(np.maximum(x0 + r - xs, xs - (x1 - r)), 0.0, r)
    return half - r + np.sqrt(np.maximum(r * r - into * into, 0.0))


def _blob(
    rng: np.random.Generator, length: float, aspect: float, wobble: float, crinkle: float = 0.0
) -> np.ndarray:
    """An irregular closed outline whose longest side is `length`: `wobble` bends it into
    lobes, `crinkle` roughens its edge."""
    phi = np.linspace(0.0, 2.0 * np.pi, 64, endpoint=False)
    radius = np.ones_like(phi)
    for k in range(2, 12):
        amplitude = wobble / k if k < 6 else crinkle
        radius += rng.uniform(0.0, amplitude) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    pts = np.stack([radius * np.cos(phi), aspect * radius * np.sin(phi)], 1)
    pts -= (pts.max(0) + pts.min(0)) / 2
    return pts * length / np.ptp(pts, axis=0).max()


def _wander(rng: np.random.Generator, length: float, bend: float) -> np.ndarray:
    """A smooth random curve whose bounding box's longest side is `length`."""
    heading = np.cumsum(rng.normal(0.0, bend, 9)) + rng.uniform(0, 2 * np.pi)
    steps = np.stack([np.cos(heading), np.sin(heading)], 1)
    pts = np.concatenate([[[0.0, 0.0]], np.cumsum(steps, 0)])
    for _ in range(2):  # Chaikin corner cutting: a rope has no kinks
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        pts = np.stack([q, r], 1).reshape(-1, 2)
    pts -= (pts.max(0) + pts.min(0)) / 2
    return pts * length / max(np.ptp(pts, axis=0).max(), 1e-6)


def _cylinder(across: np.ndarray, half: float) -> np.ndarray:
    """Apparent brightness profile of a lying cylinder: bright ridge, dark flanks."""
    return np.sqrt(np.clip(1.0 - (across / half) ** 2, 0.0, 1.0))


def _shine(across: np.ndarray, half: float, at: float, width: float) -> np.ndarray:
    return np.exp(-(((across / half - at) / width) ** 2))[..., None]


def _pick(rng: np.random.Generator, options: Sequence) -> np.ndarray:
    return np.asarray(options[rng.integers(len(options))], dtype=np.float32)


# --- litter ---------------------------------------------------------------------------------

_BOTTLES = (
    (0.86, 0.90, 0.92, 0.45),
    (0.48, 0.68, 0.90, 0.6),
    (0.32, 0.62, 0.42, 0.65),
    (0.92, 0.92, 0.90, 0.95),
)  # clear, blue, green PET, opaque milk (RGB, opacity)
_CAPS = ((0.95, 0.95, 0.95), (0.1, 0.3, 0.8), (0.85, 0.1, 0.1), (0.1, 0.6, 0.2), (0.95, 0.5, 0.1))
_LABELS = ((0.85, 0.1, 0.1), (0.1, 0.3, 0.8), (0.95, 0.8, 0.1), (0.95, 0.95, 0.95))
_BAGS = (
    (0.95, 0.95, 0.93),
    (0.75, 0.85, 0.95),
    (0.12, 0.12, 0.13),
    (0.9, 0.45, 0.55),
    (0.55, 0.8, 0.5),
    (0.95, 0.88, 0.45),
)
_CANS = (
    (0.78, 0.08, 0.10),
    (0.78, 0.79, 0.81),
    (0.10, 0.22, 0.70),
    (0.10, 0.50, 0.22),
    (0.82, 0.66, 0.22),
)
_ROPES = ((0.96, 0.45, 0.08), (0.12, 0.35, 0.82), (0.12, 0.55, 0.25), (0.92, 0.82, 0.12))


def _bottle(rng: np.random.Generator) -> _Sprite:
    length = rng.uniform(40.0, 110.0)
    width = length * rng.uniform(0.26, 0.36)
    half, neck = width / 2, 0.21 * width
    x0, cap_x = -length / 2, length / 2 - 0.07 * length
    neck_x = cap_x - 0.08 * length
    shoulder_x = neck_x - 0.16 * length
    patch = _patch(rng, np.hypot(length, width))
    xs = np.linspace(x0, cap_x, 60)
    ease = np.clip((xs - shoulder_x) / (neck_x - shoulder_x), 0.0, 1.0)
    body = _rounded_half(xs, x0, cap_x + half, half, 0.3 * width)
    profile = np.where(xs < shoulder_x, body, neck + (half - neck) * (1 + np.cos(np.pi * ease)) / 2)
    canvas = patch.fill(patch.canvas(), _outline(xs, profile))
    cap = _outline(np.array([cap_x - 0.5, length / 2]), np.full(2, 1.2 * neck))
    cap_canvas = patch.fill(patch.canvas(), cap)
    along, across = patch.local()
    *tint, opacity = _pick(rng, _BOTTLES)
    cyl = _cylinder(across, half)[..., None]
    colour = np.asarray(tint, dtype=np.float32) * (0.72 + 0.38 * cyl)
    shine = _shine(across, half, rng.choice([-0.45, 0.45]), 0.14) * (along < shoulder_x)[..., None]
    colour = colour + (1.0 - colour) * 0.85 * shine
    alpha = opacity + (1.0 - opacity) * (0.5 * (1.0 - cyl[..., 0]) + 0.8 * shine[..., 0])
    if rng.random() < 0.4:  # a printed sleeve round the middle
        sleeve = (along > x0 + 0.25 * length) & (along < x0 + 0.55 * length)
        colour[sleeve] = (_pick(rng, _LABELS) * (0.7 + 0.35 * cyl))[sleeve]
        alpha[sleeve] = 1.0
    capped = patch.coverage(cap_canvas) > 0
    colour[capped] = (_pick(rng, _CAPS) * (0.75 + 0.3 * cyl))[capped]
    alpha[capped] = 1.0
    return _Sprite(patch.coverage(np.maximum(canvas, cap_canvas)), colour, alpha)


def _bag(rng: np.random.Generator) -> _Sprite:
    length = rng.uniform(35.0, 110.0)
    outline = _blob(rng, length, rng.uniform(0.45, 1.0), rng.uniform(0.2, 0.7), 0.05)
    patch = _patch(rng, np.hypot(*np.ptp(outline, axis=0)))
    along, across = patch.local()
    folds = _smooth_noise(rng, patch.size, patch.size, 5)
    wrinkles = _smooth_noise(rng, patch.size, patch.size, 12)
    # Film catches light on its ridges: bright where the wrinkle field crosses zero.
    ridges = np.exp(-((wrinkles / 0.12) ** 2)) * rng.uniform(0.1, 0.3)
    shade = 0.82 + 0.2 * folds + ridges
    colour = _pick(rng, _BAGS) * shade[..., None]
    opacity = np.clip(rng.uniform(0.55, 0.9) + 0.15 * folds, 0.3, 1.0)
    return _Sprite(patch.coverage(patch.fill(patch.canvas(), outline)), colour, opacity)


def _can(rng: np.random.Generator) -> _Sprite:
    length = rng.uniform(30.0, 62.0)
    width = length * rng.uniform(0.52, 0.62)
    half = width / 2
    patch = _patch(rng, np.hypot(length, width))
    xs = np.linspace(-length / 2, length / 2, 40)
    profile = _rounded_half(xs, -length / 2, length / 2, half, 0.12 * width)
    crushed = rng.random() < 0.3
    if crushed:  # a stepped-on can: dented outline, rippled sheen
        profile = profile * (1.0 - 0.12 * np.abs(np.sin(xs / length * rng.uniform(6, 14))))
    canvas = patch.fill(patch.canvas(), _outline(xs, profile))
    along, across = patch.local()
    metal = _cylinder(across, half)[..., None] ** 2
    paint = _pick(rng, _CANS)
    rim = (np.abs(along) > length / 2 - 0.07 * length)[..., None]
    base = np.where(rim, np.float32(0.78), paint)
    colour = base * (0.4 + 0.75 * metal)
    if crushed:
        colour = colour * (0.85 + 0.3 * np.sin(along * 1.3)[..., None] ** 2)
    colour = colour + (1.0 - colour) * 0.9 * _shine(across, half, rng.uniform(0.2, 0.45), 0.1)
    return _Sprite(patch.coverage(canvas), colour, 1.0)


def _rope(rng: np.random.Generator) -> _Sprite:
    if rng.random() < 0.3:
        return _net(rng)
    length = rng.uniform(40.0, 110.0)
    thickness = rng.uniform(4.0, 10.0)
    line = _wander(rng, length - thickness, rng.uniform(0.3, 0.8))
    patch = _patch(rng, length, turn=False)  # the curve already heads anywhere
    outer = patch.coverage(patch.stroke(patch.canvas(), line, thickness))
    core = patch.coverage(patch.stroke(patch.canvas(), line, thickness * 0.45))
    along, across = patch.local()
    twist = 0.85 + 0.15 * np.sin(2 * np.pi * (along + across) / (1.3 * thickness))
    colour = _pick(rng, _ROPES) * ((0.6 + 0.45 * core) * twist)[..., None]
    return _Sprite(outer, colour, 1.0)


def _net(rng: np.random.Generator) -> _Sprite:
    """A scrap of fishing net: a mesh of thin twine inside a ragged outline."""
    length = rng.uniform(50.0, 110.0)
    outline = _blob(rng, length, rng.uniform(0.5, 1.0), 1.2)
    patch = _patch(rng, np.hypot(*np.ptp(outline, axis=0)))
    mesh = patch.canvas()
    spacing, twine = rng.uniform(7.0, 13.0), rng.uniform(1.3, 2.2)
    reach = np.arange(-length, length, spacing)
    for turn in (0.0, rng.uniform(1.0, 1.6)):
        c, s = np.cos(turn), np.sin(turn)
        for offset in reach + rng.uniform(0, spacing):
            ends = np.array([[offset, -length], [offset, length]]) @ np.array([[c, s], [-s, c]])
            patch.stroke(mesh, ends, twine)
    inside = patch.fill(patch.canvas(), outline)
    cover = patch.coverage(np.minimum(mesh, inside))
    colour = np.broadcast_to(_pick(rng, _ROPES) * 0.85, (*cover.shape, 3)).copy()
    return _Sprite(cover, colour, 1.0)


_MAKERS: dict[str, Callable[[np.random.Generator], _Sprite]] = {
    "bottle": _bottle,
    "bag": _bag,
    "can": _can,
    "rope": _rope,
}


# --- things that are not litter -------------------------------------------------------------

_PEBBLES = ((0.45, 0.43, 0.40), (0.55, 0.45, 0.33), (0.30, 0.29, 0.28), (0.70, 0.60, 0.42))
_SHELLS = ((0.95, 0.93, 0.88), (0.90, 0.82, 0.72), (0.88, 0.78, 0.78))
_WEEDS = ((0.22, 0.20, 0.10), (0.17, 0.24, 0.11), (0.42, 0.33, 0.20), (0.30, 0.22, 0.12))


def _pebble(rng: np.random.Generator, light: np.ndarray) -> _Sprite:
    length = rng.uniform(5.0, 40.0)
    outline = _blob(rng, length, rng.uniform(0.5, 0.95), 0.3)
    patch = _patch(rng, np.hypot(*np.ptp(outline, axis=0)))
    along, across = patch.local()
    # Lit from the sun's side: the patch is turned, so turn the light into shape coordinates.
    c, s = np.cos(patch.angle), np.sin(patch.angle)
    lx, ly = c * light[0] + s * light[1], -s * light[0] + c * light[1]
    shade = 0.85 - 0.5 * (along * lx + across * ly) / length
    colour = _pick(rng, _PEBBLES) * shade[..., None]
    return _Sprite(patch.coverage(patch.fill(patch.canvas(), outline)), colour, 1.0)


def _shell(rng: np.random.Generator) -> _Sprite:
    size = rng.uniform(8.0, 28.0)
    phi = np.linspace(-1.2, 1.2, 24)
    scallop = 1.0 + 0.06 * np.abs(np.sin(phi * 9))
    fan = np.concatenate([[[0.0, 0.0]], np.stack([np.cos(phi), np.sin(phi)], 1) * scallop[:, None]])
    fan = (fan - [0.5, 0.0]) * size / 1.9
    patch = _patch(rng, np.hypot(*np.ptp(fan, axis=0)))
    along, across = patch.local()
    ribs = 0.85 + 0.15 * np.cos(9 * np.arctan2(across, along + size / 4)) ** 2
    colour = _pick(rng, _SHELLS) * ribs[..., None]
    return _Sprite(patch.coverage(patch.fill(patch.canvas(), fan)), colour, 1.0)


def _strand(rng: np.random.Generator) -> _Sprite:
    """Washed-up seaweed or a stick: thick, dark, rope-like, not litter."""
    length = rng.uniform(40.0, 260.0)
    thickness = rng.uniform(3.0, 9.0)
    patch = _patch(rng, length + thickness, turn=False)
    canvas = patch.stroke(patch.canvas(), _wander(rng, length, rng.uniform(0.1, 0.7)), thickness)
    noise = 0.8 + 0.25 * _smooth_noise(rng, patch.size, patch.size, 8)
    colour = _pick(rng, _WEEDS) * noise[..., None]
    return _Sprite(patch.coverage(canvas), colour, rng.uniform(0.85, 1.0))


def _foam(rng: np.random.Generator) -> _Sprite:
    """A streak of foam on the water: white and bag-like, but faint and soft-edged."""
    length = rng.uniform(30.0, 300.0)
    outline = _blob(rng, length, rng.uniform(0.06, 0.3), 0.6, 0.08)
    patch = _patch(rng, np.hypot(*np.ptp(outline, axis=0)) + 8)  # room for the soft edge
    cover = patch.coverage(patch.fill(patch.canvas(), outline))
    cover = cv2.GaussianBlur(cover, (0, 0), rng.uniform(1.0, 3.0))
    colour = np.full((*cover.shape, 3), 0.92, dtype=np.float32)
    bubbles = _smooth_noise(rng, patch.size, patch.size, max(3, patch.size // 20))
    opacity = np.clip(0.4 + 0.8 * bubbles, 0.0, 1.0)
    return _Sprite(cover, colour, opacity * rng.uniform(0.15, 0.45))


# --- ground ---------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse grid, upscaled, so it costs nothing."""
    grid = rng.standard_normal((max(2, cells * height // width), cells)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) / 1.5


def _waves(rng: np.random.Generator, w: int, h: int, wavelengths: tuple[float, ...]) -> np.ndarray:
    """Wind waves or sand ripples: a few crossing swells, bent by low-frequency noise."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    wind = rng.uniform(0.0, np.pi)
    bend = _smooth_noise(rng, w, h, 7) * rng.uniform(1.0, 4.0)
    total = np.zeros((h, w), dtype=np.float32)
    for _ in range(3):
        angle = wind + rng.normal(0.0, 0.35)
        k = 2 * np.pi / rng.uniform(*wavelengths)
        phase = k * (xs * np.cos(angle) + ys * np.sin(angle)) + bend
        total += rng.uniform(0.3, 1.0) * (np.sin(phase) + 0.3 * np.sin(2 * phase))
    return total / (np.abs(total).max() + 1e-6)


def _vignette(w: int, h: int, strength: float) -> np.ndarray:
    ys, xs = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j].astype(np.float32)
    return (1.0 - strength * (xs**2 + ys**2) / 2)[..., None]


def _water(rng: np.random.Generator, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Low-resolution water and its wave field (for placing sun glints)."""
    weights = rng.dirichlet(np.ones(len(_WATERS)))
    colour = weights @ _WATERS * rng.uniform(0.85, 1.2, 3).astype(np.float32)
    depth = _smooth_noise(rng, w, h, 4) * 0.10 + _smooth_noise(rng, w, h, 15) * 0.04
    waves = _waves(rng, w, h, (6.0, 20.0))
    ground = colour * (1.0 + depth[..., None] + rng.uniform(0.04, 0.1) * waves[..., None])
    gx, gy = rng.uniform(0.0, 1.0, 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    glare = np.exp(-((xs / w - gx) ** 2 + (ys / h - gy) ** 2) / rng.uniform(0.05, 0.3))
    ground = ground + (0.85 - ground) * (glare * rng.uniform(0.0, 0.35))[..., None]
    return ground * _vignette(w, h, rng.uniform(0.05, 0.25)), waves * glare


def _sand(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    colour = _pick(rng, _SANDS) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    wet = np.clip(_smooth_noise(rng, w, h, 3) * 1.5 - rng.uniform(0.0, 1.5), 0.0, 1.0)
    ground = colour + (_WET_SAND - colour) * wet[..., None]
    ripples = _waves(rng, w, h, (10.0, 30.0)) * rng.uniform(0.0, 0.08)
    mottle = _smooth_noise(rng, w, h, 40) * 0.04 + rng.normal(0.0, 0.025, (h, w)).astype(np.float32)
    return ground * (1.0 + ripples + mottle)[..., None] * _vignette(w, h, rng.uniform(0.05, 0.2))


def _upscale(ground: np.ndarray, width: int, height: int) -> np.ndarray:
    small = np.clip(ground * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _glints(rng: np.random.Generator, frame: np.ndarray, field: np.ndarray) -> None:
    """Sun glitter: tiny bright flecks on the wave crests, densest in the glare."""
    h, w = field.shape
    ys, xs = rng.integers(0, h, 20000), rng.integers(0, w, 20000)
    keep = np.flatnonzero(field[ys, xs] > rng.uniform(0.25, 0.6))[:3000]
    jitter = rng.integers(0, _LOW, (len(keep), 2))
    lengths, levels = rng.integers(1, 4, len(keep)), rng.integers(200, 256, len(keep))
    turns = rng.uniform(0.0, 180.0, len(keep))
    for i, k in enumerate(keep):
        centre = (int(xs[k] * _LOW + jitter[i, 0]), int(ys[k] * _LOW + jitter[i, 1]))
        colour = (int(levels[i]),) * 3
        cv2.ellipse(frame, centre, (int(lengths[i]), 1), turns[i], 0, 360, colour, -1, cv2.LINE_AA)


# --- compositing ----------------------------------------------------------------------------


def _clip(frame: np.ndarray, x0: int, y0: int, h: int, w: int) -> tuple[tuple[slice, ...], ...]:
    fx0, fy0 = min(max(x0, 0), frame.shape[1]), min(max(y0, 0), frame.shape[0])
    # A patch wholly off one side gives an empty, never a negative (wrapping), slice.
    fx1, fy1 = max(min(x0 + w, frame.shape[1]), fx0), max(min(y0 + h, frame.shape[0]), fy0)
    patch = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    return (slice(fy0, fy1), slice(fx0, fx1)), patch


def _paint(frame: np.ndarray, sprite: _Sprite, x0: int, y0: int, shadow: tuple[int, int] | None):
    """Draw a sprite with its top-left at (x0, y0), after darkening the sand under its shadow."""
    h, w = sprite.coverage.shape
    if shadow is not None:
        dark = cv2.GaussianBlur(sprite.coverage, (0, 0), 1.5) * 0.3
        frame_s, patch_s = _clip(frame, x0 + shadow[0], y0 + shadow[1], h, w)
        region = frame[frame_s].astype(np.float32)
        frame[frame_s] = (region * (1.0 - dark[patch_s])[..., None] + 0.5).astype(np.uint8)
    frame_s, patch_s = _clip(frame, x0, y0, h, w)
    weight = (sprite.coverage * sprite.opacity)[patch_s][..., None]
    region = frame[frame_s].astype(np.float32)
    blended = region + (sprite.colour[patch_s] * 255.0 - region) * weight
    frame[frame_s] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _place(
    rng: np.random.Generator, taken: list[tuple[float, float, float]], size: int, w: int, h: int
) -> tuple[int, int] | None:
    """Top-left of a patch fully inside the frame whose circle clears every earlier item."""
    radius = size / np.sqrt(2) + _GAP
    if size >= min(w, h):
        return None
    for _ in range(40):
        x0, y0 = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
        cx, cy = x0 + size / 2, y0 + size / 2
        if all((cx - x) ** 2 + (cy - y) ** 2 >= (radius + r) ** 2 for x, y, r in taken):
            taken.append((cx, cy, radius))
            return x0, y0
    return None


def _box(sprite: _Sprite, x0: int, y0: int) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(sprite.coverage)
    x1, y1 = x0 + int(xs.min()), y0 + int(ys.min())
    return float(x1), float(y1), float(x0 + int(xs.max()) + 1), float(y0 + int(ys.max()) + 1)


def litter_frame(
    rng: np.random.Generator, width: int = 4000, height: int = 3000
) -> tuple[np.ndarray, list[SampleObject]]:
    """One nadir drone frame (RGB uint8) of water or sand with 10-40 litter items."""
    on_sand = bool(rng.random() < 0.5)
    angle = rng.uniform(0.0, 2 * np.pi)
    light = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)
    w, h = -(-width // _LOW), -(-height // _LOW)
    if on_sand:
        frame = _upscale(_sand(rng, w, h), width, height)
        shadow = (round(3 * light[0]), round(3 * light[1]))
        distractors = [(lambda r: _pebble(r, light), 40, 250), (_shell, 10, 60), (_strand, 3, 25)]
    else:
        ground, glitter = _water(rng, w, h)
        frame = _upscale(ground, width, height)
        _glints(rng, frame, glitter)
        shadow = None  # floating items shade the water below them, out of sight
        distractors = [(_foam, 5, 40), (_strand, 0, 12)]
    for make, low, high in distractors:
        for _ in range(int(rng.integers(low, high + 1))):
            sprite = make(rng)
            x0, y0 = int(rng.integers(-20, width - 20)), int(rng.integers(-20, height - 20))
            _paint(frame, sprite, x0, y0, shadow)
    objects = _litter(rng, frame, shadow, on_sand)
    noise = cv2.cvtColor(
        np.frombuffer(rng.bytes(width * height), np.uint8).reshape(height, width),
        cv2.COLOR_GRAY2RGB,
    )
    grain = 0.07 if on_sand else 0.035  # sand is grainier than water at this scale
    cv2.addWeighted(frame, 1.0, noise, grain, -127.5 * grain, dst=frame)
    return frame, objects


def _litter(
    rng: np.random.Generator, frame: np.ndarray, shadow: tuple[int, int] | None, on_sand: bool
) -> list[SampleObject]:
    height, width = frame.shape[:2]
    weights = rng.dirichlet(np.full(len(LITTER_CATEGORIES), 2.0))
    taken: list[tuple[float, float, float]] = []
    objects = []
    for _ in range(int(rng.integers(10, 41))):
        label = LITTER_CATEGORIES[rng.choice(len(LITTER_CATEGORIES), p=weights)]
        sprite = _MAKERS[label](rng)
        if not on_sand:  # floating items sit partly under water, which mutes them
            sprite.opacity = sprite.opacity * rng.uniform(0.65, 1.0)
        spot = _place(rng, taken, sprite.coverage.shape[0], width, height)
        if spot is None:
            continue
        _paint(frame, sprite, *spot, shadow)
        objects.append(SampleObject(label, _box(sprite, *spot)))
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
