"""Synthetic underwater observatory frames of three Mediterranean fish, with exact ground truth.

Each fish is a handful of polygons (body, forked tail, fins) rasterised into its own patch, and
coloured from its body coordinates so bands, stripes and shading follow it when it turns. Fish
are composited far to near with hard masks, so a fish's final visible pixels are exactly its
mask minus the masks of the fish drawn after it, clipped to the frame. Fish that would end up
mostly hidden are not drawn at all, so every fish in an image is labelled. Camera effects
(haze, marine snow, blur, noise) come last and do not move any boundary by more than a pixel.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from imagine_assist.samples.base import Sample, SampleObject, split_for

FISH_SPECIES = ("diplodus", "chromis", "sarpa")

MIN_VISIBLE_PIXELS = 40
MIN_VISIBLE_FRACTION = 0.35
_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision: smooth outlines for small fish

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class _Look:
    """Shape and colours of a species; lengths are fractions of the total fish length."""

    length: tuple[float, float]  # total length range in pixels
    top: float  # dorsal half-depth of the body at its deepest
    bottom: float  # ventral half-depth
    peak: float  # where the body is deepest, 0 = tail base, 1 = snout
    peduncle: float  # body depth at the tail base, relative to the deepest
    snout: float  # larger is blunter
    tail: float  # tail length
    spread: float  # half-span of the tail lobes
    fork: float  # notch depth, as a fraction of the tail length
    back: RGB
    belly: RGB
    fin: RGB
    iris: RGB
    eye: float  # eye radius
    dorsal: tuple[float, float, float]  # start, end (body position) and height
    anal: tuple[float, float, float]


_LOOKS = {
    "diplodus": _Look(
        length=(40, 140),
        top=0.25,
        bottom=0.21,
        peak=0.5,
        peduncle=0.26,
        snout=2.6,
        tail=0.2,
        spread=0.17,
        fork=0.45,
        back=(0.42, 0.45, 0.47),
        belly=(0.90, 0.91, 0.90),
        fin=(0.55, 0.56, 0.55),
        iris=(0.70, 0.70, 0.66),
        eye=0.05,
        dorsal=(0.22, 0.86, 0.075),
        anal=(0.12, 0.42, 0.06),
    ),
    "chromis": _Look(
        length=(30, 75),
        top=0.21,
        bottom=0.17,
        peak=0.55,
        peduncle=0.3,
        snout=2.2,
        tail=0.27,
        spread=0.2,
        fork=0.8,
        back=(0.10, 0.12, 0.19),
        belly=(0.32, 0.26, 0.22),
        fin=(0.13, 0.13, 0.17),
        iris=(0.25, 0.30, 0.38),
        eye=0.06,
        dorsal=(0.3, 0.9, 0.07),
        anal=(0.14, 0.45, 0.075),
    ),
    "sarpa": _Look(
        length=(45, 140),
        top=0.15,
        bottom=0.14,
        peak=0.5,
        peduncle=0.3,
        snout=2.0,
        tail=0.18,
        spread=0.13,
        fork=0.55,
        back=(0.38, 0.41, 0.44),
        belly=(0.82, 0.82, 0.78),
        fin=(0.52, 0.50, 0.42),
        iris=(0.86, 0.70, 0.22),
        eye=0.035,
        dorsal=(0.3, 0.86, 0.05),
        anal=(0.12, 0.36, 0.045),
    ),
}

# Anchors for the water colour: turquoise, blue, green coastal, and a turbid violet-grey.
_WATERS = np.array(
    [[0.22, 0.66, 0.64], [0.16, 0.42, 0.58], [0.30, 0.52, 0.40], [0.44, 0.46, 0.62]],
    dtype=np.float32,
)
_SAND = np.array([0.70, 0.62, 0.46], dtype=np.float32)
_ROCK = np.array([0.30, 0.30, 0.26], dtype=np.float32)
_ALGAE = np.array([0.28, 0.34, 0.16], dtype=np.float32)


@dataclass
class _Fish:
    species: str
    origin: tuple[int, int]  # frame (x, y) of the patch's top-left pixel; may be off-frame
    mask: np.ndarray  # bool patch: every pixel the fish covers, unclipped
    colour: np.ndarray  # float32 patch RGB in [0, 1]
    alpha: np.ndarray  # float32 patch opacity: fins are slightly translucent
    haze: float  # how much of the water behind shows through, grows with distance


@dataclass(frozen=True)
class _Pose:
    length: float
    centre: tuple[float, float]
    angle: float  # radians
    facing: int  # +1 snout to the right, -1 to the left


# --- shapes ---------------------------------------------------------------------------------


def _profile(t: np.ndarray, look: _Look) -> np.ndarray:
    """Body half-depth relative to the deepest point; t = 0 at the tail base, 1 at the snout."""
    t = np.clip(t, 0.0, 1.0)
    rear = np.clip((look.peak - t) / look.peak, 0.0, 1.0)
    front = np.clip((t - look.peak) / (1.0 - look.peak), 0.0, 1.0)
    # The rear tapers with a finite slope into the peduncle; the head closes round.
    tapered = look.peduncle + (1.0 - look.peduncle) * (1.0 - rear**1.8)
    rounded = np.clip(1.0 - front**look.snout, 0.0, 1.0) ** 0.55
    return np.where(t < look.peak, tapered, rounded)


def _outline(look: _Look, length: float, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Local x and the dorsal (negative) and ventral y of the body at positions t."""
    base = look.tail * length
    x = base + t * (length - base)
    p = _profile(t, look)
    return x, -look.top * length * p, look.bottom * length * p


