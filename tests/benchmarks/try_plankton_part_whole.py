"""Would the separator keep one organism whole if an instance that the model also sees
as part of a larger, less confident one were read as that part?

    .venv/bin/python tests/benchmarks/try_plankton_part_whole.py VIGNETTES REAL_EXAMPLES \
        [--covers 0.3 0.5] [--composites 100]

VIGNETTES is the real ZooScan folder the hand labels describe
(`../shared/data/real-train/plankton/zooscan-85457`), REAL_EXAMPLES the four vignettes of
`../shared/data/real/plankton`. The idea: on the real amphipod `…_1232` the model's most
confident instances are its eye and head, and the whole body comes fourth; the partition
keeps all of them, so the body is cut. Where instances lie mostly inside a larger one and
together cover only a small share of it, they are its parts and are dropped; where they
tile it (two organisms and an instance that spans both), the larger one is dropped. Scored
like try_plankton_merge_pieces.py: 100 composites of the held-out real organisms (seed
4000), object F1 at IoU 0.5; then the organisms each rule leaves on the real examples. An
experiment, not a benchmark.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from try_plankton_merge_pieces import print_composite_scores, print_example_counts  # noqa: E402


class Subset:
    """Some of a model's instances, in their order, seen as `BoxLogits`."""

    def __init__(self, instances, keep: list[int]) -> None:
        self.instances, self.keep = instances, keep
        self.boxes = np.asarray(instances.boxes)[keep].reshape(-1, 4)

    def crop(self, index: int) -> np.ndarray:
        return self.instances.crop(self.keep[index])


def claims(instances, shape) -> list[np.ndarray]:
    """Each instance's pixels (logit > 0), on the whole frame: few instances, small frames."""
    out = []
    for index, (x1, y1, x2, y2) in enumerate(np.asarray(instances.boxes, int)):
        mask = np.zeros(shape, bool)
        if x2 > x1 and y2 > y1:
            mask[y1:y2, x1:x2] = instances.crop(index) > 0
        out.append(mask)
    return out


def box_inside(a, b) -> float:
    """The share of box `a`'s area inside box `b` (boxes x1, y1, x2, y2)."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / max((a[2] - a[0]) * (a[3] - a[1]), 1)


def parts_and_wholes(masks: list[np.ndarray], boxes, inside: float, cover: float) -> list[int]:
    """Which instances to keep. An instance's parts are the smaller ones whose boxes lie
    (`inside`) in its box: the model's masks are disjoint, so a whole's mask leaves holes
    where its parts lie, and only the boxes nest. Parts that make up less than `cover` of
    the whole with them are dropped (it is one organism), else the whole is (it spans
    several)."""
    areas = [int(m.sum()) for m in masks]
    dropped: set[int] = set()
    for whole in sorted(range(len(masks)), key=lambda k: -areas[k]):
        if whole in dropped or areas[whole] == 0:
            continue
        parts = [
            k
            for k in range(len(masks))
            if k != whole
            and k not in dropped
            and 0 < areas[k] < areas[whole]
            and box_inside(boxes[k], boxes[whole]) >= inside
        ]
        if not parts:
            continue
        union = np.logical_or.reduce([masks[k] for k in parts])
        if (union & ~masks[whole]).sum() < cover * (union | masks[whole]).sum():
            dropped.update(parts)
        else:
            dropped.add(whole)
    return [k for k in range(len(masks)) if k not in dropped]


class PartWhole:
    def __init__(self, separator, cover: float, inside: float = 0.8) -> None:
        self.separator, self.cover, self.inside = separator, cover, inside

    def __call__(self, image: np.ndarray):
        from imagine_assist.models.separate import organism_mask, partition_instances

        model = self.separator
        instances = model.segmenter(image, model.threshold)
        masks = claims(instances, image.shape[:2])
        keep = parts_and_wholes(masks, np.asarray(instances.boxes), self.inside, self.cover)
        foreground = organism_mask(image, model.min_area)
        return partition_instances(Subset(instances, keep), foreground, model.min_area)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("vignettes", type=Path)
    parser.add_argument("examples", type=Path)
    parser.add_argument("--composites", type=int, default=100)
    parser.add_argument("--covers", type=float, nargs="+", default=[0.3])
    parser.add_argument("--inside", type=float, nargs="+", default=[0.8])
    args = parser.parse_args()

    from imagine_assist.models.plankton import load_separator

    separator = load_separator(threads=1)
    rules = {
        f"parts below {cover:g}, inside {inside:g}": PartWhole(separator, cover, inside)
        for cover in args.covers
        for inside in args.inside
    }
    print_example_counts(separator, rules, args.examples)
    print_real_counts(separator, rules, args.vignettes)
    print_composite_scores(separator, rules, args.vignettes, args.composites)


def print_real_counts(separator, rules: dict, vignettes: Path) -> None:
    """On the hand-labelled real test vignettes, the separator alone (no tag): how many
    singles it cuts and how many multiples it leaves in two or more pieces."""
    import cv2

    from imagine_assist.models.scale_bar import scale_bar_rows
    from imagine_assist.models.separate import crop_scale_bar
    from imagine_assist.training.plankton_real import LABELS, MULTIPLE, SINGLE, HandLabels

    labels = HandLabels.read(LABELS)
    counts = {name: {SINGLE: 0, MULTIPLE: 0} for name in ["model", *rules]}
    totals = {SINGLE: 0, MULTIPLE: 0}
    for name in labels.test_vignettes():
        label = labels.labels[name]
        if label not in totals:
            continue
        totals[label] += 1
        image = cv2.imread(str(vignettes / name))
        image = crop_scale_bar(image, scale_bar_rows(image))
        for rule, separate in {"model": separator, **rules}.items():
            counts[rule][label] += len(separate(image)) >= 2
    for rule, count in counts.items():
        print(
            f"{rule}: real singles cut {count[SINGLE]} of {totals[SINGLE]}, "
            f"real multiples in 2+ pieces {count[MULTIPLE]} of {totals[MULTIPLE]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
