"""How each family's default model is trained from the sample generators.

A recipe fixes everything a rerun needs to reach the same model: data size and seeds,
architecture (built from its yaml, never a downloaded checkpoint), image size and epochs.
The held-out test set comes from its own seed, never seen in training or model selection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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


RECIPES: dict[str, DetectorRecipe] = {
    "fish": DetectorRecipe(family="fish", images=400, test_images=100, imgsz=320, epochs=80),
    "litter": DetectorRecipe(
        family="litter",
        images=16,
        test_images=4,
        imgsz=320,
        epochs=80,
        tile_size=640,
        tile_overlap=160,
    ),
    # frames from several synthetic tows (samples.burrows.tow_detection_samples)
    "burrow": DetectorRecipe(family="burrow", images=600, test_images=150, imgsz=320, epochs=60),
}
