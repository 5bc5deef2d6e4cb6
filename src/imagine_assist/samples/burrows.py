"""Synthetic Nephrops underwater TV (UWTV) tows with exact per-frame ground truth.

A camera on a sledge looks straight down at muddy seabed while the sledge is towed forward.
The seabed is a strip of world pixels: column x across the tow, row u along it, u growing in the
direction of travel. Frame i shows world rows [bottom_i, bottom_i + height) flipped upside down,
so the top of the frame is the seabed furthest ahead: content enters at the TOP edge and moves
DOWN the frame, about `pixels_per_frame` rows per frame, and leaves at the bottom edge.

The world is rendered lazily in chunks of rows. Everything in it (sediment, trawl marks, burrow
systems, distractors) comes from random streams seeded by [seed, tag, chunk], so a short tow is
a prefix of any longer tow with the same seed, and any frame can be rendered on its own.
Sediment noise lives on lattices owned by chunks and every chunk that samples a lattice
interpolates it the same way, so chunk borders leave no seam. Burrow openings are stamped into
the world once; a frame is a crop of the world plus camera effects (lamp, vignetting, flicker,
turbidity, marine snow, sensor noise) that do not move an opening's edge by more than a pixel.
Motion-blurred frames are the exception: their boxes stay the sharp extent of the opening while
the blur smears every edge by up to half its length along the motion axis.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from imagine_assist.samples.base import Sample, SampleObject, split_for

BURROW_LABELS = ("burrow",)
MIN_VISIBLE_FRACTION = 0.5  # an opening is labelled while at least this share of it is in view

_CHUNK = 1024  # world rows per lazily rendered chunk; a multiple of every lattice cell
_PAD = 8  # rows rendered beyond each end of a chunk, so blurring it leaves no seam
_SIDE = 48  # world columns beyond each side of the frame: room for lateral drift
_KEEP = 4  # rendered chunks kept in memory
_REACH = 2  # chunks a trawl mark may run beyond the chunk it starts in
_SS = 4  # supersampling of the canvases that small creatures are drawn on
_SHIFT = 4  # fixed-point bits for cv2 drawing: sub-pixel vertex positions
_MIN_COVER = 2 / _SS**2  # one stray subsample is not a painted pixel
# Tags that keep the random streams of the parts of a tow apart: [seed, tag, ...].
_SYSTEMS, _GROUND, _MARKS, _LITTER, _PATH, _LOOK, _CLOUDS, _JOLTS, _SNOW, _FRAME = range(10)

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class TowGeometry:
    """Camera looking straight down from a sledge towed at a nominal constant speed."""

    fps: int = 25
    width: int = 640  # pixels
    height: int = 480
    ground_width_m: float = 1.0  # seabed width seen across the frame
    speed_m_s: float = 0.33  # about 200 m in a 10-minute tow

    @property
    def metres_per_pixel(self) -> float:
        return self.ground_width_m / self.width

    @property
    def pixels_per_metre(self) -> float:
        return self.width / self.ground_width_m

    @property
    def ground_height_m(self) -> float:
        return self.height * self.metres_per_pixel

    @property
    def frame_area_m2(self) -> float:
        return self.ground_width_m * self.ground_height_m

    @property
    def pixels_per_frame(self) -> float:
        """Nominal forward motion of the seabed in the frame, in rows per frame."""
        return self.speed_m_s / self.fps * self.pixels_per_metre

    @property
    def area_per_metre_m2(self) -> float:
        """Seabed swept per metre towed."""
        return self.ground_width_m

    @property
    def frames_per_minute(self) -> int:
        return self.fps * 60


DEFAULT_GEOMETRY = TowGeometry()


@dataclass(frozen=True)
class TowObject:
    track_id: int  # the opening, stable over the tow
    system_id: int  # the burrow system it belongs to
    # Exact box of the opening's dark pixels in the frame, clipped to it; x2, y2 exclusive.
    xyxy: tuple[float, float, float, float]
    visible_fraction: float  # share of the opening's pixels inside the frame


@dataclass
class TowFrame:
    index: int
    image: np.ndarray  # RGB uint8 (H, W, 3)
    objects: list[TowObject]  # openings at least MIN_VISIBLE_FRACTION in view, by track id
    motion_blur: int = 0  # px smeared along the motion, 0 when sharp; boxes stay sharp extents
    turbidity: float = 0.0  # mean share of the view veiled by a sediment cloud


@dataclass(frozen=True)
class BurrowSystem:
    system_id: int  # numbered from 1 in order of appearance (CVAT group 0 means no group)
    opening_ids: tuple[int, ...]  # track ids, in the order they enter the frame
    along_m: float  # centre, metres ahead of the bottom edge of frame 0
    across_m: float  # centre, metres right of the frame centre line at zero drift
    first_frame: int  # first frame in which one of its openings is labelled


@dataclass(frozen=True)
class TowFiles:
    root: Path
    video: Path  # mp4v MP4
    annotations: Path  # CVAT for video 1.1
    ground_truth: Path  # frame, track_id, system_id, x1, y1, x2, y2
    counts: Path  # minute, new_systems


# --- stamps: anything drawn into the seabed ---------------------------------------------------


@dataclass
class _Stamp:
    """A patch applied to the seabed: a gain first (shading, holes), then paint over it."""

    x0: int  # world column and row of the patch's first pixel
    u0: int
    gain: np.ndarray | None = None  # (h, w, 1 or 3)
    cover: np.ndarray | None = None  # (h, w, 1): share of each pixel painted with `colour`
    colour: np.ndarray | None = None  # (h, w, 3)

    def apply(self, canvas: np.ndarray, u_lo: int) -> None:
        h, w = (self.gain if self.gain is not None else self.cover).shape[:2]
        r0, r1 = max(self.u0, u_lo), min(self.u0 + h, u_lo + canvas.shape[0])
        c0, c1 = max(self.x0, 0), min(self.x0 + w, canvas.shape[1])
        if r0 >= r1 or c0 >= c1:
            return
        region = canvas[r0 - u_lo : r1 - u_lo, c0:c1]
        patch = (slice(r0 - self.u0, r1 - self.u0), slice(c0 - self.x0, c1 - self.x0))
        if self.gain is not None:
            region *= self.gain[patch]
        if self.cover is not None:
            region += (self.colour[patch] - region) * self.cover[patch]


@dataclass(frozen=True)
class _Feature:
    """Something in the world, drawn on demand; layers go ground shading, paint, holes."""

    layer: int
    u: float  # world centre
    x: float
    reach: float  # px from the centre to the far edge of anything it draws
    draw: Callable[[], _Stamp]


def _grid(x: float, u: float, radius: float) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Origin of a square patch round (x, u) and its pixel-centre offsets from (x, u)."""
    x0, u0 = math.floor(x - radius), math.floor(u - radius)
    size = 2 * math.ceil(radius) + 2
    axis = np.arange(size, dtype=np.float32)
    return x0, u0, (x0 - x) + axis[None, :], (u0 - u) + axis[:, None]


