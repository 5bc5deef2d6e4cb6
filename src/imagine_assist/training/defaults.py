"""The default models of the built-in detector families (fish, litter, burrow): generated
sample data in, an installed model out.

`imagine-assist train <family>` runs this. Data and training runs go to a work directory;
the model goes to ``<models dir>/<family>/`` where the served functions look for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tqdm.auto import tqdm

from imagine_assist.errors import UserError
from imagine_assist.families import get_family
from imagine_assist.samples import Sample, family_samples, write_dataset
from imagine_assist.training.detector import TrainedModel, train_and_install
from imagine_assist.training.recipes import RECIPES, DetectorRecipe
from imagine_assist.training.tiles import tile_samples

TRAIN_VAL = (0.8, 0.2, 0.0)
TEST_ONLY = (0.0, 0.0, 1.0)


def family_labels(family: str) -> tuple[str, ...]:
    """The labels the family's model is trained with: the family file's, never the
    generator's. The generator draws its kinds of object; they take the family's names."""
    labels = get_family(family).labels
    if labels is None:
        raise UserError(f"family {family} takes its labels from its model: name them first")
    return labels


def _generator(family: str):
    """The family's synthetic generator under the family's labels (`samples.family_samples`)."""
    family_labels(family)  # a family naming its labels from a model has none to draw yet

    def generate(n: int, seed: int, fractions) -> Iterator[Sample]:
        return family_samples(get_family(family), n, seed=seed, fractions=fractions)

    return generate


def _samples(recipe: DetectorRecipe, n: int, seed: int, fractions, desc: str) -> Iterator[Sample]:
    generated = _generator(recipe.family)(n, seed=seed, fractions=fractions)
    samples = tqdm(generated, total=n, desc=desc, unit="image")
    if recipe.tile_size:
        return tile_samples(
            samples, recipe.tile_size, recipe.tile_overlap, recipe.empty_tile_share, seed=seed
        )
    return iter(samples)


def build_datasets(recipe: DetectorRecipe, work_dir: Path) -> tuple[Path, Path, dict]:
    """Write the train/val dataset and the held-out test dataset; return their yamls."""
    labels = family_labels(recipe.family)
    train = write_dataset(
        work_dir / "data" / "train-val",
        _samples(recipe, recipe.images, recipe.seed, TRAIN_VAL, "generating train/val"),
        labels,
    )
    test = write_dataset(
        work_dir / "data" / "test",
        _samples(recipe, recipe.test_images, recipe.test_seed, TEST_ONLY, "generating test"),
        labels,
    )
    lineage = {
        "source": f"imagine_assist.samples ({recipe.family})",
        "train_val": {"seed": recipe.seed, "images": recipe.images, "files": train.image_count},
        "test": {"seed": recipe.test_seed, "images": recipe.test_images, "files": test.image_count},
    }
    return train.data_yaml, test.data_yaml, lineage


def train_default(
    family: str,
    family_dir: Path,
    work_dir: Path,
    recipe: DetectorRecipe | None = None,
    device: str = "cpu",
) -> TrainedModel:
    if family not in RECIPES:
        raise UserError(f"no default recipe for {family!r}; families: {', '.join(RECIPES)}")
    recipe = recipe or RECIPES[family]
    data_yaml, test_yaml, lineage = build_datasets(recipe, work_dir)
    return train_and_install(data_yaml, test_yaml, work_dir, family_dir, recipe, lineage, device)
