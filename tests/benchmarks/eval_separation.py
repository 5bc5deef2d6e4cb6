"""The classical watershed separator on held-out synthetic ZooScan vignettes.

    .venv/bin/python tests/benchmarks/eval_separation.py [-n 200] [--seed 5150]

Reports the object-level F1 at IoU 0.5 with over- and under-split rates, and vignettes
per second. The seed is used by no development run. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5150)
    args = parser.parse_args()

    from imagine_assist.models.separate import (
        crop_scale_bar,
        score_separation,
        separate_touching,
        summarise,
    )
    from imagine_assist.samples import generate_plankton

    samples = list(generate_plankton(args.n, seed=args.seed))
    scores = {"all": [], "single": [], "multiple": []}
    tagged = {"tp": 0, "fp": 0, "fn": 0}  # "multiple" as the tag the function sends
    started = time.perf_counter()
    for sample in samples:
        rows = sample.scale_bar_rows
        predicted = separate_touching(crop_scale_bar(sample.image, rows))
        truth = [o.mask[: o.mask.shape[0] - rows] for o in sample.objects]
        score = score_separation(predicted, truth)
        scores["all"].append(score)
        scores[sample.vignette_class].append(score)
        said_multiple = len(predicted) >= 2
        tagged["tp"] += said_multiple and sample.multiple
        tagged["fp"] += said_multiple and not sample.multiple
        tagged["fn"] += sample.multiple and not said_multiple
    seconds = time.perf_counter() - started
    report = {
        "vignettes": len(samples),
        "multiples": len(scores["multiple"]),
        "watershed": {key: summarise(value) for key, value in scores.items()},
        "multiple_tag": {
            "recall": tagged["tp"] / max(tagged["tp"] + tagged["fn"], 1),
            "precision": tagged["tp"] / max(tagged["tp"] + tagged["fp"], 1),
        },
        "vignettes_per_second": round(len(samples) / seconds, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
