"""How big the fish of each held-out DeepFish habitat are, which of them the model finds at
all, and what running it at another input size does, habitat by habitat.

    python tests/benchmarks/fish_scale_probe.py DATASET MODEL.pt [--sizes 384,512,640]

DATASET is a fish run's `dataset` folder (its `val` and `test-deepfish`, letterbox bars cut
as the served detector cuts them); MODEL a fish CenterNet checkpoint (the bundled
`src/imagine_assist/models/bundled/fish/model.pt`). A diagnostic: it says why a habitat
scores low (fish too small to find, found but boxed loosely, or not found at all), and
whether the fix is the input size or the data. The held-out habitats never choose a model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from fish_passes import read_sets

SIZE_BUCKETS = ((0.0, 0.1), (0.1, 0.3), (0.3, 1.01))  # longest box side / picture side
FLOOR = 0.05  # every peak down to this score: "found at all"


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def found_at_all(model, frames) -> tuple[np.ndarray, np.ndarray]:
    """Per labelled fish: its longest side over the input's side, and the best IoU of any
    box the model gives at `FLOOR` or above."""
    from imagine_assist.training import centernet

    sides, best = [], []
    for truth, _, boxes, _, _ in centernet.predict(model, frames, threshold=FLOOR):
        if not len(truth):
            continue
        sides.extend((truth[:, 2:] - truth[:, :2]).max(1) / model.imgsz)
        best.extend(pairwise_iou(truth, boxes).max(1) if len(boxes) else np.zeros(len(truth)))
    return np.array(sides), np.array(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--sizes", default="384,512,640", help="input sizes to score")
    args = parser.parse_args()
    from imagine_assist.training import centernet

    model = centernet.load_checkpoint(args.model)
    sets = read_sets(args.dataset)
    habitats: dict[str, list] = {}
    for frame in sets["held-out"]:
        habitats.setdefault(frame.image.name.split("_")[0], []).append(frame)

    print(f"fish found at all (a box at IoU >= 0.5, score >= {FLOOR}), at {model.imgsz} px")
    print("habitat | fish | " + " | ".join(f"side {lo:.1f}-{hi:.1f}" for lo, hi in SIZE_BUCKETS))
    for habitat, frames in sorted(habitats.items()):
        sides, best = found_at_all(model, frames)
        cells = []
        for lo, hi in SIZE_BUCKETS:
            inside = (sides >= lo) & (sides < hi)
            cells.append(
                f"{inside.sum()} fish, {(best[inside] >= 0.5).mean():.2f} found"
                if inside.any()
                else "none"
            )
        print(f"{habitat} | {len(sides)} | " + " | ".join(cells), flush=True)

    print("\nAP50 by input size (the model as trained at", model.imgsz, "px)")
    print("size | validation | " + " | ".join(sorted(habitats)))
    trained = model.imgsz
    for size in (int(s) for s in args.sizes.split(",")):
        model.imgsz = size  # fully convolutional: the letterbox square is all that changes
        cells = [f"{centernet.evaluate(model, sets['val'])['mAP50']:.3f}"]
        cells += [
            f"{centernet.evaluate(model, habitats[h])['mAP50']:.3f}" for h in sorted(habitats)
        ]
        print(f"{size}{' (trained)' if size == trained else ''} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
