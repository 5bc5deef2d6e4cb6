"""Composites of real organisms held out from every training set, as a CVAT for images 1.1
export with one mask per organism: what `imagine-assist evaluate --function
plankton-separator` reads, standing in for a corrected CVAT task.

    .venv/bin/python tests/benchmarks/write_real_plankton_export.py VIGNETTES OUT.zip \
        [-n 300] [--seed 4000]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`). The composites are those of
`training.plankton_real`'s separator figures (same organisms, seed and mix), so the two
compare: there the separator alone, here the function as served (the tag first).

`--half a` or `--half b` keeps one of two fixed halves of the held-out organisms (by a hash
of their names): a round of the loop trains on composites of one half, as a user's
corrected task, and is gated on composites of the other, organisms neither model has seen
(`imagine-assist train plankton --from a.zip --val b.zip`, docs/loop.md).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path


def half_of(name: str) -> str:
    return "ab"[hashlib.sha256(f"half:{name}".encode()).digest()[0] % 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=4000)
    parser.add_argument("--half", choices=["a", "b"], help="one half of the organisms")
    args = parser.parse_args()

    from imagine_assist.samples import write_cvat_export
    from imagine_assist.samples.plankton import PLANKTON_LABELS
    from imagine_assist.samples.real_plankton import (
        load_organisms,
        organism_split,
        real_composite_sample,
    )
    from imagine_assist.training.plankton_real import LABELS, HandLabels

    singles = HandLabels.read(LABELS).training_singles()
    organisms = [
        o
        for o in load_organisms(str(args.vignettes), singles)
        if organism_split(o.kind) == "held_out"
    ]
    if args.half:
        organisms = [o for o in organisms if half_of(o.kind) == args.half]
    samples = (
        real_composite_sample(args.seed, index, organisms, multiple_share=0.5)
        for index in range(args.n)
    )
    write_cvat_export(args.out, samples, PLANKTON_LABELS, masks=True)
    which = f"half {args.half} of the " if args.half else ""
    print(f"{args.n} composites of {len(organisms)} ({which}held-out) real organisms: {args.out}")


if __name__ == "__main__":
    main()
