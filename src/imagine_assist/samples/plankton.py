"""Synthetic ZooScan plankton vignettes, single organisms or touching "multiples", exact masks.

A vignette is what ZooScan cuts out around one segmented blob: a white frame, the blob centred
with a margin, and a 1 mm scale bar in a strip at the bottom. When organisms touch on the
scanner they end up in one vignette (a "multiple") and must be separated before EcoTaxa import;
these samples train that classifier and separator.

Each organism (chaetognath, copepod, egg, diatom chain, marine snow) is a few layers of polygons
and polylines in its own patch, each layer with one opacity and optionally darker edges, so it
reads as a translucent body with internal structure and 1-2 px appendages. The patch opacity is
blurred once (scanner optics) and cut at `VISIBLE_OPACITY`, so an organism's support is exactly
the set of pixels it darkens by a visible amount. Organisms combine as transmittances multiply
on a light table; where supports overlap, the pixel belongs to the organism drawn last, so the
masks are disjoint and cover every pixel an organism changes. Only the faint sensor noise and the
scale bar come after, and the bar's strip never holds an organism pixel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from imagine_assist.models.separate import SCALE_BAR_ROWS
from imagine_assist.samples.base import Sample, SampleObject, split_for

PLANKTON_LABELS = ("organism",)
VIGNETTE_CLASSES = ("single", "multiple")
ORGANISM_KINDS = ("chaetognath", "copepod", "egg", "diatom_chain", "marine_snow")

PIXELS_PER_MM = 96  # ZooScan at 2400 dpi; the real vignettes' bars are 96 px long
VISIBLE_OPACITY = 0.04  # about 10 grey levels: fainter is indistinguishable from the noise
MIN_VISIBLE_FRACTION = 0.4  # of its own support, for an organism partly hidden in a multiple
MIN_VISIBLE_PIXELS = 20

_SHIFT = 4  # fixed-point bits for cv2 drawing: sub-pixel vertices
_MAX_ATTEMPTS = 50
_NOISE_TILE = 192
_KIND_WEIGHTS = np.array([0.2, 0.4, 0.1, 0.1, 0.2])


@dataclass
class PlanktonSample(Sample):
    """A `Sample` that also says whether it is a multiple, for the single/multiple classifier."""

    multiple: bool = False
    kinds: tuple[str, ...] = ()  # one per object, in drawing order (bottom first)
    scale_bar_rows: int = SCALE_BAR_ROWS  # crop this many bottom rows to drop the bar

    @property
    def vignette_class(self) -> str:
        return VIGNETTE_CLASSES[int(self.multiple)]


@dataclass
class _Layer:
    """Shapes drawn with one opacity; local coordinates, x along the body axis."""

    opacity: float
    fills: list[np.ndarray] = field(default_factory=list)  # closed polygons
    lines: list[tuple[np.ndarray, int]] = field(default_factory=list)  # (polyline, thickness)
    edge: float = 0.0  # extra opacity at the outline: light grazes through more tissue there
    edge_width: float = 2.0
    texture: float = 0.0  # amplitude of smooth mottling of the opacity


@dataclass
class Organism:
    """One organism to place in a vignette: drawn here, or cut out of a real one."""

    kind: str
    alpha: np.ndarray  # float32 patch opacity, exactly 0 outside the support
    support: np.ndarray  # bool patch
    offset: np.ndarray  # (x, y) of the patch's top-left pixel in layout coordinates


# --- shapes ---------------------------------------------------------------------------------


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> np.ndarray:
    a = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def _outline(x: np.ndarray, half: np.ndarray) -> np.ndarray:
    return np.concatenate([np.stack([x, -half], 1), np.stack([x, half], 1)[::-1]])


def _curve(start: tuple[float, float], heading: float, turn: float, length: float) -> np.ndarray:
    """A polyline of constant curvature: antennae, spines and setae."""
    steps = max(4, int(length / 6))
    angles = heading + turn * np.linspace(0.0, 1.0, steps)
    seg = length / steps
    xy = np.cumsum(np.stack([np.cos(angles), np.sin(angles)], 1) * seg, axis=0)
    return np.concatenate([[start], np.asarray(start) + xy])


def _chaetognath(rng: np.random.Generator, length: float) -> list[_Layer]:
    """Arrow worm: a long glassy rod, tail fin, two pairs of lateral fins, head with hooks."""
    width = length * rng.uniform(0.035, 0.06)
    t = np.linspace(0.0, 1.0, 64)
    half = width / 2 * (0.7 + 0.3 * np.sin(np.pi * t)) * np.sqrt(1 - np.abs(2 * t - 1) ** 12)
    half *= 1 - 0.2 * np.exp(-(((t - 0.9) / 0.02) ** 2))  # neck
    x = t * length
    body = _Layer(
        rng.uniform(0.15, 0.3),
        [_outline(x, half)],
        edge=rng.uniform(0.2, 0.35),
        edge_width=max(1.5, 0.12 * width),
        texture=0.15,
    )
    body.fills.append(_ellipse(0.96 * length, 0, 0.07 * length, 0.55 * width))
    inner = _Layer(rng.uniform(0.06, 0.15), texture=0.3)
    inner.lines.append((np.stack([x[8:56], 0 * x[8:56]], 1), max(1, int(0.2 * width))))
    for _ in range(rng.integers(1, 3)):  # ovaries
        cx = length * rng.uniform(0.25, 0.5)
        inner.fills.append(_ellipse(cx, 0, 0.06 * length, 0.2 * width))
    fins = _Layer(rng.uniform(0.05, 0.1), edge=0.08, edge_width=1.0)
    for t0, t1 in ((0.12, 0.3), (0.33, 0.5)):
        u = np.linspace(0.0, 1.0, 12)
        fx = length * (t0 + (t1 - t0) * u)
        fin = width * rng.uniform(0.25, 0.5) * np.sin(np.pi * u**0.7) ** 0.8
        base = width * 0.4
        for side in (-1, 1):
            edge = np.stack([fx, side * (base + fin)], 1)
            fins.fills.append(np.concatenate([edge, np.stack([fx, side * base + 0 * fx], 1)[::-1]]))
    span = width * rng.uniform(0.8, 1.3)
    fins.fills.append(
        np.array(
            [
                [0.08 * length, -0.3 * width],
                [-0.6 * width, -span],
                [-0.9 * width, 0],
                [-0.6 * width, span],
                [0.08 * length, 0.3 * width],
            ]
        )
    )
    head = _Layer(
        rng.uniform(0.08, 0.4), [_ellipse(0.985 * length, 0, 0.025 * length, 0.4 * width)]
    )
    hooks = _Layer(rng.uniform(0.4, 0.65))
    for side in (-1, 1):
        for _ in range(rng.integers(5, 9)):
            heading = side * rng.uniform(0.1, 1.2)
            start = (length * 0.99, side * width * rng.uniform(0.1, 0.35))
            hooks.lines.append(
                (_curve(start, heading, -side * 0.6, width * rng.uniform(0.6, 1.6)), 1)
            )
    eyes = _Layer(0.6, [_ellipse(0.965 * length, s * 0.2 * width, 1.2, 1.2, 8) for s in (-1, 1)])
    return [fins, body, inner, head, hooks, eyes]


def _copepod(rng: np.random.Generator, length: float) -> list[_Layer]:
    """Oval prosome, segmented urosome with furcal setae, two long antennae, small legs."""
    uro = length * rng.uniform(0.28, 0.38)
    pro = length - uro
    pw = pro * rng.uniform(0.18, 0.26)
    t = np.linspace(0.0, 1.0, 48)
    half = pw * np.sin(np.pi * np.clip(t, 0, 1) ** 0.8) ** 0.6
    body = _Layer(
        rng.uniform(0.4, 0.75),
        [_outline(uro * 0.9 + t * (pro + 0.1 * uro), half)],
        edge=rng.uniform(0.15, 0.3),
        edge_width=max(1.5, 0.15 * pw),
        texture=0.2,
    )
    segments = int(rng.integers(3, 6))
    uw = pw * rng.uniform(0.22, 0.32)
    bounds = np.linspace(0.0, uro, segments + 1)
    for i in range(segments):
        taper = 0.8 + 0.2 * i / segments
        cx, rx = (bounds[i] + bounds[i + 1]) / 2, (bounds[i + 1] - bounds[i]) * 0.58
        body.fills.append(_ellipse(cx, 0, rx, uw * taper, 16))
    inner = _Layer(rng.uniform(0.08, 0.2), texture=0.4)
    for tt in np.sort(rng.uniform(0.15, 0.8, int(rng.integers(2, 5)))):  # segment borders
        xs = uro + tt * pro
        h = pw * np.sin(np.pi * tt**0.8) ** 0.6 * 0.9
        inner.lines.append(
            (np.array([[xs + 0.05 * pw, -h], [xs - 0.1 * pw, 0], [xs + 0.05 * pw, h]]), 1)
        )
    inner.fills.append(_ellipse(uro + 0.5 * pro, 0, 0.3 * pro, 0.25 * pw))  # gut
    inner.fills.append(_ellipse(length - 0.08 * pro, 0, 1.5, 1.5, 8))  # eye
    limbs = _Layer(rng.uniform(0.35, 0.6))
    thick = 2 if length > 220 and rng.random() < 0.5 else 1
    for side in (-1, 1):
        start = (length - 0.06 * pro, side * 0.4 * pw)
        heading = side * rng.uniform(1.0, 1.8)
        span = length * rng.uniform(0.5, 1.1)
        antenna = _curve(start, heading, side * rng.uniform(0.3, 1.0), span)
        limbs.lines.append((antenna, thick))
        for k in rng.integers(2, len(antenna), int(rng.integers(0, 6))):  # setae
            p = antenna[k]
            limbs.lines.append((_curve(tuple(p), heading + side * 1.3, 0, pw * 0.3), 1))
    lateral = rng.random() < 0.5  # seen from the side, legs are all on the ventral side
    for tt in np.linspace(0.3, 0.7, int(rng.integers(4, 6))):
        sides = (1,) if lateral else (-1, 1)
        for side in sides:
            leg = pw * rng.uniform(0.3, 0.8) * (1.4 if lateral else 1.0)
            start = (uro + tt * pro, side * 0.5 * pw)
            heading = side * rng.uniform(1.9, 2.6)
            limbs.lines.append(
                (_curve(start, heading, side * rng.uniform(0, 0.6), pw * 0.5 + leg), 1)
            )
    setae = _Layer(rng.uniform(0.3, 0.5))
    for side in (-1, 1):
        for _ in range(rng.integers(1, 3)):
            angle = np.pi + side * rng.uniform(0.05, 0.4)
            start = (0.5 * uw, side * 0.4 * uw)
            setae.lines.append((_curve(start, angle, 0, length * rng.uniform(0.1, 0.3)), 1))
    return [limbs, setae, body, inner]


def _egg(rng: np.random.Generator, length: float) -> list[_Layer]:
    r = length / 2
    ry = r * rng.uniform(0.8, 1.0)
    shell = _Layer(
        rng.uniform(0.06, 0.18),
        [_ellipse(r, 0, r, ry, 32)],
        edge=rng.uniform(0.3, 0.5),
        edge_width=max(1.0, 0.1 * r),
    )
    embryo = _Layer(rng.uniform(0.1, 0.3), texture=0.3)
    k = rng.uniform(0.5, 0.8)
    embryo.fills.append(_ellipse(r + rng.uniform(-0.1, 0.1) * r, 0, k * r, k * ry, 24))
    return [shell, embryo]


def _diatom_chain(rng: np.random.Generator, length: float) -> list[_Layer]:
    """Chained cells, some with long setae like Chaetoceros."""
    cells = int(rng.integers(3, 11))
    pitch = length / cells
    cw = pitch * rng.uniform(0.7, 1.3) / 2
    frustule = _Layer(rng.uniform(0.08, 0.2), edge=rng.uniform(0.2, 0.35), edge_width=1.2)
    plastids = _Layer(rng.uniform(0.15, 0.3), texture=0.3)
    setae = _Layer(rng.uniform(0.2, 0.35))
    gap = rng.uniform(0.0, 0.25) * pitch
    spiny = rng.random() < 0.5
    for i in range(cells):
        x0, x1 = i * pitch + gap / 2, (i + 1) * pitch - gap / 2
        r = min(3.0, (x1 - x0) / 3)
        frustule.fills.append(
            np.array(
                [
                    [x0, -cw + r],
                    [x0 + r, -cw],
                    [x1 - r, -cw],
                    [x1, -cw + r],
                    [x1, cw - r],
                    [x1 - r, cw],
                    [x0 + r, cw],
                    [x0, cw - r],
                ]
            )
        )
        for _ in range(rng.integers(1, 3)):
            cx = rng.uniform(x0 + 0.3 * (x1 - x0), x1 - 0.3 * (x1 - x0))
            plastids.fills.append(
                _ellipse(cx, rng.uniform(-0.3, 0.3) * cw, 0.2 * pitch, 0.3 * cw, 12)
            )
        if spiny:
            for side in (-1, 1):
                angle = side * rng.uniform(0.7, 1.4) + (np.pi if rng.random() < 0.5 else 0)
                start = (x1 if angle < np.pi / 2 else x0, side * cw * 0.9)
                setae.lines.append(
                    (_curve(start, angle, rng.uniform(-0.3, 0.3), cw * rng.uniform(2, 5)), 1)
                )
    frustule.lines.append((np.array([[0.0, 0.0], [length, 0.0]]), 1))  # girdle: one chain
    return [setae, frustule, plastids]


def _marine_snow(rng: np.random.Generator, length: float) -> list[_Layer]:
    """A loose aggregate: irregular faint blob, dark inclusions, fibres sticking out."""
    r0 = length / 2
    theta = np.linspace(0.0, 2.0 * np.pi, 96, endpoint=False)
    wobble = sum(
        rng.normal(0.0, 0.35 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        for k in range(2, 9)
    )
    radius = r0 * np.clip(1.0 + wobble, 0.3, 1.6)
    stretch = rng.uniform(1.0, 2.0)
    blob = np.stack([radius * np.cos(theta) * stretch, radius * np.sin(theta)], 1) / stretch**0.5
    body = _Layer(rng.uniform(0.12, 0.3), [blob], edge=rng.uniform(0.05, 0.15), texture=0.6)
    core = _Layer(rng.uniform(0.1, 0.3), texture=0.6)
    core.fills.append(blob * rng.uniform(0.3, 0.7) + blob[rng.integers(len(theta))] * 0.3)
    bits = _Layer(rng.uniform(0.2, 0.5))
    for _ in range(rng.integers(4, 24)):
        k = rng.integers(len(theta))
        p = blob[k] * rng.uniform(0.0, 0.8)
        size = rng.uniform(1.0, max(1.2, 0.08 * r0))
        bits.fills.append(_ellipse(p[0], p[1], size, size * rng.uniform(0.5, 1.0), 10))
    fibres = _Layer(rng.uniform(0.2, 0.35))
    for _ in range(rng.integers(3, 16)):
        k = rng.integers(len(theta))
        heading = np.arctan2(blob[k, 1], blob[k, 0]) + rng.uniform(-0.8, 0.8)
        start = tuple(blob[k] * 0.95)
        fibres.lines.append(
            (_curve(start, heading, rng.uniform(-1, 1), r0 * rng.uniform(0.1, 0.5)), 1)
        )
    return [fibres, body, core, bits]


# Length ranges in pixels (at PIXELS_PER_MM) and how strongly a body may bend.
_KINDS: dict[str, tuple[Callable[..., list[_Layer]], tuple[float, float], float]] = {
    "chaetognath": (_chaetognath, (220.0, 1000.0), 0.3),
    "copepod": (_copepod, (70.0, 320.0), 0.1),
    "egg": (_egg, (14.0, 70.0), 0.0),
    "diatom_chain": (_diatom_chain, (40.0, 220.0), 0.6),
    "marine_snow": (_marine_snow, (25.0, 220.0), 0.0),
}


# --- rasterising ----------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cell: float) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: a coarse grid, upscaled, so it costs nothing."""
    gw, gh = max(2, int(width / cell)), max(2, int(height / cell))
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR) / 1.5


