"""Where a ZooScan vignette's scale-bar strip starts, read from the vignette itself.

ZooProcess writes a 1 mm bar (a dark line 1-4 px thick, as long as a millimetre is at the
scan's resolution) with "1 mm" printed above it, in a white strip under the organism. The
strip's height depends on the resolution and the ZooProcess version, and some exports have
no bar at all, so a fixed row count either leaves the bar in (a second "organism") or cuts
the organism's foot off. This finds the bar and its label as dark components of their own
in the bottom of the vignette, and returns the rows from the top of the label down.
"""

from __future__ import annotations

import cv2
import numpy as np

DARK = 128  # the bar and its label are printed black; organisms are mostly far lighter
MAX_BAR_THICKNESS = 4
MIN_BAR_LENGTH = 24  # px: a millimetre at 600 dpi; ZooScan scans at 2400 (96 px)
BOTTOM_SHARE = 0.35  # the bar lies in the bottom third of the vignette
LABEL_GAP = 24  # px: how far above the bar its "1 mm" may start
MARGIN = 3  # white rows kept above the label's top, as ZooProcess leaves them


def scale_bar_rows(image: np.ndarray) -> int:
    """Rows to crop off the bottom to drop the scale bar and its label; 0 when there is none.

    Only components that lie wholly under everything else count, so an organism's own dark
    parts (an eye, a gut) are never mistaken for the bar."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    height = grey.shape[0]
    dark = (grey < DARK).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    if count <= 1:
        return 0
    boxes = stats[1:, :4]  # x, y, w, h
    bars = [
        (x, y, w, h)
        for x, y, w, h in boxes
        if h <= MAX_BAR_THICKNESS and w >= MIN_BAR_LENGTH and w >= 8 * h
        and y >= height * (1 - BOTTOM_SHARE)
    ]  # fmt: skip
    if not bars:
        return 0
    x, y, w, h = max(bars, key=lambda bar: bar[1])  # the lowest: the bar is the last thing
    top = y
    for cx, cy, cw, ch in boxes:  # the label: small marks just above the bar, over its span
        if cy + ch <= y and cy >= y - LABEL_GAP and cx >= x - 4 and cx + cw <= x + w + 4:
            top = min(top, cy)
    strip_top = max(0, top - MARGIN)
    # Anything else reaching into the strip (the organism itself) means this is no strip.
    # Its ink is lighter than the label's, so look at all foreground, not only the dark.
    foreground = grey[strip_top:] < np.percentile(grey, 90) - 40
    ink = dark[strip_top:].astype(bool)
    if (foreground & ~_grown(ink)).sum() > 4:
        return 0
    return height - strip_top


def cut_scale_bar(image: np.ndarray, rows: int | None = None) -> np.ndarray:
    """The vignette without its scale-bar strip, `rows` high or found (`scale_bar_rows`).
    A vignette no taller than the strip is kept whole here (the served separator refuses a
    fixed strip that leaves too little, `SeparatorFunction.split`). What the served
    separator sees, and what it is trained and gated on."""
    rows = scale_bar_rows(image) if rows is None else rows
    if rows <= 0 or rows >= image.shape[0]:
        return image
    return image[: image.shape[0] - rows]


def _grown(mask: np.ndarray) -> np.ndarray:
    """The bar and label with their anti-aliased rim (JPEG and printing blur them by a pixel
    or two)."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
