"""What `review` shows when the model is poor: curves only for labelled classes, a
class-agnostic summary, a gallery with both label sets, each log line once, and a non-empty
list of likely mistakes."""

import json
import logging
import types

import numpy as np
import pytest
from PIL import Image

from imagine_assist.review.review import (
    GROUND_TRUTH,
    MISTAKENNESS,
    PREDICTIONS,
    class_agnostic_summary,
    classes_with_labels,
    draw_gallery,
    map50,
)


def coco_results(per_class: dict[str, float | None]):
    """FiftyOne's COCO results as the review reads them: precision at 101 recall points per
    class, -1 where a class has no labels."""
    curves = [np.full(101, -1.0 if p is None else p) for p in per_class.values()]
    return types.SimpleNamespace(
        classes=list(per_class),
        iou_threshs=[0.5, 0.75],
        precision=np.array([curves, curves]),
        recall=np.linspace(0, 1, 101),
    )


def test_classes_without_labels_get_no_curve_and_no_ap():
    results = coco_results({"cod": 0.6, "haddock": None, "whiting": 0.2})
    assert classes_with_labels(results) == [(0, "cod"), (2, "whiting")]
    assert map50(results) == pytest.approx(0.4)
    assert classes_with_labels(coco_results({"cod": None})) == []


def test_class_agnostic_summary_matches_boxes_whatever_their_labels():
    # two images: the model finds both fish of the first (under the wrong species, which
    # the per-class figures count as misses) and invents one box in the second
    truth = [np.array([[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]]), np.zeros((0, 4))]
    predicted = [
        (np.array([[0.1, 0.1, 0.2, 0.2], [0.51, 0.5, 0.2, 0.2]]), np.array([0.9, 0.8])),
        (np.array([[0.3, 0.3, 0.1, 0.1]]), np.array([0.4])),
    ]
    summary = class_agnostic_summary(truth, predicted)
    assert (summary["tp"], summary["fp"], summary["fn"]) == (2, 1, 0)
    assert summary["recall"] == 1.0 and summary["precision"] == pytest.approx(2 / 3)
    assert summary["AP50"] == pytest.approx(1.0)  # the invented box is the least confident
    empty = class_agnostic_summary([np.zeros((0, 4))], [(np.zeros((0, 4)), np.zeros(0))])
    assert empty["AP50"] == 0.0 and empty["recall"] == 0.0


class GallerySample(dict):
    """A FiftyOne sample as the gallery reads it: a file path and its fields."""

    def __init__(self, filepath, **fields):
        super().__init__(fields)
        self.filepath = str(filepath)


def boxes(*items):
    return types.SimpleNamespace(
        detections=[
            types.SimpleNamespace(label=label, bounding_box=box, confidence=confidence)
            for label, box, confidence in items
        ]
    )


def test_gallery_draws_both_label_sets(tmp_path):
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(tmp_path / "a.png")
    sample = GallerySample(
        tmp_path / "a.png",
        **{
            GROUND_TRUTH: boxes(("fish", [0.1, 0.0, 0.3, 0.4], None)),  # at the top edge
            PREDICTIONS: boxes(("fish", [0.6, 0.5, 0.3, 0.3], 0.8)),
            "eval_fp": 1,
            "eval_fn": 1,
            MISTAKENNESS: 1.0,
        },
    )
    target = draw_gallery([sample], tmp_path / "worst.png")
    pixels = np.asarray(Image.open(target).convert("RGB")).astype(int)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert ((green > 200) & (red < 80) & (blue < 80)).sum() > 50  # corrected labels, lime
    assert ((red > 200) & (green < 80) & (blue < 80)).sum() > 50  # the model's boxes, red


@pytest.mark.slow  # imports FiftyOne: about 2 s
def test_fiftyone_log_lines_reach_one_handler():
    from imagine_assist.review.review import log_fiftyone_once

    log_fiftyone_once()
    own = logging.getLogger("fiftyone")
    assert own.handlers  # FiftyOne's own, which prints the line
    seen = []
    root_catch = logging.Handler()
    root_catch.emit = seen.append
    logging.getLogger().addHandler(root_catch)
    try:
        logging.getLogger("fiftyone.utils.eval.detection").warning("Evaluating detections...")
    finally:
        logging.getLogger().removeHandler(root_catch)
    assert seen == []  # the CLI's root handler would have printed it a second time


@pytest.mark.slow  # a FiftyOne dataset, its evaluation and plots: several seconds
def test_a_poor_model_still_gets_a_ranked_list_of_likely_mistakes(tmp_path):
    from imagine_assist.review.review import evaluate, flag_mistakes, summarise
    from imagine_assist.training.exports import fiftyone

    fo = fiftyone()
    dataset = fo.Dataset()
    classes = ["cod", "haddock", "whiting"]  # whiting: never labelled
    misses = {"a.png": 0, "b.png": 3, "c.png": 1}  # corrected boxes the model misses
    for name, missed in misses.items():
        Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(tmp_path / name)
        truth = [
            fo.Detection(label="cod", bounding_box=[0.05 + 0.2 * i, 0.1, 0.15, 0.15])
            for i in range(4)
        ]
        found = [
            fo.Detection(label=d.label, bounding_box=d.bounding_box, confidence=0.5)
            for d in truth[missed:]
        ]
        found.append(
            fo.Detection(label="whiting", bounding_box=[0.4, 0.7, 0.2, 0.2], confidence=0.1)
        )
        dataset.add_sample(
            fo.Sample(
                filepath=str(tmp_path / name),
                **{GROUND_TRUTH: fo.Detections(detections=truth)},
                **{PREDICTIONS: fo.Detections(detections=found)},
            )
        )
    results = evaluate(dataset, classes)
    method = flag_mistakes(dataset, classes)
    summary = summarise(dataset, results, classes, method, tmp_path / "out")
    assert summary.flagged[:2] == ["b.png", "c.png"]  # most disagreement first, never empty
    facts = json.loads(summary.summary.read_text())
    assert facts["class_agnostic"]["fn"] == 4 and facts["class_agnostic"]["fp"] == 3
    assert all((tmp_path / "out" / name).is_file() for name in ("pr_curves.png", "worst.png"))
