"""What to label next: the images whose correction teaches the model most, chosen by the
live model's uncertainty and spread over what the images show.

The rule, in two steps:

1. **Uncertainty of an image.** The detector runs with its threshold lowered to a floor
   (`candidate_floor`: 0.05, or half the threshold when that is lower), so it also returns
   the candidates it would drop. Each box's confidence c becomes a probability p that maps
   the floor to 0, the function's threshold to 0.5 and 1 to 1 (linear on each side), and
   the box counts by the binary entropy of p, in bits: 1 for a box exactly at the threshold
   (the annotator must decide it), 0 at the floor and at 1. The image's uncertainty is the
   sum over its boxes, so every box the annotator must judge counts, and an image full of
   candidates near the threshold ranks above one with a single doubtful box. An image with
   no candidate at all scores 0: nothing the model shows there needs checking.
2. **Diversity.** Each image also gets a cheap descriptor with no model to download: an
   8x8 colour thumbnail and a 4x4 grid of gradient-orientation histograms, each part scaled
   to unit length. Picks are greedy: each time, the image with the largest uncertainty x
   novelty, where novelty is (d / s)², capped at 1: d is the distance to the nearest image
   already picked, s half the typical distance between two images (the median over up to
   500 of them). A clearly different image competes on uncertainty alone; a near copy of
   one already picked (the next frame of a video, a burst of stills) keeps almost none of
   its uncertainty, as correcting its twin already taught the model most of what it holds,
   and it comes after the confident images of new scenes. Ties (images with no
   uncertainty, once the uncertain ones run out) go to the more novel image.

`next_images` writes the picks, most useful first, to `next.csv`; `create_labelling_task`
makes them a CVAT task through cvat-sdk, in the same order.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from imagine_assist.errors import UserError
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.image_files import list_images, none_could_be_read
from imagine_assist.images import read_image, readable_name

log = logging.getLogger(__name__)

FLOOR = 0.05  # candidates below this are noise even for a poor model
NOVELTY_SHARE = 0.5  # an image this share of the typical distance away counts as new
TYPICAL_DISTANCE_SAMPLE = 500  # images sampled for the typical distance (500² / 2 pairs)
THUMBNAIL_SIDE = 8
GRADIENT_CELLS = 4
ORIENTATION_BINS = 8
LIST_NAME = "next.csv"
LIST_COLUMNS = ["rank", "image", "uncertainty", "candidates", "boxes", "novelty"]


@dataclass
class ImageScore:
    """One image as `next` sees it: how unsure the model is there, and what it looks like."""

    path: Path
    uncertainty: float
    candidates: int  # boxes between the floor and the threshold: what the model would drop
    boxes: int  # boxes at or above the threshold: what it would pre-annotate
    descriptor: np.ndarray
    novelty: float = 1.0  # set when picked: 1 is nothing like an earlier pick, 0 a copy


@dataclass
class NextReport:
    picks: list[ImageScore]
    scored: int
    list_path: Path
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def candidate_floor(threshold: float) -> float:
    return min(FLOOR, threshold / 2)


def box_uncertainty(confidence: np.ndarray, threshold: float, floor: float) -> np.ndarray:
    """Binary entropy (bits) of each box's confidence, rescaled so the threshold is 0.5."""
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), floor, 1.0)
    below = 0.5 * (confidence - floor) / max(threshold - floor, 1e-9)
    above = 0.5 + 0.5 * (confidence - threshold) / max(1.0 - threshold, 1e-9)
    p = np.clip(np.where(confidence < threshold, below, above), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.nan_to_num(entropy, nan=0.0)  # p of exactly 0 or 1: certain


def image_descriptor(image: np.ndarray) -> np.ndarray:
    """Layout and colour (a thumbnail) with texture and edges (gradient orientations per
    cell), each of unit length, so neither outweighs the other and exposure matters less."""
    side = THUMBNAIL_SIDE * GRADIENT_CELLS
    small = cv2.resize(image[..., :3], (side, side), interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32) / 255.0
    colour = cv2.resize(small, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), interpolation=cv2.INTER_AREA)
    grey = small @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    magnitude, angle = cv2.cartToPolar(
        cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    )
    # an edge and its reverse are the same edge: orientations over half a turn
    bins = (np.mod(angle, np.pi) / np.pi * ORIENTATION_BINS).astype(int) % ORIENTATION_BINS
    cell = side // GRADIENT_CELLS
    cell_index = (np.arange(side) // cell)[:, None] * GRADIENT_CELLS + np.arange(side) // cell
    gradients = np.zeros((GRADIENT_CELLS**2, ORIENTATION_BINS), dtype=np.float64)
    np.add.at(gradients, (cell_index.ravel(), bins.ravel()), magnitude.ravel())
    parts = [colour.ravel().astype(np.float64), gradients.ravel()]
    return np.concatenate([part / (np.linalg.norm(part) or 1.0) for part in parts])


def score_image(
    function: DetectorFunction, image: np.ndarray, threshold: float, floor: float, path: Path
) -> ImageScore:
    detections = function.detect(image, floor)
    confidence = np.asarray(detections.confidence if len(detections) else [], dtype=np.float64)
    return ImageScore(
        path,
        float(box_uncertainty(confidence, threshold, floor).sum()),
        int((confidence < threshold).sum()),
        int((confidence >= threshold).sum()),
        image_descriptor(image),
    )


def score_images(
    function: DetectorFunction,
    paths: Sequence[Path],
    threshold: float | None = None,
    skipped: list[tuple[Path, str]] | None = None,
) -> list[ImageScore]:
    """Every readable image scored; one that cannot be read is logged and, when `skipped`
    is given, added to it with its reason (one bad file must not cost the others)."""
    threshold = function.spec.check_threshold(threshold)
    floor = candidate_floor(threshold)
    scores = []
    for path in tqdm(paths, desc=f"{function.spec.id}: uncertainty", unit="image"):
        try:
            image = read_image(path, max_pixels=function.spec.max_image_pixels)
            function.spec.check_image_size(image.shape[1], image.shape[0], readable_name(path))
        except UserError as error:
            log.warning("skipped %s", error)
            if skipped is not None:
                skipped.append((path, str(error)))
            continue
        scores.append(score_image(function, image, threshold, floor, path))
    return scores


def typical_distance(descriptors: np.ndarray) -> float:
    """The largest distance between two images, from a fixed sample of at most
    TYPICAL_DISTANCE_SAMPLE of them (the same images give the same answer): how far apart
    two different scenes of this folder can be. Not the median, nor the mean: in a folder
    that is mostly one burst of near copies (frames pulled from a video), most pairs are
    copies, both go to 0, and every copy would count as new. The descriptors are bounded,
    so one odd image cannot stretch it far."""
    if len(descriptors) > TYPICAL_DISTANCE_SAMPLE:
        chosen = np.random.default_rng(0).choice(
            len(descriptors), TYPICAL_DISTANCE_SAMPLE, replace=False
        )
        descriptors = descriptors[chosen]
    if len(descriptors) < 2:
        return 0.0
    squared = (descriptors**2).sum(axis=1)
    gram = descriptors @ descriptors.T
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * gram, 0.0))
    return float(np.max(distances[np.triu_indices(len(descriptors), k=1)]))


