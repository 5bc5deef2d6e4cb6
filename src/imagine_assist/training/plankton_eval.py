"""Held-out scores for the plankton models: the recall and precision for "multiple" of the
classifier, and of the tag as served (the classifier and a cut into two organisms or more:
`functions.separator`), and object-level F1 (IoU 0.5) with over- and under-split
rates for the trained separator and the watershed baseline, on vignettes generated from a
seed of their own."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imagine_assist.models.separate import (
    crop_scale_bar,
    score_separation,
    separate_touching,
    summarise,
)
from imagine_assist.samples.plankton import generate_plankton


class SeparationScores:
    """Object-level scores (IoU 0.5) of several separators on vignettes with exact masks,
    pooled and by vignette class, and each separator's speed."""

    def __init__(self, separators: dict) -> None:
        self.separators = separators
        self.scores = {name: {"all": [], "single": [], "multiple": []} for name in separators}
        self.seconds = dict.fromkeys(separators, 0.0)
        self.organisms: dict[str, list[int]] = {name: [] for name in separators}
        self.vignettes = 0

    def add(self, sample) -> np.ndarray:
        """Score every separator on one sample; return the vignette as they saw it (the
        scale-bar strip cut)."""
        rows = sample.scale_bar_rows
        image = crop_scale_bar(sample.image, rows)
        truth = [obj.mask[: obj.mask.shape[0] - rows] for obj in sample.objects]
        for name, separate in self.separators.items():
            started = time.perf_counter()
            predicted = separate(image)
            self.seconds[name] += time.perf_counter() - started
            self.organisms[name].append(len(predicted))
            score = score_separation(predicted, truth)
            self.scores[name]["all"].append(score)
            self.scores[name][sample.vignette_class].append(score)
        self.vignettes += 1
        return image

    def report(self) -> dict:
        report = {}
        for name, by_set in self.scores.items():
            report[name] = {key: summarise(value) for key, value in by_set.items()}
            rate = self.vignettes / max(self.seconds[name], 1e-9)
            report[name]["vignettes_per_second"] = round(rate, 1)
        return report


def _multiple_scores(said: list[bool], truth: list[bool]) -> dict:
    tp = sum(s and t for s, t in zip(said, truth, strict=True))
    fp = sum(s and not t for s, t in zip(said, truth, strict=True))
    fn = sum(t and not s for s, t in zip(said, truth, strict=True))
    correct = sum(s == t for s, t in zip(said, truth, strict=True))
    return {
        # None where nothing can be said (no multiples; none called), as `tag_scores` gives
        "recall_multiple": tp / (tp + fn) if tp + fn else None,
        "precision_multiple": tp / (tp + fp) if tp + fp else None,
        "accuracy": correct / max(len(truth), 1),
    }


def evaluate_plankton(
    n: int,
    seed: int,
    separator: str | Path | None = None,
    classifier: str | Path | None = None,
    threshold: float | None = None,
) -> dict:
    from imagine_assist.models.plankton import load_classifier, load_separator

    separators = {"watershed": separate_touching}
    if separator:
        separators["model"] = load_separator(separator)
    vignette_classifier = load_classifier(classifier) if classifier else None
    separation = SeparationScores(separators)
    classifier_seconds = 0.0
    p_multiple, truth = [], []
    samples = generate_plankton(n, seed=seed)
    for sample in tqdm(samples, total=n, desc="evaluating plankton", unit="vignette"):
        image = separation.add(sample)
        if vignette_classifier is not None:
            started = time.perf_counter()
            p_multiple.append(vignette_classifier.p_multiple(image))
            classifier_seconds += time.perf_counter() - started
        truth.append(sample.multiple)
    report: dict = {"vignettes": n, "seed": seed, "multiples": sum(truth)}
    report |= separation.report()
    if vignette_classifier is not None:
        # the classifier's own threshold (written into its file when it was trained)
        threshold = vignette_classifier.multiple_threshold if threshold is None else threshold
        said = [p >= threshold for p in p_multiple]
        report["classifier"] = _multiple_scores(said, truth) | {"threshold": threshold}
        rate = n / max(classifier_seconds, 1e-9)
        report["classifier"]["vignettes_per_second"] = round(rate, 1)
        # The tag plankton-separator sends: over the threshold, and cut in two or more
        # (`functions.separator`) by the separator it serves with.
        cut = separation.organisms["model" if separator else "watershed"]
        said = [s and count >= 2 for s, count in zip(said, cut, strict=True)]
        report["tag"] = _multiple_scores(said, truth) | {"threshold": threshold}
    return report
