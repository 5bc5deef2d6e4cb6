"""Single or multiple: an ultralytics classification model, exported to ONNX, on one vignette.

The classifier sees the vignette (scale bar already cropped) padded square with white and
resized to its input size: the same picture it was trained on (`training.plankton`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from imagine_assist.errors import UserError
from imagine_assist.models.detector import open_onnx, ultralytics_metadata

MULTIPLE = "multiple"
# P(multiple) from which a vignette is called a multiple, for a classifier whose file does
# not say (`multiple_threshold` in its ONNX metadata, written when it was trained).
DEFAULT_MULTIPLE_THRESHOLD = 0.3
THRESHOLD_KEY = "multiple_threshold"


# Real ZooScan vignettes are up to about 1,340 px long; a white square this side is 50 MB.
PADDED_MAX_SIDE = 4096


def square_on_white(image: np.ndarray, size: int) -> np.ndarray:
    """The vignette padded to a square with white (its own background) and resized to
    `size`, as the classifier was trained. A vignette longer than `PADDED_MAX_SIDE` is
    resized first, then padded: a 16x30000 strip padded first would take a 2.7 GB canvas.
    The two differ by a sub-pixel shift of the resize grid, which moves P(multiple) by up to
    0.14 on real vignettes, so the trained order is kept wherever it is affordable."""
    height, width = image.shape[:2]
    side = max(height, width)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    if side > PADDED_MAX_SIDE:
        scale = size / side
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
        image = cv2.resize(image, (width, height), interpolation=interpolation)
        image = image.reshape(height, width, *image.shape[2:])
        side = size
    canvas = np.full((side, side, *image.shape[2:]), 255, dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    canvas[top : top + height, left : left + width] = image
    return cv2.resize(canvas, (size, size), interpolation=interpolation)


class OnnxVignetteClassifier:
    """P(multiple) for a vignette, from an ultralytics ``-cls`` model exported to ONNX."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        path = Path(path)
        self.session = open_onnx(path, threads)
        self.class_names, self.input_size = ultralytics_metadata(self.session, path)
        if MULTIPLE not in self.class_names:
            raise UserError(f"{path} is not a single/multiple classifier: {self.class_names}")
        self.multiple_index = self.class_names.index(MULTIPLE)
        written = self.session.get_modelmeta().custom_metadata_map.get(THRESHOLD_KEY)
        try:
            self.multiple_threshold = float(written or DEFAULT_MULTIPLE_THRESHOLD)
        except ValueError:
            raise UserError(f"{path}: {THRESHOLD_KEY} {written!r} is not a number") from None
        if not 0.0 < self.multiple_threshold < 1.0:
            raise UserError(f"{path}: {THRESHOLD_KEY} {self.multiple_threshold} is not in (0, 1)")
        self.input_name = self.session.get_inputs()[0].name
        self.path = path

    def p_multiple(self, image: np.ndarray) -> float:
        rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        square = square_on_white(rgb, self.input_size)
        blob = np.ascontiguousarray(square.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        probabilities = self.session.run(None, {self.input_name: blob})[0][0]
        return float(probabilities[self.multiple_index])


def write_threshold(path: str | Path, threshold: float) -> None:
    """Store the classifier's P(multiple) threshold in its own ONNX file, so the threshold
    a model was validated with travels with it (installed, versioned, rolled back)."""
    import onnx

    if not 0.0 < threshold < 1.0:
        raise ValueError(f"a threshold lies in (0, 1), not {threshold}")
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != THRESHOLD_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = THRESHOLD_KEY, f"{threshold:.4f}"
    onnx.save(model, str(path))