def _place_layers(layers: list[_Layer], angle: float, bend: float, length: float) -> np.ndarray:
    """Bend and turn every shape in place; returns their (x, y) bounds."""
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[c, s], [-s, c]])

    def move(points: np.ndarray) -> np.ndarray:
        pts = np.asarray(points, dtype=np.float64).copy()
        pts[:, 1] += bend * (pts[:, 0] - length / 2) ** 2 / max(length, 1.0)
        return pts @ turn

    for layer in layers:
        layer.fills = [move(p) for p in layer.fills]
        layer.lines = [(move(p), t) for p, t in layer.lines]
    points = np.concatenate([p for ly in layers for p in ly.fills + [q for q, _ in ly.lines]])
    return np.stack([points.min(0), points.max(0)])


def _draw_layer(layer: _Layer, shape: tuple[int, int], origin: np.ndarray) -> np.ndarray:
    canvas = np.zeros(shape, dtype=np.uint8)
    scale = 1 << _SHIFT
    for poly in layer.fills:  # one call each: fillPoly would XOR overlapping polygons
        pts = np.round((poly - origin) * scale).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 255, cv2.LINE_AA, shift=_SHIFT)
    for line, thickness in layer.lines:
        pts = np.round((line - origin) * scale).astype(np.int32)
        cv2.polylines(canvas, [pts], False, 255, thickness, cv2.LINE_AA, shift=_SHIFT)
    return canvas


