"""Training vignettes made of real organisms: cut out of real ZooScan single vignettes, and
composed into multiples with exact masks.

A real single vignette is a near-white frame with one dark organism. Its transmittance
(grey / background) is exactly what `samples.plankton` composes with: organisms on a light
table multiply their transmittances, so two cut-outs laid over each other look as two real
organisms touching on the scanner would, and the pixel each one darkens is known. The
layout, the scanner's backlight and noise and the scale bar are those of the synthetic
vignettes (`samples.plankton.vignette`); only the organisms are real.

Cutting out: the scale-bar strip is found and dropped, the foreground is the vignette's own
threshold (`models.separate.organism_mask`), and the organism is its largest part together
with every part within a few pixels of it (appendages the threshold broke off). Organisms
that touch the vignette's edge were cut by ZooProcess and are left out.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from imagine_assist.models.scale_bar import scale_bar_rows
from imagine_assist.models.separate import crop_scale_bar, organism_mask
from imagine_assist.samples.base import SampleObject, split_for
from imagine_assist.samples.plankton import Organism, PlanktonSample, vignette, vignette_sample

APPENDAGE_REACH = 6  # px: parts this close to the body are the same organism
MIN_ORGANISM_PIXELS = 150
SCALE_RANGE = (0.6, 1.25)  # how much a cut-out may be resized in a composite
SMALL_PARTNER_SHARE = 0.5  # of the second and further organisms of a multiple, by default
SMALL_PARTNER_SIDE = (0.15, 0.45)  # their longest side, as a share of the first's
FIBRE_LENGTH = (0.5, 1.5)  # a fibre's length, as a share of the first organism's longest side
FIBRE_WIDTH = (0.015, 0.07)  # its width, likewise (at least 2 px)
FIBRE_OPACITY = (0.15, 0.6)


def cut_organism(image: np.ndarray, name: str = "real") -> Organism | None:
    """The one organism of a single vignette as an `Organism` (its own opacity and support),
    or None when there is none, it is too small, or it touches the vignette's edge."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    grey = crop_scale_bar(grey, scale_bar_rows(grey))
    foreground = organism_mask(grey)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground.astype(np.uint8), 8)
    if count <= 1:
        return None
    body = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    reach = cv2.dilate(
        body.astype(np.uint8), np.ones((2 * APPENDAGE_REACH + 1,) * 2, np.uint8)
    ).astype(bool)
    near = np.unique(labels[reach & foreground])
    support = np.isin(labels, near[near > 0])
    if support.sum() < MIN_ORGANISM_PIXELS:
        return None
    ys, xs = np.nonzero(support)
    height, width = grey.shape
    if ys.min() == 0 or xs.min() == 0 or ys.max() == height - 1 or xs.max() == width - 1:
        return None
    background = float(np.percentile(grey[~foreground], 50)) if (~foreground).any() else 250.0
    alpha = np.clip(1.0 - grey.astype(np.float32) / max(background, 1.0), 0.0, 0.97)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    alpha, support = alpha[top:bottom, left:right], support[top:bottom, left:right]
    # A pixel of the organism is one it darkens, and it darkens no pixel outside it.
    support &= alpha > 0.01
    alpha = np.where(support, alpha, 0.0).astype(np.float32)
    return Organism(name, np.pad(alpha, 2), np.pad(support, 2), np.zeros(2, dtype=int))


def _transformed(
    rng: np.random.Generator,
    organism: Organism,
    scale: float,
    jitter: tuple[float, float] = SCALE_RANGE,
) -> Organism:
    """The organism turned, maybe mirrored, and resized by `scale` times a factor drawn from
    `jitter`: on the scanner it lies any way."""
    alpha, support = organism.alpha, organism.support
    turns = int(rng.integers(4))
    alpha, support = np.rot90(alpha, turns), np.rot90(support, turns)
    if rng.random() < 0.5:
        alpha, support = alpha[:, ::-1], support[:, ::-1]
    factor = scale * rng.uniform(*jitter)
    size = (max(3, round(alpha.shape[1] * factor)), max(3, round(alpha.shape[0] * factor)))
    alpha = cv2.resize(np.ascontiguousarray(alpha), size, interpolation=cv2.INTER_AREA)
    support = cv2.resize(
        np.ascontiguousarray(support).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
    ).astype(bool)
    support &= alpha > 0.01
    alpha = np.where(support, alpha, 0.0).astype(np.float32)
    return Organism(organism.kind, alpha, support, np.zeros(2, dtype=int))


