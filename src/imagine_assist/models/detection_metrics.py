"""COCO-style detection metrics on plain numpy arrays: matching, AP per class, and the
counts at one served confidence threshold.

Boxes are [x, y, width, height] rows, as COCO and FiftyOne store them, in any unit shared by
an image's ground truth and predictions. The rules are pycocotools' (and FiftyOne's "coco"
method, whose figures these reproduce):

- matching, per image and class: predictions in descending confidence (equal ones keep
  their order), each taking the unmatched ground-truth box with the highest IoU >= the
  threshold (the last of equal ones);
- AP of a class: its precision-recall curve over all images, precision made monotone
  (the best at any higher recall) and read at 101 recall points 0, 0.01, ..., 1; a class
  without ground truth has none (-1 in `precision`). AP50-95 averages IoU 0.50:0.05:0.95.

COCO keeps the 100 most confident predictions of each image: cutting them is the caller's.
COCO's crowd regions (`iscrowd`) are not set apart: every ground-truth box counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_THRESHOLDS = np.array([x / 100 for x in range(50, 100, 5)])  # 0.50, 0.55, ..., 0.95
RECALL_POINTS = np.linspace(0, 1, 101)


@dataclass(frozen=True)
class Boxes:
    """One image's boxes: ground truth (no confidence) or predictions."""

    xywh: np.ndarray  # (n, 4) float
    class_id: np.ndarray  # (n,) int
    confidence: np.ndarray | None = None  # (n,) float, predictions only

    def __post_init__(self) -> None:
        xywh = np.asarray(self.xywh, dtype=np.float64).reshape(-1, 4)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if len(class_id) != len(xywh):
            raise ValueError(f"{len(xywh)} boxes but {len(class_id)} class ids")
        object.__setattr__(self, "xywh", xywh)
        object.__setattr__(self, "class_id", class_id)
        if self.confidence is not None:
            confidence = np.asarray(self.confidence, dtype=np.float64).reshape(-1)
            if len(confidence) != len(xywh):
                raise ValueError(f"{len(xywh)} boxes but {len(confidence)} confidences")
            object.__setattr__(self, "confidence", confidence)

    def __len__(self) -> int:
        return len(self.xywh)


@dataclass(frozen=True)
class Matches:
    """One image's matches at each IoU threshold (rows): the index of the partner, or -1."""

    predicted: np.ndarray  # (thresholds, predictions): the ground-truth box each took
    truth: np.ndarray  # (thresholds, ground truth): the prediction that took it


