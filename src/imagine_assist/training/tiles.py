"""Cut large annotated frames into the windows tiled inference will show the model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from imagine_assist.models.tiling import tile_windows
from imagine_assist.samples.base import Sample, SampleObject

MIN_VISIBLE = 0.6  # share of an object's box inside a window for it to count as labelled there


def tile_samples(
    samples: Iterable[Sample], tile: int, overlap: int, empty_share: float = 0.1, seed: int = 0
) -> Iterator[Sample]:
    """Windows of each sample with the objects they show; most empty windows are skipped.

    A window that shows too little of an object would teach the model to ignore it, so
    such windows are left out rather than labelled wrong.
    """
    rng = np.random.default_rng(seed)
    for sample in samples:
        width, height = sample.size
        stem = Path(sample.name).stem
        for x1, y1, x2, y2 in tile_windows(width, height, tile, overlap):
            objects, ambiguous = [], False
            for obj in sample.objects:
                ox1, oy1, ox2, oy2 = obj.xyxy
                cx1, cy1, cx2, cy2 = max(ox1, x1), max(oy1, y1), min(ox2, x2), min(oy2, y2)
                if cx2 <= cx1 or cy2 <= cy1:
                    continue
                visible = (cx2 - cx1) * (cy2 - cy1) / ((ox2 - ox1) * (oy2 - oy1))
                if visible < MIN_VISIBLE:
                    ambiguous = True
                    break
                objects.append(SampleObject(obj.label, (cx1 - x1, cy1 - y1, cx2 - x1, cy2 - y1)))
            if ambiguous or (not objects and rng.random() > empty_share):
                continue
            yield Sample(
                name=f"{stem}_x{x1}_y{y1}.jpg",
                image=np.ascontiguousarray(sample.image[y1:y2, x1:x2]),
                objects=objects,
                split=sample.split,
            )
