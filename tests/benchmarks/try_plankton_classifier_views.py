"""Would the classifier tag real multiples better if it also saw the vignette mirrored or turned?

    .venv/bin/python tests/benchmarks/try_plankton_classifier_views.py VIGNETTES

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`). The bundled classifier scores every
hand-labelled test vignette (unclear ones left out) as served, mirrored left-right, flipped
top-bottom and turned a quarter; the views' mean and maximum are scored too. Reports ROC AUC
and, at the classifier's own threshold, recall of "multiple" and the false multiples.
An experiment, not a benchmark: its answer on 2026-12-01 is in docs/plankton.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

VIEWS = {
    "as served": lambda image: image,
    "mirrored": lambda image: image[:, ::-1],
    "flipped": lambda image: image[::-1],
    "turned": np.rot90,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    args = parser.parse_args()

    from try_plankton_tag_rules import roc_auc  # the sibling script, run from this folder

    from imagine_assist.models.plankton import load_classifier
    from imagine_assist.models.scale_bar import scale_bar_rows
    from imagine_assist.models.separate import crop_scale_bar
    from imagine_assist.training.plankton_real import LABELS, MULTIPLE, UNCLEAR, HandLabels

    classifier = load_classifier(threads=1)
    labels = HandLabels.read(LABELS)
    test = [n for n in labels.test_vignettes() if labels.labels[n] != UNCLEAR]
    scores = {name: [] for name in VIEWS}
    for name in test:
        image = cv2.imread(str(args.vignettes / name))
        image = crop_scale_bar(image, scale_bar_rows(image))
        for view, turn in VIEWS.items():
            scores[view].append(classifier.p_multiple(np.ascontiguousarray(turn(image))))
    table = {view: np.array(values) for view, values in scores.items()}
    table["mean of the 4"] = np.mean(list(table.values()), axis=0)
    table["max of the 4"] = np.max([table[view] for view in VIEWS], axis=0)
    multiple = np.array([labels.labels[n] == MULTIPLE for n in test])
    threshold = classifier.multiple_threshold
    print(f"{len(test)} real test vignettes, {int(multiple.sum())} multiples, P >= {threshold}")
    for view, score in table.items():
        tagged = score >= threshold
        print(
            f"{view}: ROC AUC {roc_auc(score, multiple):.3f}, "
            f"recall {(tagged & multiple).sum() / multiple.sum():.2f}, "
            f"false multiples {int((tagged & ~multiple).sum())}"
        )


if __name__ == "__main__":
    main()
