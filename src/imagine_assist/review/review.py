"""`imagine-assist review <export.zip> --function <id>`: a FiftyOne dataset of the corrected
export with the deployed model's predictions beside the labels, evaluated and sorted by
likely mistakes, with a summary people can look at.

    dataset = load_export(...)                        # ground_truth: the people's labels
    add_predictions(dataset, function)                # predictions: the deployed model
    results = evaluate(dataset)                       # mAP, P/R per class, TP/FP/FN per sample
    flag_mistakes(dataset)                            # mistakenness (fiftyone-brain, offline)
    dataset.load_saved_view("mistakes")               # worst first, for the App
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imagine_assist.images import read_image
from imagine_assist.models import detection_metrics
from imagine_assist.training.exports import GROUND_TRUTH, fiftyone, labels_in

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
EVAL_KEY = "eval"
MISTAKES_VIEW = "mistakes"
MISTAKENNESS = "mistakenness"
AGNOSTIC_LABEL = "object"  # every box, in a class-agnostic review


def log_fiftyone_once() -> None:
    """FiftyOne prints its log lines through a handler of its own on its loggers; they also
    reached the root logger's handler (the CLI's), so each came out twice. FiftyOne's own
    stays, and its lines stop there."""
    fiftyone()
    for name in ("fiftyone", "eta"):  # the loggers FiftyOne gives its handler
        logging.getLogger(name).propagate = False


def to_fiftyone(detections, width: int, height: int):
    """supervision `Detections` as FiftyOne `Detections` (relative [x, y, w, h] boxes)."""
    fo = fiftyone()
    names = detections.data.get("class_name", [])
    items = []
    for index, (x1, y1, x2, y2) in enumerate(detections.xyxy):
        confidence = None if detections.confidence is None else float(detections.confidence[index])
        items.append(
            fo.Detection(
                label=str(names[index]),
                bounding_box=[x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height],
                confidence=confidence,
            )
        )
    return fo.Detections(detections=items)


def add_predictions(
    dataset, function, threshold: float | None = None, max_per_image: int | None = None
) -> None:
    """Run a served detector function over every sample into the `predictions` field.
    `max_per_image` keeps the most confident boxes only (COCO's AP counts 100 per image;
    at a confidence floor near 0 a model gives hundreds, which slow the evaluation)."""
    for sample in tqdm(dataset.iter_samples(autosave=True), total=len(dataset), desc="predicting"):
        image = read_image(sample.filepath)
        height, width = image.shape[:2]
        detections = function.detect(image, threshold)
        if max_per_image is not None and len(detections) > max_per_image:
            detections = detections[np.argsort(-detections.confidence)[:max_per_image]]
        sample[PREDICTIONS] = to_fiftyone(detections, width, height)


def evaluate(dataset, classes: list[str]):
    """COCO-style evaluation at IoU 0.5, with cross-class matches for the confusion matrix;
    each sample gets eval_tp, eval_fp and eval_fn."""
    return dataset.evaluate_detections(
        PREDICTIONS,
        gt_field=GROUND_TRUTH,
        eval_key=EVAL_KEY,
        method="coco",
        iou=0.5,
        classwise=False,
        compute_mAP=True,
        classes=classes,
        progress=False,
    )


def _disagreement_share(dataset) -> None:
    """(FP + FN) / (TP + FP + FN) per sample, plus a hair of the counts themselves, so that
    between two samples that disagree entirely the one with more disagreeing boxes leads."""
    for sample in dataset.iter_samples(autosave=True):
        tp, fp, fn = (sample[f"{EVAL_KEY}_{k}"] or 0 for k in ("tp", "fp", "fn"))
        sample[MISTAKENNESS] = (fp + fn) / max(tp + fp + fn, 1) + 1e-3 * min(fp + fn, 100)


# labels (drawn or predicted) on one sample above which mistakenness is not computed
MISTAKENNESS_MAX_LABELS = 300


def _most_labels_on_a_sample(dataset) -> int:
    """The most boxes, drawn or predicted, of any one sample."""
    from fiftyone import ViewField as F

    most = 0
    for field in (GROUND_TRUTH, PREDICTIONS):
        if not dataset.has_field(field):
            continue
        counts = dataset.values(F(f"{field}.detections").length())
        most = max([most, *(count or 0 for count in counts)])
    return most


def flag_mistakes(dataset, classes: list[str]) -> str:
    """Score each sample's likely label mistakes; return how it was scored.

    fiftyone-brain's mistakenness (offline) scores labels a model would name differently. It
    says nothing with one class (nothing to name differently: a forgotten box or a spurious
    one is what goes wrong there), or when it comes out flat. Then the documented rule is
    the share of a sample's labels and predictions that disagree: (FP + FN) / (TP + FP + FN)."""
    rule = "(FP + FN) / (TP + FP + FN) per sample"
    try:
        import fiftyone.brain as fob
    except ImportError:
        fob = None
    densest = _most_labels_on_a_sample(dataset)
    if fob is not None and len(classes) > 1 and densest > MISTAKENNESS_MAX_LABELS:
        # its cost grows with the square of a sample's labels: 12 s for 400 on 2 cores,
        # minutes with no word for a litter frame of 2,000
        _disagreement_share(dataset)
        method = (
            f"{rule} (a sample holds {densest:,} labels; fiftyone-brain mistakenness would "
            f"take minutes past {MISTAKENNESS_MAX_LABELS})"
        )
    elif fob is not None and len(classes) > 1:
        fob.compute_mistakenness(dataset, PREDICTIONS, label_field=GROUND_TRUTH, progress=False)
        scores = [v for v in dataset.values(MISTAKENNESS) if v is not None]
        # Only a positive score names a likely mistake (the summary and `send` list those);
        # on some sets the brain scores every sample 0 or below, which is no ranking at all.
        if scores and max(scores) > 1e-6 and max(scores) - min(scores) > 1e-6:
            method = "fiftyone-brain mistakenness"
        else:
            _disagreement_share(dataset)
            method = f"{rule} (fiftyone-brain mistakenness named no likely mistake)"
    else:
        _disagreement_share(dataset)
        method = rule if fob is None else f"{rule} (one class: nothing for mistakenness to flip)"
    # ties broken by file path: the terminal, worst.png and summary.json list alike
    ranked = dataset.sort_by([(MISTAKENNESS, -1), ("filepath", 1)])
    dataset.save_view(MISTAKES_VIEW, ranked, overwrite=True)
    return method


