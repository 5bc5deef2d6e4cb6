"""Synthetic fish scenes labelled as the built-in fish family labels them (one label, `fish`:
species belong to a user's own family), for tests that export or train fish tasks."""

from imagine_assist.families import get_family
from imagine_assist.samples import family_samples

FISH_LABELS = list(get_family("fish").labels)


def fish_samples(n: int, seed: int, **options) -> list:
    return list(family_samples(get_family("fish"), n, seed=seed, **options))
