"""Speed of our served detectors against ultralytics on the same weights and images.

    .venv/bin/python tests/benchmarks/bench_detector.py [--models DIR] [--repeats 20]

Needs the default models (`make demo` or `imagine-assist train fish|litter`). Each figure is
a median over `--repeats` runs, reported with its ratio to the baseline measured in the same
process. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import statistics
import time

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


def row(name: str, ms: float, baseline_ms: float) -> str:
    return f"| {name} | {ms:.1f} | {ms / baseline_ms:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    from imagine_assist.home import Home, configure_offline

    configure_offline(Home.resolve())
    import supervision as sv
    from ultralytics import YOLO

    from imagine_assist.functions.catalog import load_function
    from imagine_assist.images import encode_jpeg
    from imagine_assist.models.store import model_path
    from imagine_assist.samples import generate_fish, generate_litter

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}\n"
    )

    fish_pt, fish_onnx = model_path("fish", args.models, "pt"), model_path("fish", args.models)
    image = next(iter(generate_fish(1, seed=99))).image
    function = load_function("fish-detector", fish_onnx)
    body = {"image": base64.b64encode(encode_jpeg(image)).decode()}
    ultra_pt, ultra_onnx = YOLO(str(fish_pt)), YOLO(str(fish_onnx), task="detect")
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    baseline = median_ms(
        lambda: ultra_pt.predict(bgr, imgsz=320, conf=0.35, verbose=False, device="cpu"),
        args.repeats,
    )
    print(f"fish-detector, one {image.shape[1]}x{image.shape[0]} frame, model input 320:\n")
    print("| path | ms (median) | ratio to ultralytics .pt predict |\n|---|---|---|")
    print(row("ultralytics predict, .pt (baseline)", baseline, baseline))
    print(
        row(
            "ultralytics predict, .onnx",
            median_ms(
                lambda: ultra_onnx.predict(bgr, imgsz=320, conf=0.35, verbose=False, device="cpu"),
                args.repeats,
            ),
            baseline,
        )
    )
    print(
        row(
            "imagine-assist detect (ONNX Runtime)",
            median_ms(lambda: function.detect(image), args.repeats),
            baseline,
        )
    )
    print(
        row(
            "imagine-assist Nuclio handler body (base64 JPEG in, JSON list out)",
            median_ms(lambda: function.handle(body), args.repeats),
            baseline,
        )
    )

    litter_pt, litter_onnx = (
        model_path("litter", args.models, "pt"),
        model_path("litter", args.models),
    )
    frame = next(iter(generate_litter(1, seed=99))).image
    litter = load_function("litter-detector", litter_onnx)
    ultra_litter = YOLO(str(litter_pt))

    def ultralytics_slicer(window: np.ndarray) -> sv.Detections:
        result = ultra_litter.predict(
            window[:, :, ::-1], imgsz=320, conf=0.35, verbose=False, device="cpu"
        )[0]
        return sv.Detections.from_ultralytics(result)

    slicer = sv.InferenceSlicer(
        callback=ultralytics_slicer, slice_wh=(640, 640), overlap_wh=(160, 160), thread_workers=1
    )
    repeats = max(3, args.repeats // 5)
    baseline = median_ms(lambda: slicer(frame[:, :, ::-1]), repeats, warmup=1)
    print(
        f"\nlitter-detector, one {frame.shape[1]}x{frame.shape[0]} frame, 640 px windows, "
        "160 px overlap, model input 320:\n"
    )
    print(
        "| path | ms (median) | ratio to supervision InferenceSlicer + ultralytics .pt |\n"
        "|---|---|---|"
    )
    print(
        row("supervision InferenceSlicer + ultralytics predict .pt (baseline)", baseline, baseline)
    )
    print(
        row(
            "imagine-assist tiled detect (ONNX Runtime)",
            median_ms(lambda: litter.detect(frame), repeats, warmup=1),
            baseline,
        )
    )


if __name__ == "__main__":
    main()
