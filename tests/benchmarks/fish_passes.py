"""Every pass of a fish CenterNet run, on its validation set and on the held-out habitats.

    python tests/benchmarks/fish_passes.py runs/real-fish-centernet [--write passes.json]

A diagnostic, not a way to choose: the trainer keeps the pass with the best validation AP50
(Fish4Knowledge valid), and the held-out DeepFish habitats must never pick a model, or their
figure stops saying anything about unseen cameras. What this answers is whether more passes
over the training cameras help the cameras nobody trained on, or only the training ones.
It reads the `pass-N.pt` checkpoints that `real_fish_centernet` keeps, and the run's own
`dataset/val` and `dataset/test-deepfish` folders, with the recipe's torch evaluation.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HEADER = "validation AP50 | held-out DeepFish AP50 | held-out AP50-95"


def read_sets(dataset: Path) -> dict:
    """A fish run's validation frames (F4K valid) and held-out habitats, from its dataset."""
    from imagine_assist.training import centernet

    return {
        name: centernet.read_yolo_images(dataset / folder / "images")
        for name, folder in (("val", "val"), ("held-out", "test-deepfish"))
    }


def score(model, sets: dict) -> dict:
    from imagine_assist.training import centernet

    return {name: centernet.evaluate(model, frames) for name, frames in sets.items()}


def row(figures: dict) -> str:
    return (
        f"{figures['val']['mAP50']:.3f} | {figures['held-out']['mAP50']:.3f} | "
        f"{figures['held-out']['mAP50-95']:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a real_fish_centernet --out folder")
    parser.add_argument("--write", type=Path, help="also write the figures here as JSON")
    args = parser.parse_args()
    from imagine_assist.training import centernet

    passes = sorted(
        (args.run / "run").glob("pass-*.pt"), key=lambda p: int(re.findall(r"\d+", p.stem)[0])
    )
    if not passes:
        raise SystemExit(f"no pass-N.pt in {args.run / 'run'}: was the run kept per pass?")
    sets = read_sets(args.run / "dataset")
    rows = []
    print(f"pass | {HEADER}", flush=True)
    for checkpoint in passes:
        figures = score(centernet.load_checkpoint(checkpoint), sets)
        rows.append({"checkpoint": checkpoint.name, **figures})
        print(f"{checkpoint.stem} | {row(figures)}", flush=True)
    if args.write:
        args.write.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