def _fin(look: _Look, length: float, fin: tuple[float, float, float], side: int) -> np.ndarray:
    """A fin along the back (side -1) or belly (+1), raked back like a real one."""
    start, end, height = fin
    t = np.linspace(start, end, 10)
    x, top, bottom = _outline(look, length, t)
    edge = top if side < 0 else bottom
    u = (t - start) / (end - start)
    # Tallest near the front, then trailing off: the soft-rayed rear of a sparid fin.
    rise = np.sin(np.pi * u) ** 0.5 * (1.0 - 0.5 * u)
    raised = np.stack([x - 0.07 * length * rise, edge + side * height * length * rise], axis=1)
    base = np.stack([x, edge * 0.85], axis=1)[::-1]
    return np.concatenate([raised, base])


def _polygons(look: _Look, length: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Body and appendage polygons in local coordinates: x from tail tip (0) to snout."""
    t = np.linspace(0.0, 1.0, 48)
    x, top, bottom = _outline(look, length, t)
    body = np.concatenate([np.stack([x, top], 1), np.stack([x, bottom], 1)[::-1]])
    base = look.tail * length
    bx, btop, bbottom = (v[0] for v in _outline(look, length, np.array([0.04])))
    s = look.spread * length
    tail = np.array(
        [
            [bx, btop * 0.9],
            [0.45 * base, -0.62 * s],
            [0.0, -s],
            [look.fork * base, 0.0],
            [0.0, s],
            [0.45 * base, 0.62 * s],
            [bx, bbottom * 0.9],
        ]
    )
    px, _, pbottom = _outline(look, length, np.array([0.6, 0.7]))
    pelvic = np.array(
        [
            [px[0], pbottom[0] * 0.9],
            [px[1], pbottom[1] * 0.9],
            [px[0] - 0.06 * length, pbottom[0] + 0.09 * length],
        ]
    )
    fins = [tail, _fin(look, length, look.dorsal, -1), _fin(look, length, look.anal, 1), pelvic]
    return body, fins


def _to_frame(points: np.ndarray, pose: _Pose) -> np.ndarray:
    c, s = np.cos(pose.angle), np.sin(pose.angle)
    local = points - [pose.length / 2, 0.0]
    local[:, 0] *= pose.facing
    rotated = local @ np.array([[c, s], [-s, c]])
    return rotated + pose.centre


def _to_local(xs: np.ndarray, ys: np.ndarray, pose: _Pose) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(pose.angle), np.sin(pose.angle)
    dx, dy = xs - pose.centre[0], ys - pose.centre[1]
    return pose.facing * (c * dx + s * dy) + pose.length / 2, -s * dx + c * dy


def _fill(polygons: list[np.ndarray], origin: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(shape, dtype=np.uint8)
    scale = 1 << _SUBPIXEL_BITS
    for polygon in polygons:  # one call each: fillPoly would XOR overlapping polygons
        pts = np.round((polygon - origin) * scale).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    return canvas.astype(bool)


# --- colour ---------------------------------------------------------------------------------


def _body_colour(
    look: _Look, species: str, length: float, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    base = look.tail * length
    t = (x - base) / (length - base)
    p = np.maximum(_profile(t, look), 1e-3)
    v = np.where(y < 0, y / (look.top * length * p), y / (look.bottom * length * p))
    v = np.clip(v, -1.0, 1.0)  # -1 along the back, +1 along the belly
    shade = np.clip((v + 1.0) / 2.0, 0.0, 1.0)[..., None] ** 1.4
    colour = np.asarray(look.back) + (np.asarray(look.belly) - np.asarray(look.back)) * shade
    if species != "chromis":  # silvery flanks catch light just below the lateral line
        colour *= 1.0 + 0.12 * np.exp(-(((v - 0.1) / 0.3) ** 2))[..., None]
    colour = _pattern(species, colour, t, v, rng)
    gill = np.abs(t - 0.78 - 0.05 * v**2) < 0.012
    colour[gill] *= 0.82
    return colour


def _pattern(
    species: str, colour: np.ndarray, t: np.ndarray, v: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    if species == "diplodus":
        bands = sum(np.exp(-(((t - c) / 0.045) ** 2)) for c in (0.72, 0.42))
        colour = colour * (1.0 - rng.uniform(0.25, 0.45) * bands)[..., None]
        spot = np.exp(-(((t - 0.03) / 0.05) ** 2)) * (np.abs(v) < 0.95)
        colour = colour + (0.06 - colour) * (0.85 * spot)[..., None]
    elif species == "sarpa":
        count = rng.integers(8, 12)
        stripes = np.clip((np.cos(np.pi * count * (v + 1.0)) - 0.55) / 0.45, 0.0, 1.0)
        gold = np.array([0.86, 0.70, 0.24])
        colour = colour + (gold - colour) * (0.6 * stripes)[..., None]
    else:  # chromis: dark scales with a faint lighter edge
        colour = colour * (1.0 + 0.08 * np.cos(6.0 * np.pi * (t + 0.3 * v)) ** 8)[..., None]
    return colour


def _eye(colour: np.ndarray, look: _Look, length: float, x: np.ndarray, y: np.ndarray) -> None:
    radius = look.eye * length
    if radius < 1.0:  # below a pixel the eye is only noise
        return
    ex, top, _ = _outline(look, length, np.array([0.88]))
    dist = np.hypot(x - ex[0], y - 0.3 * top[0])
    colour[dist <= radius] = look.iris
    colour[dist <= 0.55 * radius] = (0.02, 0.02, 0.03)
    glint = np.hypot(x - ex[0] + 0.25 * radius, y - 0.3 * top[0] + 0.25 * radius)
    colour[glint <= 0.18 * radius] = (0.9, 0.92, 0.95)


def _render_fish(rng: np.random.Generator, species: str, pose: _Pose, haze: float) -> _Fish:
    look = _LOOKS[species]
    body, fins = _polygons(look, pose.length)
    body, fins = _to_frame(body, pose), [_to_frame(f, pose) for f in fins]
    corners = np.concatenate([body, *fins])
    low = np.floor(corners.min(0)).astype(int) - 1
    high = np.ceil(corners.max(0)).astype(int) + 2
    shape = (int(high[1] - low[1]), int(high[0] - low[0]))
    body_mask = _fill([body], low, shape)
    fin_mask = _fill(fins, low, shape)
    ys, xs = np.mgrid[low[1] : high[1], low[0] : high[0]].astype(np.float32)
    x, y = _to_local(xs, ys, pose)
    colour = _body_colour(look, species, pose.length, x, y, rng)
    _eye(colour, look, pose.length, x, y)
    colour[~body_mask] = look.fin
    alpha = np.where(body_mask, 1.0, rng.uniform(0.7, 0.9)).astype(np.float32)
    origin = (int(low[0]), int(low[1]))
    return _Fish(species, origin, body_mask | fin_mask, colour.astype(np.float32), alpha, haze)


# --- scene ----------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse grid, upscaled, so it costs nothing."""
    grid = rng.standard_normal((max(2, cells * height // width), cells)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) / 1.5


def _water(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Background water, brighter towards the surface, and its mid-depth colour."""
    weights = rng.dirichlet(np.array([3.0, 2.0, 1.5, 1.0]) * 0.6)
    colour = (weights @ _WATERS * rng.uniform(0.85, 1.15, 3)).astype(np.float32)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    x = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :, None]
    sun_x = rng.uniform(-0.8, 0.8)
    glow = np.exp(-((x - sun_x) ** 2) / 0.6 - y**2 / 0.15) * rng.uniform(0.1, 0.35)
    depth = (1.0 - y) ** rng.uniform(1.0, 2.5)
    water = colour * (0.55 + 0.8 * depth) + glow * (1.0 - colour) * 0.8
    blotches = _smooth_noise(rng, width, height, 6)[..., None] * rng.uniform(0.02, 0.07)
    water = water * (1.0 + blotches)
    if rng.random() < 0.4:
        water = water + _rays(rng, width, height)[..., None] * (1.0 - colour) * 0.5
    return np.clip(water, 0.0, 1.0), colour


def _rays(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Slanted shafts of sunlight fading with depth, drawn coarse and upscaled."""
    w, h = 96, max(2, 96 * height // width)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    slant = np.tan(rng.uniform(-0.5, 0.5))
    u = (xx + yy * slant) / w
    rays = sum(
        np.exp(-(((u - c) / rng.uniform(0.01, 0.04)) ** 2)) * rng.uniform(0.3, 1.0)
        for c in rng.uniform(-0.3, 1.3, rng.integers(3, 8))
    )
    rays = rays * (1.0 - yy / h) ** 2 * rng.uniform(0.05, 0.2)
    return cv2.resize(rays.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def _seabed(rng: np.random.Generator, water: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """A sandy, rocky bottom band, fading into the water with distance."""
    height, width = water.shape[:2]
    horizon = rng.uniform(0.62, 0.9) * height
    ridge = _smooth_noise(rng, width, 1, 8)[0] * 0.06 * height
    rocks = _smooth_noise(rng, width, height, 10) + 0.5 * _smooth_noise(rng, width, height, 29)
    bumps = np.maximum(rocks[0], 0.0) * rng.uniform(0.0, 0.12) * height
    edge = horizon + ridge - bumps
    y = np.arange(height, dtype=np.float32)[:, None]
    ground = np.clip((y - edge) / 4.0, 0.0, 1.0)
    ground = cv2.GaussianBlur(ground, (0, 0), 1.5)[..., None]
    algae = np.clip(_smooth_noise(rng, width, height, 20), 0.0, 1.0)[..., None]
    stone = np.clip(rocks * 1.2 + 0.2, 0.0, 1.0)[..., None]
    bed = _SAND + (_ROCK - _SAND) * stone
    bed = bed + (_ALGAE - bed) * algae * 0.7
    grain = cv2.GaussianBlur(rng.normal(0.0, 0.06, (height, width)).astype(np.float32), (0, 0), 0.8)
    bed = bed * (1.0 + grain[..., None] + 0.25 * rocks[..., None])
    # Water absorbs red first, and the far bottom is mostly veil.
    bed = bed * (0.35 + colour)
    near = np.clip((y - horizon) / (height - horizon + 1.0), 0.0, 1.0)[..., None]
    fade = rng.uniform(0.45, 0.8) * (1.0 - 0.6 * near)
    bed = bed + (water - bed) * fade
    return water + (bed - water) * ground


def _poses(
    rng: np.random.Generator, count: int, width: int, height: int
) -> list[tuple[str, float, _Pose]]:
    """(species, distance, pose) per fish; sometimes a loose school sharing species and heading."""
    school = rng.random() < 0.35
    main = FISH_SPECIES[rng.integers(len(FISH_SPECIES))]
    facing = rng.choice([-1, 1])
    centre = rng.uniform([0.2 * width, 0.15 * height], [0.8 * width, 0.85 * height])
    fish = []
    for _ in range(count):
        species = main if school and rng.random() < 0.85 else FISH_SPECIES[rng.integers(3)]
        look = _LOOKS[species]
        distance = rng.uniform(0.0, 1.0)
        lo, hi = look.length
        length = lo + (hi - lo) * (1.0 - distance) * rng.uniform(0.55, 1.0)
        if school:
            xy = rng.normal(centre, [0.16 * width, 0.14 * height])
            face = facing if rng.random() < 0.85 else -facing
        else:
            margin = 0.25 * length
            xy = rng.uniform([-margin, -margin], [width + margin, height + margin])
            face = rng.choice([-1, 1])
        angle = np.deg2rad(rng.uniform(-20.0, 20.0))
        fish.append((species, distance, _Pose(length, (xy[0], xy[1]), angle, int(face))))
    return fish


def _overlap(fish: _Fish, width: int, height: int) -> tuple[tuple[slice, slice], ...] | None:
    """Frame and patch slices of the part of the patch that lies inside the frame."""
    x0, y0 = fish.origin
    h, w = fish.mask.shape
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
    if fx0 >= fx1 or fy0 >= fy1:
        return None
    frame = (slice(fy0, fy1), slice(fx0, fx1))
    patch = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    return frame, patch


def _visible(fishes: list[_Fish], width: int, height: int) -> list[tuple[_Fish, np.ndarray]]:
    """Keep the fish that stay clearly visible, with their final masks, in drawing order.

    Walks from the nearest fish back, so what hides a fish is only ever fish that are kept.
    """
    covered = np.zeros((height, width), dtype=bool)
    kept = []
    for fish in reversed(fishes):
        slices = _overlap(fish, width, height)
        if slices is None:
            continue
        frame, patch = slices
        visible = np.zeros_like(covered)
        visible[frame] = fish.mask[patch] & ~covered[frame]
        area = int(visible.sum())
        if area >= MIN_VISIBLE_PIXELS and area >= MIN_VISIBLE_FRACTION * fish.mask.sum():
            kept.append((fish, visible))
            covered |= visible
    return kept[::-1]


def _composite(image: np.ndarray, fish: _Fish, tint: np.ndarray, silhouette: float) -> None:
    frame, patch = _overlap(fish, image.shape[1], image.shape[0])
    region = image[frame]
    colour = fish.colour[patch] * tint * silhouette
    weight = (fish.alpha[patch] * (1.0 - fish.haze))[..., None]
    blended = region + (colour - region) * weight
    image[frame] = np.where(fish.mask[patch][..., None], blended, region)


def _camera(
    rng: np.random.Generator, image: np.ndarray, veil: np.ndarray, colour: np.ndarray
) -> np.ndarray:
    """Turbidity, marine snow, exposure, vignetting, lens blur and sensor noise."""
    height, width = image.shape[:2]
    turbidity = rng.uniform(0.0, 0.45)
    image = image + (veil - image) * turbidity
    snow = np.zeros((height, width), dtype=np.float32)
    for _ in range(int(rng.uniform(20, 500) * turbidity)):
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        radius = int(rng.choice([0, 0, 1, 1, 2]))
        cv2.circle(snow, centre, radius, float(rng.uniform(0.2, 0.7)), -1, cv2.LINE_AA)
    snow = cv2.GaussianBlur(snow, (0, 0), 0.7)[..., None]
    image = image + (np.minimum(colour * 1.6 + 0.25, 1.0) - image) * snow
    yy, xx = np.mgrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j].astype(np.float32)
    vignette = 1.0 - rng.uniform(0.1, 0.45) * ((xx**2 + yy**2) / 2.0)
    image = image * (rng.uniform(0.6, 1.2) * vignette)[..., None]
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.1))
    noise = rng.normal(0.0, rng.uniform(0.006, 0.025), image.shape).astype(np.float32)
    return np.clip((image + noise) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def fish_scene(
    rng: np.random.Generator, width: int = 384, height: int = 288
) -> tuple[np.ndarray, list[SampleObject]]:
    """One underwater frame (RGB uint8) with a box and visible-pixel mask per fish."""
    water, colour = _water(rng, width, height)
    scene = _seabed(rng, water, colour) if rng.random() < 0.6 else water.copy()
    count = 0 if rng.random() < 0.1 else int(rng.integers(1, 7))
    poses = sorted(_poses(rng, count, width, height), key=lambda p: -p[1])  # far to near
    fishes = [
        _render_fish(rng, species, pose, haze=0.08 + 0.5 * distance * rng.uniform(0.6, 1.0))
        for species, distance, pose in poses
    ]
    kept = _visible(fishes, width, height)
    # Red fades first underwater; backlit fish against the surface read as silhouettes.
    tint = (0.55 + 0.45 * colour / colour.max()).astype(np.float32)
    silhouette = rng.uniform(0.35, 1.0)
    for fish, _ in kept:
        _composite(scene, fish, tint, silhouette)
    image = _camera(rng, scene, cv2.GaussianBlur(water, (0, 0), 8), colour)
    return image, [_annotation(fish.species, mask) for fish, mask in kept]


def _annotation(species: str, mask: np.ndarray) -> SampleObject:
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return SampleObject(label=species, xyxy=box, mask=mask)


def generate_fish(
    n: int,
    seed: int = 0,
    width: int = 384,
    height: int = 288,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
) -> Iterator[Sample]:
    """`n` fish frames; frame i depends only on (seed, i), so any one can be regenerated alone."""
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        image, objects = fish_scene(rng, width, height)
        yield Sample(f"fish_{i:05d}.jpg", image, objects, split_for(i, fractions))
