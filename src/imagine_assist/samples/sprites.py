"""Small antialiased sprites drawn in patches of their own, and pasting them into a frame.

Every shape is drawn as polygons or thick polylines on a 4x supersampled canvas of its own
small patch; the downsampled coverage gives antialiased edges, and a sprite's box is exactly
the extent of the pixels its coverage touches. The litter generator draws its items and its
distractors (stones, shells, wood) with these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SS = 4  # supersampling factor of the patch canvases
_SHIFT = 4  # fixed-point bits for cv2 drawing: sub-pixel vertex positions
_MIN_COVER = 2 / SS**2  # one stray subsample is not a rendered pixel
GAP = 10  # px between the circles round item patches, so items and shadows stay apart


@dataclass
class Sprite:
    coverage: np.ndarray  # float32 (h, w): share of each pixel the shape covers
    colour: np.ndarray  # float32 (h, w, 3) in [0, 1]
    opacity: np.ndarray | float  # see-through film and clear plastic let the ground show
    relief: float = 1.0  # how tall it stands, as a share of a bottle's: sets its shadow's reach


@dataclass(frozen=True)
class Patch:
    """A square patch of `size` px; shapes are given centred on the origin, unrotated."""

    size: int
    angle: float

    def _to_canvas(self, points: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.angle), np.sin(self.angle)
        turned = points @ np.array([[c, s], [-s, c]]) + (self.size - 1) / 2
        # INTER_AREA averages canvas pixels SS*j .. SS*j + SS-1 into patch pixel j, so patch
        # coordinate p sits at canvas coordinate SS*p + (SS-1)/2.
        return np.round((turned * SS + (SS - 1) / 2) * (1 << _SHIFT)).astype(np.int32)

    def canvas(self) -> np.ndarray:
        return np.zeros((self.size * SS, self.size * SS), dtype=np.uint8)

    def fill(self, canvas: np.ndarray, polygon: np.ndarray) -> np.ndarray:
        cv2.fillPoly(canvas, [self._to_canvas(polygon)], 255, cv2.LINE_8, _SHIFT)
        return canvas

    def stroke(self, canvas: np.ndarray, points: np.ndarray, thickness: float) -> np.ndarray:
        width = max(1, round(thickness * SS))
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

    def light_along(self, light: np.ndarray) -> tuple[float, float]:
        """The sun's direction (frame coordinates) in this patch's shape coordinates."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        return c * light[0] + s * light[1], -s * light[0] + c * light[1]


def patch_for(rng: np.random.Generator, extent: float, turn: bool = True) -> Patch:
    """A patch that holds a shape of diagonal `extent` at any angle (or unturned)."""
    return Patch(int(np.ceil(extent)) + 4, float(rng.uniform(0.0, 2.0 * np.pi)) if turn else 0.0)


