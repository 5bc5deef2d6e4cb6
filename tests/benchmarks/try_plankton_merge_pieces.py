"""Would the classifier, asked about each pair of touching pieces, undo the separator's cuts
through one organism?

    .venv/bin/python tests/benchmarks/try_plankton_merge_pieces.py VIGNETTES [REAL_EXAMPLES]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`); REAL_EXAMPLES the four vignettes of
`../shared/data/real/plankton`. After the bundled separator has cut a vignette, every pair
of touching pieces is shown to the classifier alone (the pair's pixels on white); a pair
it calls single becomes one piece, smallest pieces first, until no pair is called single.
Scored like the separator figures of docs/plankton.md: 100 composites of the held-out real
organisms (seed 4000, half multiples), object F1 at IoU 0.5, with and without the merge;
The same, as served (the tag first, so only a vignette tagged multiple is cut), with and
without the merge at the served threshold; then the organisms each way on the real examples.
An experiment, not a benchmark: its answer on 2026-12-01 is in docs/plankton.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def paste(canvas: np.ndarray, piece, x0: int, y0: int) -> None:
    """Set the piece's pixels in `canvas`, whose top-left corner lies at (x0, y0)."""
    rows = slice(piece.y - y0, piece.y - y0 + piece.crop.shape[0])
    cols = slice(piece.x - x0, piece.x - x0 + piece.crop.shape[1])
    canvas[rows, cols] |= piece.crop.astype(canvas.dtype)


def touching(a, b, reach: int = 2) -> bool:
    """Do two box masks come within `reach` pixels of each other?"""
    ax1, ay1, ax2, ay2 = a.xyxy
    bx1, by1, bx2, by2 = b.xyxy
    if ax1 > bx2 + reach or bx1 > ax2 + reach or ay1 > by2 + reach or by1 > ay2 + reach:
        return False
    x1, y1 = min(ax1, bx1) - reach, min(ay1, by1) - reach
    x2, y2 = max(ax2, bx2) + reach, max(ay2, by2) + reach
    canvas_a = np.zeros((y2 - y1 + 1, x2 - x1 + 1), np.uint8)
    canvas_b = np.zeros_like(canvas_a)
    paste(canvas_a, a, x1, y1)
    paste(canvas_b, b, x1, y1)
    grown = cv2.dilate(canvas_a, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    return bool((grown & canvas_b).any())


def union(a, b, shape):
    from imagine_assist.models.separate import BoxMask

    whole = np.zeros(shape, bool)
    paste(whole, a, 0, 0)
    paste(whole, b, 0, 0)
    return BoxMask.around(whole)


class MergingSeparator:
    def __init__(self, separator, classifier, threshold: float) -> None:
        self.separator, self.classifier, self.threshold = separator, classifier, threshold

    def __call__(self, image: np.ndarray):
        from imagine_assist.zooscan import cut_out

        pieces = list(self.separator(image))
        while len(pieces) > 1:
            order = sorted(range(len(pieces)), key=lambda i: pieces[i].area)
            merged = False
            for i in order:
                for j in order:
                    if j == i or not touching(pieces[i], pieces[j]):
                        continue
                    both = union(pieces[i], pieces[j], image.shape[:2])
                    alone, _ = cut_out(image, both)  # the pair's pixels on white
                    p_multiple = self.classifier.p_multiple(alone)
                    if p_multiple < self.threshold:
                        pieces = [p for k, p in enumerate(pieces) if k not in (i, j)] + [both]
                        merged = True
                        break
                if merged:
                    break
            if not merged:
                break
        return pieces


class AsServed:
    """The tag first, as `plankton-separator` serves: a single stays one object, and only a
    vignette tagged multiple is cut."""

    def __init__(self, separator, classifier) -> None:
        self.separator, self.classifier = separator, classifier

    def __call__(self, image: np.ndarray):
        from imagine_assist.models.separate import organism_box_mask

        if self.classifier.p_multiple(image) < self.classifier.multiple_threshold:
            whole = organism_box_mask(image)
            return [whole] if whole else []
        return self.separator(image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("examples", type=Path, nargs="?")
    parser.add_argument("--composites", type=int, default=100)
    parser.add_argument(
        "--below",
        type=float,
        nargs="+",
        default=[0.02, 0.05, 0.15],
        help="merge a pair whose P(multiple) is below this",
    )
    args = parser.parse_args()

    from imagine_assist.models.plankton import load_classifier, load_separator

    classifier, separator = load_classifier(threads=1), load_separator(threads=1)
    merging = {
        f"merge below {below:g}": MergingSeparator(separator, classifier, below)
        for below in args.below
    }
    served = classifier.multiple_threshold
    merging["as served"] = AsServed(separator, classifier)
    merging[f"as served + merge below {served:g}"] = AsServed(
        MergingSeparator(separator, classifier, served), classifier
    )
    print_composite_scores(separator, merging, args.vignettes, args.composites)
    print_example_counts(separator, merging, args.examples)


def print_composite_scores(separator, rules: dict, vignettes: Path, composites: int) -> None:
    """Object F1, over- and under-split of the separator and of each rule, on composites of
    the held-out real organisms (seed 4000, as docs/plankton.md's separator figures)."""
    from imagine_assist.samples.real_plankton import load_organisms, organism_split
    from imagine_assist.training.plankton_real import (
        LABELS,
        HandLabels,
        evaluate_real_composites,
    )

    labels = HandLabels.read(LABELS)
    organisms = [
        o
        for o in load_organisms(str(vignettes), labels.training_singles())
        if organism_split(o.kind) == "held_out"
    ]
    report = evaluate_real_composites({"model": separator} | rules, organisms, composites, 4000)
    for name in ["model", *rules]:
        for part in ("all", "multiple", "single"):
            s = report[name][part]
            print(
                f"{name} {part}: F1 {s['f1']:.3f}, over-split {s['over_split_rate']:.3f}, "
                f"under-split {s['under_split_rate']:.3f}",
                flush=True,
            )


def print_example_counts(separator, rules: dict, examples: Path | None) -> None:
    """How many organisms the separator and each rule leave in every real example."""
    from imagine_assist.models.scale_bar import scale_bar_rows
    from imagine_assist.models.separate import crop_scale_bar

    for path in sorted(examples.glob("*")) if examples else ():
        image = cv2.imread(str(path))
        image = crop_scale_bar(image, scale_bar_rows(image))
        counts = ", ".join(f"{name}: {len(rule(image))}" for name, rule in rules.items())
        print(f"{path.name}: {len(separator(image))} organisms; {counts}", flush=True)


if __name__ == "__main__":
    main()
