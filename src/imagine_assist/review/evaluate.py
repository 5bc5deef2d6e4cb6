"""`imagine-assist evaluate`: how well a detector function does on a user's own labelled
images, before anyone trusts its pre-annotations.

    with load_source(source, ...) as dataset:           # FiftyOne reads the user's labels
        truth = ground_truth(dataset, ...)              # ... pulled out once, as arrays
        predicted = predict(function, filepaths, ...)   # the whole PR curve, not one point
        evaluation = detection_metrics.evaluate(...)    # COCO-style: AP50, AP50-95
        detection_metrics.served(...)                   # what CVAT would get: P, R, empty frames

The detector runs once, at a confidence floor of 0.001, so AP covers the whole curve; the
figures "at the threshold" keep only the boxes the served function would send (its default
threshold, or the one given). COCO matching is greedy in confidence order, so a match made
over the whole curve is the match the thresholded boxes would get alone.

FiftyOne only reads the source: the boxes stay numpy arrays in memory. Written into FiftyOne
sample by sample and matched there, 100 boxes per frame (the floor's usual count on real
frames) took ten times as long as the detector itself (docs/evaluate.md).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imagine_assist.errors import BadRequest, UserError
from imagine_assist.images import read_image, readable_name
from imagine_assist.models import detection_metrics as metrics
from imagine_assist.models.detection_metrics import Boxes
from imagine_assist.models.tiling import surest
from imagine_assist.review.annotator_time import annotator_time
from imagine_assist.review.review import AGNOSTIC_LABEL, draw_box
from imagine_assist.training.exports import (
    GROUND_TRUTH,
    add_yolo_folders,
    check_export,
    check_yolo_labels,
    fiftyone,
    labels_in,
    load_export,
    read_yaml,
    relabel,
    unpacked,
    yaml_split_folders,
    yolo_class_ids,
    yolo_images_of_labels,
    yolo_labels_folder,
)

log = logging.getLogger(__name__)

PREDICTION_FLOOR = 0.001
# As COCO's AP, the 100 most confident boxes of each image; and never fewer than the function
# sends at the served threshold, or a litter frame's figures would not be what CVAT gets
MAX_PER_IMAGE = 100
IOU = 0.5
GALLERY_SIZE = 12


@dataclass
class EvaluationSummary:
    summary: Path  # summary.json
    facts: dict  # what summary.json holds
    plots: list[Path]  # pr_curve.png, worst_false_positives.png, misses.png


@contextmanager
def load_source(source: str | Path, work_dir: Path, names: list[str], name: str) -> Iterator:
    """A FiftyOne dataset of a YOLO folder or an export zip, labels in `ground_truth`, for
    the length of a `with` block: then the dataset is deleted, and what was written for it
    under `work_dir` (the unpacked export, the folder's yaml) removed. `names` are the class
    names of a YOLO folder without a data.yaml (its class ids in order)."""
    path = Path(source)
    if path.is_dir():
        try:
            dataset = load_yolo_folder(path, work_dir, names, name)
            try:
                yield dataset
            finally:
                dataset.delete()
        finally:
            (work_dir / f"{name}.yaml").unlink(missing_ok=True)
        return
    if not path.exists():
        raise UserError(f"no folder or export at {path}")
    with unpacked(path, work_dir) as info:
        dataset = load_export(info, name=name)
        try:
            yield dataset
        finally:
            dataset.delete()


def _yolo_splits(root: Path) -> tuple[dict, list[Path]]:
    """data.yaml's content and its image folders (`yaml_split_folders`)."""
    config = read_yaml(root / "data.yaml", root) or {}
    if not isinstance(config, dict):
        raise UserError(f"{root / 'data.yaml'}: expected a mapping with names and image folders")
    return config, yaml_split_folders(root, config)


def load_yolo_folder(root: Path, work_dir: Path, names: list[str], name: str):
    """A YOLO folder: a data.yaml naming the classes and image folders, or images/ and
    labels/ side by side (class ids then stand for `names`, in order, and ids past them for
    their own number). Images without a label file are empty images, as Ultralytics reads
    them."""
    fo = fiftyone()
    declared = None
    if (root / "data.yaml").is_file():
        config, folders = _yolo_splits(root)
        declared = config.get("names")
        if not folders and (root / "images").is_dir() and (root / "labels").is_dir():
            # an export whose data.yaml names split folders it does not hold (Roboflow's
            # flattened downloads): its images/ and labels/ beside the yaml are the data
            folders = [(root / "images").resolve()]
        if not folders:
            raise UserError(f"{root}/data.yaml names no image folder that exists")
    elif (root / "images").is_dir() and (root / "labels").is_dir():
        folders = [(root / "images").resolve()]
    else:
        raise UserError(
            f"{root} is not a YOLO folder: give one with a data.yaml, or with images/ and "
            "labels/ side by side"
        )
    if declared:
        names = declared
        check_yolo_labels(folders, yolo_class_ids(names), root)
    else:
        # without a data.yaml naming them, class ids are the function's labels in order, and
        # ids past those are named by their number: a Roboflow split folder (its data.yaml
        # one level up) is then evaluated with --class-agnostic, or its ids mapped (--map 6=fish)
        used = check_yolo_labels(folders, None, root)
        names = list(names) + [str(i) for i in range(len(names), max(used, default=-1) + 1)]
    for folder in folders:  # FiftyOne passes over them without a word: their boxes unscored
        labels = yolo_labels_folder(Path(folder))
        named, missing = yolo_images_of_labels(labels, Path(folder)) if labels else (0, [])
        if missing:
            log.warning(
                "%d of the %d label files in %s have no image in %s (%s first): their boxes "
                "are not scored",
                len(missing),
                named,
                labels,
                folder,
                missing[0],
            )
    work_dir.mkdir(parents=True, exist_ok=True)
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name)
    try:
        add_yolo_folders(dataset, root, folders, names, work_dir / f"{name}.yaml")
    except Exception as error:  # FiftyOne's importer raises many kinds on malformed files
        raise UserError(f"{root}: FiftyOne could not read it as a YOLO dataset: {error}") from None
    dataset.info["export"] = {"path": str(root), "format": "YOLO folder"}
    return dataset


