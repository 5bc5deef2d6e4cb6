"""Separating touching organisms in ZooScan vignettes: the classical baseline, the
ZooProcess separation-line image, and object-level scoring of any separator.

The baseline is what ZooProcess-era tools did: threshold the organism pixels, take the
distance transform, seed one marker per well-separated distance peak, and let a watershed
draw the borders. It needs no model, so it is the fallback and the yardstick.

A separation is one labelled image; each organism leaves it as a `BoxMask`, its mask cut to
its own box, so the memory a vignette needs grows with its pixels and not with its pixels
times its organisms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
from scipy import ndimage

from imagine_assist.errors import PayloadTooLarge

# ZooScan vignettes carry a "1 mm" label and bar in a strip at the bottom, this many rows
# high; it is cropped before the organisms are separated.
SCALE_BAR_ROWS = 22

# Vignettes are dark organisms on a white background; anything this much darker than the
# background's grey is organism.
FOREGROUND_MARGIN = 18

# Parts of the foreground closer than this many pixels are one blob: a leg or antenna the
# threshold cut off stays with its organism. At 6 px (the gap organisms are cut out with for
# training) singles lost parts: F1 on 100 composites of held-out real organisms 0.881 ->
# 0.866; at 12, 0.876; at 24, unchanged (tests/benchmarks, docs/plankton.md).
BLOB_GAP = 24

# The organisms' boxes together may cover at most this many times the vignette's pixels;
# more is no vignette (thousands of specks, or lines across the frame), and the answer's
# uncompressed masks (contract §2.1) would grow without bound.
MAX_BOX_SHARE = 8
# Where `Detections.data` carries `BoxMask`es instead of frame-sized `Detections.mask`.
BOX_MASKS = "box_mask"


@dataclass(frozen=True)
class BoxMask:
    """One object's mask inside its box: `crop` (bool) covers rows `y`.. and columns `x`.. of
    the image, and is tight around the object's pixels."""

    crop: np.ndarray
    x: int
    y: int

    @classmethod
    def around(cls, mask: np.ndarray) -> BoxMask:
        """A whole-frame mask cut to the box of its pixels (an empty one to a 0x0 crop)."""
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows) == 0:
            return cls(np.zeros((0, 0), bool), 0, 0)
        crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(bool)
        return cls(crop, int(cols[0]), int(rows[0]))

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        """The inclusive box (x1, y1, x2, y2), as CVAT's masks give it."""
        height, width = self.crop.shape
        return self.x, self.y, self.x + width - 1, self.y + height - 1

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.crop))

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask on a whole frame of `shape` (for scoring and small images only)."""
        mask = np.zeros(shape, bool)
        height, width = self.crop.shape
        mask[self.y : self.y + height, self.x : self.x + width] = self.crop
        return mask


def box_masks(
    labelled: np.ndarray, min_area: int = 1, origin: tuple[int, int] = (0, 0)
) -> list[BoxMask]:
    """One `BoxMask` per label of `labelled` (1, 2, ... in order; 0 is background) with at
    least `min_area` pixels, placed at `origin` (x, y) of `labelled` in the image. Refuses
    (`PayloadTooLarge`) when the boxes together cover more than `MAX_BOX_SHARE` times
    `labelled`, so the masks never take more memory than a few frames."""
    areas = np.bincount(labelled.ravel())
    masks, covered = [], 0
    budget = MAX_BOX_SHARE * labelled.size
    for label, box in enumerate(ndimage.find_objects(labelled), start=1):
        if box is None or areas[label] < min_area:
            continue
        covered += (box[0].stop - box[0].start) * (box[1].stop - box[1].start)
        if covered > budget:
            raise PayloadTooLarge(
                f"the objects' boxes cover more than {MAX_BOX_SHARE} times the image "
                f"({len(masks) + 1} objects so far): this is not a vignette to separate"
            )
        crop = labelled[box] == label
        masks.append(BoxMask(crop, origin[0] + box[1].start, origin[1] + box[0].start))
    return masks


def _full_masks(masks: Sequence[np.ndarray | BoxMask], shape: tuple[int, int]) -> list:
    return [m.full(shape) if isinstance(m, BoxMask) else m for m in masks]


def crop_scale_bar(image: np.ndarray, rows: int) -> np.ndarray:
    """Drop the bottom strip that holds the 1 mm scale bar, as the iMagine modules do."""
    if rows <= 0:
        return image
    if rows >= image.shape[0]:
        raise ValueError(f"cannot crop {rows} rows from a vignette {image.shape[0]} rows high")
    return image[: image.shape[0] - rows]


def _background_grey(grey: np.ndarray) -> float:
    """The 90th percentile grey level, from a histogram (a full sort was a tenth of the time)."""
    counts = cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel()
    return float(np.searchsorted(np.cumsum(counts), 0.9 * grey.size))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill every region of background that the border cannot reach."""
    outside = np.pad(mask.astype(np.uint8), 1)
    cv2.floodFill(outside, None, (0, 0), 2)
    return outside[1:-1, 1:-1] != 2


