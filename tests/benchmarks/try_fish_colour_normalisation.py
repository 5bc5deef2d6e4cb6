"""A fish CenterNet trained on frames as they are, shown frames colour-normalised instead.

    python tests/benchmarks/try_fish_colour_normalisation.py DATASET CHECKPOINT

DATASET is a `real_fish_centernet` run's `dataset` folder (F4K valid and the held-out DeepFish
habitats), CHECKPOINT a fish CenterNet `.pt` (the bundled `model.pt`). Every frame goes
through one of `models.colour`'s steps before it is placed on the input square, with the
recipe's torch evaluation. A question before a training run: whether taking out a camera's
cast (grey world) or haze (CLAHE) helps on cameras the model never saw, even for a model that
never saw normalised frames. Diagnostic only: the held-out habitats choose nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fish_passes import read_sets, row

from imagine_assist.models import colour

STEPS = {
    "as they are": None,
    "grey world": colour.greyworld,
    "CLAHE": colour.clahe,
    "grey world + CLAHE": lambda rgb: colour.clahe(colour.greyworld(rgb)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("checkpoint", type=Path)
    args = parser.parse_args()
    from imagine_assist.training import centernet

    sets = read_sets(args.dataset)
    model = centernet.load_checkpoint(args.checkpoint)
    read_as_is = centernet._read_rgb
    print("frames | validation AP50 | held-out DeepFish AP50 | held-out AP50-95", flush=True)
    try:
        for name, step in STEPS.items():
            # the one reader every evaluation goes through, wrapped for this pass only
            centernet._read_rgb = (lambda p, s=step: s(read_as_is(p))) if step else read_as_is
            started = time.monotonic()
            figures = {key: centernet.evaluate(model, frames) for key, frames in sets.items()}
            print(f"{name} | {row(figures)} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        centernet._read_rgb = read_as_is


if __name__ == "__main__":
    main()