def outline(xs: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Closed polygon of a shape symmetric about the x axis, from its half-widths."""
    return np.concatenate([np.stack([xs, -half], 1), np.stack([xs, half], 1)[::-1]])


def rounded_half(xs: np.ndarray, x0: float, x1: float, half: float, r: float) -> np.ndarray:
    """Half-width of a rounded rectangle from x0 to x1 with corner radius r."""
    into = np.clip(np.maximum(x0 + r - xs, xs - (x1 - r)), 0.0, r)
    return half - r + np.sqrt(np.maximum(r * r - into * into, 0.0))


def blob(
    rng: np.random.Generator, length: float, aspect: float, wobble: float, crinkle: float = 0.0
) -> np.ndarray:
    """An irregular closed outline whose longest side is `length`: `wobble` bends it into
    lobes, `crinkle` roughens its edge."""
    phi = np.linspace(0.0, 2.0 * np.pi, 64, endpoint=False)
    radius = np.ones_like(phi)
    for k in range(2, 12):
        amplitude = wobble / k if k < 6 else crinkle
        radius += rng.uniform(0.0, amplitude) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    return fit(np.stack([radius * np.cos(phi), aspect * radius * np.sin(phi)], 1), length)


def shard(rng: np.random.Generator, length: float, corners: int, aspect: float) -> np.ndarray:
    """A broken-off piece: a polygon of a few straight edges, roughly convex."""
    phi = np.sort(rng.uniform(0.0, 2.0 * np.pi, corners))
    radius = rng.uniform(0.55, 1.0, corners)
    return fit(np.stack([radius * np.cos(phi), aspect * radius * np.sin(phi)], 1), length)


def fit(points: np.ndarray, length: float) -> np.ndarray:
    """Points centred on their box, scaled so the box's longest side is `length`."""
    points = points - (points.max(0) + points.min(0)) / 2
    return points * length / max(np.ptp(points, axis=0).max(), 1e-6)


def wander(rng: np.random.Generator, length: float, bend: float) -> np.ndarray:
    """A smooth random curve whose bounding box's longest side is `length`."""
    heading = np.cumsum(rng.normal(0.0, bend, 9)) + rng.uniform(0, 2 * np.pi)
    steps = np.stack([np.cos(heading), np.sin(heading)], 1)
    pts = np.concatenate([[[0.0, 0.0]], np.cumsum(steps, 0)])
    for _ in range(2):  # Chaikin corner cutting: a rope has no kinks
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        pts = np.stack([q, r], 1).reshape(-1, 2)
    return fit(pts, length)


def cylinder(across: np.ndarray, half: float) -> np.ndarray:
    """Apparent brightness profile of a lying cylinder: bright ridge, dark flanks."""
    return np.sqrt(np.clip(1.0 - (across / half) ** 2, 0.0, 1.0))


def shine(across: np.ndarray, half: float, at: float, width: float) -> np.ndarray:
    return np.exp(-(((across / half - at) / width) ** 2))[..., None]


def pick(rng: np.random.Generator, options: Sequence) -> np.ndarray:
    return np.asarray(options[rng.integers(len(options))], dtype=np.float32)


def smooth_noise(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse grid, upscaled, so it costs nothing."""
    grid = rng.standard_normal((max(2, cells * height // width), cells)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) / 1.5


# --- compositing ----------------------------------------------------------------------------


def _clip(frame: np.ndarray, x0: int, y0: int, h: int, w: int) -> tuple[tuple[slice, ...], ...]:
    fx0, fy0 = min(max(x0, 0), frame.shape[1]), min(max(y0, 0), frame.shape[0])
    # A patch wholly off one side gives an empty, never a negative (wrapping), slice.
    fx1, fy1 = max(min(x0 + w, frame.shape[1]), fx0), max(min(y0 + h, frame.shape[0]), fy0)
    patch = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    return (slice(fy0, fy1), slice(fx0, fx1)), patch


@dataclass(frozen=True)
class Sun:
    """Where a standing sprite's shadow falls (px per unit of relief) and how dark it is;
    `offset` None for floating things, whose shadow is under water and out of sight."""

    offset: tuple[float, float] | None
    darkness: float = 0.3


def paint(frame: np.ndarray, sprite: Sprite, x0: int, y0: int, sun: Sun) -> None:
    """Draw a sprite with its top-left at (x0, y0), after darkening the ground under its shadow."""
    h, w = sprite.coverage.shape
    if sun.offset is not None:
        dx, dy = round(sun.offset[0] * sprite.relief), round(sun.offset[1] * sprite.relief)
        dark = cv2.GaussianBlur(sprite.coverage, (0, 0), 1.5) * sun.darkness
        frame_s, patch_s = _clip(frame, x0 + dx, y0 + dy, h, w)
        region = frame[frame_s].astype(np.float32)
        frame[frame_s] = (region * (1.0 - dark[patch_s])[..., None] + 0.5).astype(np.uint8)
    frame_s, patch_s = _clip(frame, x0, y0, h, w)
    weight = (sprite.coverage * sprite.opacity)[patch_s][..., None]
    region = frame[frame_s].astype(np.float32)
    blended = region + (sprite.colour[patch_s] * 255.0 - region) * weight
    frame[frame_s] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


class Stamp:
    """A sprite made ready to be pasted many times, each time turned (`turn` 0-3 quarter
    turns, 4-7 the same mirrored). A paste does what `paint` does, in a few operations on one
    region of the frame: a dump throws thousands of items."""

    def __init__(self, sprite: Sprite, sun: Sun) -> None:
        self.coverage = sprite.coverage
        weight = (sprite.coverage * sprite.opacity)[..., None]
        self._keep = (1.0 - weight).astype(np.float32)  # how much of what lies below shows
        self._tone = (sprite.colour * (255.0 * weight)).astype(np.float32)  # its own share
        self._shade, self._offset = None, (0, 0)
        if sun.offset is not None:
            self._offset = (
                round(sun.offset[0] * sprite.relief),
                round(sun.offset[1] * sprite.relief),
            )
            blur = cv2.GaussianBlur(sprite.coverage, (0, 0), 1.5)[..., None]
            self._shade = (1.0 - blur * sun.darkness).astype(np.float32)
        self._turns: dict[int, Turned] = {}

    @staticmethod
    def turned(a: np.ndarray, turn: int) -> np.ndarray:
        """`a` turned by `turn` quarter turns, mirrored left to right for `turn` >= 4."""
        quarter = turn % 4  # as np.rot90, without its overhead: this runs thousands of times
        if quarter & 1:
            a = a.swapaxes(0, 1)
        a = a[:: 1 - 2 * ((quarter ^ (quarter >> 1)) & 1), :: 1 - (quarter & 2)]
        return a[:, ::-1] if turn >= 4 else a

    def at(self, turn: int) -> Turned:
        """The stamp turned, ready to paste (made once per turn)."""
        if turn not in self._turns:
            cover = np.ascontiguousarray(self.turned(self.coverage, turn))
            h, w = cover.shape
            dx, dy = self._offset
            ox, oy = max(-dx, 0), max(-dy, 0)
            scale = np.ones((h + abs(dy), w + abs(dx), 1), dtype=np.float32)
            if self._shade is not None:
                scale[oy + dy : oy + dy + h, ox + dx : ox + dx + w] = self.turned(self._shade, turn)
            scale[oy : oy + h, ox : ox + w] *= self.turned(self._keep, turn)
            tone = np.full((h + abs(dy), w + abs(dx), 3), 0.5, dtype=np.float32)  # rounding
            tone[oy : oy + h, ox : ox + w] += self.turned(self._tone, turn)
            self._turns[turn] = Turned(cover > 0, cover >= 0.5, ox, oy, scale, tone)
        return self._turns[turn]


@dataclass(frozen=True)
class Turned:
    """A stamp turned one way, over a patch that holds the sprite and its shadow."""

    touched: np.ndarray  # the sprite's pixels that it touches at all
    solid: np.ndarray  # and those it covers at least half
    ox: int  # where the sprite's top-left lies in the patch
    oy: int
    scale: np.ndarray  # (h, w, 1) over the patch: what a paste multiplies each pixel by
    tone: np.ndarray  # (h, w, 3): and then adds

    def paste(self, frame: np.ndarray, x0: int, y0: int) -> None:
        """Shadow, then sprite, with the sprite's top-left at (x0, y0)."""
        frame_s, patch_s = _clip(frame, x0 - self.ox, y0 - self.oy, *self.scale.shape[:2])
        region = frame[frame_s].astype(np.float32)
        region *= self.scale[patch_s]
        region += self.tone[patch_s]
        np.copyto(frame[frame_s], np.clip(region, 0.0, 255.0, out=region), casting="unsafe")


def place(
    rng: np.random.Generator, taken: list[tuple[float, float, float]], size: int, w: int, h: int
) -> tuple[int, int] | None:
    """Top-left of a patch fully inside the frame whose circle clears every earlier item."""
    radius = size / np.sqrt(2) + GAP
    if size >= min(w, h):
        return None
    for _ in range(40):
        x0, y0 = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
        cx, cy = x0 + size / 2, y0 + size / 2
        if all((cx - x) ** 2 + (cy - y) ** 2 >= (radius + r) ** 2 for x, y, r in taken):
            taken.append((cx, cy, radius))
            return x0, y0
    return None


def box(sprite: Sprite, x0: int, y0: int) -> tuple[float, float, float, float]:
    """The exact extent of the pixels the sprite's coverage touches, placed at (x0, y0)."""
    ys, xs = np.nonzero(sprite.coverage)
    x1, y1 = x0 + int(xs.min()), y0 + int(ys.min())
    return float(x1), float(y1), float(x0 + int(xs.max()) + 1), float(y0 + int(ys.max()) + 1)
