"""Could the real hand labels themselves teach the single/multiple tag, on the classifier's
own features?

    .venv/bin/python tests/benchmarks/try_plankton_linear_probe.py VIGNETTES [--sizes 224,320]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`). The bundled classifier's weights are
recovered from its ONNX file (`training/from_onnx.py`), and every hand-labelled vignette
(unclear ones left out; scale-bar strip cut as served) gives the 1,280 pooled features its
last layer reads, at each input size. A logistic regression on those features (standardised,
classes weighted by their share) is trained on four fifths of the real vignettes and scores
the fifth, five folds, three shuffles averaged: so every vignette is scored by a probe that
never saw it, and the 17 real multiples can teach. Reported next to the bundled head at the
same size: ROC AUC of "multiple" on the 113 test vignettes and on all, and how many false
multiples it takes to find 8, 12, 14 and 16 of the 17.
An experiment, not a benchmark: its answer on 2026-12-01 is in docs/plankton.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def pooled_features(model, images: list[np.ndarray], size: int) -> np.ndarray:
    import torch

    from imagine_assist.models.vignette_classifier import square_on_white

    body, head = model.model[:-1], model.model[-1]
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), 16):
            batch = np.stack([square_on_white(i, size) for i in images[start : start + 16]])
            x = torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).float() / 255
            out.append(head.pool(head.conv(body(x))).flatten(1).numpy())
    return np.concatenate(out)


def report(name: str, score: np.ndarray, multiple: np.ndarray, test: np.ndarray) -> None:
    from sklearn.metrics import roc_auc_score

    for subset, chosen in (("113 test", test), ("all", np.ones_like(test))):
        s, truth = score[chosen], multiple[chosen]
        found = np.sort(s[truth])[::-1]
        costs = [
            f"{k}/{truth.sum()} at {int(((s >= found[k - 1]) & ~truth).sum())} false"
            for k in (8, 12, 14, 16)
        ]
        print(f"{name:32s} {subset:9s} AUC {roc_auc_score(truth, s):.3f}; " + "; ".join(costs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("--sizes", default="224,320")
    args = parser.parse_args()
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from imagine_assist.models.scale_bar import scale_bar_rows
    from imagine_assist.models.separate import crop_scale_bar
    from imagine_assist.models.store import resolve_model
    from imagine_assist.training.from_onnx import recover_model
    from imagine_assist.training.plankton_real import LABELS, MULTIPLE, UNCLEAR, HandLabels

    torch.set_num_threads(2)
    model = recover_model(resolve_model("plankton", None, name="classifier"))
    labels = HandLabels.read(LABELS)
    names = sorted(n for n, label in labels.labels.items() if label != UNCLEAR)
    images = []
    for name in names:
        rgb = cv2.imread(str(args.vignettes / name), cv2.IMREAD_COLOR)[:, :, ::-1]
        images.append(np.ascontiguousarray(crop_scale_bar(rgb, scale_bar_rows(rgb))))
    multiple = np.array([labels.labels[n] == MULTIPLE for n in names])
    test = np.isin(names, labels.test_vignettes())
    print(f"{len(names)} vignettes, {multiple.sum()} multiples, {test.sum()} test vignettes")
    column = list(model.names.values()).index(MULTIPLE)
    for size in (int(s) for s in args.sizes.split(",")):
        features = pooled_features(model, images, size)
        with torch.inference_mode():
            logits = model.model[-1].linear(torch.from_numpy(features))
        report(f"bundled head @{size}", torch.softmax(logits, 1)[:, column].numpy(), multiple, test)
        for strength in (0.01, 0.1, 1.0):
            scored = np.zeros(len(names))
            for shuffle in range(3):
                folds = StratifiedKFold(5, shuffle=True, random_state=shuffle)
                for train, held in folds.split(features, multiple):
                    mean, std = features[train].mean(0), features[train].std(0) + 1e-6
                    probe = LogisticRegression(C=strength, class_weight="balanced", max_iter=3000)
                    probe.fit((features[train] - mean) / std, multiple[train])
                    scored[held] += probe.decision_function((features[held] - mean) / std) / 3
            report(f"probe @{size}, C={strength}", scored, multiple, test)


if __name__ == "__main__":
    main()
