"""COCO-style metrics on arrays: AP counted by hand on tiny cases, the matching rules (empty
images, duplicates, classes, the best IoU), and the same figures as FiftyOne's "coco"
evaluation on random boxes."""

import numpy as np
import pytest

from imagine_assist.models.detection_metrics import (
    IOU_THRESHOLDS,
    RECALL_POINTS,
    Boxes,
    box_iou,
    evaluate,
    match_image,
    served,
)


def truth(*boxes, classes=None):
    return Boxes(np.array(boxes, float).reshape(-1, 4), classes or [0] * len(boxes))


def predicted(*scored, classes=None):
    """(x, y, w, h, confidence) rows."""
    rows = np.array(scored, float).reshape(-1, 5)
    return Boxes(rows[:, :4], classes or [0] * len(rows), rows[:, 4])


def test_iou_of_boxes_shifted_by_a_fifth():
    ious = box_iou(np.array([[2.0, 0, 10, 10], [30, 30, 5, 5]]), np.array([[0.0, 0, 10, 10]]))
    assert ious[:, 0] == pytest.approx([8 / 12, 0.0])  # 80 / (100 + 100 - 80)


def test_ap_counted_by_hand_with_interpolation_and_the_iou_sweep():
    # Two labelled boxes. By confidence: 0.9 on nothing (FP); 0.8 exactly on the first (IoU
    # 1); 0.7 on the second shifted by 2 of 10 (IoU 8/12 = 0.667).
    # IoU 0.50-0.65 (4 thresholds): FP, TP, TP. Precision 0, 1/2, 2/3 at recall 0, 1/2, 1;
    #   interpolated (the best at any recall >= r) 2/3 everywhere: AP = 2/3.
    # IoU 0.70-0.95 (6 thresholds): FP, TP, FP. Precision 0, 1/2, 1/3 at recall 0, 1/2, 1/2;
    #   interpolated 1/2 at the 51 points 0.00..0.50, 0 beyond: AP = 25.5/101.
    labelled = [truth([0, 0, 10, 10], [50, 50, 10, 10])]
    found = [predicted([80, 0, 10, 10, 0.9], [0, 0, 10, 10, 0.8], [52, 50, 10, 10, 0.7])]
    evaluation = evaluate(labelled, found, num_classes=1)
    assert evaluation.ap(0, 0.5) == pytest.approx(2 / 3)
    assert evaluation.ap(0, 0.65) == pytest.approx(2 / 3)
    assert evaluation.ap(0, 0.7) == pytest.approx(25.5 / 101)
    assert evaluation.ap(0) == pytest.approx((4 * 2 / 3 + 6 * 25.5 / 101) / 10)
    assert evaluation.precision.shape == (len(IOU_THRESHOLDS), 1, len(RECALL_POINTS))


def test_the_56_of_101_case_over_four_images_and_the_figures_at_a_threshold():
    # As in test_evaluate: by confidence 0.9 TP, 0.8 FP (empty image), 0.7 TP, 0.3 FP (empty
    # image) over 3 labelled boxes: AP = (34 * 1 + 33 * 2/3) / 101 = 56/101.
    labelled = [
        truth([10, 10, 30, 30], [60, 60, 30, 30]),
        truth([20, 20, 30, 30]),
        truth(),
        truth(),
    ]
    found = [
        predicted([10, 10, 30, 30, 0.9]),
        predicted([20, 20, 30, 30, 0.7]),
        predicted([5, 5, 25, 25, 0.8]),
        predicted([50, 50, 30, 30, 0.3]),
    ]
    evaluation = evaluate(labelled, found, num_classes=1)
    assert evaluation.ap(0, 0.5) == pytest.approx(56 / 101)
    assert evaluation.ap(0) == pytest.approx(56 / 101)

    sent = served(evaluation, labelled, found, threshold=0.75)
    assert (sent.tp, sent.fp, sent.fn) == (1, 1, 2)
    assert (sent.empty_images, sent.empty_with_box) == (2, 1)
    assert sent.false_positives == [(2, 0)]
    assert sent.misses == [(0, 1), (1, 0)]  # equal areas keep their order
    sent = served(evaluation, labelled, found, threshold=0.0)
    assert (sent.tp, sent.fp, sent.fn, sent.empty_with_box) == (2, 2, 1, 2)
    assert sent.false_positives == [(2, 0), (3, 0)]  # most confident first


def test_an_image_without_boxes_or_predictions_changes_nothing():
    labelled, found = [truth([0, 0, 10, 10])], [predicted([0, 0, 10, 10, 0.5])]
    alone = evaluate(labelled, found, num_classes=1)
    evaluation = evaluate([*labelled, truth()], [*found, predicted()], num_classes=1)
    assert evaluation.ap(0) == alone.ap(0) == pytest.approx(1.0)
    sent = served(evaluation, [*labelled, truth()], [*found, predicted()], threshold=0.1)
    assert (sent.tp, sent.fp, sent.fn, sent.empty_images, sent.empty_with_box) == (1, 0, 0, 1, 0)


