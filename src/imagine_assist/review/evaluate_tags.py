"""`imagine-assist evaluate --function plankton-separator`: how well the single/multiple tag
does on a user's own vignettes, sorted by eye into folders, before anyone trusts it.

    SOURCE/single/*.png      one organism each
    SOURCE/multiple/*.png    several organisms (what EcoTaxa wants split)
    SOURCE/<other>/...       e.g. unclear/: counted, left out of every figure

This is ultralytics' layout for a classification dataset, so a folder sorted for training a
classifier is evaluated as it is. Each vignette goes through the function as CVAT's
requests do (`SeparatorFunction.split`: scale bar found and cropped, the classifier's
P(multiple) decides the tag, only a multiple is cut). The figures are those of
`training.plankton_real` for the bundled models' own hand labels: precision and recall of
"multiple" at the served threshold, the share tagged multiple, and singles cut into several
objects (each one a made-up organism in EcoTaxa); plus the whole ranking (ROC AUC and
average precision of P(multiple)), a precision-recall plot with the served point, and
galleries of the singles most surely called multiple and the multiples least so.

A vignette that cannot be read is listed in summary.json and left out, with a warning; the
others are still evaluated.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imagine_assist.errors import BadRequest, UserError
from imagine_assist.functions.separator import MULTIPLE, SINGLE
from imagine_assist.image_files import IMAGE_SUFFIXES
from imagine_assist.images import read_image
from imagine_assist.review.evaluate import (
    GALLERY_SIZE,
    EvaluationSummary,
    gallery,
    served_point,
)
from imagine_assist.training.plankton_real import tag_scores

log = logging.getLogger(__name__)

TAGS = (SINGLE, MULTIPLE)


@dataclass(frozen=True)
class TagCall:
    """One vignette: what a person sorted it as, and what the function answered."""

    vignette: str  # path under the source folder
    truth: str  # single / multiple
    tag: str
    p_multiple: float | None  # None: no classifier, the tag is the organisms' count
    organisms: int
    boxes: list[list[float]]  # each organism's box, relative x, y, w, h (for the galleries)


def sorted_vignettes(root: Path) -> tuple[list[tuple[Path, str]], dict[str, int]]:
    """(image, single or multiple) for every image under root/single and root/multiple, and
    the count of images in each other folder (left out)."""
    if not root.is_dir() or not any((root / tag).is_dir() for tag in TAGS):
        raise UserError(
            f"{root} is not a folder with single/ or multiple/ in it: plankton-separator is "
            "evaluated on vignettes sorted by eye into single/ and multiple/ (other folders, "
            "such as unclear/, are left out)"
        )
    labelled, left_out = [], {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if folder.name in TAGS:
            labelled.extend((image, folder.name) for image in images)
        elif images:
            left_out[folder.name] = len(images)
    if not labelled:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UserError(f"no images ({suffixes}) in {root}/single or {root}/multiple")
    return labelled, left_out


def relative_boxes(xyxy: np.ndarray, width: int, height: int) -> list[list[float]]:
    """Organisms' inclusive pixel boxes (`BoxMask.xyxy`) as relative x, y, w, h."""
    return [
        [x1 / width, y1 / height, (x2 - x1 + 1) / width, (y2 - y1 + 1) / height]
        for x1, y1, x2, y2 in np.asarray(xyxy, float).reshape(-1, 4).tolist()
    ]


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """The chance that a positive outranks a negative (ties count half), from ranks
    (Mann-Whitney), so a folder of any size costs a sort; None without both kinds."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    positives, negatives = int(positive.sum()), int((~positive).sum())
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank (from 0) of each distinct score's first one
    rank = first[inverse] + (counts[inverse] - 1) / 2 + 1  # tied scores share their mean
    above = rank[positive].sum() - positives * (positives + 1) / 2
    return float(above / (positives * negatives))


def precision_recall(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision and recall of "score >= t" for each distinct score t, highest first."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], np.cumsum(positive[order])
    last = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))  # each score's last
    called = last + 1
    return ranked[last], hits[last] / called, hits[last] / max(int(positive.sum()), 1)


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Precision averaged over the recall it gains, threshold by threshold (scikit-learn's
    step rule, so tied scores enter together); None without a positive."""
    if not np.asarray(positive, bool).any():
        return None
    _, precision, recall = precision_recall(scores, positive)
    gained = np.diff(np.concatenate([[0.0], recall]))
    return float((gained * precision).sum())


