"""`imagine-assist evaluate`: how well a detector function does on a user's own labelled
images, before anyone trusts its pre-annotations.

    dataset = load_source(source, ...)                 # ground_truth: the user's labels
    add_predictions(dataset, function, PREDICTION_FLOOR)  # the whole PR curve, not one point
    results = dataset.evaluate_detections(...)         # COCO-style: AP50, AP50-95
    at_threshold(...)                                  # what CVAT would get: P, R, empty frames

The detector runs once, at a confidence floor of 0.001, so AP covers the whole curve; the
figures "at the threshold" keep only the boxes the served function would send (its default
threshold, or the one given). COCO matching is greedy in confidence order, so a match made
over the whole curve is the match the thresholded boxes would get alone.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from imagine_assist.errors import UserError
from imagine_assist.images import read_image
from imagine_assist.review.review import (
    AGNOSTIC_LABEL,
    PREDICTIONS,
    add_predictions,
    draw_box,
)
from imagine_assist.training.exports import (
    GROUND_TRUTH,
    check_export,
    fiftyone,
    labels_in,
    load_export,
    relabel,
    unpack,
)

PREDICTION_FLOOR = 0.001
MAX_PER_IMAGE = 100  # as COCO's AP: the 100 most confident boxes of each image
EVAL_KEY = "evaluate"
IOU = 0.5
GALLERY_SIZE = 12
_SPLIT_KEYS = ("train", "val", "valid", "test")


@dataclass
class EvaluationSummary:
    summary: Path  # summary.json
    facts: dict  # what summary.json holds
    plots: list[Path]  # pr_curve.png, worst_false_positives.png, misses.png


def load_source(source: str | Path, work_dir: Path, names: list[str], name: str):
    """A FiftyOne dataset of a YOLO folder or an export zip, labels in `ground_truth`.
    `names` are the class names of a YOLO folder without a data.yaml (its class ids in order)."""
    path = Path(source)
    if path.is_dir():
        return load_yolo_folder(path, work_dir, names, name)
    if not path.exists():
        raise UserError(f"no folder or export at {path}")
    return load_export(unpack(path, work_dir), name=name)


def _yolo_splits(root: Path) -> tuple[dict, list[Path]]:
    """data.yaml's content and its image folders, found the ways Ultralytics finds them:
    under `path`, beside the yaml, or (Roboflow's `../train/images`) inside the folder."""
    try:
        config = yaml.safe_load((root / "data.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{root / 'data.yaml'} is not readable YAML: {error}") from None
    if not isinstance(config, dict):
        raise UserError(f"{root / 'data.yaml'}: expected a mapping with names and image folders")
    base = Path(config.get("path") or root)
    base = base if base.is_absolute() else root / base
    folders: list[Path] = []
    for key in _SPLIT_KEYS:
        values = config.get(key)
        for value in [values] if isinstance(values, str) else values or []:
            candidates = [base / value, root / value, root / str(value).lstrip("./")]
            found = next((c.resolve() for c in candidates if c.is_dir()), None)
            if found is not None and found not in folders:
                folders.append(found)
    return config, folders


def load_yolo_folder(root: Path, work_dir: Path, names: list[str], name: str):
    """A YOLO folder: a data.yaml naming the classes and image folders, or images/ and
    labels/ side by side (class ids then stand for `names`, in order). Images without a
    label file are empty images, as Ultralytics reads them."""
    fo = fiftyone()
    if (root / "data.yaml").is_file():
        config, folders = _yolo_splits(root)
        names = config.get("names") or names
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
    # FiftyOne's importer reads one split of one yaml: ours names every folder found
    work_dir.mkdir(parents=True, exist_ok=True)
    yaml_path = work_dir / f"{name}.yaml"
    splits = {f"split{index}": str(folder) for index, folder in enumerate(folders)}
    yaml_path.write_text(yaml.safe_dump({"names": names, **splits}))
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    dataset = fo.Dataset(name)
    try:
        for split in splits:
            dataset.add_dir(
                dataset_dir=str(root),
                dataset_type=fo.types.YOLOv5Dataset,
                yaml_path=str(yaml_path),
                split=split,
                label_field=GROUND_TRUTH,
                include_all_data=True,
                progress=False,
            )
    except Exception as error:  # FiftyOne's importer raises many kinds on malformed files
        raise UserError(f"{root}: FiftyOne could not read it as a YOLO dataset: {error}") from None
    dataset.info["export"] = {"path": str(root), "format": "YOLO folder"}
    return dataset


def _class_ap(precision: np.ndarray) -> float | None:
    """COCO's AP of one class from its interpolated precision (-1: the class has no boxes)."""
    values = precision[precision > -1]
    return float(values.mean()) if values.size else None


def at_threshold(dataset, threshold: float) -> dict:
    """Matches at IoU 0.5 of the boxes the served function would send."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "empty": 0, "empty_with_box": 0}
    false_positives, misses = [], []
    for sample in dataset.select_fields([GROUND_TRUTH, PREDICTIONS]):
        truth = sample[GROUND_TRUTH].detections if sample[GROUND_TRUTH] else []
        predicted = sample[PREDICTIONS].detections if sample[PREDICTIONS] else []
        sent = {p.id: p for p in predicted if p.confidence >= threshold}
        for box in sent.values():
            if box[EVAL_KEY] == "tp":
                counts["tp"] += 1
            else:
                counts["fp"] += 1
                false_positives.append((box.confidence, sample.filepath, box))
        for box in truth:
            if box[EVAL_KEY] != "tp" or box[f"{EVAL_KEY}_id"] not in sent:
                counts["fn"] += 1
                width, height = box.bounding_box[2:]
                misses.append((width * height, sample.filepath, box))
        if not truth:
            counts["empty"] += 1
            counts["empty_with_box"] += bool(sent)
    false_positives.sort(key=lambda item: -item[0])
    misses.sort(key=lambda item: -item[0])
    return {**counts, "false_positives": false_positives, "misses": misses}


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
    dataset = load_source(source, work_dir, classes, name)
    try:
        relabel(dataset, GROUND_TRUTH, label_map)
        if class_agnostic:
            check_export(dataset, tuple(labels_in(dataset)), Path(source))  # images, boxes
            classes = [AGNOSTIC_LABEL]
            relabel(dataset, GROUND_TRUTH, to=AGNOSTIC_LABEL)
        else:
            check_export(dataset, tuple(classes), Path(source))
        add_predictions(dataset, function, PREDICTION_FLOOR, MAX_PER_IMAGE)
        if class_agnostic:
            relabel(dataset, PREDICTIONS, to=AGNOSTIC_LABEL)
        results = dataset.evaluate_detections(
            PREDICTIONS,
            gt_field=GROUND_TRUTH,
            eval_key=EVAL_KEY,
            method="coco",
            iou=IOU,
            classwise=True,
            compute_mAP=True,
            classes=classes,
            progress=False,
        )
        facts = _facts(dataset, results, function, source, classes, threshold, class_agnostic)
        matches = at_threshold(dataset, threshold)
        facts.update(_threshold_facts(matches, facts["boxes"]))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "summary.json"
        path.write_text(json.dumps(facts, indent=2))
        plots = _plots(results, facts, matches, dataset, out_dir)
    finally:
        dataset.delete()
    return EvaluationSummary(path, facts, plots)


def _facts(dataset, results, function, source, classes, threshold, class_agnostic) -> dict:
    at_half = int(np.argmin(np.abs(np.asarray(results.iou_threshs) - IOU)))
    precision = np.asarray(results.precision)  # [iou, class, recall], COCO's 101 points
    per_class = {}
    for index, label in enumerate(results.classes):
        ap50 = _class_ap(precision[at_half, index])
        if ap50 is not None:  # classes without a single box have no AP
            per_class[label] = {"AP50": ap50, "AP50-95": _class_ap(precision[:, index])}
    boxes = dataset.count(f"{GROUND_TRUTH}.detections")
    mean = lambda key: (  # noqa: E731
        float(np.mean([c[key] for c in per_class.values()])) if per_class else 0.0
    )
    return {
        "function": function.spec.id,
        "source": str(source),
        "format": dataset.info.get("export", {}).get("format"),
        "class_agnostic": class_agnostic,
        "classes": classes,
        "iou": IOU,
        "prediction_floor": PREDICTION_FLOOR,
        "threshold": threshold,
        "images": len(dataset),
        "boxes": boxes,
        "AP50": mean("AP50"),  # the mean over the classes that have boxes
        "AP50-95": mean("AP50-95"),
        "per_class": per_class,
    }


def _threshold_facts(matches: dict, boxes: int) -> dict:
    tp, fp, fn = matches["tp"], matches["fp"], matches["fn"]
    empty = matches["empty"]
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / boxes if boxes else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "empty_images": empty,
        "empty_images_with_box": matches["empty_with_box"],
        "empty_with_box_share": matches["empty_with_box"] / empty if empty else None,
    }


def _plots(results, facts, matches, dataset, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [out_dir / "pr_curve.png", out_dir / "worst_false_positives.png"]
    paths.append(out_dir / "misses.png")
    at_half = int(np.argmin(np.abs(np.asarray(results.iou_threshs) - IOU)))
    figure, axis = plt.subplots(figsize=(5, 4))
    for index, label in enumerate(results.classes):
        if label in facts["per_class"]:
            axis.plot(
                results.recall,
                np.clip(results.precision[at_half][index], 0, None),
                label=f"{label} (AP50 {facts['per_class'][label]['AP50']:.3f})",
            )
    axis.plot(
        [facts["recall"]],
        [facts["precision"]],
        "ko",
        label=f"threshold {facts['threshold']:g}: P {facts['precision']:.2f}, "
        f"R {facts['recall']:.2f}",
    )
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
    _gallery(
        matches["false_positives"][:GALLERY_SIZE],
        lambda item: f"confidence {item[0]:.2f}",
        f"most confident false positives at threshold {threshold:g} (red)",
        paths[1],
        plt,
    )
    _gallery(
        matches["misses"][:GALLERY_SIZE],
        lambda item: f"missed: {item[2].label}",
        f"missed labelled boxes at threshold {threshold:g}, largest first (orange); boxes sent red",
        paths[2],
        plt,
        sent_from=dataset,
        threshold=threshold,
    )
    return paths


def _gallery(items, caption, title, target: Path, plt, sent_from=None, threshold=0.0) -> None:
    """One tile per item (score, image path, box): the image with the box drawn."""
    columns = 4
    rows = max(1, -(-len(items) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    if not items:
        axes[0][0].text(0, 0.5, "none", fontsize=12)
    sent = {}
    if sent_from is not None:
        paths = {item[1] for item in items}
        for sample in sent_from.select_fields(PREDICTIONS):
            if sample.filepath in paths and sample[PREDICTIONS]:
                boxes = sample[PREDICTIONS].detections
                sent[sample.filepath] = [b for b in boxes if b.confidence >= threshold]
    for axis, item in zip(axes.ravel(), items, strict=False):
        _, filepath, box = item
        image = read_image(filepath)
        height, width = image.shape[:2]
        axis.imshow(image)
        colour = "orange" if sent_from is not None else "red"
        for other in sent.get(filepath, []):
            draw_box(axis, plt, other.bounding_box, width, height, "red")
        draw_box(axis, plt, box.bounding_box, width, height, colour, linewidth=2)
        axis.set_title(f"{Path(filepath).name[:28]}\n{caption(item)}", fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(target, dpi=80)
    plt.close(figure)
