"""Synthetic fish and litter images with exact ground truth, and the dataset files for them."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from imagine_assist.samples.base import (
    DatasetFiles,
    Sample,
    SampleObject,
    with_labels,
    write_cvat_export,
    write_dataset,
)
from imagine_assist.samples.burrows import (
    BURROW_LABELS,
    BurrowSystem,
    Tow,
    TowFiles,
    TowFrame,
    TowGeometry,
    TowObject,
    counts_per_minute,
    generate_tow,
    tow_detection_samples,
    write_cvat_video_export,
    write_tow,
)
from imagine_assist.samples.fish import FISH_SPECIES, generate_fish
from imagine_assist.samples.litter import LITTER_CATEGORIES, generate_litter
from imagine_assist.samples.plankton import (
    PLANKTON_LABELS,
    VIGNETTE_CLASSES,
    PlanktonSample,
    generate_plankton,
    vignette,
)


@dataclass(frozen=True)
class SampleFamily:
    generate: Callable[..., Iterator[Sample]]  # (n, seed=..., fractions=...) -> samples
    labels: tuple[str, ...]


SAMPLE_FAMILIES: dict[str, SampleFamily] = {
    "fish": SampleFamily(generate_fish, FISH_SPECIES),
    "litter": SampleFamily(generate_litter, LITTER_CATEGORIES),
    "burrow": SampleFamily(tow_detection_samples, BURROW_LABELS),
    "plankton": SampleFamily(generate_plankton, PLANKTON_LABELS),
}

__all__ = [
    "write_cvat_export",
    "SAMPLE_FAMILIES",
    "SampleFamily",
    "FISH_SPECIES",
    "LITTER_CATEGORIES",
    "BURROW_LABELS",
    "PLANKTON_LABELS",
    "VIGNETTE_CLASSES",
    "PlanktonSample",
    "generate_plankton",
    "vignette",
    "BurrowSystem",
    "Tow",
    "TowFiles",
    "TowFrame",
    "TowGeometry",
    "TowObject",
    "counts_per_minute",
    "generate_tow",
    "tow_detection_samples",
    "write_cvat_video_export",
    "write_tow",
    "DatasetFiles",
    "Sample",
    "SampleObject",
    "generate_fish",
    "generate_litter",
    "write_dataset",
    "with_labels",
]
