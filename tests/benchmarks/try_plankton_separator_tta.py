"""Would the separator find more organisms if it also saw the vignette mirrored?

    .venv/bin/python tests/benchmarks/try_plankton_separator_tta.py VIGNETTES REAL_EXAMPLES \
        [--composites 100]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`), REAL_EXAMPLES the four vignettes of
`../shared/data/real/plankton`. The model runs on the vignette and on its mirror image; the
mirror's instances are mirrored back, and the instances of both views, most confident
first, go through the same partition as one view's (`models.separate.partition_instances`:
an instance mostly inside a more confident one is a duplicate). Under-splits are the
separator's main error on composites of real organisms; the idea is that a pair merged in
one view may be found apart, and more surely, in the other. Scored like
try_plankton_merge_pieces.py. An experiment, not a benchmark.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from try_plankton_merge_pieces import print_composite_scores, print_example_counts  # noqa: E402


class BothViews:
    """The instances of the vignette and of its mirror, as one `BoxLogits`, most confident
    first."""

    def __init__(self, direct, mirrored, width: int) -> None:
        x1, y1, x2, y2 = np.asarray(mirrored.boxes).T.reshape(4, -1)
        flipped = np.stack([width - x2, y1, width - x1, y2], axis=1).reshape(-1, 4)
        views = [(direct, k, False) for k in range(len(direct))]
        views += [(mirrored, k, True) for k in range(len(mirrored))]
        confidence = np.concatenate([direct.confidence, mirrored.confidence])
        order = np.argsort(-confidence, kind="stable")
        self.views = [views[i] for i in order]
        boxes = np.concatenate([np.asarray(direct.boxes).reshape(-1, 4), flipped])
        self.boxes = boxes[order]

    def crop(self, index: int) -> np.ndarray:
        instances, k, mirrored = self.views[index]
        crop = instances.crop(k)
        return crop[:, ::-1] if mirrored else crop


class MirroredToo:
    def __init__(self, separator) -> None:
        self.separator = separator

    def __call__(self, image: np.ndarray):
        from imagine_assist.models.separate import organism_mask, partition_instances

        model = self.separator
        direct = model.segmenter(image, model.threshold)
        mirrored = model.segmenter(np.ascontiguousarray(image[:, ::-1]), model.threshold)
        both = BothViews(direct, mirrored, image.shape[1])
        return partition_instances(both, organism_mask(image, model.min_area), model.min_area)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("examples", type=Path)
    parser.add_argument("--composites", type=int, default=100)
    args = parser.parse_args()

    from imagine_assist.models.plankton import load_separator

    separator = load_separator(threads=1)
    rules = {"and mirrored": MirroredToo(separator)}
    print_example_counts(separator, rules, args.examples)
    print_composite_scores(separator, rules, args.vignettes, args.composites)


if __name__ == "__main__":
    main()
