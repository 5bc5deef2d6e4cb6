"""The plankton models together: the trained separator (instance masks refined to the
vignette's own foreground) and the single/multiple classifier, loaded from local files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imagine_assist.models.segmenter import OnnxSegmenter
from imagine_assist.models.separate import BoxMask, organism_mask, partition_instances
from imagine_assist.models.store import resolve_model
from imagine_assist.models.vignette_classifier import (
    DEFAULT_MULTIPLE_THRESHOLD,
    OnnxVignetteClassifier,
)

SEPARATOR_THRESHOLD = 0.25
# For a classifier whose file names no threshold of its own (models.vignette_classifier).
MULTIPLE_THRESHOLD = DEFAULT_MULTIPLE_THRESHOLD


class ModelSeparator:
    """Image in, one mask per organism out, like `separate_touching`, from a trained model."""

    def __init__(
        self, segmenter: OnnxSegmenter, threshold: float = SEPARATOR_THRESHOLD, min_area: int = 30
    ) -> None:
        self.segmenter, self.threshold, self.min_area = segmenter, threshold, min_area

    def __call__(self, image: np.ndarray) -> list[BoxMask]:
        instances = self.segmenter(image, self.threshold)
        foreground = organism_mask(image, self.min_area)
        return partition_instances(instances, foreground, self.min_area)


def load_separator(
    path: str | Path | None = None, models_dir: str | Path | None = None, threads: int | None = None
) -> ModelSeparator:
    path = Path(path) if path else resolve_model("plankton", models_dir, name="separator")
    return ModelSeparator(OnnxSegmenter(path, threads=threads))


def load_classifier(
    path: str | Path | None = None, models_dir: str | Path | None = None, threads: int | None = None
) -> OnnxVignetteClassifier:
    path = Path(path) if path else resolve_model("plankton", models_dir, name="classifier")
    return OnnxVignetteClassifier(path, threads=threads)
