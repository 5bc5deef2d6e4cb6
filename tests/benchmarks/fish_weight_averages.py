"""Fish CenterNet checkpoints averaged weight by weight, on validation and the held-out habitats.

    python tests/benchmarks/fish_weight_averages.py DATASET A.pt B.pt+C.pt ...

DATASET is a `real_fish_centernet` run's `dataset` folder (or `real_fish.build_datasets`'s
output: only its `val` and `test-deepfish` are read). Each further argument is one model:
a checkpoint, or several joined by `+`, whose weights are averaged (a "model soup";
the passes of one run averaged are stochastic weight averaging). All of them fine-tune the
same COCO weights, so their averages stay working models. A diagnostic: the held-out
habitats never choose what is bundled (see `fish_passes.py`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fish_passes import HEADER, read_sets, row, score  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("models", nargs="+", help="a.pt, or a.pt+b.pt+... to average")
    args = parser.parse_args()
    from imagine_assist.training import centernet

    sets = read_sets(args.dataset)
    print(f"model | {HEADER}", flush=True)
    for group in args.models:
        started = time.monotonic()
        models = [centernet.load_checkpoint(path) for path in group.split("+")]
        states = [model.state_dict() for model in models]
        averaged = {
            key: sum(state[key].float() for state in states).div(len(states)).to(value.dtype)
            if value.is_floating_point()
            else value
            for key, value in states[0].items()
        }
        model = models[0]
        model.load_state_dict(averaged)
        figures = score(model, sets)
        print(f"{group} | {row(figures)} ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
