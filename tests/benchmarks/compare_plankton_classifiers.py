"""How well do two single/multiple classifiers rank the hand-labelled real multiples?

    cd tests/benchmarks && ../../.venv/bin/python compare_plankton_classifiers.py \
        VIGNETTES CANDIDATE.onnx [BASELINE.onnx]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`). Each classifier (the baseline: the
bundled one) scores every hand-labelled test vignette (unclear ones left out) as served,
the scale-bar strip found and cut first. Reports ROC AUC, how many false multiples a user
who reviews the vignettes in order of P must look at to find 5, 9, 12 and 15 of the real
multiples, and recall and false multiples at each model's own threshold. An experiment,
not a benchmark: its answer on 2026-12-02 is in docs/plankton.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

FOUND = (5, 9, 12, 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("baseline", type=Path, nargs="?")
    args = parser.parse_args()

    from try_plankton_tag_rules import roc_auc  # the sibling script, run from this folder

    from imagine_assist.models.plankton import load_classifier
    from imagine_assist.models.scale_bar import scale_bar_rows
    from imagine_assist.models.separate import crop_scale_bar
    from imagine_assist.models.vignette_classifier import OnnxVignetteClassifier
    from imagine_assist.training.plankton_real import LABELS, MULTIPLE, UNCLEAR, HandLabels

    labels = HandLabels.read(LABELS)
    test = [n for n in labels.test_vignettes() if labels.labels[n] != UNCLEAR]
    multiple = np.array([labels.labels[n] == MULTIPLE for n in test])
    images = []
    for name in test:
        image = cv2.imread(str(args.vignettes / name))
        images.append(crop_scale_bar(image, scale_bar_rows(image)))
    baseline = (
        OnnxVignetteClassifier(args.baseline, threads=1)
        if args.baseline
        else load_classifier(threads=1)
    )
    candidate = OnnxVignetteClassifier(args.candidate, threads=1)
    print(f"{len(test)} real test vignettes, {int(multiple.sum())} multiples")
    for title, classifier in (("baseline", baseline), ("candidate", candidate)):
        score = np.array([classifier.p_multiple(image) for image in images])
        found = np.sort(score[multiple])[::-1]
        costs = [int(((score >= found[k - 1]) & ~multiple).sum()) for k in FOUND]
        tagged = score >= classifier.multiple_threshold
        print(
            f"{title} ({classifier.path.name}, threshold {classifier.multiple_threshold:.3f}): "
            f"ROC AUC {roc_auc(score, multiple):.3f}; false multiples to find "
            + ", ".join(f"{k}: {c}" for k, c in zip(FOUND, costs, strict=True))
            + f"; at its threshold recall {(tagged & multiple).sum() / multiple.sum():.2f}, "
            f"false multiples {int((tagged & ~multiple).sum())}"
        )


if __name__ == "__main__":
    main()