def fibre(rng: np.random.Generator, length: float, width: float) -> Organism:
    """A fibre or a rod: a thin, gently curved stroke of even opacity. Many real multiples
    are an organism with one stuck to it, and no cut-out organism looks like one."""
    steps = max(4, int(length / 6))
    angles = rng.uniform(0, 2 * np.pi) + rng.uniform(-1.2, 1.2) * np.linspace(0.0, 1.0, steps)
    points = np.cumsum(np.stack([np.cos(angles), np.sin(angles)], 1) * (length / steps), axis=0)
    thickness = max(2, round(width))
    origin = points.min(0) - thickness - 2
    shape = np.ceil(points.max(0) - origin + thickness + 2).astype(int)
    canvas = np.zeros((shape[1], shape[0]), np.uint8)
    line = np.round((points - origin) * 16).astype(np.int32)
    cv2.polylines(canvas, [line], False, 255, thickness, cv2.LINE_AA, shift=4)
    opacity = rng.uniform(*FIBRE_OPACITY)
    alpha = cv2.GaussianBlur(canvas.astype(np.float32) * (opacity / 255), (0, 0), 0.7)
    support = alpha > 0.01
    alpha = np.where(support, alpha, 0.0).astype(np.float32)
    return Organism("fibre", alpha, support, np.zeros(2, dtype=int))


class RealOrganisms:
    """An organism source for `samples.plankton.vignette`: real cut-outs, transformed, and
    now and then a fibre as a partner."""

    def __init__(
        self,
        organisms: Sequence[Organism],
        small_partner_share: float = SMALL_PARTNER_SHARE,
        fibre_partner_share: float = 0.0,
    ) -> None:
        if not organisms:
            raise ValueError("no real organisms to compose vignettes from")
        self.organisms = list(organisms)
        self.small_partner_share = small_partner_share
        self.fibre_partner_share = fibre_partner_share

    def __call__(self, rng: np.random.Generator, count: int, scale: float) -> list[Organism]:
        picks = rng.choice(len(self.organisms), size=count, replace=count > len(self.organisms))
        placed = [_transformed(rng, self.organisms[picks[0]], scale)]
        first = max(placed[0].support.shape)
        for i in picks[1:]:
            # No draw without fibres, as below: the streams of earlier recipes stay the same.
            if self.fibre_partner_share and rng.random() < self.fibre_partner_share:
                length = rng.uniform(*FIBRE_LENGTH) * first
                placed.append(fibre(rng, length, rng.uniform(*FIBRE_WIDTH) * first))
                continue
            organism = _transformed(rng, self.organisms[i], scale)
            # No draw at all without small partners: the stream stays that of the recipe
            # the bundled classifier was trained with.
            if self.small_partner_share and rng.random() < self.small_partner_share:
                # Most real multiples are an organism with something small stuck to it: a
                # particle, a flake, a short fibre. Make this one that small beside the first.
                shrink = rng.uniform(*SMALL_PARTNER_SIDE) * first / max(organism.support.shape)
                organism = _transformed(rng, organism, shrink, (1.0, 1.0))
            placed.append(organism)
        return placed


def organism_split(name: str, held_out_share: float = 0.15) -> str:
    """ "train" or "held_out" for a cut-out, by a hash of its vignette's name: composites to
    test the separator are made only of organisms it never trained on."""
    digest = hashlib.sha256(name.encode()).digest()
    return "held_out" if digest[0] / 256 < held_out_share else "train"


@functools.lru_cache(maxsize=4)
def load_organisms(folder: str, names: tuple[str, ...]) -> tuple[Organism, ...]:
    """Cut-outs of the named single vignettes in `folder` (cached per process: worker
    processes each load them once)."""
    organisms = []
    for name in names:
        bgr = cv2.imread(str(Path(folder) / name), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        organism = cut_organism(bgr[:, :, ::-1], Path(name).stem)
        if organism is not None:
            organisms.append(organism)
    return tuple(organisms)


def real_composite_sample(
    seed: int,
    index: int,
    organisms: Sequence[Organism],
    multiple_share: float = 0.5,
    fractions: Sequence[float] = (0.85, 0.15, 0.0),
    max_size: int = 1400,
    small_partner_share: float = SMALL_PARTNER_SHARE,
    fibre_partner_share: float = 0.0,
) -> PlanktonSample:
    """Vignette `index` of the stream for `seed`, made of real organisms: a multiple of 2-4
    touching ones (a share of the partners small beside the first, a share of them fibres),
    or one alone, turned and resized."""
    rng = np.random.default_rng([seed, index, 7])
    multiple = bool(rng.random() < multiple_share)
    source = RealOrganisms(organisms, small_partner_share, fibre_partner_share)
    made = vignette(rng, multiple, max_size, source=source)
    return vignette_sample(f"real_composite_{index:05d}.jpg", split_for(index, fractions), *made)


def real_single_sample(path: Path, split: str) -> PlanktonSample | None:
    """A real single vignette as it is, its whole foreground one organism."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    image = np.ascontiguousarray(bgr[:, :, ::-1])
    rows = scale_bar_rows(image)
    mask = organism_mask(crop_scale_bar(image, rows))
    if not mask.any():
        return None
    full = np.zeros(image.shape[:2], bool)
    full[: mask.shape[0]] = mask
    ys, xs = np.nonzero(full)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return PlanktonSample(
        f"real_single_{path.stem}.jpg",
        image,
        [SampleObject("organism", box, full)],
        split,
        multiple=False,
        kinds=("real",),
        scale_bar_rows=rows,
    )
