"""Separating touching organisms in ZooScan vignettes: the classical baseline, the
ZooProcess separation-line image, and object-level scoring of any separator.

The baseline is what ZooProcess-era tools did: threshold the organism pixels, take the
distance transform, seed one marker per well-separated distance peak, and let a watershed
draw the borders. It needs no model, so it is the fallback and the yardstick.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

# ZooScan vignettes carry a "1 mm" label and bar in a strip at the bottom, this many rows
# high; it is cropped before the organisms are separated.
SCALE_BAR_ROWS = 22

# Vignettes are dark organisms on a white background; anything this much darker than the
# background's grey is organism.
FOREGROUND_MARGIN = 18


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


def watershed_split(
    mask: np.ndarray, min_peak_share: float = 0.4, min_area: int = 30
) -> list[np.ndarray]:
    """One mask per organism from a foreground mask, by distance-transform watershed.

    A marker is a peak of the (smoothed) distance transform that is the highest within
    its own thickness around it and at least `min_peak_share` of the thickest body part:
    thin limbs, antennae and bumps on one body then do not become organisms."""
    if not mask.any():
        return []
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    smooth = cv2.GaussianBlur(distance, (0, 0), 1.5)
    top = float(smooth.max())
    size = max(7, int(2 * top) | 1)
    peaks = (smooth == ndimage.maximum_filter(smooth, size=size)) & (smooth >= min_peak_share * top)
    markers, count = ndimage.label(ndimage.binary_dilation(peaks, iterations=2))
    if count <= 1:
        return _components(mask, min_area)
    markers = markers.astype(np.int32)
    markers[~mask] = count + 1  # the background floods as one more basin
    depth = 255 - np.clip(smooth * 255 / top, 0, 255)
    cv2.watershed(cv2.cvtColor(depth.astype(np.uint8), cv2.COLOR_GRAY2BGR), markers)
    masks = [(markers == label) & mask for label in range(1, count + 1)]
    return [m for m in _merge_borders(masks, mask) if m.sum() >= min_area]


def _merge_borders(masks: list[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    """Give every organism pixel the watershed left out (its border lines, and thin parts
    the background basin reached first) to the nearest organism."""
    labelled = np.zeros(mask.shape, np.int32)
    for index, region in enumerate(masks, start=1):
        labelled[region] = index
    fill_nearest(labelled, mask & (labelled == 0))
    return [labelled == index for index in range(1, len(masks) + 1)]


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


def _components(mask: np.ndarray, min_area: int) -> list[np.ndarray]:
    labels, count = ndimage.label(mask)
    parts = [labels == index for index in range(1, count + 1)]
    return [part for part in parts if part.sum() >= min_area]


def separate_touching(image: np.ndarray) -> list[np.ndarray]:
    """The classical separator, image in, one mask per organism out."""
    return watershed_split(organism_mask(image))


def partition_foreground(
    logits: np.ndarray,
    foreground: np.ndarray,
    min_area: int = 30,
    duplicate_share: float = 0.6,
) -> list[np.ndarray]:
    """Turn a model's instance mask logits (K, H, W), most confident first, into disjoint
    organism masks that cover the foreground exactly.

    The model decides how many organisms there are and roughly where each lies; the
    image's own foreground decides which pixels are organism. An instance mostly inside
    a more confident one is a duplicate. A foreground pixel goes to the instance most sure
    of it, else to the nearest instance; a foreground blob no instance reached becomes an
    organism of its own, so nothing the model missed is lost."""
    if not foreground.any():
        return []
    # work inside the foreground's box: vignettes are mostly white margin
    rows, cols = np.flatnonzero(foreground.any(1)), np.flatnonzero(foreground.any(0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    inside = foreground[box]
    claims = logits[:, box[0], box[1]] > 0
    kept: list[int] = []
    for index, claim in enumerate(claims):
        area = int(claim.sum())
        if area == 0:
            continue
        if any(np.logical_and(claim, claims[k]).sum() > duplicate_share * area for k in kept):
            continue
        kept.append(index)
    labelled = np.zeros(inside.shape, np.int32)
    if kept:
        chosen = logits[kept][:, box[0], box[1]]
        best = chosen.argmax(axis=0)
        sure = (chosen.max(axis=0) > 0) & inside
        labelled[sure] = best[sure] + 1
    count, blobs = cv2.connectedComponents(inside.astype(np.uint8), connectivity=4)
    reached = np.zeros(count, bool)
    reached[blobs[labelled > 0]] = True
    next_label = len(kept) + 1
    for blob in np.flatnonzero(~reached[1:]) + 1:
        labelled[blobs == blob] = next_label  # a blob the model missed: an organism of its own
        next_label += 1
    areas = np.bincount(labelled.ravel(), minlength=next_label)
    labelled[(areas < min_area)[labelled]] = 0
    fill_nearest(labelled, inside & (labelled == 0))
    masks = []
    for label in np.flatnonzero(np.bincount(labelled.ravel())[1:]) + 1:
        full = np.zeros(foreground.shape, bool)
        full[box] = labelled == label
        masks.append(full)
    return masks


def separation_lines(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """ZooProcess's separation image: 255 where the cut between two organisms runs."""
    labelled = np.zeros(shape, np.int32)
    for index, region in enumerate(masks, start=1):
        labelled[region] = index
    lines = np.zeros(shape, np.uint8)
    for dy, dx in ((0, 1), (1, 0)):
        a = labelled[: shape[0] - dy, : shape[1] - dx]
        b = labelled[dy:, dx:]
        cut = (a != b) & (a > 0) & (b > 0)
        lines[: shape[0] - dy, : shape[1] - dx][cut] = 255
    return lines


def score_separation(
    predicted: list[np.ndarray], truth: list[np.ndarray], iou: float = 0.5
) -> dict[str, int]:
    """Object-level matches at an IoU, plus over-splits (a true organism cut into several
    predicted ones) and under-splits (a predicted organism spanning several true ones).
    A predicted part counts for a true organism when most of it lies inside that one."""
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