def _render(rng: np.random.Generator, kind: str, length: float) -> Organism:
    make, _, bendiness = _KINDS[kind]
    layers = make(rng, length)
    bend = rng.uniform(-bendiness, bendiness)
    low, high = _place_layers(layers, rng.uniform(0, 2 * np.pi), bend, length)
    origin = np.floor(low) - 3
    shape = (int(np.ceil(high[1] - origin[1])) + 4, int(np.ceil(high[0] - origin[0])) + 4)
    mottle = _smooth_noise(rng, shape[1], shape[0], max(6.0, length / 12))
    clear = np.ones(shape, dtype=np.float32)  # transmittance
    for layer in layers:
        drawn = _draw_layer(layer, shape, origin)
        a = drawn.astype(np.float32) * (layer.opacity / 255)
        if layer.edge:
            inside = (drawn > 127).astype(np.uint8)
            depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
            a += drawn * (layer.edge / 255) * np.exp(-depth / layer.edge_width)
        if layer.texture:
            a *= 1 + layer.texture * mottle
        clear *= 1 - np.clip(a, 0.0, 0.95)
    alpha = cv2.GaussianBlur(1 - clear, (0, 0), 0.55)
    support = _largest_component(alpha > VISIBLE_OPACITY)
    alpha[~support] = 0.0
    return Organism(kind, alpha, support, np.zeros(2, dtype=int))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """One connected organism: a stray fleck cut off by the threshold is not part of it."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 2:
        return mask
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


# --- layout ---------------------------------------------------------------------------------


def _rim(support: np.ndarray) -> np.ndarray:
    """(x, y) of the support's outline pixels."""
    kernel = np.ones((3, 3), np.uint8)
    inner = cv2.erode(support.astype(np.uint8), kernel)
    ys, xs = np.nonzero(support & ~inner.astype(bool))
    if len(xs) == 0 and support.any():
        # erode reads beyond the array as organism, so a tiny organism that fills its box (a
        # small partner shrunk to 3x8 px) had no outline at all and the layout crashed; its
        # outline is then its pixels on the box's edge. (Only here: the usual outline stays
        # as it was, so every vignette already drawn is drawn the same.)
        inner = cv2.erode(np.pad(support, 1).astype(np.uint8), kernel)[1:-1, 1:-1]
        ys, xs = np.nonzero(support & ~inner.astype(bool))
    return np.stack([xs, ys], 1)