def ground_truth(dataset, classes: list[str], class_agnostic: bool) -> list[Boxes]:
    """Each sample's labelled boxes (FiftyOne's relative [x, y, w, h]), read in one query per
    field; class ids index `classes` (all 0 when class-agnostic)."""
    ids = {label: index for index, label in enumerate(classes)}
    boxes = dataset.values(f"{GROUND_TRUTH}.detections.bounding_box")
    labels = dataset.values(f"{GROUND_TRUTH}.detections.label")
    truth, cut, empty, where = [], 0, 0, None
    for filepath, rows, names in zip(dataset.values("filepath"), boxes, labels, strict=True):
        xywh = np.array(rows or [], dtype=np.float64).reshape(-1, 4)
        inside, kept = _inside_image(xywh)
        if len(inside) < len(xywh) or not np.allclose(inside, xywh[kept]):
            cut += int(np.count_nonzero(~np.isclose(inside, xywh[kept]).all(1)))
            empty += len(xywh) - len(inside)
            where = where or filepath
        ids_of = [0 if class_agnostic else ids[label] for label in names or []]
        truth.append(Boxes(inside, [ids_of[i] for i in np.flatnonzero(kept)]))
    if where is not None:
        # a box no detector can match would count as a miss: cut to the image, as CVAT
        # and Ultralytics keep boxes, and one with nothing inside it left out, by name
        log.warning(
            "%d labelled boxes reach outside their image and were cut to it, and %d lie "
            "wholly outside it or have no area and were left out (%s first)",
            cut,
            empty,
            readable_name(where),
        )
    return truth


