"""What a fish model's false positives on a labelled set are: a labelled fish boxed loosely,
or something nobody labelled.

    python tests/benchmarks/fish_false_positives.py YOLO_FOLDER MODEL.onnx [--threshold 0.4]
        [--sheet sheet.png]

YOLO_FOLDER holds images/ and labels/ (e.g. Fish4Knowledge valid); MODEL is a served fish
model (the bundled `src/imagine_assist/models/bundled/fish/model.onnx`). Every box the model
sends at `--threshold` or above that matches no labelled fish at IoU 0.5 counts against
AP50; this sorts them by their best IoU with any labelled fish: 0.3-0.5 is a labelled fish
boxed loosely (a localisation miss), under 0.1 is a box on nothing labelled, which a person
must look at to call (`--sheet` writes the surest of them, zoomed, for that; keep it out of
the repository, it is cut from the dataset's images). A diagnostic: it says whether AP50 on
the set is held back by the boxes or by the labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from fish_scale_probe import pairwise_iou

from imagine_assist.images import read_image
from imagine_assist.models.borders import picture_box
from imagine_assist.models.detector import load_detector

BINS = (
    (0.3, 0.5, "a labelled fish boxed loosely (IoU 0.3-0.5)"),
    (0.1, 0.3, "overlapping a labelled fish (IoU 0.1-0.3)"),
    (0.0, 0.1, "on nothing labelled (IoU under 0.1)"),
)


def labelled_boxes(label: Path, width: int, height: int) -> np.ndarray:
    rows = [line.split() for line in label.read_text().splitlines()] if label.is_file() else []
    boxes = [
        [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
        for cx, cy, w, h in (map(float, row[1:5]) for row in rows if len(row) >= 5)
    ]
    return np.array(boxes, np.float64).reshape(-1, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--threshold", type=float, default=0.4)
    parser.add_argument("--sheet", type=Path, help="a contact sheet of the unlabelled boxes")
    args = parser.parse_args()
    detector = load_detector(args.model)
    counts = {name: 0 for _, _, name in BINS}
    matched, unlabelled = 0, []
    images = sorted(p for p in (args.folder / "images").iterdir() if p.is_file())
    for path in images:
        image = read_image(path)
        height, width = image.shape[:2]
        x0, y0, x1, y1 = picture_box(image)
        sent = detector(np.ascontiguousarray(image[y0:y1, x0:x1]), args.threshold)
        boxes = sent.xyxy + [x0, y0, x0, y0]
        truth = labelled_boxes(args.folder / "labels" / f"{path.stem}.txt", width, height)
        best = pairwise_iou(boxes, truth).max(axis=1) if len(truth) else np.zeros(len(boxes))
        # greedy matching as AP50 counts it: each labelled fish takes one box at most
        taken = set()
        for index in np.argsort(-sent.confidence):
            ious = pairwise_iou(boxes[index : index + 1], truth)[0] if len(truth) else []
            free = [j for j in np.argsort(-np.asarray(ious)) if ious[j] >= 0.5 and j not in taken]
            if free:
                taken.add(free[0])
                matched += 1
                continue
            for low, high, name in BINS:
                if low <= best[index] < high or (high == 0.5 and best[index] >= 0.5):
                    counts[name] += 1
                    break
            if best[index] < 0.1:
                unlabelled.append((float(sent.confidence[index]), path, boxes[index]))
    false = sum(counts.values())
    print(
        f"{len(images)} images, {matched} boxes on a labelled fish, {false} false positives "
        f"at {args.threshold}:"
    )
    for name, count in counts.items():
        print(f"  {count:4d} ({count / max(false, 1):.0%}) {name}")
    print("  (a box at IoU >= 0.5 with a fish another box already took counts as loose)")
    if args.sheet and unlabelled:
        tiles = []
        for score, path, (bx0, by0, bx1, by1) in sorted(unlabelled, reverse=True)[:24]:
            image = read_image(path)
            cx, cy, r = (bx0 + bx1) / 2, (by0 + by1) / 2, 30
            left, top = int(max(0, cx - r)), int(max(0, cy - r))
            crop = np.ascontiguousarray(image[top : int(cy + r), left : int(cx + r)])
            corner = (int(bx0 - left), int(by0 - top))
            cv2.rectangle(crop, corner, (int(bx1 - left), int(by1 - top)), (255, 0, 0), 1)
            tile = cv2.resize(crop, (160, 160), interpolation=cv2.INTER_NEAREST)
            cv2.putText(tile, f"{score:.2f}", (3, 14), 0, 0.45, (255, 255, 0), 1)
            tiles.append(tile)
        while len(tiles) % 6:
            tiles.append(np.zeros_like(tiles[0]))
        sheet = np.vstack([np.hstack(tiles[i : i + 6]) for i in range(0, len(tiles), 6)])
        cv2.imwrite(str(args.sheet), sheet[:, :, ::-1])
        print(f"the {min(24, len(unlabelled))} surest boxes on nothing labelled: {args.sheet}")


if __name__ == "__main__":
    main()
