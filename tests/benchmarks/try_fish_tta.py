"""Would test-time augmentation help the fish model on cameras it never saw?

    .venv/bin/python tests/benchmarks/try_fish_tta.py FOLDER [--views flip half up ...]

FOLDER is a labelled YOLO folder or CVAT export (e.g. the held-out DeepFish habitats, see
docs/models.md). Each run scores the served `fish-detector` as it is, then with each set of
extra views merged in by class-agnostic NMS (IoU 0.5), all through `imagine-assist
evaluate`'s own code, class-agnostic. Views:
- `flip`: the frame mirrored left to right;
- `half`: the frame at half size on a grey canvas of the full size (fish seen smaller, for
  the large fish close to the camera that the misses gallery shows);
- `up`: the frame enlarged 1.6x (fish seen larger).
An experiment, not a benchmark: it reports AP50 and the served figures, not times. Its
answer on 2026-11-30 is in docs/models.md (no view helped).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

GREY = 114  # ultralytics' letterbox fill


def mirrored(detector):
    def detect(image: np.ndarray, threshold: float) -> sv.Detections:
        found = detector(np.ascontiguousarray(image[:, ::-1]), threshold)
        if len(found):
            x1, y1, x2, y2 = found.xyxy.T
            width = image.shape[1]
            found.xyxy = np.stack([width - x2, y1, width - x1, y2], axis=1)
        return found

    return detect


def rescaled(detector, factor: float):
    def detect(image: np.ndarray, threshold: float) -> sv.Detections:
        height, width = image.shape[:2]
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        view = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if factor < 1:  # the smaller frame sits on a canvas of the full size
            canvas = np.full_like(image, GREY)
            canvas[: view.shape[0], : view.shape[1]] = view
            view = canvas
        found = detector(view, threshold)
        if len(found):
            found.xyxy = found.xyxy / factor
        return found

    return detect


def with_views(detector, views: list[str]):
    extra = {"flip": mirrored, "half": lambda d: rescaled(d, 0.5), "up": lambda d: rescaled(d, 1.6)}
    detectors = [detector] + [extra[view](detector) for view in views]

    def detect(image: np.ndarray, threshold: float) -> sv.Detections:
        found = [d(image, threshold) for d in detectors]
        merged = (
            sv.Detections.merge([f for f in found if len(f)]) if any(map(len, found)) else found[0]
        )
        return merged.with_nms(threshold=0.5, class_agnostic=True) if len(merged) else merged

    return detect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument(
        "--views",
        nargs="*",
        default=["flip", "half", "up", "flip,half,up"],
        help="view sets to try, comma-separated within a set",
    )
    args = parser.parse_args()

    from imagine_assist.functions.catalog import load_function
    from imagine_assist.review.evaluate import evaluate_function

    function = load_function("fish-detector")
    served = function.detector
    print("| views | AP50 | AP50-95 | precision | recall | empty frames with a box |")
    print("|---|---|---|---|---|---|")
    for views in ["served"] + args.views:
        function.detector = served if views == "served" else with_views(served, views.split(","))
        with tempfile.TemporaryDirectory() as work:
            facts = evaluate_function(
                args.folder, function, Path(work) / "out", Path(work), class_agnostic=True
            ).facts
        print(
            f"| {views} | {facts['AP50']:.3f} | {facts['AP50-95']:.3f} | {facts['precision']:.3f}"
            f" | {facts['recall']:.3f}"
            f" | {facts['empty_images_with_box']} of {facts['empty_images']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
