"""Speed of our served detectors against ultralytics' own predict, same model, same image.

    .venv/bin/python tests/benchmarks/bench_detector.py [--models DIR] [--repeats 20]

Uses each family's installed model, else the bundled default. Every figure is a median over
`--repeats` calls, with its ratio to the baseline measured in the same process. Not collected
by pytest (no timing assertions in tests).
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def median_ms(call, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


REPORT: list[str] = []
NOTES = """
## Notes

- Medians of `--repeats` calls after warm-up, all paths in one process on the same weights
  and image, so the ratios hold on any machine even where the milliseconds do not.
- The models are the bundled defaults (YOLOv8n, input 320); the 640 px litter windows are
  resized to 320 by the model's letterbox.
- The handler row includes JPEG decoding of the base64 body and the JSON answer; no HTTP.
- The slicer baseline merges windows by NMS only; ours also joins objects cut by window
  borders (see tests/test_tiling.py), and both reported the same number of boxes here.
- Not measured here: GPU inference (ONNX Runtime's CUDA provider is not installed on the
  development machines) and the gateway (issue 3).
"""


def say(text: str = "") -> None:
    print(text)
    REPORT.append(text)


def table(title: str, baseline_name: str, rows: list[tuple[str, float]]) -> None:
    baseline = rows[0][1]
    say(f"\n{title}\n\n| path | ms (median) | ratio to {baseline_name} |\n|---|---|---|")
    for name, ms in rows:
        say(f"| {name} | {ms:.1f} | {ms / baseline:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--write", help="also write the tables to this Markdown file")
    args = parser.parse_args()

    from imagine_assist.home import Home, configure_offline

    configure_offline(Home.resolve())
    import supervision as sv
    from ultralytics import YOLO

    from imagine_assist.functions.catalog import load_function
    from imagine_assist.images import encode_jpeg
    from imagine_assist.models.store import resolve_model
    from imagine_assist.samples import generate_fish, generate_litter

    say(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )

    def ultralytics_call(model, image: np.ndarray, imgsz: int):
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # ultralytics reads arrays as BGR
        return lambda: model.predict(bgr, imgsz=imgsz, conf=0.35, verbose=False, device="cpu")

    fish_onnx = resolve_model("fish", args.models)
    image = next(iter(generate_fish(1, seed=99))).image
    function = load_function("fish-detector", fish_onnx)
    body = {"image": base64.b64encode(encode_jpeg(image)).decode()}
    size = function.detector.input_size
    fish_pt = resolve_model("fish", args.models, "pt")
    rows = [
        (
            "ultralytics predict, .pt (baseline)",
            median_ms(ultralytics_call(YOLO(str(fish_pt)), image, size), args.repeats),
        ),
        (
            "ultralytics predict, the .onnx exported from it",
            median_ms(
                ultralytics_call(YOLO(str(fish_onnx), task="detect"), image, size), args.repeats
            ),
        ),
    ]
    rows += [
        (
            "imagine-assist detect (ONNX Runtime)",
            median_ms(lambda: function.detect(image), args.repeats),
        ),
        (
            "imagine-assist handler: base64 JPEG in, CVAT JSON out",
            median_ms(lambda: function.handle(body), args.repeats),
        ),
    ]
    table(
        f"fish-detector, one {image.shape[1]}x{image.shape[0]} frame, model input {size}:",
        "ultralytics .pt predict",
        rows,
    )

    litter_onnx = resolve_model("litter", args.models)
    litter = load_function("litter-detector", litter_onnx)
    sample = next(iter(generate_litter(1, seed=99)))
    frame = sample.image
    ultra_litter = YOLO(str(litter_onnx), task="detect")
    size = litter.detector.input_size

    def ultralytics_window(window: np.ndarray) -> sv.Detections:
        return sv.Detections.from_ultralytics(ultralytics_call(ultra_litter, window, size)()[0])

    slicer = sv.InferenceSlicer(
        callback=ultralytics_window,
        slice_wh=(litter.tile_size, litter.tile_size),
        overlap_wh=(litter.tile_overlap, litter.tile_overlap),
        thread_workers=1,
    )
    repeats = max(5, args.repeats // 2)
    rows = [
        (
            "supervision InferenceSlicer + ultralytics predict, same .onnx (baseline)",
            median_ms(lambda: slicer(frame), repeats, warmup=1),
        ),
        (
            "imagine-assist tiled detect (ONNX Runtime)",
            median_ms(lambda: litter.detect(frame), repeats, warmup=1),
        ),
    ]
    say(
        f"\nboxes on that frame: {len(sample.objects)} in the ground truth, "
        f"{len(litter.detect(frame))} from imagine-assist, {len(slicer(frame))} from the slicer"
    )
    table(
        f"litter-detector, one {frame.shape[1]}x{frame.shape[0]} frame, {litter.tile_size} px "
        f"windows, {litter.tile_overlap} px overlap, model input {size}:",
        "the supervision slicer",
        rows,
    )

    if args.write:
        command = "python tests/benchmarks/bench_detector.py " + " ".join(sys.argv[1:])
        header = f"# Benchmarks\n\nProduced by `{command}` on {time.strftime('%Y-%m-%d')}.\n"
        header += "\n"
        Path(args.write).write_text(header + "\n".join(REPORT) + "\n" + NOTES)


if __name__ == "__main__":
    main()