@dataclass
class ReviewSummary:
    dataset_name: str
    summary: Path
    plots: list[Path]
    flagged: list[str]


def summarise(dataset, results, classes: list[str], method: str, out_dir: Path, top: int = 8):
    """summary.json plus plots: PR curves, the confusion matrix and the worst samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    report = results.report(classes=classes)
    worst = dataset.load_saved_view(MISTAKES_VIEW).limit(top)
    per_sample = [
        {
            "file": Path(s.filepath).name,
            "tp": s[f"{EVAL_KEY}_tp"],
            "fp": s[f"{EVAL_KEY}_fp"],
            "fn": s[f"{EVAL_KEY}_fn"],
            MISTAKENNESS: s[MISTAKENNESS],
        }
        for s in dataset.load_saved_view(MISTAKES_VIEW)
    ]
    summary = {
        "dataset": dataset.name,
        "export": dataset.info.get("export"),
        "samples": len(dataset),
        "mAP50": map50(results),
        "mAP50-95": results.mAP(),  # COCO's, over IoU 0.50:0.95
        "per_class": {c: report[c] for c in classes if c in report},
        "class_agnostic": class_agnostic_summary(*_boxes_of(dataset)),
        "tp": int(sum(s["tp"] or 0 for s in per_sample)),
        "fp": int(sum(s["fp"] or 0 for s in per_sample)),
        "fn": int(sum(s["fn"] or 0 for s in per_sample)),
        "mistakes_scored_by": method,
        "per_sample": per_sample,
    }
    path = out_dir / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=float))

    plots = [out_dir / "pr_curves.png", out_dir / "confusion_matrix.png", out_dir / "worst.png"]
    figure, axis = plt.subplots(figsize=(5, 4))
    at_half = _at_half(results)
    curves = classes_with_labels(results)  # a class without labels has no curve (-1 in COCO)
    for index, name in curves:
        axis.plot(results.recall, results.precision[at_half][index], label=name)
    axis.set(
        xlabel="recall",
        ylabel="precision",
        title=f"PR at IoU 0.5, mAP50 {map50(results):.3f}",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    if curves:
        axis.legend(fontsize=8)
    else:
        axis.text(0.5, 0.5, "no class has corrected labels", ha="center", va="center")
    figure.tight_layout()
    figure.savefig(plots[0], dpi=90)
    plt.close(figure)

    labels = [*classes, "(none)"]
    matrix = results.confusion_matrix(classes=classes, include_other=False, include_missing=True)
    figure, axis = plt.subplots(figsize=(5, 4.5))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set(xlabel="predicted", ylabel="corrected label", title="confusion (IoU 0.5)")
    for (row, col), value in np.ndenumerate(matrix):
        axis.text(col, row, int(value), ha="center", va="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(plots[1], dpi=90)
    plt.close(figure)

    draw_gallery(list(worst), plots[2])
    flagged = [Path(s.filepath).name for s in worst if (s[MISTAKENNESS] or 0) > 0]
    return ReviewSummary(dataset.name, path, plots, flagged)


def _at_half(results) -> int:
    return int(np.argmin(np.abs(np.asarray(results.iou_threshs) - 0.5)))


def classes_with_labels(results) -> list[tuple[int, str]]:
    """(index, name) of the classes with corrected labels: COCO gives the others precision -1,
    which is no curve and no AP."""
    at_half = _at_half(results)
    return [
        (index, name)
        for index, name in enumerate(results.classes)
        if (np.asarray(results.precision[at_half][index]) >= 0).any()
    ]


def map50(results) -> float:
    """COCO-style AP at IoU 0.5, averaged over the classes that have labels."""
    at_half = _at_half(results)
    per_class = [results.precision[at_half][index] for index, _ in classes_with_labels(results)]
    return float(np.mean([np.mean(np.clip(p, 0, None)) for p in per_class])) if per_class else 0.0


def _boxes_of(dataset) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """Each sample's corrected boxes, and its predicted boxes with their confidences (relative
    [x, y, w, h])."""
    truth, predicted = [], []
    for labels, predictions in zip(
        dataset.values(GROUND_TRUTH), dataset.values(PREDICTIONS), strict=True
    ):
        truth.append(np.array([d.bounding_box for d in labels.detections] if labels else []))
        found = predictions.detections if predictions else []
        predicted.append(
            (np.array([d.bounding_box for d in found]), np.array([d.confidence for d in found]))
        )
    return truth, predicted


def class_agnostic_summary(
    truth: list[np.ndarray], predicted: list[tuple[np.ndarray, np.ndarray]]
) -> dict:
    """How well the model finds the objects whatever it names them: every box one class,
    COCO-style matching at IoU 0.5. Per image: the corrected boxes ([x, y, w, h] rows), and
    the predicted boxes with their confidences."""
    truth_boxes = [detection_metrics.Boxes(t, np.zeros(len(t))) for t in truth]
    predicted_boxes = [
        detection_metrics.Boxes(boxes, np.zeros(len(boxes)), scores) for boxes, scores in predicted
    ]
    result = detection_metrics.evaluate(truth_boxes, predicted_boxes, num_classes=1)
    at_half = result.iou_index(0.5)
    tp = sum(int((m.truth[at_half] >= 0).sum()) for m in result.matches)
    labelled = sum(len(t) for t in truth_boxes)
    found = sum(len(p) for p in predicted_boxes)
    return {
        "AP50": result.ap(0, 0.5) or 0.0,
        "AP50-95": result.ap(0) or 0.0,
        "tp": tp,
        "fp": found - tp,
        "fn": labelled - tp,
        "precision": tp / found if found else 0.0,
        "recall": tp / labelled if labelled else 0.0,
    }


def draw_gallery(samples, target: Path, columns: int = 4) -> Path:
    """The samples (worst first) in one image, each with both label sets drawn: corrected
    labels green, the model's red with their confidence, and the sample's FP and FN."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(samples) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, sample in zip(axes.ravel(), samples, strict=False):
        image = read_image(sample.filepath)
        height, width = image.shape[:2]
        axis.imshow(image)
        for field, colour in ((GROUND_TRUTH, "lime"), (PREDICTIONS, "red")):
            labels = sample[field]
            for box in labels.detections if labels else []:
                x, y, _, _ = box.bounding_box
                draw_box(axis, plt, box.bounding_box, width, height, colour)
                text = box.label if box.confidence is None else f"{box.label} {box.confidence:.2f}"
                # inside the picture, below the box's top edge: a label above a box at the
                # top of the image would be cut off
                axis.text(
                    x * width, y * height, text, color=colour, fontsize=6, va="top", clip_on=True
                )
        fp, fn = (sample[f"{EVAL_KEY}_{k}"] or 0 for k in ("fp", "fn"))
        axis.set_title(
            f"{Path(sample.filepath).name[:24]}\nFP {fp}, FN {fn}, "
            f"mistakenness {sample[MISTAKENNESS] or 0:.2f}",
            fontsize=7,
        )
    figure.suptitle("most likely mistakes: corrected labels green, model red", fontsize=9)
    figure.tight_layout()
    figure.savefig(target, dpi=80)
    plt.close(figure)
    return target