def _inside_image(xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative [x, y, w, h] boxes cut to the image, and which boxes keep an area."""
    x1, y1 = np.clip(xywh[:, 0], 0, 1), np.clip(xywh[:, 1], 0, 1)
    x2 = np.clip(xywh[:, 0] + xywh[:, 2], 0, 1)
    y2 = np.clip(xywh[:, 1] + xywh[:, 3], 0, 1)
    kept = (x2 > x1) & (y2 > y1)
    cut = np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)[kept]
    return cut, kept


def predict(
    function,
    filepaths: list[str],
    classes: list[str],
    class_agnostic: bool,
    threshold: float | None = None,
) -> list[Boxes | None]:
    """The function's boxes on each image at the confidence floor, as relative [x, y, w, h]:
    every box at `threshold` or above (what the function sends; a drone frame may hold a
    thousand), and below it the most confident up to MAX_PER_IMAGE in all. Class ids index
    `classes` (-1: a label not in them, which can match nothing; all 0 when
    class-agnostic). None for an image that cannot be read or that the function refuses
    (a 1x1 frame, a strip), with a warning that names it."""
    ids = {label: index for index, label in enumerate(classes)}
    predicted: list[Boxes | None] = []
    for filepath in tqdm(filepaths, desc="predicting"):
        try:
            image = read_image(filepath)
            # a threshold under the floor is scored on what it would send
            floor = PREDICTION_FLOOR if threshold is None else min(PREDICTION_FLOOR, threshold)
            detections = function.detect(image, floor)
        except BadRequest as error:
            # as predict, next and separate do: one file does not end a long evaluation
            name, message = readable_name(filepath), str(error)
            log.warning("left out: %s", message if name in message else f"{name}: {message}")
            predicted.append(None)
            continue
        height, width = image.shape[:2]
        sent = 0 if threshold is None else int(np.count_nonzero(detections.confidence >= threshold))
        kept = max(MAX_PER_IMAGE, sent)
        if len(detections) > kept:
            detections = detections[surest(detections, kept)]
        x1, y1, x2, y2 = detections.xyxy.T
        xywh = np.stack([x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height], axis=1)
        names = detections.data.get("class_name", [])
        confidence = detections.confidence
        predicted.append(
            Boxes(
                xywh,
                [0 if class_agnostic else ids.get(str(name), -1) for name in names],
                np.ones(len(detections)) if confidence is None else confidence,
            )
        )
    return predicted


def evaluate_function(
    source: str | Path,
    function,
    out_dir: Path,
    work_dir: Path,
    threshold: float | None = None,
    class_agnostic: bool = False,
    label_map: dict[str, str] | None = None,
) -> EvaluationSummary:
    """Evaluate a detector function (`functions.detector.DetectorFunction`) on a YOLO folder
    or an export zip. `threshold`: the served one (default: the function's); `label_map`
    renames the source's labels first; `class_agnostic` makes every box one class."""
    threshold = function.spec.check_threshold(threshold)
    classes = list(function.spec.label_names)
    name = f"evaluate-{function.spec.id}-{uuid.uuid4().hex[:8]}"
    # an export's images are read until the galleries are drawn, then its folder goes
    with load_source(source, work_dir, classes, name) as dataset:
        relabel(dataset, GROUND_TRUTH, label_map)
        if class_agnostic:
            check_export(dataset, tuple(labels_in(dataset)), Path(source))  # images, boxes
            classes = [AGNOSTIC_LABEL]
        else:
            check_export(dataset, tuple(classes), Path(source))
        filepaths = dataset.values("filepath")
        source_format = dataset.info.get("export", {}).get("format")
        truth = ground_truth(dataset, classes, class_agnostic)
        predicted = predict(function, filepaths, classes, class_agnostic, threshold)
        # named under the images' common folder: an export's is a temporary one
        root = os.path.commonpath([os.path.dirname(path) for path in filepaths])
        unreadable = [
            readable_name(os.path.relpath(path, root))
            for path, boxes in zip(filepaths, predicted, strict=True)
            if boxes is None
        ]
        if len(unreadable) == len(filepaths):
            raise UserError(f"no image of {source} could be read or evaluated (see the warnings)")
        if unreadable:  # their labelled boxes leave with them: the figures cover the rest
            read = [i for i, boxes in enumerate(predicted) if boxes is not None]
            filepaths = [filepaths[i] for i in read]
            truth = [truth[i] for i in read]
            predicted = [predicted[i] for i in read]
        evaluation = metrics.evaluate(truth, predicted, len(classes))
        sent = metrics.served(evaluation, truth, predicted, threshold, IOU)
        cost = annotator_time(evaluation, truth, predicted, threshold, IOU)
        boxes = sum(len(labelled) for labelled in truth)
        facts = {
            "function": function.spec.id,
            "source": str(source),
            "format": source_format,
            "class_agnostic": class_agnostic,
            "classes": classes,
            "iou": IOU,
            "prediction_floor": PREDICTION_FLOOR,
            "threshold": threshold,
            "images": len(filepaths),
            "unreadable": unreadable,
            "boxes": boxes,
            **ap_facts(evaluation, classes),
            **_threshold_facts(sent, boxes),
            "annotator_time": asdict(cost),
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "summary.json"
        path.write_text(json.dumps(facts, indent=2))
        images = _Images(filepaths, truth, predicted, classes)
        plots = _plots(evaluation, facts, sent, images, out_dir)
    return EvaluationSummary(path, facts, plots)


def ap_facts(evaluation: metrics.Evaluation, classes: list[str]) -> dict:
    """AP50 and AP50-95 of each class with boxes, and their means over those classes."""
    per_class = {}
    for index, label in enumerate(classes):
        ap50 = evaluation.ap(index, IOU)
        if ap50 is not None:  # classes without a single box have no AP
            per_class[label] = {"AP50": ap50, "AP50-95": evaluation.ap(index)}
    mean = lambda key: (  # noqa: E731
        float(np.mean([c[key] for c in per_class.values()])) if per_class else 0.0
    )
    # the mean over the classes that have boxes
    return {"AP50": mean("AP50"), "AP50-95": mean("AP50-95"), "per_class": per_class}


def served_point(axis, precision: float | None, recall: float | None, what: str) -> None:
    """The served threshold's point on a precision-recall plot; none where either is 0/0."""
    if precision is not None and recall is not None:
        axis.plot([recall], [precision], "ko", label=f"{what}: P {precision:.2f}, R {recall:.2f}")


def _threshold_facts(sent: metrics.Served, boxes: int) -> dict:
    tp, fp, fn, empty = sent.tp, sent.fp, sent.fn, sent.empty_images
    return {
        # None where it is 0/0 (no box sent; none labelled): a 0 would say all were wrong
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / boxes if boxes else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "empty_images": empty,
        "empty_images_with_box": sent.empty_with_box,
        "empty_with_box_share": sent.empty_with_box / empty if empty else None,
    }


@dataclass(frozen=True)
class _Images:
    """What the galleries draw: each image's path, labelled and predicted boxes."""

    filepaths: list[str]
    truth: list[Boxes]
    predicted: list[Boxes]
    classes: list[str]


def _plots(evaluation, facts, sent: metrics.Served, images: _Images, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [out_dir / "pr_curve.png", out_dir / "worst_false_positives.png"]
    paths.append(out_dir / "misses.png")
    at_half = evaluation.iou_index(IOU)
    figure, axis = plt.subplots(figsize=(5, 4))
    for index, label in enumerate(images.classes):
        if label in facts["per_class"]:
            axis.plot(
                metrics.RECALL_POINTS,
                np.clip(evaluation.precision[at_half][index], 0, None),
                label=f"{label} (AP50 {facts['per_class'][label]['AP50']:.3f})",
            )
    served_point(axis, facts["precision"], facts["recall"], f"threshold {facts['threshold']:g}")
    axis.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1.02),
        ylim=(0, 1.02),
        title=f"{facts['function']}, IoU 0.5: AP50 {facts['AP50']:.3f}",
    )
    axis.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(paths[0], dpi=90)
    plt.close(figure)

    threshold = facts["threshold"]
    tiles = []
    for image, box in sent.false_positives[:GALLERY_SIZE]:
        boxes = images.predicted[image]
        caption = f"confidence {boxes.confidence[box]:.2f}"
        tiles.append((images.filepaths[image], boxes.xywh[box], caption, []))
    gallery(
        tiles,
        "red",
        f"most confident false positives at threshold {threshold:g} (red)",
        paths[1],
        plt,
    )
    tiles = []
    for image, box in sent.misses[:GALLERY_SIZE]:
        labelled, boxes = images.truth[image], images.predicted[image]
        caption = f"missed: {images.classes[labelled.class_id[box]]}"
        others = list(boxes.xywh[boxes.confidence >= threshold])  # the boxes sent
        tiles.append((images.filepaths[image], labelled.xywh[box], caption, others))
    gallery(
        tiles,
        "orange",
        f"missed labelled boxes at threshold {threshold:g}, largest first (orange); boxes sent red",
        paths[2],
        plt,
    )
    return paths


def gallery(tiles, colour: str, title: str, target: Path, plt) -> None:
    """One tile per (image path, box, caption, other boxes): the image with the box drawn
    in `colour` (none when None) over the other boxes in red."""
    columns = 4
    rows = max(1, -(-len(tiles) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    if not tiles:
        axes[0][0].text(0, 0.5, "none", fontsize=12)
    for axis, (filepath, box, caption, others) in zip(axes.ravel(), tiles, strict=False):
        image = read_image(filepath)
        height, width = image.shape[:2]
        axis.imshow(image)
        for other in others:
            draw_box(axis, plt, other, width, height, "red")
        if box is not None:
            draw_box(axis, plt, box, width, height, colour, linewidth=2)
        axis.set_title(f"{Path(filepath).name[:28]}\n{caption}", fontsize=7)
    figure.suptitle(title, fontsize=9)
    with warnings.catch_warnings():  # a file name in a script the font lacks: drawn as boxes
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        figure.tight_layout()
        figure.savefig(target, dpi=80)
    plt.close(figure)