def _attach(rng: np.random.Generator, placed: list[Organism], new: Organism) -> None:
    """Move `new` so that it overlaps an outline pixel of a placed organism, mostly outside it."""
    anchor = placed[rng.integers(len(placed))]
    rim = _rim(anchor.support)
    contact = rim[rng.integers(len(rim))]
    centre = np.argwhere(anchor.support)[:, ::-1].mean(0)
    away = contact - centre
    away = away / (np.linalg.norm(away) + 1e-6)
    candidates = _rim(new.support)
    reach = candidates @ away
    # The new organism meets the contact with a pixel near its far side, so the two touch or
    # overlap a little; now and then deeper.
    cutoff = np.quantile(reach, rng.uniform(0.0, 0.3) ** 2)
    pick = candidates[reach <= cutoff]
    own = pick[rng.integers(len(pick))]
    new.offset = anchor.offset + contact - own


def _labels(organisms: list[Organism]) -> tuple[np.ndarray, np.ndarray]:
    """Index of the organism owning each layout pixel (-1: none), and the layout's origin."""
    low = np.min([o.offset for o in organisms], axis=0)
    high = np.max([o.offset + o.support.shape[::-1] for o in organisms], axis=0)
    owner = np.full((high[1] - low[1], high[0] - low[0]), -1, dtype=np.int8)
    for i, org in enumerate(organisms):  # later organisms are on top
        x, y = org.offset - low
        h, w = org.support.shape
        owner[y : y + h, x : x + w][org.support] = i
    return owner, low