def organism_mask(image: np.ndarray, min_area: int = 30) -> np.ndarray:
    """Organism pixels: darker than the background, holes filled, specks dropped."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    mask = (grey < _background_grey(grey) - FOREGROUND_MARGIN).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    mask = fill_holes(mask).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if count <= 1:
        return mask.astype(bool)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[labels]


def organism_box_mask(image: np.ndarray, min_area: int = 30) -> BoxMask | None:
    """The vignette's organism as one object: every part of the foreground (a limb the
    threshold cut off is still the same organism); None on a blank vignette."""
    whole = BoxMask.around(organism_mask(image, min_area))
    return whole if whole.area else None


def watershed_split(
    mask: np.ndarray, min_peak_share: float = 0.4, min_area: int = 30
) -> list[np.ndarray]:
    """One whole-frame mask per organism from a foreground mask (see `watershed_labels`)."""
    return [
        part.full(mask.shape)
        for part in box_masks(watershed_labels(mask, min_peak_share), min_area)
    ]


def watershed_labels(mask: np.ndarray, min_peak_share: float = 0.4) -> np.ndarray:
    """Organisms of a foreground mask as labels 1, 2, ... (int32), by distance-transform
    watershed.

    A marker is a peak of the (smoothed) distance transform that is the highest within
    its own thickness around it and at least `min_peak_share` of the thickest body part:
    thin limbs, antennae and bumps on one body then do not become organisms. Without two
    markers, each connected part is an organism."""
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    smooth = cv2.GaussianBlur(distance, (0, 0), 1.5)
    top = float(smooth.max())
    size = max(7, int(2 * top) | 1)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=size)) & (smooth >= min_peak_share * top)
    markers, count = ndimage.label(ndimage.binary_dilation(peaks, iterations=2))
    if count <= 1:
        return ndimage.label(mask)[0].astype(np.int32)
    markers = markers.astype(np.int32)
    markers[~mask] = count + 1  # the background floods as one more basin
    depth = 255 - np.clip(smooth * 255 / top, 0, 255)
    cv2.watershed(cv2.cvtColor(depth.astype(np.uint8), cv2.COLOR_GRAY2BGR), markers)
    # every organism pixel the watershed left out (its border lines, and thin parts the
    # background basin reached first) goes to the nearest organism
    labelled = np.where(mask & (markers >= 1) & (markers <= count), markers, 0).astype(np.int32)
    fill_nearest(labelled, mask & (labelled == 0))
    return labelled


def fill_nearest(labelled: np.ndarray, missing: np.ndarray) -> None:
    """Set each `missing` pixel to the label of the nearest labelled pixel, in place."""
    if not missing.any() or not labelled.any():
        return
    # cv2 numbers the zero pixels of its input in row-major order and gives every pixel
    # the number of its nearest one: map those numbers back to our labels.
    unlabelled = (labelled == 0).astype(np.uint8)
    _, nearest = cv2.distanceTransformWithLabels(
        unlabelled, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    owners = np.concatenate([[0], labelled[labelled > 0]])
    labelled[missing] = owners[nearest[missing]]


def separate_touching(image: np.ndarray, min_area: int = 30) -> list[BoxMask]:
    """The classical separator, image in, one mask per organism out."""
    return box_masks(watershed_labels(organism_mask(image, min_area)), min_area)


class BoxLogits(Protocol):
    """A model's instance masks as logits inside each instance's box, most confident first:
    `boxes` (K, 4) int [x1, y1, x2, y2) and `crop(k)` the float logits of that box (a pixel
    is in the mask where > 0; outside its box, no instance claims a pixel)."""

    boxes: np.ndarray

    def crop(self, index: int) -> np.ndarray: ...


@dataclass(frozen=True)
class FrameLogits:
    """Whole-frame logits (K, H, W) seen as `BoxLogits`."""

    logits: np.ndarray

    @property
    def boxes(self) -> np.ndarray:
        height, width = self.logits.shape[1:]
        return np.tile(np.array([0, 0, width, height]), (len(self.logits), 1))

    def crop(self, index: int) -> np.ndarray:
        return self.logits[index]


def partition_foreground(
    logits: np.ndarray, foreground: np.ndarray, min_area: int = 30, duplicate_share: float = 0.6
) -> list[np.ndarray]:
    """`partition_instances` for whole-frame logits (K, H, W), as whole-frame masks."""
    parts = partition_instances(FrameLogits(logits), foreground, min_area, duplicate_share)
    return [part.full(foreground.shape) for part in parts]


def partition_instances(
    instances: BoxLogits,
    foreground: np.ndarray,
    min_area: int = 30,
    duplicate_share: float = 0.6,
) -> list[BoxMask]:
    """Turn a model's instance masks, most confident first, into disjoint organism masks
    that cover the foreground exactly.

    The model decides how many organisms there are and roughly where each lies; the
    image's own foreground decides which pixels are organism. An instance mostly inside
    a more confident one is a duplicate. A foreground pixel goes to the instance most sure
    of it, else to the nearest instance; a foreground blob no instance reached becomes an
    organism of its own, so nothing the model missed is lost.

    Instances are read one at a time and only inside their boxes: what is kept is one
    best-logit frame, one label frame and the kept instances' claims, each in its box."""
    if not foreground.any():
        return []
    # work inside the foreground's box: vignettes are mostly white margin
    rows, cols = np.flatnonzero(foreground.any(1)), np.flatnonzero(foreground.any(0))
    top, left = int(rows[0]), int(cols[0])
    inside = foreground[top : rows[-1] + 1, left : cols[-1] + 1]
    height, width = inside.shape
    best = np.zeros(inside.shape, np.float32)  # the highest logit > 0 so far
    labelled = np.zeros(inside.shape, np.int32)
    kept: list[tuple[np.ndarray, int, int]] = []  # each kept claim, at its (x, y) in `inside`
    for index, (x1, y1, x2, y2) in enumerate(np.asarray(instances.boxes, dtype=int)):
        # the instance's box within the foreground's box
        bx1, by1 = max(x1 - left, 0), max(y1 - top, 0)
        bx2, by2 = min(x2 - left, width), min(y2 - top, height)
        if bx2 <= bx1 or by2 <= by1:
            continue
        logits = instances.crop(index)[
            by1 + top - y1 : by2 + top - y1, bx1 + left - x1 : bx2 + left - x1
        ]
        claim = logits > 0
        area = int(np.count_nonzero(claim))
        if area == 0:
            continue
        if any(_overlap(claim, bx1, by1, *other) > duplicate_share * area for other in kept):
            continue
        kept.append((claim, bx1, by1))
        # the first instance with the highest logit wins a pixel, as an argmax would
        region = (slice(by1, by2), slice(bx1, bx2))
        wins = logits > best[region]
        best[region][wins] = logits[wins]
        labelled[region][wins] = len(kept)
    labelled[~inside] = 0
    next_label = len(kept) + 1
    del best, kept
    count, blobs = cv2.connectedComponents(inside.astype(np.uint8), connectivity=4)
    reached = np.zeros(count, bool)
    reached[blobs[labelled > 0]] = True
    missed = np.flatnonzero(~reached[1:]) + 1  # blobs the model missed: organisms of their own
    if len(missed):
        relabel = np.zeros(count, np.int32)
        relabel[missed] = next_label + np.arange(len(missed), dtype=np.int32)
        labelled = np.maximum(labelled, relabel[blobs])
    del blobs
    labelled = _one_blob_each(labelled, inside, next_label + len(missed))
    areas = np.bincount(labelled.ravel())
    labelled[(areas < min_area)[labelled]] = 0
    fill_nearest(labelled, inside & (labelled == 0))
    return box_masks(labelled, origin=(left, top))