def evaluate_tags(
    source: str | Path, function, out_dir: Path, threshold: float | None = None
) -> EvaluationSummary:
    """Evaluate `plankton-separator` (`functions.separator.SeparatorFunction`) on a folder of
    vignettes sorted into single/ and multiple/. `threshold` replaces the served P(multiple)
    threshold (the classifier's own, by default)."""
    root = Path(source)
    labelled, left_out = sorted_vignettes(root)
    if threshold is not None:
        function.multiple_threshold = threshold
    calls, unreadable = [], []
    for path, truth in tqdm(labelled, desc="tagging vignettes", unit="vignette"):
        name = str(path.relative_to(root))
        try:
            image = read_image(path)
            separation = function.split(image)  # refuses a vignette too small or too large
        except BadRequest as error:
            message = str(error)
            log.warning("left out: %s", message if name in message else f"{name}: {message}")
            unreadable.append(name)
            continue
        height, width = image.shape[:2]
        boxes = relative_boxes(separation.detections.xyxy, width, height)
        organisms = len(separation.detections)
        calls.append(TagCall(name, truth, separation.tag, separation.p_multiple, organisms, boxes))
    if not calls:
        raise UserError(f"none of the {len(labelled)} vignettes in {root} could be read")
    facts = tag_facts(calls, function)
    facts |= {"source": str(source), "left_out": left_out, "unreadable": unreadable}
    facts["calls"] = [asdict(call) for call in calls]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    path.write_text(json.dumps(facts, indent=2))
    return EvaluationSummary(path, facts, _plots(calls, facts, root, out_dir))


def _score(call: TagCall) -> float:
    """What ranks the vignettes: P(multiple), or the organisms' count without a classifier."""
    return call.organisms if call.p_multiple is None else call.p_multiple


def tag_facts(calls: list[TagCall], function) -> dict:
    scores = np.array([_score(c) for c in calls], float)
    positive = np.array([c.truth == MULTIPLE for c in calls])
    counted = tag_scores(
        {c.vignette: (c.tag, c.organisms) for c in calls}, {c.vignette: c.truth for c in calls}
    )
    by_classifier = all(c.p_multiple is not None for c in calls)
    return {
        "function": function.spec.id,
        "score": "P(multiple)" if by_classifier else "organisms",
        "threshold": function.multiple_threshold if by_classifier else None,
        **counted,
        "tagged_multiple_share": counted["tagged_multiple"] / len(calls),
        "roc_auc": roc_auc(scores, positive),
        "average_precision": average_precision(scores, positive),
    }


def _plots(calls: list[TagCall], facts: dict, root: Path, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [out_dir / name for name in ("pr_curve.png", "false_multiples.png", "misses.png")]
    scores = np.array([_score(c) for c in calls], float)
    positive = np.array([c.truth == MULTIPLE for c in calls])
    figure, axis = plt.subplots(figsize=(5, 4))
    if positive.any():
        _, precision, recall = precision_recall(scores, positive)
        axis.plot(
            recall, precision, ".-", label=f"each threshold (AP {facts['average_precision']:.3f})"
        )
    served_point(axis, facts["precision_multiple"], facts["recall_multiple"], "as served")
    auc = facts["roc_auc"]
    axis.set(
        xlabel='recall of "multiple"',
        ylabel='precision of "multiple"',
        xlim=(0, 1.02),
        ylim=(0, 1.02),
    )
    axis.set_title(
        f"{facts['function']}: {facts['multiples']} multiples, {facts['singles']} singles"
        + (f"\nranked by {facts['score']}: ROC AUC {auc:.3f}" if auc is not None else ""),
        fontsize=9,
    )
    axis.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(paths[0], dpi=90)
    plt.close(figure)

    def tiles(chosen: list[TagCall]) -> list:
        return [
            (
                str(root / c.vignette),
                None,
                (f"P {c.p_multiple:.2f}, " if c.p_multiple is not None else "")
                + f"{c.tag}, {c.organisms} object{'s' * (c.organisms != 1)}",
                c.boxes,
            )
            for c in chosen
        ]

    ranked = sorted(calls, key=_score, reverse=True)
    false = [c for c in ranked if c.truth == SINGLE and c.tag == MULTIPLE][:GALLERY_SIZE]
    missed = [c for c in ranked[::-1] if c.truth == MULTIPLE and c.tag != MULTIPLE][:GALLERY_SIZE]
    gallery(
        tiles(false), "red", "singles tagged multiple, most sure first (objects red)", paths[1], plt
    )
    gallery(tiles(missed), "red", "multiples tagged single, least sure first", paths[2], plt)
    return paths
