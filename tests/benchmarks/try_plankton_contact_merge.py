"""Would a geometric rule undo the separator's cuts through one organism? A piece is merged
into the neighbour that touches the largest share of its outline, when that share is large.

    .venv/bin/python tests/benchmarks/try_plankton_contact_merge.py VIGNETTES REAL_EXAMPLES \
        [--shares 0.15 0.25 0.35] [--composites 100]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`), REAL_EXAMPLES the four vignettes of
`../shared/data/real/plankton`. The idea: a leg, an antenna or a head end cut off an
organism is wrapped along much of its outline by the rest of the body, where two organisms
that touch meet along a short stretch. Scored like try_plankton_merge_pieces.py (the
classifier as the judge instead): 100 composites of the held-out real organisms (seed 4000),
object F1 at IoU 0.5; then the organisms each rule leaves on the real examples. An
experiment, not a benchmark: its answer on 2026-12-01 is in docs/plankton.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from try_plankton_merge_pieces import (  # noqa: E402
    paste,
    print_composite_scores,
    print_example_counts,
    union,
)


def contact_share(piece, other, shape: tuple[int, int], reach: int = 2) -> float:
    """The share of `piece`'s outline within `reach` pixels of `other`."""
    mine, theirs = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    paste(mine, piece, 0, 0)
    paste(theirs, other, 0, 0)
    outline = mine - cv2.erode(mine, np.ones((3, 3), np.uint8))
    near = cv2.dilate(theirs, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    return float((outline & near).sum()) / max(int(outline.sum()), 1)


class ContactMerge:
    """The separator, then the smallest piece whose outline touches a neighbour over more
    than `share` merges into it, until none does."""

    def __init__(self, separator, share: float) -> None:
        self.separator, self.share = separator, share

    def __call__(self, image: np.ndarray):
        pieces = list(self.separator(image))
        shape = image.shape[:2]
        while len(pieces) > 1:
            for i in sorted(range(len(pieces)), key=lambda k: pieces[k].area):
                share, j = max(
                    (contact_share(pieces[i], pieces[k], shape), k)
                    for k in range(len(pieces))
                    if k != i
                )
                if share > self.share:
                    both = union(pieces[i], pieces[j], shape)
                    pieces = [p for k, p in enumerate(pieces) if k not in (i, j)] + [both]
                    break
            else:
                break
        return pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("examples", type=Path)
    parser.add_argument("--composites", type=int, default=100)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.15, 0.25, 0.35])
    args = parser.parse_args()

    from imagine_assist.models.plankton import load_separator

    separator = load_separator(threads=1)
    rules = {f"contact > {share:g}": ContactMerge(separator, share) for share in args.shares}
    print_example_counts(separator, rules, args.examples)
    print_composite_scores(separator, rules, args.vignettes, args.composites)


if __name__ == "__main__":
    main()