def review_export(
    export: str | Path,
    function_id: str,
    out_dir: Path,
    work_dir: Path,
    models_dir: str | Path | None = None,
    threshold: float | None = None,
    class_agnostic: bool = False,
    label_map: dict[str, str] | None = None,
):
    """`class_agnostic`: every box is one class, "object" (the first thing to know when the
    export's labels are not the function's); `label_map` renames the export's labels."""
    from imagine_assist.errors import UserError
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.functions.detector import DetectorFunction
    from imagine_assist.functions.separator import SeparatorFunction
    from imagine_assist.training.exports import (
        check_export,
        load_export,
        relabel,
        remove_unless_used,
        unpack,
    )

    log_fiftyone_once()
    function = load_function(function_id, models_dir=models_dir)
    if not isinstance(function, DetectorFunction):
        hint = (
            f"; its masks and tags are checked against a corrected task by `imagine-assist "
            f"evaluate TASK.zip --function {function_id}`"
            if isinstance(function, SeparatorFunction)
            else ""
        )
        raise UserError(
            f"{function_id} is not a box detector; review takes a detector function{hint}"
        )
    info = unpack(export, work_dir)
    classes = list(function.spec.label_names)
    mode = "agnostic" if class_agnostic else "classes"
    name = f"review-{function_id}-{info.sha256[:12]}-{mode}"
    # Built under a name of its own and put in place when complete: a rerun stopped or
    # failed halfway leaves the earlier review as it was, images and all.
    building = f"{name}-building-{uuid.uuid4().hex[:8]}"
    _recover_killed_rerun(name)
    dataset = None
    try:
        dataset = load_export(info, name=building)
        relabel(dataset, GROUND_TRUTH, label_map)
        if class_agnostic:
            check_export(dataset, tuple(labels_in(dataset)), info.path)  # not empty, has boxes
            classes = [AGNOSTIC_LABEL]
            relabel(dataset, GROUND_TRUTH, to=AGNOSTIC_LABEL)
        else:
            check_export(dataset, tuple(classes), info.path)
        add_predictions(dataset, function, threshold)
        if class_agnostic:
            relabel(dataset, PREDICTIONS, to=AGNOSTIC_LABEL)
        results = evaluate(dataset, classes)
        method = flag_mistakes(dataset, classes)
        fo = fiftyone()
        # persistent before the earlier one goes, so that one of the two always stays
        dataset.persistent = True  # so `--app` and later sessions find it by name
        if fo.dataset_exists(name):
            carry_over_review_work(fo.load_dataset(name), dataset)
            fo.delete_dataset(name)
        dataset.name = name
    except BaseException:
        if dataset is not None and fiftyone().dataset_exists(building):
            fiftyone().delete_dataset(building)
        remove_unless_used(info, building)
        raise
    return dataset, summarise(dataset, results, classes, method, out_dir)