def _acceptable(organisms: list[Organism]) -> bool:
    """Every organism clearly visible, and all of them one touching group."""
    owner, _ = _labels(organisms)
    areas = np.bincount(owner[owner >= 0].ravel(), minlength=len(organisms))
    for org, area in zip(organisms, areas, strict=True):
        if area < max(MIN_VISIBLE_PIXELS, MIN_VISIBLE_FRACTION * org.support.sum()):
            return False
    return _touching_group(owner, len(organisms))


def _touching_group(owner: np.ndarray, count: int) -> bool:
    kernel = np.ones((3, 3), np.uint8)
    grown = [cv2.dilate((owner == i).astype(np.uint8), kernel).astype(bool) for i in range(count)]
    reached, frontier = {0}, [0]
    while frontier:
        i = frontier.pop()
        for j in range(count):
            if j not in reached and (grown[i] & (owner == j)).any():
                reached.add(j)
                frontier.append(j)
    return len(reached) == count


def _layout(rng: np.random.Generator, organisms: list[Organism], tries: int = 30) -> bool:
    if not all(org.support.any() for org in organisms):
        return False  # a real organism shrunk to a few pixels can vanish: draw new ones
    placed = [organisms[0]]
    for org in organisms[1:]:
        for _ in range(tries):
            _attach(rng, placed, org)
            if _acceptable([*placed, org]):
                break
        else:
            return False
        placed.append(org)
    return True


