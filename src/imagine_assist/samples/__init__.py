"""Synthetic fish and litter images with exact ground truth, and the dataset files for them."""

from imagine_assist.samples.base import DatasetFiles, Sample, SampleObject, write_dataset
from imagine_assist.samples.fish import FISH_SPECIES, generate_fish
from imagine_assist.samples.litter import LITTER_CATEGORIES, generate_litter

__all__ = [
    "FISH_SPECIES",
    "LITTER_CATEGORIES",
    "DatasetFiles",
    "Sample",
    "SampleObject",
    "generate_fish",
    "generate_litter",
    "write_dataset",
]
