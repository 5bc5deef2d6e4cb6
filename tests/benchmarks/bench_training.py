"""How long a loop round's training takes on this machine (issue 16, item 3).

    .venv/bin/python tests/benchmarks/bench_training.py [--images 60] [--epochs 3] \\
        [--repeats 2] [--write docs/benchmarks.md]

Fine-tunes the bundled fish model on generated fish frames (synthetic, 384 px: the timing
does not depend on what the pixels show) with the fish family's `train --from` recipe, three
ways, in one process and interleaved, the fastest of `--repeats` kept:

1. the baseline: ultralytics' own CPU threads (cores - 1: one thread on 2 cores), every
   layer learning, frames decoded each epoch;
2. every core (`training.detector.use_cpu_threads`, what `fit` does now);
3. every core and the recipe's `freeze: 10` and `cache: ram`: what a round runs.

Each figure is seconds per epoch and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", help="also write the section into this Markdown file")
    parser.add_argument("--start", type=Path, help="a YOLOv8 .pt (default: the bundled fish)")
    args = parser.parse_args()

    from imagine_assist.families import get_family
    from imagine_assist.models.store import BUNDLED_DIR
    from imagine_assist.samples import family_samples, write_dataset
    from imagine_assist.training import centernet
    from imagine_assist.training.detector import fit
    from imagine_assist.training.retrain import load_recipe

    start = args.start or BUNDLED_DIR / "fish" / "model.pt"
    if centernet.is_checkpoint(start):
        raise SystemExit(
            f"{start} is a CenterNet (the bundled fish model since 2026-12-01); this benchmark "
            "times ultralytics' YOLO recipe: pass --start a YOLOv8 .pt"
        )
    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    fish = get_family("fish")
    data = write_dataset(
        work / "data", family_samples(fish, args.images, seed=5, fractions=(0.8, 0.2, 0)), ["fish"]
    ).data_yaml
    recipe = load_recipe("fish")
    fine_tune = {k: v for k, v in recipe.train_args.items() if k not in {"freeze", "cache"}}
    from ultralytics.utils import NUM_THREADS

    ways = {
        f"ultralytics' CPU threads ({NUM_THREADS}), every layer learns (baseline)": (
            NUM_THREADS,
            fine_tune,
        ),
        f"every core ({os.cpu_count()}), every layer learns": (None, fine_tune),
        "every core, the recipe's freeze: 10 and cache: ram (a loop round)": (
            None,
            recipe.train_args,
        ),
    }
    seconds = {name: float("inf") for name in ways}
    for repeat in range(args.repeats):
        for index, (name, (threads, train_args)) in enumerate(ways.items()):
            started = time.perf_counter()
            fit(
                str(start),
                "detect",
                str(data),
                work / "runs",
                f"run-{repeat}-{index}",
                args.epochs,
                "cpu",
                name,
                threads=threads,
                imgsz=recipe.imgsz,
                batch=recipe.batch,
                amp=False,
                **train_args,
            )
            seconds[name] = min(seconds[name], time.perf_counter() - started)
    baseline = next(iter(seconds.values()))
    train_images = sum(1 for _ in (data.parent / "images" / "train").iterdir())
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}. {train_images} training frames (synthetic fish, "
        f"{recipe.imgsz} px, batch {recipe.batch}), {args.epochs} epochs from the bundled fish "
        f"model, validation included, fastest of {args.repeats}.",
        "",
        "| training | s per epoch | ratio to the baseline |",
        "|---|---|---|",
    ]
    for name, value in seconds.items():
        lines.append(f"| {name} | {value / args.epochs:.1f} | {value / baseline:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        from report import write_report

        write_report(args.write, "training", "Training a loop round (issue 16, item 3)", text)


if __name__ == "__main__":
    main()
