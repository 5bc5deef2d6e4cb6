"""The appearance template of a huge box (reid, tracker): thinned then averaged, against
the plain average of the whole crop, in the same process.

    .venv/bin/python tests/benchmarks/bench_templates.py

A 60 MP frame (10000 x 6000) with a box of 6000 x 4000 px, as a reid request of
full-frame boxes sends them; and a burrow-sized box, which is not thinned."""

from __future__ import annotations

import time

import cv2
import numpy as np

from imagine_assist.functions.appearance import TEMPLATE_SIZE, crop, similarity, template


def per_call_ms(call, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    rng = np.random.default_rng(4)
    seabed = cv2.resize(
        rng.integers(0, 255, (60, 100), dtype=np.uint8),
        (10000, 6000),
        interpolation=cv2.INTER_CUBIC,
    )
    size = (TEMPLATE_SIZE, TEMPLATE_SIZE)
    for name, box, repeats in (
        ("6000 x 4000 px box", (2000, 1000, 8000, 5000), 5),
        ("60 x 40 px box", (500, 500, 560, 540), 500),
    ):

        def plain(box=box):
            return cv2.resize(crop(seabed, box, pad=0.25), size, interpolation=cv2.INTER_AREA)

        baseline, now = (
            per_call_ms(plain, repeats),
            per_call_ms(lambda box=box: template(seabed, box), repeats),
        )
        alike = similarity(template(seabed, box), plain())
        print(
            f"{name}: plain average {baseline:.2f} ms, template {now:.2f} ms "
            f"({baseline / now:.1f}x faster), similarity to the plain one {alike:.3f}"
        )


if __name__ == "__main__":
    main()