def _recover_killed_rerun(name: str) -> None:
    """A rerun killed as it put itself in place leaves its complete review (persistent) under
    its building name: it becomes the review again if the earlier one is gone, else it goes.
    One killed earlier is not persistent, and FiftyOne removes it itself."""
    fo = fiftyone()
    for stale in fo.list_datasets(f"{name}-building-*"):
        dataset = fo.load_dataset(stale)
        if dataset.persistent and not fo.dataset_exists(name):
            dataset.name = name
        else:
            dataset.delete()


def carry_over_review_work(earlier, dataset) -> None:
    """What a reviewer did on an earlier review of the same export, onto the new one: the
    tags of samples (matched by file), the tags of drawn and predicted boxes (matched by
    file, label and box, in order among identical boxes; a box the model no longer
    predicts keeps none), and the views they saved (samples picked by hand are found again
    by file; a view that picks boxes by hand cannot be, and is named). A rerun used to
    delete them all without a word."""
    sample_tags: dict[str, list[str]] = {}
    box_tags: dict[tuple, list[list[str]]] = {}  # one entry per box, identical boxes in order
    for sample in earlier.iter_samples():
        if sample.tags:
            sample_tags[sample.filepath] = list(sample.tags)
        for field in (GROUND_TRUTH, PREDICTIONS):
            for box in _boxes(sample, field):
                box_tags.setdefault(_box_key(sample.filepath, field, box), []).append(box.tags)
    carried = 0
    if sample_tags or any(any(tags) for tags in box_tags.values()):
        for sample in dataset.iter_samples(autosave=True):
            tags = [t for t in sample_tags.get(sample.filepath, []) if t not in sample.tags]
            sample.tags.extend(tags)
            carried += len(tags)
            for field in (GROUND_TRUTH, PREDICTIONS):
                for box in _boxes(sample, field):
                    waiting = box_tags.get(_box_key(sample.filepath, field, box))
                    tags = waiting.pop(0) if waiting else []
                    box.tags = [*box.tags, *(t for t in tags if t not in box.tags)]
                    carried += len(tags)
    kept, dropped = [], []
    for view_name in earlier.list_saved_views():
        if view_name == MISTAKES_VIEW:
            continue
        try:
            rebuilt = _rebuilt_view(earlier, dataset, earlier.load_saved_view(view_name))
        except Exception as error:  # a stage naming a field this review does not have
            dropped.append(f"{view_name} ({error})")
            continue
        dataset.save_view(view_name, rebuilt, overwrite=True)
        kept.append(view_name)
    if carried or kept:
        log.warning(
            "kept from the earlier review of this export: %d tag(s), saved view(s) %s",
            carried,
            ", ".join(kept) or "none",
        )
    if dropped:
        log.warning(
            "saved views not kept (they do not apply to the new review): %s", "; ".join(dropped)
        )