def test_no_predictions_at_all_give_zero_and_a_class_without_boxes_has_no_ap():
    evaluation = evaluate([truth([0, 0, 10, 10])], [predicted()], num_classes=2)
    assert evaluation.ap(0) == 0.0
    assert evaluation.ap(1) is None and (evaluation.precision[:, 1] == -1).all()
    assert evaluate([], [], num_classes=1).ap(0) is None


def test_a_duplicate_prediction_is_a_false_positive():
    # 0.9 and 0.8 on the same box: the first takes it, the second finds it taken.
    # TP then FP: precision 1, 1/2 at recall 1, 1; interpolated 1 at every point: AP 1.
    labelled = [truth([0, 0, 10, 10])]
    found = [predicted([0, 0, 10, 10, 0.8], [0, 0, 10, 10, 0.9])]
    matches = match_image(labelled[0], found[0])
    assert (matches.predicted[0] == [-1, 0]).all() and (matches.truth[0] == [1]).all()
    evaluation = evaluate(labelled, found, num_classes=1)
    assert evaluation.ap(0) == pytest.approx(1.0)
    sent = served(evaluation, labelled, found, threshold=0.5)
    assert (sent.tp, sent.fp, sent.fn, sent.false_positives) == (1, 1, 0, [(0, 0)])


def test_a_missed_box_whose_match_is_below_the_threshold():
    labelled, found = [truth([0, 0, 10, 10])], [predicted([0, 0, 10, 10, 0.2])]
    evaluation = evaluate(labelled, found, num_classes=1)
    sent = served(evaluation, labelled, found, threshold=0.5)
    assert (sent.tp, sent.fp, sent.fn, sent.misses) == (0, 0, 1, [(0, 0)])


def test_classes_match_only_their_own_unless_every_box_is_one_class():
    labelled = [truth([0, 0, 10, 10], [20, 0, 10, 10], classes=[0, 1])]
    crossed = [predicted([0, 0, 10, 10, 0.9], [20, 0, 10, 10, 0.8], classes=[1, 0])]
    evaluation = evaluate(labelled, crossed, num_classes=2)
    assert evaluation.ap(0) == 0.0 and evaluation.ap(1) == 0.0
    sent = served(evaluation, labelled, crossed, threshold=0.5)
    assert (sent.tp, sent.fp, sent.fn) == (0, 2, 2)

    agnostic = [truth([0, 0, 10, 10], [20, 0, 10, 10])]
    one_class = [predicted([0, 0, 10, 10, 0.9], [20, 0, 10, 10, 0.8])]
    evaluation = evaluate(agnostic, one_class, num_classes=1)
    assert evaluation.ap(0) == pytest.approx(1.0)


def test_a_label_outside_the_scored_classes_is_a_false_positive():
    labelled = [truth([0, 0, 10, 10])]
    found = [predicted([0, 0, 10, 10, 0.9], [0, 0, 10, 10, 0.8], classes=[-1, 0])]
    evaluation = evaluate(labelled, found, num_classes=1)
    assert evaluation.ap(0) == pytest.approx(1.0)  # the -1 box is not in class 0's curve
    sent = served(evaluation, labelled, found, threshold=0.5)
    assert (sent.tp, sent.fp, sent.fn, sent.false_positives) == (1, 1, 0, [(0, 0)])
    with pytest.raises(ValueError, match="confidence"):
        evaluate(labelled, [truth([0, 0, 10, 10])], num_classes=1)


def test_a_prediction_takes_the_free_box_it_overlaps_most():
    # 0.9 overlaps A by 7/13 and B by 9/11: it takes B. 0.8 sits on B, which is taken, and
    # overlaps A by 6/14: it takes A at an IoU threshold of 0.4, nothing at 0.7.
    labelled = [truth([0, 0, 10, 10], [4, 0, 10, 10])]
    found = [predicted([3, 0, 10, 10, 0.9], [4, 0, 10, 10, 0.8])]
    ious = box_iou(found[0].xywh, labelled[0].xywh)
    assert ious[0] == pytest.approx([7 / 13, 9 / 11]) and ious[1] == pytest.approx([6 / 14, 1])
    matches = match_image(labelled[0], found[0], np.array([0.4, 0.7]))
    assert matches.predicted.tolist() == [[1, 0], [1, -1]]
    assert matches.truth.tolist() == [[1, 0], [-1, 0]]


