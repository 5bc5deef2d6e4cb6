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


def family_samples(family, n: int, seed: int = 0, **options) -> Iterator[Sample]:
    """Generated scenes for a family (`families.Family`), under the family's own labels.

    The generator draws kinds of object (fish: three species); kind i takes the family's
    label i, or, in a family of one label (the built-in fish family's `fish`), every kind
    takes that label. `options` go to the generator (`fractions`, sizes)."""
    from imagine_assist.errors import UserError

    generator = SAMPLE_FAMILIES.get(family.synthetic or "")
    if generator is None:
        raise UserError(
            f"family {family.name} names no synthetic generator (`synthetic:` one of "
            f"{', '.join(SAMPLE_FAMILIES)}), so it has no generated scenes"
        )
    labels = family.labels or generator.labels
    if len(labels) == 1:
        rename = dict.fromkeys(generator.labels, labels[0])
    elif len(labels) == len(generator.labels):
        rename = dict(zip(generator.labels, labels, strict=True))
    else:
        raise UserError(
            f"family {family.name} has {len(labels)} labels, its {family.synthetic} generator "
            f"draws {len(generator.labels)} kinds of object: they must pair one to one, or "
            "the family must have a single label"
        )
    return with_labels(generator.generate(n, seed=seed, **options), rename)


__all__ = [
    "write_cvat_export",
    "SAMPLE_FAMILIES",
    "SampleFamily",
    "family_samples",
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