def _rebuilt_view(earlier, dataset, view):
    """`view`'s stages on `dataset`. Samples picked by id are picked again by file: a
    rerun makes every sample anew."""
    import fiftyone.core.stages as fos

    new_ids = dict(zip(dataset.values("filepath"), dataset.values("id"), strict=True))
    old_paths = dict(zip(earlier.values("id"), earlier.values("filepath"), strict=True))

    def again(ids) -> list[str]:
        ids = [ids] if isinstance(ids, str) else list(ids)
        return [new_ids[old_paths[i]] for i in ids if old_paths.get(i) in new_ids]

    rebuilt = dataset.view()
    for stage in view._stages:  # a saved view is its stages; FiftyOne keeps them there
        if isinstance(stage, fos.Select):
            stage = fos.Select(again(stage.sample_ids), ordered=stage.ordered)
        elif isinstance(stage, fos.Exclude):
            stage = fos.Exclude(again(stage.sample_ids))
        elif isinstance(stage, fos.SelectLabels | fos.ExcludeLabels) and (
            stage.labels or stage.ids or stage.instance_ids
        ):
            raise ValueError("it picks boxes by id, and the rerun made every box anew")
        rebuilt = rebuilt.add_stage(stage)
    return rebuilt


def _boxes(sample, field: str) -> list:
    labels = sample[field] if sample.has_field(field) else None
    return list(labels.detections) if labels is not None else []