def _smooth(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise of about unit amplitude over a small patch."""
    h, w = size
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


class _Sketch:
    """Opaque parts drawn in order on a supersampled canvas round (x, u), later parts over
    earlier ones; lengths are in world pixels, in a frame turned by `angle`."""

    def __init__(self, x: float, u: float, radius: float, angle: float) -> None:
        self.x0, self.u0 = math.floor(x - radius), math.floor(u - radius)
        self.size = 2 * math.ceil(radius) + 2
        self.centre = np.array([x - self.x0, u - self.u0])
        c, s = math.cos(angle), math.sin(angle)
        self.turn = np.array([[c, s], [-s, c]])
        n = self.size * _SS
        self.paint = np.zeros((n, n, 3), dtype=np.float32)
        self.mask = np.zeros((n, n), dtype=np.float32)

    def _canvas(self, points: np.ndarray) -> np.ndarray:
        # INTER_AREA averages canvas pixels SS*j .. SS*j + SS-1 into patch pixel j.
        patch = np.asarray(points, dtype=np.float64) @ self.turn + self.centre
        return np.round((patch * _SS + (_SS - 1) / 2) * (1 << _SHIFT)).astype(np.int32)

    def fill(self, points: np.ndarray, colour: RGB) -> None:
        pts = [self._canvas(points)]
        cv2.fillPoly(self.paint, pts, colour, cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.mask, pts, 1.0, cv2.LINE_8, _SHIFT)

    def oval(
        self, centre: tuple[float, float], axes: tuple[float, float], angle: float, colour: RGB
    ) -> None:
        t = np.linspace(0.0, 2.0 * np.pi, 24, endpoint=False)
        c, s = math.cos(angle), math.sin(angle)
        x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
        self.fill(np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], 1), colour)

    def stroke(self, points: np.ndarray, thickness: float, colour: RGB) -> None:
        pts, width = [self._canvas(points)], max(1, round(thickness * _SS))
        cv2.polylines(self.paint, pts, False, colour, width, cv2.LINE_8, _SHIFT)
        cv2.polylines(self.mask, pts, False, 1.0, width, cv2.LINE_8, _SHIFT)

    def stamp(self, opacity: float, shade: np.ndarray | float = 1.0, shadow: float = 0.0) -> _Stamp:
        size = (self.size, self.size)
        cover = cv2.resize(self.mask, size, interpolation=cv2.INTER_AREA)
        cover[cover < _MIN_COVER] = 0.0
        paint = cv2.resize(self.paint, size, interpolation=cv2.INTER_AREA)
        colour = paint / np.maximum(cover, 1e-6)[..., None] * np.asarray(shade)[..., None]
        gain = None
        if shadow:  # the lamps sit beside the camera: a soft shadow falls down-right
            dark = cv2.GaussianBlur(np.roll(cover, (2, 2), (0, 1)), (0, 0), 1.5)
            gain = (1.0 - shadow * dark)[..., None]
        return _Stamp(self.x0, self.u0, gain, (cover * opacity)[..., None], colour)


# --- burrow openings -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hole:
    """One burrow opening: an irregular oval, dark at the rim and darker where the tunnel
    drops away, with the slope down into it catching some lamp light."""

    x: float  # world centre
    u: float
    a: float  # semi-axes, px
    b: float
    angle: float
    wobble: tuple[tuple[float, float], ...]  # amplitude and phase of outline harmonics 1, 2, ...
    rim: float  # darkness at the edge
    deep: float  # darkness at the deepest point
    tilt: tuple[float, float]  # the deepest point, in semi-axes from the centre
    slope: float  # how much lighter the ramp opposite the deepest point is
    seed: int  # texture of the inside

    @property
    def reach(self) -> float:
        return self.a * (1.0 + sum(amp for amp, _ in self.wobble)) + 1.5


def _hole_pixels(hole: _Hole) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Patch origin, mask and darkness (0 outside the mask) of an opening."""
    x0, u0, dx, du = _grid(hole.x, hole.u, hole.reach)
    c, s = math.cos(hole.angle), math.sin(hole.angle)
    p, q = (dx * c + du * s) / hole.a, (-dx * s + du * c) / hole.b
    phi = np.arctan2(q, p)
    outline = 1.0 + sum(amp * np.cos(k * phi + ph) for k, (amp, ph) in enumerate(hole.wobble, 1))
    edge = np.hypot(p, q) / outline  # 0 at the centre, 1 on the outline
    mask = edge <= 1.0
    tx, ty = hole.tilt
    tilt = math.hypot(tx, ty)
    from_deep = np.hypot(p - tx, q - ty) / (1.0 + tilt)  # about 1 on the outline too
    inward = np.clip(2.0 - (edge + from_deep), 0.0, 1.0)  # 0 on the outline, 1 well inside
    dark = hole.rim + (hole.deep - hole.rim) * inward**0.7
    ramp = np.clip(-(p * tx + q * ty) / (tilt * np.hypot(p, q) + 1e-6), 0.0, 1.0) * edge**1.5
    grain = 1.0 + 0.08 * _smooth(np.random.default_rng(hole.seed), edge.shape, 5)
    dark = np.clip(dark * (1.0 - hole.slope * ramp) * grain, 0.2, 0.97)
    return x0, u0, mask, np.where(mask, dark, 0.0).astype(np.float32)


def _hole_stamp(hole: _Hole) -> _Stamp:
    x0, u0, _, dark = _hole_pixels(hole)
    return _Stamp(x0, u0, gain=(1.0 - dark)[..., None])


def _mound_stamp(seed: int, hole: _Hole) -> _Stamp:
    """Excavated sediment heaped in a lumpy crescent on one side of an opening."""
    rng = np.random.default_rng(seed)
    radius = hole.a * rng.uniform(1.5, 2.1)
    width = hole.a * rng.uniform(0.45, 0.8)
    x0, u0, dx, du = _grid(hole.x, hole.u, radius + 2.5 * width)
    facing, spread = rng.uniform(0, 2 * np.pi), rng.uniform(0.9, 1.8)
    dist, phi = np.hypot(dx, du), np.arctan2(du, dx)
    arc = np.clip((np.cos(phi - facing) - math.cos(spread)) / (1 - math.cos(spread)), 0, 1) ** 0.7
    ring = np.exp(-(((dist - radius) / width) ** 2)) * arc
    lumps = np.clip(1.0 + 0.6 * _smooth(rng, dist.shape, 6), 0.0, None)
    gain = 1.0 + rng.uniform(0.15, 0.35) * ring * lumps
    return _Stamp(x0, u0, gain=gain[..., None].astype(np.float32))


def _hollow_stamp(x: float, u: float, radius: float, depth: float) -> _Stamp:
    """The shallow, trampled depression a burrow system often sits in."""
    x0, u0, dx, du = _grid(x, u, 2.0 * radius)
    gain = 1.0 - depth * np.exp(-(dx**2 + du**2) / radius**2)
    return _Stamp(x0, u0, gain=gain[..., None].astype(np.float32))


@dataclass
class _Opening:
    hole: _Hole
    system: int  # index into the seabed's systems
    x0: int  # world origin of `mask`
    u0: int
    mask: np.ndarray  # bool (h, w), rows growing with u
    track_id: int = 0  # 0 until the opening's system is seen in the tow


@dataclass
class _System:
    x: float
    u: float
    radius: float  # px, from the centre to the far edge of its furthest opening
    openings: list[_Opening]
    features: list[_Feature]
    system_id: int = 0


def _random_hole(
    rng: np.random.Generator, x: float, u: float, across_m: float, ppm: float
) -> _Hole:
    a = across_m * ppm / 2
    wobble = tuple((rng.uniform(0.0, 0.2 / k), rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3, 4))
    tilt, towards = rng.uniform(0.2, 0.5), rng.uniform(0, 2 * np.pi)
    return _Hole(
        x=x,
        u=u,
        a=a,
        b=a * rng.uniform(0.5, 0.85),
        angle=rng.uniform(0, np.pi),
        wobble=wobble,
        rim=rng.uniform(0.22, 0.4),
        deep=rng.uniform(0.7, 0.94),
        tilt=(tilt * math.cos(towards), tilt * math.sin(towards)),
        slope=rng.uniform(0.15, 0.55),
        seed=int(rng.integers(2**32)),
    )


def _layout(rng: np.random.Generator, ppm: float) -> list[tuple[float, float, float]]:
    """Offsets (px) and sizes (m across) of a system's 2-4 openings, spread 0.15-0.35 m and
    never touching each other."""
    count = int(rng.integers(2, 5))
    size = np.clip(rng.uniform(0.05, 0.11) * rng.uniform(0.75, 1.3, count), 0.04, 0.15)
    spread = rng.uniform(0.15, 0.35)
    attempts = 0
    while True:
        axis = rng.uniform(0, 2 * np.pi)
        spots = [(spread / 2 * math.cos(axis), spread / 2 * math.sin(axis))]
        spots.append((-spots[0][0], -spots[0][1]))
        for _ in range(count - 2):
            r, t = spread / 2 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            spots.append((r * math.cos(t), r * math.sin(t)))
        pts = np.array(spots)
        gap = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
        need = (size[:, None] + size[None]) / 2 * 1.15 + 0.02
        if np.all((gap >= need) | np.eye(count, dtype=bool)):
            return [(x * ppm, y * ppm, s) for (x, y), s in zip(pts, size, strict=True)]
        attempts += 1
        if attempts % 30 == 0:  # too crowded for these openings: let the system sprawl a little
            spread *= 1.05


# --- creatures and debris (never labelled) -----------------------------------------------------


def _nephrops(seed: int, x: float, u: float, heading: float, ppm: float) -> _Stamp:
    """A Norway lobster seen from above, its tail at (x, u): orange-pink, long slender claws.
    Parts are placed in body lengths (telson to rostrum) from the tail."""
    rng = np.random.default_rng(seed)
    n = rng.uniform(0.1, 0.15) * ppm
    body = tuple(np.array([0.93, 0.62, 0.5]) * rng.uniform(0.9, 1.05, 3))
    pale, dark = tuple(np.minimum(np.array(body) * 1.15, 1.0)), tuple(np.array(body) * 0.7)
    c, s = math.cos(heading), math.sin(heading)
    sk = _Sketch(x + 0.5 * n * c, u + 0.5 * n * s, 1.45 * n, heading)

    def at(*points: tuple[float, float]) -> np.ndarray:  # to pixels from the sketch's centre
        return (np.array(points, dtype=np.float64) - [0.5, 0.0]) * n

    for side in (-1, 1):  # walking legs and antennae lie under everything else
        for k in range(4):
            root, reach = 0.55 + 0.06 * k, rng.uniform(0.14, 0.22)
            tip = (root - rng.uniform(-0.04, 0.1), side * reach)
            sk.stroke(at((root, side * 0.08), tip), 0.014 * n, dark)
        t = np.linspace(0.0, 1.0, 12)
        bend = rng.uniform(0.3, 0.7)
        sk.stroke(
            at(*zip(1.0 + 0.9 * t, side * (0.03 + bend * t**1.5), strict=True)), 0.008 * n, pale
        )
    sk.oval(tuple(at((0.05, 0.0))[0]), (0.07 * n, 0.11 * n), 0.0, dark)  # tail fan
    for k in range(6):  # abdomen segments, widest at the front
        shade = body if k % 2 else tuple(np.array(body) * 0.92)
        sk.oval(
            tuple(at((0.13 + 0.07 * k, 0.0))[0]), (0.05 * n, (0.09 - 0.004 * k) * n), 0.0, shade
        )
    sk.oval(tuple(at((0.72, 0.0))[0]), (0.2 * n, 0.105 * n), 0.0, body)  # carapace
    sk.fill(at((0.9, -0.02), (1.02, 0.0), (0.9, 0.02)), body)  # rostrum
    for side in (-1, 1):
        sk.oval(tuple(at((0.9, side * 0.04))[0]), (0.025 * n, 0.02 * n), 0.0, (0.12, 0.1, 0.09))
        spread = rng.uniform(0.1, 0.5)
        elbow = np.array([1.02, side * (0.1 + 0.1 * spread)])
        sk.stroke(at((0.85, side * 0.06), tuple(elbow)), 0.035 * n, body)
        tip = elbow + [0.45, side * (0.05 + 0.3 * spread) * rng.uniform(0.5, 1.0)]
        claw = np.linspace(elbow, tip, 8)
        sk.stroke(at(*map(tuple, claw[:5])), 0.08 * n, pale)
        sk.stroke(at(*map(tuple, claw[4:])), 0.045 * n, (0.95, 0.9, 0.82))
    return sk.stamp(opacity=rng.uniform(0.85, 0.95), shadow=0.35)


def _starfish(seed: int, x: float, u: float, ppm: float) -> _Stamp:
    rng = np.random.default_rng(seed)
    reach = rng.uniform(0.04, 0.09) * ppm
    t = np.linspace(0.0, 2.0 * np.pi, 160, endpoint=False)
    arms = (0.5 + 0.5 * np.cos(5 * t)) ** 2.5
    r = reach * (0.22 + 0.78 * arms) * (1 + 0.08 * np.sin(3 * t + rng.uniform(0, 6)))
    sk = _Sketch(x, u, reach + 2, rng.uniform(0, 2 * np.pi))
    colour = tuple(np.array([0.85, 0.5, 0.3]) * rng.uniform(0.8, 1.1, 3))
    sk.fill(np.stack([r * np.cos(t), r * np.sin(t)], 1), colour)
    bumps = 1.0 + 0.15 * _smooth(rng, (sk.size, sk.size), max(2, sk.size // 3))
    return sk.stamp(opacity=0.9, shade=bumps, shadow=0.3)


def _brittle_star(seed: int, x: float, u: float, ppm: float) -> _Stamp:
    rng = np.random.default_rng(seed)
    disc, arm = rng.uniform(0.004, 0.008) * ppm, rng.uniform(0.03, 0.08) * ppm
    sk = _Sketch(x, u, arm + disc + 2, rng.uniform(0, 2 * np.pi))
    colour = tuple(np.array([0.66, 0.62, 0.54]) * rng.uniform(0.85, 1.1))
    s = np.linspace(0.0, 1.0, 10)
    for k in range(5):
        heading = 2 * np.pi * k / 5 + np.cumsum(rng.normal(0, 0.25, 10))
        step = np.stack([np.cos(heading), np.sin(heading)], 1) * arm / 10
        start = disc * np.array([math.cos(heading[0]), math.sin(heading[0])])
        sk.stroke(start + np.cumsum(step, 0) * (1 - 0.3 * s[:, None]), 0.0025 * ppm, colour)
    sk.oval((0.0, 0.0), (disc, disc), 0.0, colour)
    return sk.stamp(opacity=rng.uniform(0.6, 0.85))


def _sea_pen(seed: int, x: float, u: float, ppm: float) -> _Stamp:
    """A slender sea pen bent over by the current: a pale stalk fringed with polyps."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(0.1, 0.3) * ppm
    sk = _Sketch(x, u, length / 2 + 4, rng.uniform(0, 2 * np.pi))
    s = np.linspace(-0.5, 0.5, 16)[:, None]
    bend = rng.uniform(-0.15, 0.15)
    stalk = np.hstack([s * length, bend * length * (s**2 - 0.25)])
    colour = tuple(np.array([0.88, 0.85, 0.76]) * rng.uniform(0.85, 1.05))
    sk.stroke(stalk, 0.004 * ppm, colour)
    for k in range(4, 16, 2):  # the feathery upper part
        for side in (-1, 1):
            base = stalk[k]
            sk.stroke(
                np.array([base, base + np.array([-0.3 * side, side]) * 0.008 * ppm]), 1.0, colour
            )
    return sk.stamp(opacity=rng.uniform(0.6, 0.85), shadow=0.25)


def _pennatula(seed: int, x: float, u: float, ppm: float) -> _Stamp:
    """A phosphorescent sea pen lying flat: a pink feather."""
    rng = np.random.default_rng(seed)
    length = rng.uniform(0.05, 0.1) * ppm
    sk = _Sketch(x, u, length / 2 + 3, rng.uniform(0, 2 * np.pi))
    pink = tuple(np.array([0.85, 0.48, 0.45]) * rng.uniform(0.85, 1.05))
    sk.oval((0.1 * length, 0.0), (0.38 * length, 0.14 * length), 0.0, pink)
    sk.stroke(
        np.array([[-0.5 * length, 0.0], [0.45 * length, 0.0]]), 0.02 * length + 1, (0.9, 0.7, 0.6)
    )
    return sk.stamp(opacity=0.85, shadow=0.2)


def _shell(seed: int, x: float, u: float, ppm: float) -> _Stamp:
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.003, 0.012) * ppm
    sk = _Sketch(x, u, size + 2, rng.uniform(0, 2 * np.pi))
    pebble = rng.random() < 0.4
    colour = np.array([0.4, 0.39, 0.36] if pebble else [0.86, 0.84, 0.77]) * rng.uniform(0.8, 1.1)
    sk.oval((0.0, 0.0), (size, size * rng.uniform(0.5, 0.9)), 0.0, tuple(colour))
    return sk.stamp(opacity=rng.uniform(0.5, 0.9), shadow=0.2)


def _worm_cast(seed: int, x: float, u: float, ppm: float) -> _Stamp:
    """A little coil of pale faecal mud."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.006, 0.015) * ppm
    t = np.linspace(0.0, rng.uniform(3, 6) * np.pi, 30)
    r = size * (0.3 + 0.7 * t / t[-1])
    sk = _Sketch(x, u, size + 3, rng.uniform(0, 2 * np.pi))
    colour = tuple(np.array([0.66, 0.62, 0.52]) * rng.uniform(0.9, 1.1))
    sk.stroke(np.stack([r * np.cos(t), r * np.sin(t)], 1), 0.0035 * ppm, colour)
    return sk.stamp(opacity=rng.uniform(0.45, 0.75))


def _pit(seed: int, x: float, u: float, ppm: float) -> _Stamp:
    """A small hole of some other burrower: dark but much smaller than a Nephrops opening."""
    rng = np.random.default_rng(seed)
    sigma = rng.uniform(0.002, 0.006) * ppm
    x0, u0, dx, du = _grid(x, u, 3.0 * sigma)
    squash = rng.uniform(0.6, 1.0)
    r2 = (dx**2 + (du / squash) ** 2) / sigma**2
    gain = 1.0 - rng.uniform(0.25, 0.55) * np.exp(-r2) + 0.06 * np.exp(-((np.sqrt(r2) - 2) ** 2))
    return _Stamp(x0, u0, gain=gain[..., None].astype(np.float32))


# per m² of seabed: what drifts and crawls over Nephrops grounds
_LITTER_KINDS: tuple[tuple[Callable[..., _Stamp], float, int], ...] = (
    (_shell, 8.0, 1),
    (_worm_cast, 4.0, 1),
    (_pit, 10.0, 0),
    (_brittle_star, 1.5, 1),
    (_sea_pen, 0.25, 1),
    (_pennatula, 0.1, 1),
    (_starfish, 0.08, 1),
)


# --- trawl marks and trails ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    """A long groove: a trawl scar or an animal's trail, with spoil heaped along its edges."""

    x: float  # start
    u: float
    angle: float  # direction of travel, radians from the +u axis
    length: float  # px
    width: float  # px
    depth: float  # darkening along its floor
    berm: float  # brightening of the spoil
    meander: tuple[float, float, float]  # amplitude (px), wavelength (px), phase

    def draw(self, canvas: np.ndarray, u_lo: int) -> None:
        du, dx = math.cos(self.angle), math.sin(self.angle)
        margin = 3.0 * self.width + self.meander[0]
        ends_x = (self.x, self.x + dx * self.length)
        ends_u = (self.u, self.u + du * self.length)
        c0, c1 = (
            max(int(min(ends_x) - margin), 0),
            min(int(max(ends_x) + margin) + 1, canvas.shape[1]),
        )
        r0 = max(int(min(ends_u) - margin), u_lo)
        r1 = min(int(max(ends_u) + margin) + 1, u_lo + canvas.shape[0])
        if r0 >= r1 or c0 >= c1:
            return
        px = np.arange(c0, c1, dtype=np.float32)[None, :] - self.x
        pu = np.arange(r0, r1, dtype=np.float32)[:, None] - self.u
        t = px * dx + pu * du
        amp, wavelength, phase = self.meander
        off = px * du - pu * dx - amp * np.sin(2 * np.pi * t / wavelength + phase)
        fade = np.clip(np.minimum(t, self.length - t) / (0.1 * self.length + 1.0), 0.0, 1.0)
        w = self.width
        profile = -self.depth * np.exp(-((off / w) ** 2))
        profile += self.berm * np.exp(-(((np.abs(off) - 2.0 * w) / w) ** 2))
        canvas[r0 - u_lo : r1 - u_lo, c0:c1] *= (1.0 + profile * fade)[..., None]


def _marks(rng: np.random.Generator, chunk: int, width: int, ppm: float) -> list[_Mark]:
    marks = []
    longest = _REACH * _CHUNK - _PAD - 0.1 * ppm  # width and meander stay within reach
    for _ in range(rng.poisson(0.7)):
        x, u = rng.uniform(0, width), (chunk + rng.uniform()) * _CHUNK
        angle = rng.uniform(0, 2 * np.pi)
        if rng.random() < 0.65:  # trawl gear: parallel scratches, nearly straight
            length = min(rng.uniform(1.0, 3.0) * ppm, longest)
            spacing = rng.uniform(0.02, 0.08) * ppm
            for k in range(int(rng.integers(1, 5))):
                side = k * spacing
                marks.append(
                    _Mark(
                        x + side * math.cos(angle),
                        u - side * math.sin(angle),
                        angle,
                        length,
                        rng.uniform(0.003, 0.012) * ppm,
                        rng.uniform(0.03, 0.1),
                        rng.uniform(0.02, 0.06),
                        (rng.uniform(0, 0.01) * ppm, 2.0 * ppm, rng.uniform(0, 6)),
                    )
                )
        else:  # a crawling animal's trail, winding
            marks.append(
                _Mark(
                    x,
                    u,
                    angle,
                    min(rng.uniform(0.3, 1.5) * ppm, longest),
                    rng.uniform(0.003, 0.007) * ppm,
                    rng.uniform(0.05, 0.12),
                    rng.uniform(0.02, 0.05),
                    (rng.uniform(0.01, 0.04) * ppm, rng.uniform(0.1, 0.4) * ppm, rng.uniform(0, 6)),
                )
            )
    return marks


# --- the seabed --------------------------------------------------------------------------------

# Mud colours before the water tints them: olive-grey, brown-grey, grey-green, greige.
_MUDS = np.array(
    [[0.47, 0.45, 0.36], [0.50, 0.44, 0.35], [0.43, 0.45, 0.38], [0.46, 0.43, 0.39]],
    dtype=np.float32,
)
# (cell px, weight) of the sediment relief, coarse to fine
_RELIEF = ((256, 0.09), (64, 0.06), (16, 0.06), (8, 0.05), (4, 0.06), (2, 0.05))
_BROAD = 8  # noise with cells of 64 px and more is made at 1/_BROAD resolution, then upscaled


class _Seabed:
    """The world strip: burrow systems placed when the tow is made, pixels rendered per chunk."""

    def __init__(self, geometry: TowGeometry, seed: int, density: float, last_row: int) -> None:
        self.seed, self.ppm = seed, geometry.pixels_per_metre
        self.width = geometry.width + 2 * _SIDE
        rng = np.random.default_rng([seed, _LOOK, 0])
        mud = rng.dirichlet(np.ones(len(_MUDS))) @ _MUDS * rng.uniform(0.9, 1.08)
        self.mud = mud.astype(np.float32)
        self.silt = (mud * rng.uniform([0.96, 0.9, 0.84], [1.1, 1.04, 0.98])).astype(np.float32)
        self.relief = rng.uniform(0.75, 1.3)
        self.systems: list[_System] = []
        self._by_chunk: dict[int, list[_System]] = {}
        for k in range(1, last_row // _CHUNK + 2):
            self._place(k, density)
        self._chunks: dict[int, np.ndarray] = {}

    # placing burrow systems

    def _place(self, k: int, density: float) -> None:
        """Poisson number of systems per chunk, each put where it keeps clear of the others:
        the count is what the density asks for, the spacing what makes systems separable."""
        rng = np.random.default_rng([self.seed, _SYSTEMS, k])
        area = _CHUNK * self.width / self.ppm**2
        for _ in range(rng.poisson(density * area)):
            layout = _layout(rng, self.ppm)
            radius = max(math.hypot(dx, du) + size * self.ppm / 2 for dx, du, size in layout)
            spot = self._free_spot(rng, k, radius)
            if spot is not None:
                system = self._system(rng, spot, layout, radius)
                self.systems.append(system)
                self._by_chunk.setdefault(k, []).append(system)

    def _free_spot(
        self, rng: np.random.Generator, k: int, radius: float
    ) -> tuple[float, float] | None:
        near = [s for j in (k - 1, k) for s in self._by_chunk.get(j, [])]
        centres = np.array([(s.x, s.u) for s in near]).reshape(-1, 2)
        clear = np.maximum(
            0.5 * self.ppm, np.array([s.radius for s in near]) + radius + 0.1 * self.ppm
        )
        for _ in range(40):
            spot = np.array([rng.uniform(0, self.width), (k + rng.uniform()) * _CHUNK])
            if np.all(np.hypot(*(centres - spot).T) >= clear):
                return float(spot[0]), float(spot[1])
        return None

    def _system(
        self,
        rng: np.random.Generator,
        spot: tuple[float, float],
        layout: list[tuple[float, float, float]],
        radius: float,
    ) -> _System:
        x, u = spot
        index = len(self.systems)
        openings, features = [], []
        if rng.random() < 0.5:
            hollow = partial(_hollow_stamp, x, u, 0.8 * radius, rng.uniform(0.03, 0.07))
            features.append(_Feature(0, u, x, 1.6 * radius + 2, hollow))
        for dx, du, size in layout:
            hole = _random_hole(rng, x + dx, u + du, size, self.ppm)
            x0, u0, mask, _ = _hole_pixels(hole)
            openings.append(_Opening(hole, index, x0, u0, mask))
            features.append(_Feature(2, hole.u, hole.x, hole.reach, partial(_hole_stamp, hole)))
            if rng.random() < 0.6:
                mound = partial(_mound_stamp, int(rng.integers(2**32)), hole)
                features.append(_Feature(0, hole.u, hole.x, 4.2 * hole.a + 3, mound))
        if rng.random() < 0.12:  # a Nephrops at the mouth of one of its burrows
            hole = openings[int(rng.integers(len(openings)))].hole
            heading = rng.uniform(0, 2 * np.pi)
            tail = (
                hole.x + 0.5 * hole.b * math.cos(heading),
                hole.u + 0.5 * hole.b * math.sin(heading),
            )
            lobster = partial(_nephrops, int(rng.integers(2**32)), *tail, heading, self.ppm)
            features.append(_Feature(1, tail[1], tail[0], 0.3 * self.ppm, lobster))
        return _System(x, u, radius, openings, features)

    def _litter(self, k: int) -> list[_Feature]:
        rng = np.random.default_rng([self.seed, _LITTER, k])
        area = _CHUNK * self.width / self.ppm**2
        features = []
        for draw, per_m2, layer in _LITTER_KINDS:
            for _ in range(rng.poisson(per_m2 * area)):
                x, u = rng.uniform(0, self.width), (k + rng.uniform()) * _CHUNK
                make = partial(draw, int(rng.integers(2**32)), x, u, self.ppm)
                features.append(_Feature(layer, u, x, 0.2 * self.ppm, make))
        return features

    # rendering

    def chunk(self, k: int) -> np.ndarray:
        """World rows [k * _CHUNK, (k + 1) * _CHUNK) as RGB uint8, rows growing with u."""
        if k not in self._chunks:
            if len(self._chunks) >= _KEEP:
                self._chunks.pop(next(iter(self._chunks)))
            self._chunks[k] = self._render(k)
        return self._chunks[k]

    def _render(self, k: int) -> np.ndarray:
        u_lo, u_hi = k * _CHUNK - _PAD, (k + 1) * _CHUNK + _PAD
        canvas = self._sediment(k)
        for j in range(k - _REACH, k + _REACH + 1):
            for mark in _marks(
                np.random.default_rng([self.seed, _MARKS, j]), j, self.width, self.ppm
            ):
                mark.draw(canvas, u_lo)
        nearby = [
            f for j in (k - 1, k, k + 1) for s in self._by_chunk.get(j, []) for f in s.features
        ]
        nearby += [f for j in (k - 1, k, k + 1) for f in self._litter(j)]
        for feature in sorted(nearby, key=lambda f: (f.layer, f.u, f.x)):
            if feature.u + feature.reach > u_lo and feature.u - feature.reach < u_hi:
                feature.draw().apply(canvas, u_lo)
        canvas = cv2.GaussianBlur(canvas, (0, 0), 0.7)  # the lens is never quite sharp
        return np.clip(canvas[_PAD:-_PAD] * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _sediment(self, k: int) -> np.ndarray:
        relief = [
            (layer, cell, np.float32(self.relief * w)) for layer, (cell, w) in enumerate(_RELIEF)
        ]
        swell = sum(
            w * self._noise(k, cell, layer, _BROAD) for layer, cell, w in relief if cell >= 64
        )
        tone = np.clip(self._noise(k, 128, 11, _BROAD) * np.float32(0.5) + np.float32(0.5), 0, 1)
        low = np.dstack([swell, tone])
        # Linear upscaling by an integer factor maps pixels the same way in every chunk, and
        # its border rows fall in the padding.
        rows, cols = low.shape[0] * _BROAD, low.shape[1] * _BROAD
        broad = cv2.resize(low, (cols, rows), interpolation=cv2.INTER_LINEAR)[:, : self.width]
        shade = broad[..., 0] + np.float32(1.0)
        for layer, cell, weight in relief:
            if cell < 64:
                shade += weight * self._noise(k, cell, layer)
        clods = np.maximum(self._noise(k, 8, 10) - np.float32(0.9), 0.0)
        shade += np.float32(0.12 * self.relief) * clods
        mud, silt = (np.outer(shade, c).reshape(*shade.shape, 3) for c in (self.mud, self.silt))
        return mud + (silt - mud) * broad[..., 1:]

    def _noise(self, k: int, cell: int, layer: int, scale: int = 1) -> np.ndarray:
        """Smooth noise over chunk k's padded rows, at 1/scale resolution. Lattice rows belong
        to chunks and every chunk interpolates them with the same integer factor, so
        neighbouring chunks agree."""
        grid = np.vstack([self._lattice(j, cell, layer) for j in (k - 1, k, k + 1)])
        first = (_CHUNK - _PAD) // cell - 3  # keep the resize's border effects off the canvas
        window = grid[first : (2 * _CHUNK + _PAD) // cell + 4]
        step = cell // scale
        big = cv2.resize(
            window, (window.shape[1] * step, window.shape[0] * step), interpolation=cv2.INTER_CUBIC
        )
        top = (_CHUNK - _PAD - first * cell) // scale
        return big[top : top + (_CHUNK + 2 * _PAD) // scale, : -(-self.width // scale)]

    def _lattice(self, j: int, cell: int, layer: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, _GROUND, layer, j])
        return rng.standard_normal((_CHUNK // cell, self.width // cell + 4), dtype=np.float32)


# --- the camera ---------------------------------------------------------------------------------

# Lamp light after its path through the water: green, olive, grey-green, yellow-brown.
_WATERS = np.array(
    [[0.72, 0.95, 0.70], [0.86, 0.94, 0.64], [0.70, 0.90, 0.80], [0.94, 0.86, 0.62]],
    dtype=np.float32,
)
_CLOUD_BLOCK = 250  # frames per turbidity draw: at most one cloud starts in each
_JOLT_BLOCK = 25  # frames per motion-blur draw
_SNOW_BLOCK = 25  # frames per batch of marine snow particles
_SNOW_LIFE = 30  # longest a particle stays in the lamp beam, frames


def _sprite(sx: float, sy: float) -> np.ndarray:
    hx, hy = math.ceil(3 * sx), math.ceil(3 * sy)
    x = np.arange(-hx, hx + 1, dtype=np.float32)[None, :]
    y = np.arange(-hy, hy + 1, dtype=np.float32)[:, None]
    return np.exp(-(x**2) / (2 * sx**2) - y**2 / (2 * sy**2))


# specks in focus, specks streaked by the motion, out-of-focus blobs close to the lens
_SPRITES = [
    _sprite(*s) for s in ((0.6, 0.6), (0.9, 0.9), (0.7, 2.2), (1.0, 3.2), (3.0, 3.0), (5.0, 5.0))
]


class _Camera:
    """What the camera adds to the seabed: lamp, water colour, backscatter, turbidity clouds,
    marine snow, motion blur, flicker and sensor noise."""

    def __init__(self, geometry: TowGeometry, seed: int) -> None:
        self.geometry, self.seed = geometry, seed
        h, w = geometry.height, geometry.width
        rng = np.random.default_rng([seed, _LOOK, 1])
        yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j].astype(np.float32)
        yy *= h / w
        cx, cy = rng.uniform(-0.25, 0.25), rng.uniform(-0.3, 0.1)
        spot = np.exp(
            -((xx - cx) ** 2) / rng.uniform(0.25, 0.5) - (yy - cy) ** 2 / rng.uniform(0.15, 0.3)
        )
        vignette = np.clip(1.0 - rng.uniform(0.25, 0.4) * (xx**2 + yy**2), 0.2, 1.0)
        self.lamp = (rng.uniform(0.45, 0.6) + rng.uniform(0.5, 0.8) * spot) * vignette
        water = rng.dirichlet(np.ones(len(_WATERS))) @ _WATERS
        self.light = (water * rng.uniform(1.0, 1.25) * self.lamp[..., None]).astype(np.float32)
        self.haze = (255 * 0.42 * water * (0.4 + 0.6 * self.lamp[..., None])).astype(np.float32)
        self.veil = (self.haze * rng.uniform(0.06, 0.14)).astype(np.float32)
        self.tint = np.minimum(water * 1.1, 1.0).astype(np.float32)
        grain = rng.normal(0.0, rng.uniform(2.5, 4.5), (h + 32, w + 32, 1))
        chroma = rng.normal(0.0, 1.2, (h + 32, w + 32, 3))
        self.noise = (grain + chroma).astype(np.float32)
        self.flicker = [
            (rng.uniform(0.01, 0.04), rng.uniform(50, 200), rng.uniform(0, 6)),
            (rng.uniform(0.005, 0.015), rng.uniform(6, 20), rng.uniform(0, 6)),
        ]
        self._cloud_field: tuple[int, np.ndarray] | None = None
        self._snow: dict[int, np.ndarray] = {}

    def render(self, view: np.ndarray, index: int) -> tuple[np.ndarray, int, float]:
        """The frame, its motion-blur length and its turbidity."""
        rng = np.random.default_rng([self.seed, _FRAME, index])
        gain = 1.0 + sum(a * math.sin(2 * np.pi * index / p + ph) for a, p, ph in self.flicker)
        img = cv2.multiply(view, self.light, dtype=cv2.CV_32F, scale=gain)
        img += self.veil
        haze = self._cloud(index)
        if haze is not None:
            img += (self.haze - img) * haze[..., None]
        blur = self._jolt(index)
        if blur:
            img = cv2.blur(img, (1, blur))  # the sledge lurches forward: smear along the motion
        turbidity = 0.0 if haze is None else float(haze.mean())
        self._draw_snow(img, index, turbidity)
        h, w = img.shape[:2]
        oy, ox = rng.integers(0, 32, 2)
        image = cv2.add(img, self.noise[oy : oy + h, ox : ox + w], dtype=cv2.CV_8U)
        return image, blur, turbidity

    # turbidity: now and then the sledge stirs up a cloud that drifts through the view

    def _cloud(self, index: int) -> np.ndarray | None:
        for block in (index // _CLOUD_BLOCK, index // _CLOUD_BLOCK - 1):
            if block < 0:
                continue
            rng = np.random.default_rng([self.seed, _CLOUDS, block])
            if rng.random() >= 0.3:
                continue
            start = block * _CLOUD_BLOCK + int(rng.integers(_CLOUD_BLOCK))
            length = int(rng.integers(50, 150))
            if start <= index < start + length:
                return self._cloud_alpha(rng, block, (index - start) / length, length)
        return None

    def _cloud_alpha(
        self, rng: np.random.Generator, block: int, t: float, length: int
    ) -> np.ndarray:
        """Share of each pixel veiled, a fraction t through a cloud lasting `length` frames."""
        h, w = self.geometry.height, self.geometry.width
        strength = rng.uniform(0.25, 0.6)
        drift = self.geometry.pixels_per_frame * rng.uniform(0.3, 1.0) * length
        sideways = rng.uniform(-2.0, 2.0) * length
        if self._cloud_field is None or self._cloud_field[0] != block:
            fh, fw = h + int(drift) + 2, w + int(abs(sideways)) + 2
            coarse = _smooth(rng, (fh, fw), max(fh, fw) // 90)
            fine = _smooth(rng, (fh, fw), max(fh, fw) // 30)
            self._cloud_field = block, np.clip(0.6 + 0.3 * coarse + 0.1 * fine, 0.0, 1.0)
        field = self._cloud_field[1]
        top = int(drift * (1.0 - t))  # the cloud slides down the frame with the seabed, slower
        left = int(abs(sideways) * (t if sideways > 0 else 1.0 - t))
        return field[top : top + h, left : left + w] * (strength * math.sin(np.pi * t) ** 2)

    def _jolt(self, index: int) -> int:
        """Length of the motion blur on this frame, 0 for none: short runs after a bump."""
        for block in (index // _JOLT_BLOCK, index // _JOLT_BLOCK - 1):
            if block < 0:
                continue
            rng = np.random.default_rng([self.seed, _JOLTS, block])
            if rng.random() >= 0.25:
                continue
            start = block * _JOLT_BLOCK + int(rng.integers(_JOLT_BLOCK))
            run, length = int(rng.integers(1, 5)), int(rng.integers(5, 16))
            if start <= index < start + run:
                return max(3, length - 3 * (index - start)) | 1
        return 0

    # marine snow: particles in the lamp beam, nearer the lens than the seabed

    def _particles(self, block: int) -> np.ndarray:
        """Columns: birth frame, life, x, y, vx, vy, brightness, sprite, threshold."""
        if block not in self._snow:
            if len(self._snow) > 8:
                self._snow.pop(next(iter(self._snow)))
            rng = np.random.default_rng([self.seed, _SNOW, block])
            g, count = self.geometry, int(rng.poisson(6 * _SNOW_BLOCK))
            sprite = rng.choice(len(_SPRITES), count, p=[0.35, 0.25, 0.15, 0.1, 0.1, 0.05])
            self._snow[block] = np.stack(
                [
                    block * _SNOW_BLOCK + rng.integers(0, _SNOW_BLOCK, count),
                    rng.integers(4, _SNOW_LIFE + 1, count),
                    rng.uniform(0, g.width, count),
                    rng.uniform(0, g.height, count),
                    rng.uniform(-1.5, 1.5, count),
                    g.pixels_per_frame * rng.uniform(0.8, 2.2, count),
                    np.where(sprite >= 4, rng.uniform(6, 16, count), rng.uniform(25, 110, count)),
                    sprite,
                    rng.uniform(0, 1, count),
                ],
                axis=1,
            )
        return self._snow[block]

    def _draw_snow(self, img: np.ndarray, index: int, turbidity: float) -> None:
        block = index // _SNOW_BLOCK
        span = range(max(block - _SNOW_LIFE // _SNOW_BLOCK - 1, 0), block + 1)
        p = np.vstack([self._particles(b) for b in span])
        age = index - p[:, 0]
        shown = (age >= 0) & (age < p[:, 1]) & (p[:, 8] < 0.35 + 1.5 * turbidity)
        h, w = img.shape[:2]
        for birth, life, x, y, vx, vy, bright, kind, _ in p[shown]:
            a = index - birth
            cx, cy = int(x + vx * a), int(y + vy * a)
            if not (0 <= cx < w and 0 <= cy < h):
                continue
            sprite = _SPRITES[int(kind)]
            sh, sw = sprite.shape[0] // 2, sprite.shape[1] // 2
            y0, y1 = max(cy - sh, 0), min(cy + sh + 1, h)
            x0, x1 = max(cx - sw, 0), min(cx + sw + 1, w)
            level = bright * math.sin(np.pi * (a + 0.5) / life) * (0.4 + self.lamp[cy, cx])
            patch = sprite[y0 - cy + sh : y1 - cy + sh, x0 - cx + sw : x1 - cx + sw]
            img[y0:y1, x0:x1] += patch[..., None] * (level * self.tint)


# --- the tow ------------------------------------------------------------------------------------


def _camera_path(geometry: TowGeometry, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Distance towed (px, float) and lateral drift (px) at every frame. Sums of sines with
    random phases: smooth, prefix-stable, and always moving forward (speed stays above half)."""
    rng = np.random.default_rng([seed, _PATH])
    i = np.arange(count, dtype=np.float64)
    ppf = geometry.pixels_per_frame
    forward = ppf * i
    # (share of the speed it varies, period in frames): slow surges, then bumps
    for share, period in (
        (0.08, rng.uniform(500, 1500)),
        (0.04, rng.uniform(100, 300)),
        *((0.1, rng.uniform(5, 20)) for _ in range(3)),
    ):
        forward += (
            share * ppf * period / (2 * np.pi) * np.sin(2 * np.pi * i / period + rng.uniform(0, 6))
        )
    lateral = np.zeros_like(i)
    for amplitude, period in (
        (rng.uniform(5, 30), rng.uniform(400, 2000)),
        (rng.uniform(0.5, 3), rng.uniform(6, 25)),
    ):
        lateral += amplitude * np.sin(2 * np.pi * i / period + rng.uniform(0, 6))
    return forward - forward[0], np.clip(lateral, 2 - _SIDE, _SIDE - 2)


class Tow:
    """One tow: its camera path, its seabed and the burrow systems the camera sees."""

    def __init__(self, geometry: TowGeometry, seed: int, frame_count: int, density: float) -> None:
        self.geometry, self.seed, self.frame_count = geometry, seed, frame_count
        self.density_per_m2 = density
        forward, lateral = _camera_path(geometry, seed, frame_count)
        self.tow_length_m = float(forward[-1]) * geometry.metres_per_pixel
        self._start = 2 * _CHUNK  # chunks behind the start hold what reaches forward into view
        self._bottom = self._start + np.round(forward).astype(np.int64)
        self._left = _SIDE + np.round(lateral).astype(np.int64)
        self._seabed = _Seabed(geometry, seed, density, int(self._bottom[-1]) + geometry.height)
        openings = [op for s in self._seabed.systems for op in s.openings]
        self._openings = sorted(openings, key=lambda op: (op.u0, op.x0))
        self._u0s = [op.u0 for op in self._openings]
        self._tallest = max((op.mask.shape[0] for op in openings), default=0)
        self.systems = self._number_systems()
        self._camera = _Camera(geometry, seed)

    @property
    def surveyed_area_m2(self) -> float:
        """Seabed that passed through the view: tow length plus one frame, times its width."""
        g = self.geometry
        return (self.tow_length_m + g.ground_height_m) * g.ground_width_m

    @property
    def offsets(self) -> np.ndarray:
        """(frames, 2): where each frame sits on the seabed, in frame pixels. Adding a frame's
        offset to its boxes gives seabed coordinates, in which openings stand still (the
        convention of `TowTracks.offsets`)."""
        moved = np.stack([self._left - self._left[0], self._bottom[0] - self._bottom], axis=1)
        return moved.astype(np.float64)

    def minute_of(self, frame_index: int) -> int:
        return frame_index // self.geometry.frames_per_minute

    def frames(self) -> Iterator[TowFrame]:
        for index in range(self.frame_count):
            yield self.frame(index)

    def frame(self, index: int) -> TowFrame:
        """Frame `index` alone, identical to the one `frames()` yields."""
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} outside a tow of {self.frame_count}")
        image, blur, turbidity = self._camera.render(self._view(index), index)
        return TowFrame(index, image, self._objects(index), blur, turbidity)

    def masks(self, index: int) -> dict[int, np.ndarray]:
        """Bool (H, W) mask of the visible pixels of each labelled opening, by track id."""
        g = self.geometry
        masks = {}
        for op, rows, cols in self._in_view(index):
            mask = np.zeros((g.height, g.width), dtype=bool)
            part = op.mask[rows, cols]
            top = int(self._bottom[index]) + g.height - (op.u0 + rows.stop)
            left = op.x0 + cols.start - int(self._left[index])
            mask[top : top + part.shape[0], left : left + part.shape[1]] = part[::-1]
            if mask.sum() >= MIN_VISIBLE_FRACTION * op.mask.sum():
                masks[op.track_id] = mask
        return masks

    # where things are

    def _view(self, index: int) -> np.ndarray:
        """The seabed under the camera, flipped so the seabed ahead is at the top."""
        bottom, left = int(self._bottom[index]), int(self._left[index])
        top, parts, u = bottom + self.geometry.height, [], bottom
        while u < top:
            k = u // _CHUNK
            stop = min(top, (k + 1) * _CHUNK)
            parts.append(
                self._seabed.chunk(k)[
                    u - k * _CHUNK : stop - k * _CHUNK, left : left + self.geometry.width
                ]
            )
            u = stop
        return cv2.flip(parts[0] if len(parts) == 1 else np.concatenate(parts), 0)

    def _in_view(self, index: int) -> Iterator[tuple[_Opening, slice, slice]]:
        """Openings overlapping the frame, with the rows and columns of their masks inside it."""
        g = self.geometry
        bottom, left = int(self._bottom[index]), int(self._left[index])
        lo = bisect.bisect_right(self._u0s, bottom - self._tallest)
        hi = bisect.bisect_left(self._u0s, bottom + g.height)
        for op in self._openings[lo:hi]:
            h, w = op.mask.shape
            rows = slice(max(bottom - op.u0, 0), min(bottom + g.height - op.u0, h))
            cols = slice(max(left - op.x0, 0), min(left + g.width - op.x0, w))
            if rows.start < rows.stop and cols.start < cols.stop:
                yield op, rows, cols

    def _seen(self, index: int) -> Iterator[tuple[_Opening, tuple[float, ...], float]]:
        """Openings labelled on this frame, with their boxes and visible fractions."""
        g = self.geometry
        bottom, left = int(self._bottom[index]), int(self._left[index])
        for op, rows, cols in self._in_view(index):
            part = op.mask[rows, cols]
            fraction = float(part.sum()) / float(op.mask.sum())
            if fraction < MIN_VISIBLE_FRACTION:
                continue
            ys, xs = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
            u_lo, u_hi = op.u0 + rows.start + ys[0], op.u0 + rows.start + ys[-1]
            x_lo, x_hi = op.x0 + cols.start + xs[0] - left, op.x0 + cols.start + xs[-1] - left
            box = (x_lo, bottom + g.height - 1 - u_hi, x_hi + 1, bottom + g.height - u_lo)
            yield op, tuple(float(v) for v in box), fraction

    def _objects(self, index: int) -> list[TowObject]:
        objects = [
            TowObject(op.track_id, self._seabed.systems[op.system].system_id, box, fraction)
            for op, box, fraction in self._seen(index)
        ]
        return sorted(objects, key=lambda o: o.track_id)

    def _number_systems(self) -> list[BurrowSystem]:
        """Number the systems seen in this tow by when they are first labelled, and their
        openings by when they enter the frame."""
        first: dict[int, int] = {}
        for op in self._openings:
            start = int(np.searchsorted(self._bottom, op.u0 - self.geometry.height + 1))
            for index in range(start, self.frame_count):
                if self._bottom[index] >= op.u0 + op.mask.shape[0]:
                    break
                if any(seen is op for seen, _, _ in self._seen(index)):
                    first[op.system] = min(first.get(op.system, index), index)
                    break
        order = sorted(first, key=lambda s: (first[s], self._seabed.systems[s].u))
        systems, track = [], 0
        g, centre = self.geometry, _SIDE + self.geometry.width / 2
        for number, index in enumerate(order, 1):
            system = self._seabed.systems[index]
            system.system_id = number
            ids = []
            for op in sorted(system.openings, key=lambda op: -(op.u0 + op.mask.shape[0])):
                track += 1
                op.track_id = track
                ids.append(track)
            along = (system.u - self._start) * g.metres_per_pixel
            across = (system.x - centre) * g.metres_per_pixel
            systems.append(BurrowSystem(number, tuple(ids), along, across, first[index]))
        return systems


def generate_tow(
    seconds: float,
    seed: int,
    geometry: TowGeometry = DEFAULT_GEOMETRY,
    density_per_m2: float = 0.6,
) -> Tow:
    """A tow of `seconds` over seabed with `density_per_m2` burrow systems per m². Frames are
    rendered when asked for, so a 10-minute tow streams in constant memory."""
    frame_count = max(1, round(seconds * geometry.fps))
    return Tow(geometry, seed, frame_count, density_per_m2)


def counts_per_minute(tow: Tow) -> list[tuple[int, int]]:
    """(minute, burrow systems first seen in it) for every minute the tow spans."""
    minutes = math.ceil(tow.frame_count / tow.geometry.frames_per_minute)
    counts = [0] * minutes
    for system in tow.systems:
        counts[tow.minute_of(system.first_frame)] += 1
    return list(enumerate(counts))


def write_tow(tow: Tow, out_dir: str | Path) -> TowFiles:
    """Render the whole tow to an MP4 with its CVAT video XML and ground-truth CSVs."""
    from imagine_assist.cvat.xml import VideoTrack, write_cvat_video_xml

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    g = tow.geometry
    files = TowFiles(
        root,
        root / "video.mp4",
        root / "annotations.xml",
        root / "ground_truth.csv",
        root / "counts_per_minute.csv",
    )
    writer = cv2.VideoWriter(
        str(files.video), cv2.VideoWriter_fourcc(*"mp4v"), g.fps, (g.width, g.height)
    )
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {files.video} with the mp4v codec")
    tracks: dict[int, VideoTrack] = {}
    try:
        with files.ground_truth.open("w", newline="") as handle:
            table = csv.writer(handle)
            table.writerow(["frame", "track_id", "system_id", "x1", "y1", "x2", "y2"])
            for frame in tqdm(tow.frames(), total=tow.frame_count, desc="tow", unit="frame"):
                writer.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
                for obj in frame.objects:
                    track = tracks.setdefault(
                        obj.track_id,
                        VideoTrack(obj.track_id, BURROW_LABELS[0], group_id=obj.system_id),
                    )
                    track.boxes[frame.index] = obj.xyxy
                    table.writerow(
                        [frame.index, obj.track_id, obj.system_id, *(f"{v:g}" for v in obj.xyxy)]
                    )
    finally:
        writer.release()
    ordered = [tracks[key] for key in sorted(tracks)]
    write_cvat_video_xml(
        files.annotations, ordered, BURROW_LABELS, tow.frame_count, (g.width, g.height)
    )
    with files.counts.open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow(["minute", "new_systems"])
        table.writerows(counts_per_minute(tow))
    return files


def write_cvat_video_export(
    path: str | Path, tow: Tow, frame_step: int = 1, task_name: str = "tow"
) -> Path:
    """A zip laid out as CVAT's "CVAT for video 1.1" export with images, for a video task
    made from the tow with a frame step: `annotations.xml` (tracks with the burrow system as
    group) and `images/frame_000010.PNG`, one per task frame, numbered as in the video as
    CVAT numbers them. Stands in for a corrected tow."""
    import io
    import zipfile

    from imagine_assist.cvat.xml import VideoTrack, cvat_video_tree

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = tow.geometry
    indices = range(0, tow.frame_count, frame_step)
    tracks: dict[int, VideoTrack] = {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:  # PNG is compressed
        for index in indices:
            frame = tow.frame(index)
            ok, png = cv2.imencode(
                ".png",
                cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 1],
            )
            archive.writestr(f"images/frame_{index:06d}.PNG", png.tobytes())
            for obj in frame.objects:
                track = tracks.setdefault(
                    obj.track_id,
                    VideoTrack(obj.track_id, BURROW_LABELS[0], group_id=obj.system_id),
                )
                track.boxes[index] = obj.xyxy
        ordered = [tracks[key] for key in sorted(tracks)]
        tree = cvat_video_tree(
            ordered,
            BURROW_LABELS,
            len(indices),
            (g.width, g.height),
            task_name=task_name,
            frame_step=frame_step,
        )
        xml = io.BytesIO()
        tree.write(xml, encoding="utf-8", xml_declaration=True)
        archive.writestr("annotations.xml", xml.getvalue())
    return path


def tow_detection_samples(
    n: int, seed: int = 0, fractions: Sequence[float] = (0.7, 0.15, 0.15)
) -> Iterator[Sample]:
    """`n` detector-training frames from short tows of varied density, look and camera height.
    Frames of one tow are far enough apart to share no seabed, so no burrow is in two splits."""
    per_tow = 24
    for i in range(n):
        number, slot = divmod(i, per_tow)
        if slot == 0:
            tow, step = _training_tow(seed, number, per_tow)
        frame = tow.frame(slot * step)
        objects = [SampleObject(BURROW_LABELS[0], obj.xyxy) for obj in frame.objects]
        yield Sample(f"burrow_{i:05d}.jpg", frame.image, objects, split_for(i, fractions))


def _training_tow(seed: int, number: int, count: int) -> tuple[Tow, int]:
    """A short tow with a seed, density and field of view of its own, and the frame step that
    keeps `count` frames from overlapping."""
    rng = np.random.default_rng([seed, number])
    geometry = TowGeometry(ground_width_m=rng.uniform(0.8, 1.25))
    step = math.ceil(geometry.height / (0.85 * geometry.pixels_per_frame))  # surges run slow
    seconds = (count * step + 1) / geometry.fps
    tow = generate_tow(seconds, int(rng.integers(2**31)), geometry, rng.uniform(0.4, 1.6))
    return tow, step