@pytest.mark.slow  # a subprocess or seconds of work: the full tier
def test_the_same_figures_as_fiftyone_on_random_boxes(tmp_path):
    """Random boxes in 2 classes, some confidences tied: FiftyOne's `evaluate_detections`
    (method "coco") and these functions give the same precision and the same matches."""
    from imagine_assist.training.exports import fiftyone

    fo = fiftyone()
    rng = np.random.default_rng(5)
    classes = ["a", "b"]
    labelled, found, samples = [], [], []
    for index in range(40):
        n_truth, n_found = rng.integers(0, 5), rng.integers(0, 12)
        xy = rng.uniform(0, 0.7, (n_truth, 2))
        boxes = np.hstack([xy, rng.uniform(0.1, 0.3, (n_truth, 2))])
        # predictions near the labelled boxes, and some anywhere
        near = boxes[rng.integers(0, max(n_truth, 1), n_found)] if n_truth else None
        guesses = rng.uniform(0, 0.7, (n_found, 4)) * [1, 1, 0.4, 0.4] + [0, 0, 0.1, 0.1]
        if near is not None:
            close = rng.random(n_found) < 0.7
            guesses[close] = near[close] + rng.normal(0, 0.03, (close.sum(), 4))
        scores = np.round(rng.uniform(0.001, 1, n_found), 1 if index % 2 else 6)
        truth_ids, found_ids = rng.integers(0, 2, n_truth), rng.integers(0, 2, n_found)
        labelled.append(Boxes(boxes, truth_ids))
        found.append(Boxes(guesses, found_ids, scores))
        sample = fo.Sample(filepath=str(tmp_path / f"{index}.png"))
        sample["ground_truth"] = fo.Detections(
            detections=[
                fo.Detection(label=classes[c], bounding_box=b.tolist())
                for b, c in zip(boxes, truth_ids, strict=True)
            ]
        )
        sample["predictions"] = fo.Detections(
            detections=[
                fo.Detection(label=classes[c], bounding_box=b.tolist(), confidence=float(s))
                for b, c, s in zip(guesses, found_ids, scores, strict=True)
            ]
        )
        samples.append(sample)
    dataset = fo.Dataset()
    try:
        dataset.add_samples(samples, progress=False)
        results = dataset.evaluate_detections(
            "predictions",
            gt_field="ground_truth",
            eval_key="check",
            method="coco",
            iou=0.5,
            classwise=True,
            compute_mAP=True,
            classes=classes,
            progress=False,
        )
        expected_tp = dataset.values("predictions.detections.check")
        expected_precision = np.asarray(results.precision)
    finally:
        dataset.delete()
    evaluation = evaluate(labelled, found, num_classes=2)
    np.testing.assert_array_equal(evaluation.precision, expected_precision)
    row = evaluation.iou_index(0.5)
    for matches, flags in zip(evaluation.matches, expected_tp, strict=True):
        assert [("tp" if m >= 0 else "fp") for m in matches.predicted[row]] == (flags or [])


def test_annotator_time_and_the_cheapest_threshold_counted_by_hand():
    """The 56/101 case: by confidence 0.9 TP, 0.8 FP, 0.7 TP, 0.3 FP over 3 boxes. At 0.75:
    2 shown (1 right, 1 wrong), 2 drawn: 2 x 1.6 + 1.0 + 2 x 7.0 = 18.2 s. From 0.35 to 0.70:
    3 shown (2 right), 1 drawn: 4.8 + 1.0 + 7.0 = 12.8 s, the least; from scratch 21 s."""
    from imagine_assist.review.annotator_time import annotator_time

    labelled = [truth([10, 10, 30, 30], [60, 60, 30, 30]), truth([20, 20, 30, 30]), truth()]
    found = [
        predicted([10, 10, 30, 30, 0.9]),
        predicted([20, 20, 30, 30, 0.7]),
        predicted([5, 5, 25, 25, 0.8], [50, 50, 30, 30, 0.3]),
    ]
    evaluation = evaluate(labelled, found, num_classes=1)
    cost = annotator_time(evaluation, labelled, found, threshold=0.75)
    assert cost.seconds == pytest.approx(18.2)
    assert cost.from_scratch == pytest.approx(21.0)
    assert (cost.cheapest_threshold, cost.cheapest_seconds) == (0.35, pytest.approx(12.8))


def test_counts_of_one_class():
    # class 0: two boxes, one found (0.9) and one found too weakly (0.3); class 1: one box,
    # found (0.8), and a false alarm (0.7). At 0.5, class 0 has TP 1, FN 1; class 1 TP 1, FP 1.
    labelled = [truth([0, 0, 10, 10], [20, 0, 10, 10], [40, 0, 10, 10], classes=[0, 0, 1])]
    found = [
        predicted(
            [0, 0, 10, 10, 0.9], [20, 0, 10, 10, 0.3], [40, 0, 10, 10, 0.8], [60, 0, 9, 9, 0.7],
            classes=[0, 0, 1, 1],
        )
    ]  # fmt: skip
    evaluation = evaluate(labelled, found, num_classes=2)
    zero = served(evaluation, labelled, found, threshold=0.5, class_id=0)
    one = served(evaluation, labelled, found, threshold=0.5, class_id=1)
    both = served(evaluation, labelled, found, threshold=0.5)
    assert (zero.tp, zero.fp, zero.fn) == (1, 0, 1)
    assert (one.tp, one.fp, one.fn) == (1, 1, 0)
    assert (both.tp, both.fp, both.fn) == (2, 1, 1)
