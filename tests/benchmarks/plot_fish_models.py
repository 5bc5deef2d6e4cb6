"""Two fish models side by side on real cameras, from `imagine-assist evaluate` summaries.

    python tests/benchmarks/plot_fish_models.py --out docs/images/fish-real-cameras.png \
        --model "YOLOv8n (before)" runs/eval/yolo --model "CenterNet (now)" runs/eval/centernet

Each model folder holds one evaluation folder per real set (its `summary.json`), named as
the bars are to be labelled (e.g. `heldout-all`, `habitat-7398`, `f4k-valid`). The plot shows
AP50 per set for each model, and under it precision and recall at the served threshold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read(folder: Path) -> dict[str, dict]:
    return {
        summary.parent.name: json.loads(summary.read_text())
        for summary in sorted(folder.glob("*/summary.json"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs=2, action="append", metavar=("LABEL", "FOLDER"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = [(label, read(Path(folder))) for label, folder in args.model]
    sets = sorted({name for _, runs in models for name in runs})
    width = 0.8 / len(models)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    x = np.arange(len(sets))
    for index, (label, runs) in enumerate(models):
        offset = x + (index - (len(models) - 1) / 2) * width
        ap50 = [runs.get(name, {}).get("AP50", np.nan) for name in sets]
        bars = top.bar(offset, ap50, width, label=label)
        top.bar_label(bars, fmt="%.2f", fontsize=8)
        precision = [runs.get(name, {}).get("precision", np.nan) for name in sets]
        recall = [runs.get(name, {}).get("recall", np.nan) for name in sets]
        bottom.bar(offset, recall, width, label=f"{label}: recall", alpha=0.85)
        bottom.scatter(offset, precision, marker="_", s=300, color="black")
    top.set_ylabel("AP50 (class-agnostic, IoU 0.5)")
    top.set_ylim(0, 1.05)
    top.legend(loc="upper left")
    top.set_title("Fish detectors on real cameras (held-out DeepFish habitats; F4K valid)")
    bottom.set_ylabel("recall (bars), precision (—)\nat the served threshold")
    bottom.set_ylim(0, 1.05)
    bottom.set_xticks(x, sets, rotation=20)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
