"""What a fish model's false positives on a labelled set are: a labelled fish boxed loosely,
or something nobody labelled.

    python tests/benchmarks/fish_false_positives.py YOLO_FOLDER MODEL.onnx [--threshold 0.4]
        [--sheet sheet.png]

YOLO_FOLDER holds images/ and labels/ (e.g. Fish4Knowledge valid); MODEL is a served fish
model (the bundled `src/imagine_assist/models/bundled/fish/model.onnx`). Every box the model
sends at `--threshold` or above that matches no labelled fish at IoU 0.5 counts against
AP50; this sorts them by their best IoU with any labelled fish: 0.3-0.5 is a labelled fish
boxed loosely (a localisation miss), 0.5 or more a second box on a fish another box already
took, under 0.1 a box on nothing labelled, which a person must look at to call (`--sheet`
writes the surest of them, zoomed, for that; keep it out of the repository, it is cut from
the dataset's images). A diagnostic: it says whether AP50 on
the set is held back by the boxes or by the labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from imagine_assist.images import read_image
from imagine_assist.models import detection_metrics as metrics
from imagine_assist.models.borders import picture_box
from imagine_assist.models.detector import load_detector
from imagine_assist.training.centernet import read_yolo_images

DUPLICATE = "a second box on a fish another box already took (IoU >= 0.5)"
BINS = (
    (0.3, 0.5, "a labelled fish boxed loosely (IoU 0.3-0.5)"),
    (0.1, 0.3, "overlapping a labelled fish (IoU 0.1-0.3)"),
    (0.0, 0.1, "on nothing labelled (IoU under 0.1)"),
)
SHEET_TILES, HALF_WINDOW, TILE = 24, 30, 160


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--threshold", type=float, default=0.4)
    parser.add_argument("--sheet", type=Path, help="a contact sheet of the unlabelled boxes")
    args = parser.parse_args()
    detector = load_detector(args.model)
    counts = {name: 0 for name in (DUPLICATE, *(name for _, _, name in BINS))}
    true_positives, unlabelled = 0, []
    frames = read_yolo_images(args.folder / "images")
    for frame in frames:
        image = read_image(frame.image)
        height, width = image.shape[:2]
        x0, y0, x1, y1 = picture_box(image)
        sent = detector(np.ascontiguousarray(image[y0:y1, x0:x1]), args.threshold)
        xyxy = sent.xyxy + [x0, y0, x0, y0]
        cx, cy, w, h = (frame.cxcywh * [width, height, width, height]).T
        truth = metrics.Boxes(np.stack([cx - w / 2, cy - h / 2, w, h], 1), np.zeros(len(cx)))
        predicted = metrics.Boxes(
            np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1),
            np.zeros(len(xyxy)),
            sent.confidence,
        )
        # the matching AP50 itself uses, at IoU 0.5 (the first threshold)
        took = metrics.match_image(truth, predicted).predicted[0]
        ious = metrics.box_iou(predicted.xywh, truth.xywh)
        best = ious.max(axis=1) if len(truth) else np.zeros(len(predicted))
        for index in range(len(predicted)):
            if took[index] >= 0:
                true_positives += 1
            elif best[index] >= 0.5:
                counts[DUPLICATE] += 1
            else:
                name = next(name for low, high, name in BINS if best[index] >= low)
                counts[name] += 1
                if best[index] < 0.1:
                    unlabelled.append((float(sent.confidence[index]), frame.image, xyxy[index]))
    false_positives = sum(counts.values())
    print(
        f"{len(frames)} images, {true_positives} boxes on a labelled fish, {false_positives} "
        f"false positives at {args.threshold}:"
    )
    for name, count in counts.items():
        print(f"  {count:4d} ({count / max(false_positives, 1):.0%}) {name}")
    if args.sheet and unlabelled:
        write_sheet(sorted(unlabelled, key=lambda item: -item[0])[:SHEET_TILES], args.sheet)
        shown = min(SHEET_TILES, len(unlabelled))
        print(f"the {shown} surest boxes on nothing labelled: {args.sheet}")


def write_sheet(boxes: list, path: Path) -> None:
    """Each box zoomed with the water around it, its score written in, six to a row."""
    tiles = []
    for score, image_path, (bx0, by0, bx1, by1) in boxes:
        image = read_image(image_path)
        cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
        left, top = int(max(0, cx - HALF_WINDOW)), int(max(0, cy - HALF_WINDOW))
        crop = np.ascontiguousarray(
            image[top : int(cy + HALF_WINDOW), left : int(cx + HALF_WINDOW)]
        )
        corner = (int(bx0 - left), int(by0 - top))
        cv2.rectangle(crop, corner, (int(bx1 - left), int(by1 - top)), (255, 0, 0), 1)
        tile = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_NEAREST)
        cv2.putText(tile, f"{score:.2f}", (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1)
        tiles.append(tile)
    while len(tiles) % 6:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i : i + 6]) for i in range(0, len(tiles), 6)])
    cv2.imwrite(str(path), sheet[:, :, ::-1])


if __name__ == "__main__":
    main()
