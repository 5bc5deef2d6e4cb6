"""Would the separator's own evidence make a better single/multiple tag than the classifier?

    .venv/bin/python tests/benchmarks/try_plankton_tag_rules.py VIGNETTES [--composites 200]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`). For every vignette the bundled models
give P(multiple) from the classifier and, from the separator at a low floor, the
confidences of its instances. A logistic rule over [P(multiple), second and third instance
confidence, two or more organisms after partitioning] is fitted on composites of the
held-out real organisms (seed 6000, half multiples), never on the hand labels, and then
scored on the hand-labelled test vignettes (unclear ones left out), next to the classifier
alone. Reports ROC AUC, and recall and precision of "multiple" at a few cuts.
An experiment, not a benchmark: its answer on 2026-11-30 is in docs/plankton.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

FLOOR = 0.05


def features(image: np.ndarray, classifier, separator) -> list[float]:
    from imagine_assist.models.scale_bar import scale_bar_rows
    from imagine_assist.models.separate import crop_scale_bar

    cropped = crop_scale_bar(image, scale_bar_rows(image))
    scores = sorted(map(float, separator.segmenter(cropped, FLOOR).confidence), reverse=True)
    scores += [0.0, 0.0, 0.0]
    return [
        classifier.p_multiple(cropped),
        scores[1],
        scores[2],
        float(len(separator(cropped)) >= 2),
    ]


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 20000) -> np.ndarray:
    design = np.c_[x, np.ones(len(x))]
    weights = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ weights))
        weights -= 0.1 * (design.T @ (p - y) / len(y) + 1e-3 * weights)
    return weights


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = score[positive], score[~positive]
    return float(np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("--composites", type=int, default=200)
    args = parser.parse_args()

    from imagine_assist.models.plankton import load_classifier, load_separator
    from imagine_assist.samples.real_plankton import (
        load_organisms,
        organism_split,
        real_composite_sample,
    )
    from imagine_assist.training.plankton_real import LABELS, MULTIPLE, UNCLEAR, HandLabels

    classifier, separator = load_classifier(threads=1), load_separator(threads=1)
    labels = HandLabels.read(LABELS)
    test = [n for n in labels.test_vignettes() if labels.labels[n] != UNCLEAR]
    x_real = np.array(
        [features(cv2.imread(str(args.vignettes / n)), classifier, separator) for n in test]
    )
    y_real = np.array([labels.labels[n] == MULTIPLE for n in test])
    organisms = [
        o
        for o in load_organisms(str(args.vignettes), labels.training_singles())
        if organism_split(o.kind) == "held_out"
    ]
    samples = [
        real_composite_sample(6000, i, organisms, 0.5, (0.0, 0.0, 1.0), small_partner_share=0.5)
        for i in range(args.composites)
    ]
    x_comp = np.array([features(s.image, classifier, separator) for s in samples])
    y_comp = np.array([s.multiple for s in samples])

    weights = fit_logistic(x_comp, y_comp)
    rule = np.c_[x_real, np.ones(len(x_real))] @ weights
    print(f"rule weights (P, 2nd, 3rd, 2+ organisms, bias): {np.round(weights, 2).tolist()}")
    print(f"{len(test)} real test vignettes, {int(y_real.sum())} multiples")
    print(f"ROC AUC, classifier alone: {roc_auc(x_real[:, 0], y_real):.3f}")
    print(f"ROC AUC, rule: {roc_auc(rule, y_real):.3f}")
    for name, score, cuts in (
        ("classifier", x_real[:, 0], (0.3, 0.51, 0.7)),
        ("rule", rule, (-0.5, 0.0, 0.5)),
    ):
        for cut in cuts:
            tagged = score >= cut
            hits = int((tagged & y_real).sum())
            print(
                f"{name} >= {cut:g}: recall {hits / y_real.sum():.2f}, "
                f"precision {hits / max(int(tagged.sum()), 1):.2f}, "
                f"false multiples {int((tagged & ~y_real).sum())}"
            )


if __name__ == "__main__":
    main()