def _one_blob_each(labelled: np.ndarray, inside: np.ndarray, next_label: int) -> np.ndarray:
    """Each organism within one blob of the foreground. An instance's mask is read over its
    whole box, which can reach a blob that does not touch the organism it found (another
    organism in the box's corner): those pixels go to the organism whose main blob that is,
    or, where no organism has its main part there, become an organism of their own. Parts
    closer than BLOB_GAP (a leg the threshold cut off) are one blob.

    One pass over the foreground's (organism, blob) pairs, counted sparsely: thousands of
    specks must not cost a frame-sized pass each, nor an organisms-by-blobs table."""
    gap = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (BLOB_GAP + 1, BLOB_GAP + 1))
    count, blobs = cv2.connectedComponents(cv2.dilate(inside.astype(np.uint8), gap), None, 8)
    if count <= 2:  # background and one blob
        return labelled
    where = (labelled > 0) & inside
    pairs, inverse, pixels = np.unique(
        labelled[where].astype(np.int64) * count + blobs[where],
        return_inverse=True,
        return_counts=True,
    )
    label, blob = pairs // count, pairs % count
    # each organism's main blob: its pair with the most pixels (sorted by label, then most)
    order = np.lexsort((-pixels, label))
    main = np.zeros(len(pairs), bool)
    main[order[np.r_[True, label[order][1:] != label[order][:-1]]]] = True
    if main.all():
        return labelled
    # each blob's owner: of the organisms whose main blob it is, the one with most pixels
    owner = {}
    for index in np.flatnonzero(main)[np.argsort(pixels[main], kind="stable")]:
        owner[int(blob[index])] = int(label[index])  # the largest comes last and stays
    new_label = label.copy()
    unowned: dict[int, int] = {}  # blob -> the organism its stray parts become
    for index in np.flatnonzero(~main):
        where_to = owner.get(int(blob[index]))
        if where_to is None:
            where_to = unowned.setdefault(int(blob[index]), next_label + len(unowned))
        new_label[index] = where_to
    labelled = labelled.copy()
    labelled[where] = new_label[inverse.ravel()]
    return labelled


