"""How each built-in family's default model is trained from the sample generators (the
`default_training:` section of its family file).

A recipe fixes everything a rerun needs to reach the same model: data size and seeds,
architecture (built from its yaml, never a downloaded checkpoint), image size and epochs.
The held-out test set comes from its own seed, never seen in training or model selection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from imagine_assist.families import builtin_families


@dataclass(frozen=True)
class DetectorRecipe:
    family: str
    images: int  # generated images for train + val
    test_images: int  # generated from `test_seed`, for the reported metrics
    imgsz: int
    epochs: int
    seed: int = 0
    test_seed: int = 1000
    architecture: str = "yolov8n.yaml"
    batch: int = 16
    patience: int = 100
    tile_size: int | None = None  # train on windows of large frames, as tiled inference sees them
    tile_overlap: int = 0
    empty_tile_share: float = 0.1  # of windows without objects, keep this share

    def scaled(
        self, epochs: int | None = None, images: int | None = None, test_images: int | None = None
    ) -> DetectorRecipe:
        """The same recipe with a smaller budget (tests, quick tries)."""
        return replace(
            self,
            epochs=epochs or self.epochs,
            images=images or self.images,
            test_images=test_images or self.test_images,
        )


def default_recipes() -> dict[str, DetectorRecipe]:
    """The synthetic-data recipes of the built-in families (their `default_training:`)."""
    recipes = {}
    for family in builtin_families().values():
        settings = family.default_training
        if settings is None or family.detector is None or family.name == "plankton":
            continue  # plankton has its own two-model recipe (training.plankton)
        recipes[family.name] = DetectorRecipe(family=family.name, **settings.__dict__)
    return recipes


RECIPES: dict[str, DetectorRecipe] = default_recipes()