def _box_key(filepath: str, field: str, box) -> tuple:
    return (filepath, field, box.label, *(round(v, 4) for v in box.bounding_box))


def send_to_cvat(
    dataset, classes: list[str], url: str, top: int = 20, min_mistakenness: float = 0.5
):
    """Send the likeliest mistakes to CVAT for correction, through FiftyOne's CVAT backend.
    Credentials come from CVAT_USER and CVAT_PASSWORD. Returns the annotation run's key
    (`dataset.load_annotations(key)` brings the corrections back)."""
    import os
    import time

    import requests

    from imagine_assist.errors import UserError

    fo = fiftyone()
    user, password = os.environ.get("CVAT_USER"), os.environ.get("CVAT_PASSWORD")
    if not (user and password):
        raise UserError("set CVAT_USER and CVAT_PASSWORD to send samples to CVAT")
    flagged = (
        dataset.load_saved_view(MISTAKES_VIEW)
        .match(fo.ViewField(MISTAKENNESS) >= min_mistakenness)
        .limit(top)
    )
    if len(flagged) == 0:
        raise UserError(f"no sample has mistakenness >= {min_mistakenness}: nothing to send")
    key = f"fix_{time.strftime('%Y%m%d_%H%M%S')}"
    try:
        flagged.annotate(
            key,
            backend="cvat",
            url=url,
            username=user,
            password=password,
            label_field=GROUND_TRUTH,
            label_type="detections",
            classes=classes,
            task_name=f"{dataset.name}: {len(flagged)} likely mistakes",
            launch_editor=False,
        )
    except requests.HTTPError as error:
        response = error.response
        if response is not None and response.status_code in (401, 403):
            raise UserError(f"CVAT at {url} refused the login for {user!r}") from None
        raise UserError(f"CVAT at {url} answered: {error}") from None
    except requests.ConnectionError:
        raise UserError(f"CVAT at {url} cannot be reached") from None
    except Exception as error:  # FiftyOne's CVAT backend wraps HTTP errors in plain Exceptions
        raise UserError(f"CVAT at {url} answered: {str(error)[:300]}") from None
    return key, len(flagged)


def draw_box(axis, plt, box, width, height, colour, linewidth=1) -> None:
    """A FiftyOne box (relative x, y, w, h) as a rectangle on an image of that size."""
    x, y, w, h = box
    axis.add_patch(
        plt.Rectangle(
            (x * width, y * height),
            w * width,
            h * height,
            fill=False,
            color=colour,
            linewidth=linewidth,
        )
    )
