"""What correcting a detector's pre-annotations costs an annotator, against drawing every
box, and the served threshold at which it costs least.

Costs per box, from published timings:
- drawing a box: 7.0 s (extreme clicking, which CVAT offers as drawing a rectangle "by 4
  points": Papadopoulos et al., ICCV 2017);
- judging a shown box: 1.6 s (box verification: Papadopoulos et al., CVPR 2016);
- deleting a wrong box adds 1.0 s: our assumption, a key press after the judgement.
A box with the wrong label counts as wrong and its object as drawn again: an upper bound,
as relabelling is quicker.

A shown box pays for itself when it is right more often than (JUDGE_S + FIX_S) /
(DRAW_S + FIX_S) = 0.325 of the time: a pre-annotation wrong more than two times in three
costs the annotator more than none.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagine_assist.models.detection_metrics import Boxes, Evaluation, served

DRAW_S = 7.0
JUDGE_S = 1.6
FIX_S = 1.0
THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(1, 20))  # 0.05 ... 0.95


def correction_seconds(right: int, wrong: int, missed: int) -> float:
    """Seconds to correct `right` + `wrong` shown boxes and draw the `missed` objects."""
    return (right + wrong) * JUDGE_S + wrong * FIX_S + missed * DRAW_S


@dataclass(frozen=True)
class AnnotatorTime:
    threshold: float
    seconds: float  # correcting the boxes sent at `threshold`
    from_scratch: float  # drawing every box
    cheapest_threshold: float  # the lowest of THRESHOLDS (and `threshold`) costing least
    cheapest_seconds: float


def annotator_time(
    evaluation: Evaluation,
    truth: list[Boxes],
    predicted: list[Boxes],
    threshold: float,
    iou: float = 0.5,
) -> AnnotatorTime:
    def cost(at: float) -> float:
        sent = served(evaluation, truth, predicted, at, iou)
        return correction_seconds(sent.tp, sent.fp, sent.fn)

    costs = {at: cost(at) for at in sorted({*THRESHOLDS, threshold})}
    cheapest = min(costs, key=lambda at: (costs[at], at))
    boxes = sum(len(labelled) for labelled in truth)
    return AnnotatorTime(threshold, costs[threshold], boxes * DRAW_S, cheapest, costs[cheapest])