def box_iou(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """IoU of every predicted box (rows) with every ground-truth box (columns), [x, y, w, h]
    boxes, computed in the same order of operations as FiftyOne's `compute_bbox_iou`."""
    px, py, pw, ph = (predicted[:, [i]] for i in range(4))
    gx, gy, gw, gh = (truth[:, i] for i in range(4))
    width = np.minimum(px + pw, gx + gw) - np.maximum(px, gx)
    height = np.minimum(py + ph, gy + gh) - np.maximum(py, gy)
    inter = np.where((width > 0) & (height > 0), height * width, 0.0)
    union = ph * pw + gh * gw - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return np.minimum(iou, 1.0)


def match_image(
    truth: Boxes, predicted: Boxes, iou_thresholds: np.ndarray = IOU_THRESHOLDS
) -> Matches:
    """Greedy matching of one image's predictions to its ground truth, class by class."""
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    taken_by = np.full((len(thresholds), len(predicted)), -1)
    took = np.full((len(thresholds), len(truth)), -1)
    if not len(truth) or not len(predicted):
        return Matches(taken_by, took)
    order = np.argsort(-predicted.confidence, kind="stable")
    steps = np.arange(len(thresholds))
    for label in np.intersect1d(truth.class_id, predicted.class_id):
        preds = order[predicted.class_id[order] == label]
        gts = np.flatnonzero(truth.class_id == label)
        ious = box_iou(predicted.xywh[preds], truth.xywh[gts])
        taken = np.zeros((len(thresholds), len(gts)), dtype=bool)
        # a prediction without IoU >= the lowest threshold with any box is unmatched at all
        for row in np.flatnonzero(ious.max(axis=1) >= thresholds.min()):
            free = np.where(taken | (ious[row] < thresholds[:, None]), -1.0, ious[row])
            last_best = len(gts) - 1 - np.argmax(free[:, ::-1], axis=1)
            found = np.flatnonzero(free[steps, last_best] >= 0)
            taken[found, last_best[found]] = True
            taken_by[found, preds[row]] = gts[last_best[found]]
            took[found, gts[last_best[found]]] = preds[row]
    return Matches(taken_by, took)


@dataclass(frozen=True)
class Evaluation:
    """Matches of every image and the interpolated precision of every class."""

    precision: np.ndarray  # (IoU thresholds, classes, RECALL_POINTS); -1: no ground truth
    iou_thresholds: np.ndarray
    matches: list[Matches]

    def iou_index(self, iou: float) -> int:
        found = np.flatnonzero(np.isclose(self.iou_thresholds, iou))
        if not found.size:
            raise ValueError(f"IoU {iou} is not one of {self.iou_thresholds.tolist()}")
        return int(found[0])

    def ap(self, class_id: int, iou: float | None = None) -> float | None:
        """AP of a class at one IoU, or averaged over all of them; None without ground truth."""
        rows = slice(None) if iou is None else self.iou_index(iou)
        values = self.precision[rows, class_id]
        values = values[values > -1]
        return float(values.mean()) if values.size else None


def evaluate(
    truth: list[Boxes],
    predicted: list[Boxes],
    num_classes: int,
    iou_thresholds: np.ndarray = IOU_THRESHOLDS,
) -> Evaluation:
    """COCO-style evaluation of images' predictions (one `Boxes` per image, both lists in
    the same order). AP is computed for class ids 0 .. num_classes - 1; predictions of other
    ids are matched (they find no box of their class) but not scored."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} images of ground truth but {len(predicted)} predicted")
    if any(boxes.confidence is None for boxes in predicted):
        raise ValueError("every prediction needs a confidence")
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    matches = [match_image(t, p, thresholds) for t, p in zip(truth, predicted, strict=True)]
    precision = -np.ones((len(thresholds), num_classes, len(RECALL_POINTS)))
    if not truth:
        return Evaluation(precision, thresholds, matches)
    counts = np.bincount(np.concatenate([t.class_id for t in truth]), minlength=num_classes)
    # every prediction of all images, image by image, each image's in descending confidence
    orders = [np.argsort(-p.confidence, kind="stable") for p in predicted]
    label = np.concatenate([p.class_id[o] for p, o in zip(predicted, orders, strict=True)])
    score = np.concatenate([p.confidence[o] for p, o in zip(predicted, orders, strict=True)])
    matched = np.concatenate(
        [m.predicted[:, o] >= 0 for m, o in zip(matches, orders, strict=True)], axis=1
    )
    for class_id in range(num_classes):
        if counts[class_id] == 0:
            continue
        mine = label == class_id
        for index in range(len(thresholds)):
            precision[index, class_id] = _interpolated_precision(
                score[mine], matched[index, mine], counts[class_id]
            )
    return Evaluation(precision, thresholds, matches)


def _interpolated_precision(score: np.ndarray, is_tp: np.ndarray, num_truth: int) -> np.ndarray:
    """Precision at RECALL_POINTS of one class at one IoU. Of equal confidences the true
    positives come first, as in FiftyOne (pycocotools keeps the images' order)."""
    order = np.lexsort((~is_tp, -score))
    tp = np.cumsum(is_tp[order]).astype(float)
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / num_truth
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the best at any higher recall
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    points = np.zeros(len(RECALL_POINTS))
    reached = at < len(precision)
    points[reached] = precision[at[reached]]
    return points


@dataclass(frozen=True)
class Served:
    """What the boxes sent at a confidence threshold get, at one IoU."""

    tp: int
    fp: int
    fn: int
    empty_images: int  # images without ground truth
    empty_with_box: int  # of those, the ones with a box sent
    false_positives: list[tuple[int, int]]  # (image, prediction), most confident first
    misses: list[tuple[int, int]]  # (image, ground-truth box), largest first


def served(
    evaluation: Evaluation,
    truth: list[Boxes],
    predicted: list[Boxes],
    threshold: float,
    iou: float = 0.5,
    class_id: int | None = None,
) -> Served:
    """Counts of the predictions with confidence >= `threshold`. The matches are those made
    over all predictions: matching runs in confidence order, so the boxes above a threshold
    get the same matches alone. A box matched by a prediction not sent is a miss. With
    `class_id`, only that class's predictions and ground truth count."""
    row = evaluation.iou_index(iou)
    tp = fp = fn = empty = empty_with_box = 0
    false_positives, misses = [], []
    for image, (gts, preds, matches) in enumerate(
        zip(truth, predicted, evaluation.matches, strict=True)
    ):
        sent = preds.confidence >= threshold
        if class_id is not None:
            sent &= preds.class_id == class_id
        hit = matches.predicted[row] >= 0
        tp += int(np.sum(sent & hit))
        fp += int(np.sum(sent & ~hit))
        false_positives += [(image, int(i)) for i in np.flatnonzero(sent & ~hit)]
        kept = np.append(sent, False)  # [-1]: no partner
        missed = ~kept[matches.truth[row]]
        if class_id is not None:
            missed &= gts.class_id == class_id
        fn += int(np.sum(missed))
        misses += [(image, int(i)) for i in np.flatnonzero(missed)]
        if not len(gts):
            empty += 1
            empty_with_box += bool(sent.any())
    false_positives.sort(key=lambda item: -predicted[item[0]].confidence[item[1]])
    misses.sort(key=lambda item: -_area(truth[item[0]].xywh[item[1]]))
    return Served(tp, fp, fn, empty, empty_with_box, false_positives, misses)


def _area(xywh: np.ndarray) -> float:
    return float(xywh[2] * xywh[3])