def _overlap(claim: np.ndarray, x: int, y: int, other: np.ndarray, ox: int, oy: int) -> int:
    """Pixels two box-local claims share, the first at (x, y), the other at (ox, oy)."""
    x1, y1 = max(x, ox), max(y, oy)
    x2 = min(x + claim.shape[1], ox + other.shape[1])
    y2 = min(y + claim.shape[0], oy + other.shape[0])
    if x2 <= x1 or y2 <= y1:
        return 0
    mine = claim[y1 - y : y2 - y, x1 - x : x2 - x]
    theirs = other[y1 - oy : y2 - oy, x1 - ox : x2 - ox]
    return int(np.count_nonzero(mine & theirs))


def separation_lines(masks: Sequence[np.ndarray | BoxMask], shape: tuple[int, int]) -> np.ndarray:
    """ZooProcess's separation image: 255 where the cut between two organisms runs."""
    labelled = np.zeros(shape, np.int32)
    for index, region in enumerate(masks, start=1):
        if isinstance(region, BoxMask):
            height, width = region.crop.shape
            labelled[region.y : region.y + height, region.x : region.x + width][region.crop] = index
        else:
            labelled[region] = index
    lines = np.zeros(shape, np.uint8)
    for dy, dx in ((0, 1), (1, 0)):
        a = labelled[: shape[0] - dy, : shape[1] - dx]
        b = labelled[dy:, dx:]
        cut = (a != b) & (a > 0) & (b > 0)
        lines[: shape[0] - dy, : shape[1] - dx][cut] = 255
    return lines


def score_separation(
    predicted: Sequence[np.ndarray | BoxMask], truth: list[np.ndarray], iou: float = 0.5
) -> dict[str, int]:
    """Object-level matches at an IoU, plus over-splits (a true organism cut into several
    predicted ones) and under-splits (a predicted organism spanning several true ones).
    A predicted part counts for a true organism when most of it lies inside that one."""
    if truth:
        predicted = _full_masks(predicted, truth[0].shape)
    if truth and predicted:
        inter = np.array([[np.logical_and(p, t).sum() for t in truth] for p in predicted])
        areas_p = np.array([p.sum() for p in predicted])[:, None]
        areas_t = np.array([t.sum() for t in truth])[None, :]
        ious = inter / np.maximum(areas_p + areas_t - inter, 1)
    else:
        inter = ious = np.zeros((len(predicted), len(truth)))
        areas_p = np.zeros((len(predicted), 1))
        areas_t = np.zeros((1, len(truth)))
    matched_p, matched_t = set(), set()
    pairs = zip(*np.nonzero(ious >= iou), strict=True)
    for p, t in sorted(pairs, key=lambda pt: -ious[pt]):
        if p not in matched_p and t not in matched_t:
            matched_p.add(p)
            matched_t.add(t)
    mostly_inside = inter >= 0.5 * np.maximum(areas_p, 1)  # pred p lies mostly in truth t
    covers = inter >= 0.5 * np.maximum(areas_t, 1)  # pred p covers most of truth t
    return {
        "tp": len(matched_t),
        "fp": len(predicted) - len(matched_p),
        "fn": len(truth) - len(matched_t),
        "over_split": int((mostly_inside.sum(axis=0) >= 2).sum()),
        "under_split": int((covers.sum(axis=1) >= 2).sum()),
        "truth": len(truth),
        "predicted": len(predicted),
    }


def summarise(scores: list[dict[str, int]]) -> dict[str, float]:
    total = {key: sum(s[key] for s in scores) for key in scores[0]} if scores else {}
    if not total:
        return {}
    precision = total["tp"] / max(total["tp"] + total["fp"], 1)
    recall = total["tp"] / max(total["tp"] + total["fn"], 1)
    return {
        "f1": 2 * precision * recall / max(precision + recall, 1e-9),
        "precision": precision,
        "recall": recall,
        "over_split_rate": total["over_split"] / max(total["truth"], 1),
        "under_split_rate": total["under_split"] / max(total["predicted"], 1),
    }