def choose(scores: Sequence[ImageScore], n: int) -> list[ImageScore]:
    """Up to `n` images, most useful first, by the module's rule: greedy on uncertainty x
    novelty. Each pick's `novelty` says how new it was when picked."""
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if not scores:
        return []
    descriptors = np.stack([score.descriptor for score in scores])
    uncertainty = np.array([score.uncertainty for score in scores])
    scale = NOVELTY_SHARE * typical_distance(descriptors)
    nearest_pick = np.full(len(scores), np.inf)
    available = np.ones(len(scores), dtype=bool)
    picks = []
    for _ in range(min(n, len(scores))):
        if scale <= 0:  # every image alike: uncertainty alone decides
            novelty = np.ones(len(scores))
        else:
            novelty = np.minimum(1.0, nearest_pick / scale) ** 2
        value = np.where(available, uncertainty * novelty, -np.inf)
        best = np.flatnonzero(value == value.max())
        index = int(best[np.argmax(novelty[best])])  # first of the most novel among ties
        available[index] = False
        picks.append(scores[index])
        scores[index].novelty = float(novelty[index])
        nearest_pick = np.minimum(
            nearest_pick, np.linalg.norm(descriptors - descriptors[index], axis=1)
        )
    return picks


def write_list(picks: Sequence[ImageScore], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(LIST_COLUMNS)
        for rank, pick in enumerate(picks, start=1):
            writer.writerow(
                [
                    rank,
                    readable_name(pick.path.resolve()),  # valid in a CSV, whatever its bytes
                    f"{pick.uncertainty:.4f}",
                    pick.candidates,
                    pick.boxes,
                    f"{pick.novelty:.3f}",
                ]
            )
    return path


def next_images(
    function: DetectorFunction,
    source: str | Path,
    n: int,
    out_dir: str | Path,
    threshold: float | None = None,
) -> NextReport:
    """Score the images under `source` with `function`, choose `n`, write `next.csv`."""
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    paths = list_images(source)  # a UserError for a folder with no images
    skipped: list[tuple[Path, str]] = []
    scores = score_images(function, paths, threshold, skipped)
    if not scores:
        raise none_could_be_read(source, skipped)
    picks = choose(scores, n)
    list_path = write_list(picks, Path(out_dir) / LIST_NAME)
    return NextReport(picks, len(scores), list_path, skipped)


def task_spec(name: str, labels: Sequence[str], project_id: int | None = None):
    """cvat-sdk's TaskWriteRequest: in a project the task takes the project's labels (CVAT
    refuses labels of its own there), else the function's."""
    from cvat_sdk import models

    if project_id is not None:
        return models.TaskWriteRequest(name=name, project_id=project_id)
    return models.TaskWriteRequest(
        name=name, labels=[models.PatchedLabelRequest(name=label) for label in labels]
    )


def create_labelling_task(
    client,
    picks: Sequence[ImageScore],
    name: str,
    labels: Sequence[str],
    project_id: int | None = None,
):
    """A CVAT task holding the picked images in their rank order; `client` is a logged-in
    `cvat_sdk.Client`. Returns cvat-sdk's task."""
    from cvat_sdk.core.proxies.tasks import ResourceType

    if not picks:
        raise UserError("no images to put in a CVAT task")
    # CVAT keeps uploaded files by their name, so two picks with one name would clash.
    names = Counter(pick.path.name for pick in picks)
    clashes = sorted(name for name, count in names.items() if count > 1)
    if clashes:
        raise UserError(
            f"CVAT keeps uploaded images by file name, and {len(clashes)} name(s) appear "
            f"twice among the picks (e.g. {readable_name(clashes[0])}); rename them, or pick "
            "from one folder at a time"
        )
    return client.tasks.create_from_data(
        spec=task_spec(name, labels, project_id),
        resources=[pick.path for pick in picks],
        resource_type=ResourceType.LOCAL,
        # "predefined": CVAT keeps the upload order, so the frames follow the ranking
        data_params={"image_quality": 95, "sorting_method": "predefined"},
    )