# --- vignette -------------------------------------------------------------------------------


def _organisms(rng: np.random.Generator, count: int, scale: float) -> list[Organism]:
    kinds = rng.choice(len(ORGANISM_KINDS), size=count, p=_KIND_WEIGHTS / _KIND_WEIGHTS.sum())
    organisms = []
    for k in kinds:
        kind = ORGANISM_KINDS[k]
        lo, hi = _KINDS[kind][1]
        length = lo * (hi / lo) ** rng.uniform(0.0, 1.0)  # log-uniform: small ones are common
        organisms.append(_render(rng, kind, length * scale))
    return organisms


def _scale_bar(grey: np.ndarray) -> None:
    """The ZooScan bar: "1 mm" over a 2 px black line, bottom left."""
    height = grey.shape[0]
    grey[height - 6 : height - 4, 9 : 9 + PIXELS_PER_MM] = 0
    cv2.putText(grey, "1 mm", (11, height - 11), cv2.FONT_HERSHEY_PLAIN, 0.6, 0, 1, cv2.LINE_AA)


def _frame(
    rng: np.random.Generator, owner_shape: tuple[int, int], max_size: int
) -> tuple[int, int, int, int] | None:
    """Vignette width, height and where the layout's top-left lands, or None if too large."""
    ch, cw = owner_shape
    margin = rng.uniform(0.12, 0.25) * max(cw, ch) + 8
    width = max(int(cw + 2 * margin), PIXELS_PER_MM + 54)  # the bar must fit, with room
    height = int(ch + 2 * margin) + SCALE_BAR_ROWS
    if max(width, height) > max_size:
        return None
    x = (width - cw) // 2
    y = (height - SCALE_BAR_ROWS - ch) // 2
    return width, height, x, y


OrganismSource = Callable[[np.random.Generator, int, float], list[Organism]]


