"""Try the default fish model on the few real frames in ../shared/data/real (when present).

    .venv/bin/python tests/benchmarks/try_real_images.py [--real DIR] [--threshold 0.25]

The real labels have one class ("fish"), so matching is class-agnostic, at IoU 0.5.
A sanity check of the domain gap, not a benchmark: ten frames say little.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def yolo_boxes(label_file: Path, width: int, height: int) -> np.ndarray:
    rows = [line.split() for line in label_file.read_text().splitlines() if line.strip()]
    boxes = []
    for _, cx, cy, w, h in rows:
        cx, cy, w, h = float(cx) * width, float(cy) * height, float(w) * width, float(h) * height
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.array(boxes).reshape(-1, 4)


def matches(truth: np.ndarray, found: np.ndarray, iou: float = 0.5) -> int:
    import supervision as sv

    if len(truth) == 0 or len(found) == 0:
        return 0
    overlaps = sv.box_iou_batch(truth, found)
    matched = 0
    while overlaps.size and overlaps.max() >= iou:
        i, j = np.unravel_index(overlaps.argmax(), overlaps.shape)
        matched += 1
        overlaps[i, :], overlaps[:, j] = -1, -1
    return matched


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", default=str(Path(__file__).parents[3] / "shared/data/real"))
    parser.add_argument("--threshold", type=float, default=0.25)
    args = parser.parse_args()
    images = sorted((Path(args.real) / "fish" / "images").glob("*.jpg"))
    if not images:
        raise SystemExit(f"no real fish images under {args.real}")

    from imagine_assist.functions.catalog import load_function
    from imagine_assist.images import read_image

    function = load_function("fish-detector")
    truth_total = found_total = matched_total = 0
    print("| image | fish labelled | boxes found | matched (IoU 0.5) |\n|---|---|---|---|")
    for path in images:
        image = read_image(path)
        height, width = image.shape[:2]
        label = path.parent.parent / "labels" / f"{path.stem}.txt"
        truth = yolo_boxes(label, width, height)
        found = function.detect(image, args.threshold).xyxy
        matched = matches(truth, found)
        truth_total, found_total = truth_total + len(truth), found_total + len(found)
        matched_total += matched
        print(f"| {path.name[:40]} | {len(truth)} | {len(found)} | {matched} |")
    print(
        f"\nrecall {matched_total}/{truth_total}, precision {matched_total}/{found_total} "
        f"at threshold {args.threshold}"
    )


if __name__ == "__main__":
    main()
