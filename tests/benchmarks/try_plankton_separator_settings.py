"""Are the separator's three settings (instance threshold, NMS IoU, the share of an
instance that makes it a duplicate) where they should be?

    .venv/bin/python tests/benchmarks/try_plankton_separator_settings.py VIGNETTES \
        [--thresholds 0.15 0.25 0.35] [--ious 0.5 0.7 0.9] [--duplicates 0.4 0.6 0.8]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`). Every combination is scored (object
F1 at IoU 0.5) on 200 composites of the organisms the separator *trained* on (seed 5000),
and the settings are chosen there; only the chosen ones and the served ones are then scored
on the 300 composites of the held-out organisms (seed 4000) behind docs/plankton.md's
separator figures, so the held-out figure chooses nothing. The network runs once per
vignette: its raw outputs are kept and every combination reads them. An experiment, not a
benchmark.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
from pathlib import Path

import numpy as np


class RememberingSession:
    """An ONNX Runtime session that answers a repeated input from memory: every setting
    sees the same network outputs, and the network runs once per vignette."""

    def __init__(self, session) -> None:
        self.session, self.memory = session, {}

    def run(self, outputs, feeds):
        key = hashlib.sha1(next(iter(feeds.values())).tobytes()).hexdigest()
        if key not in self.memory:
            self.memory[key] = self.session.run(outputs, feeds)
        return self.memory[key]

    def __getattr__(self, name):
        return getattr(self.session, name)


class SetSeparator:
    """The served separator with its settings named."""

    def __init__(self, segmenter, threshold: float, iou: float, duplicate: float) -> None:
        self.segmenter, self.threshold, self.iou, self.duplicate = (
            segmenter,
            threshold,
            iou,
            duplicate,
        )

    def __call__(self, image: np.ndarray):
        from imagine_assist.models.separate import organism_mask, partition_instances

        self.segmenter.iou = self.iou
        instances = self.segmenter(image, self.threshold)
        foreground = organism_mask(image, 30)
        return partition_instances(instances, foreground, 30, self.duplicate)


def scores(separators: dict, organisms, n: int, seed: int) -> dict:
    from imagine_assist.training.plankton_real import evaluate_real_composites

    report = evaluate_real_composites(separators, organisms, n, seed)
    return {name: report[name] for name in separators}


def line(name: str, report: dict) -> str:
    parts = [f"{part} F1 {report[part]['f1']:.3f}" for part in ("all", "multiple", "single")]
    return (
        f"{name}: {', '.join(parts)}; over-split {report['all']['over_split_rate']:.3f}, "
        f"under-split {report['all']['under_split_rate']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.15, 0.25, 0.35, 0.5])
    parser.add_argument("--ious", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--duplicates", type=float, nargs="+", default=[0.3, 0.45, 0.6, 0.8])
    parser.add_argument("--tune", type=int, default=200)
    parser.add_argument("--test", type=int, default=300)
    args = parser.parse_args()

    from imagine_assist.models.plankton import SEPARATOR_THRESHOLD, load_separator
    from imagine_assist.samples.real_plankton import load_organisms, organism_split
    from imagine_assist.training.plankton_real import LABELS, HandLabels

    segmenter = load_separator(threads=2).segmenter
    segmenter.session = RememberingSession(segmenter.session)
    served = (SEPARATOR_THRESHOLD, segmenter.iou, 0.6)
    grid = set(itertools.product(args.thresholds, args.ious, args.duplicates)) | {served}
    separators = {f"threshold {t:g}, iou {i:g}, duplicate {d:g}": (t, i, d) for t, i, d in grid}
    labels = HandLabels.read(LABELS)
    organisms = load_organisms(str(args.vignettes), labels.training_singles())
    trained = [o for o in organisms if organism_split(o.kind) == "train"]
    held_out = [o for o in organisms if organism_split(o.kind) == "held_out"]
    print(f"{len(trained)} trained organisms, {len(held_out)} held out", flush=True)

    def build(names):
        return {name: SetSeparator(segmenter, *separators[name]) for name in names}

    tuned = scores(build(separators), trained, args.tune, 5000)
    segmenter.session.memory.clear()
    ranked = sorted(tuned, key=lambda name: -tuned[name]["all"]["f1"])
    served_name = next(n for n, s in separators.items() if s == served)
    print(f"on {args.tune} composites of trained organisms (seed 5000), best first:")
    for name in ranked[:15]:
        print("  " + line(name, tuned[name]))
    print("  served: " + line(served_name, tuned[served_name]), flush=True)

    chosen = ranked[0]
    test = scores(build({chosen, served_name}), held_out, args.test, 4000)
    print(f"on {args.test} composites of held-out organisms (seed 4000):")
    print("  served: " + line(served_name, test[served_name]))
    print("  chosen: " + line(chosen, test[chosen]), flush=True)


if __name__ == "__main__":
    main()