def vignette(
    rng: np.random.Generator,
    multiple: bool,
    max_size: int = 1400,
    source: OrganismSource | None = None,
) -> tuple[np.ndarray, list[SampleObject], dict]:
    """One vignette (RGB uint8), an "organism" object with an exact mask per organism, and
    metadata `{"multiple", "kinds", "scale_bar_rows"}`; objects are in drawing order.
    `source(rng, count, scale)` gives the organisms: drawn ones by default, or real ones cut
    out of vignettes (`samples.real_plankton`)."""
    source = source or _organisms
    count = int(rng.choice([2, 2, 2, 3, 3, 4])) if multiple else 1
    scale = 1.0
    for _ in range(_MAX_ATTEMPTS):
        organisms = source(rng, count, scale)
        if count > 1 and not _layout(rng, organisms):
            continue  # hard to fit these shapes together: draw new ones
        if count > 1:  # z-order independent of who was attached to whom
            organisms = [organisms[i] for i in rng.permutation(count)]
            if not _acceptable(organisms):
                organisms = sorted(organisms, key=lambda o: o.support.sum(), reverse=True)
                if not _acceptable(organisms):
                    continue
        owner, low = _labels(organisms)
        placement = _frame(rng, owner.shape, max_size)
        if placement is not None:
            break
        scale *= 0.75 * max_size / max(owner.shape)  # too big: the same kinds, smaller
    else:
        raise RuntimeError(f"no vignette fits in {max_size} px after {_MAX_ATTEMPTS} attempts")
    return _compose(rng, organisms, owner, low, placement)


def _compose(
    rng: np.random.Generator,
    organisms: list[Organism],
    owner: np.ndarray,
    low: np.ndarray,
    placement: tuple[int, int, int, int],
) -> tuple[np.ndarray, list[SampleObject], dict]:
    width, height, x0, y0 = placement
    clear = np.ones((height, width), dtype=np.float32)
    for org in organisms:
        x, y = org.offset - low + (x0, y0)
        h, w = org.alpha.shape
        clear[y : y + h, x : x + w] *= 1 - org.alpha
    backlight = 252.0 + 1.5 * _smooth_noise(rng, width, height, 80.0)
    clear *= backlight
    clear += _sensor_noise(rng, width, height)
    grey = np.clip(clear, 0, 255).astype(np.uint8)
    _scale_bar(grey)
    framed = np.full((height, width), -1, dtype=np.int8)
    framed[y0 : y0 + owner.shape[0], x0 : x0 + owner.shape[1]] = owner
    objects = [_annotation(framed == i) for i in range(len(organisms))]
    meta = {
        "multiple": len(organisms) > 1,
        "kinds": [o.kind for o in organisms],
        "scale_bar_rows": SCALE_BAR_ROWS,
    }
    return cv2.merge([grey, grey, grey]), objects, meta


def _sensor_noise(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Faint noise (plus rounding) from a tile: drawing a normal per pixel was most of the cost
    of a large vignette, and at 1.2 grey levels nobody sees the repeat."""
    tile = rng.standard_normal((_NOISE_TILE, _NOISE_TILE), dtype=np.float32) * 1.2 + 0.5
    reps = (-(-height // _NOISE_TILE), -(-width // _NOISE_TILE))
    return np.tile(tile, reps)[:height, :width]


def _annotation(mask: np.ndarray) -> SampleObject:
    xs, ys = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    box = (float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1))
    return SampleObject(label=PLANKTON_LABELS[0], xyxy=box, mask=mask)


def plankton_sample(
    seed: int,
    index: int,
    multiple_share: float = 0.45,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    max_size: int = 1400,
) -> PlanktonSample:
    """Vignette `index` of the stream for `seed`: it depends only on (seed, index), so worker
    processes can each make a share of a large training set."""
    rng = np.random.default_rng([seed, index])
    multiple = bool(rng.random() < multiple_share)
    made = vignette(rng, multiple, max_size)
    return vignette_sample(f"plankton_{index:05d}.jpg", split_for(index, fractions), *made)


def vignette_sample(
    name: str, split: str, image: np.ndarray, objects: list[SampleObject], meta: dict
) -> PlanktonSample:
    """A `PlanktonSample` of what `vignette` made."""
    return PlanktonSample(
        name,
        image,
        objects,
        split,
        multiple=meta["multiple"],
        kinds=tuple(meta["kinds"]),
        scale_bar_rows=meta["scale_bar_rows"],
    )


def generate_plankton(
    n: int,
    seed: int = 0,
    multiple_share: float = 0.45,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    max_size: int = 1400,
) -> Iterator[PlanktonSample]:
    """`n` vignettes; vignette i depends only on (seed, i), so any one can be regenerated alone."""
    for i in range(n):
        yield plankton_sample(seed, i, multiple_share, fractions, max_size)
