"""`imagine-assist demo`: the main job end to end on the bundled (generated) default data.

1. Train the default fish and litter models if the models directory lacks them.
2. Write the demo images: observatory-like fish scenes and 4000x3000 drone-like frames.
3. Run `fish-detector` and `litter-detector` over them: CVAT XML, counts CSV, plot, previews.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from imagine_assist.functions.catalog import FUNCTIONS, load_function
from imagine_assist.home import Home
from imagine_assist.models.store import family_dir, model_path
from imagine_assist.predict import predict_to_files
from imagine_assist.samples import generate_fish, generate_litter
from imagine_assist.samples.base import Sample, write_dataset
from imagine_assist.training.defaults import family_labels, train_default

DEMO_SEED = 2024  # not used by any training recipe
DEMO_DATA = {"fish": lambda: generate_fish(12, seed=DEMO_SEED, fractions=(0, 0, 1)),
             "litter": lambda: generate_litter(2, seed=DEMO_SEED, fractions=(0, 0, 1))}


def ensure_default_model(family: str, models_dir: str | None) -> Path:
    path = model_path(family, models_dir)
    if not path.is_file():
        print(f"no {family} model in {path.parent}: training the default one (a few minutes)")
        trained = train_default(family, family_dir(family, models_dir),
                                Home.resolve().root / "runs" / family)
        print(f"{family}: held-out test mAP50 = {trained.metrics['test']['mAP50']:.3f}")
    return path


def write_demo_images(family: str, out_dir: Path) -> tuple[Path, int]:
    """Plain images to predict on, plus their ground truth beside them for comparison."""
    samples: list[Sample] = list(DEMO_DATA[family]())
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        Image.fromarray(sample.image).save(images_dir / sample.name, quality=92)
    write_dataset(out_dir / "ground-truth", samples, family_labels(family))
    return images_dir, sum(len(s.objects) for s in samples)


def run_demo(out: Path, models_dir: str | None = None) -> None:
    for spec in FUNCTIONS.values():
        ensure_default_model(spec.family, models_dir)
        images, truth = write_demo_images(spec.family, out / "data" / spec.family)
        report = predict_to_files(load_function(spec.id, models_dir=models_dir), images,
                                  out / spec.id)
        found = sum(report.totals.values())
        print(f"{spec.id}: {found} objects found, {truth} in the ground truth -> {report.out_dir}")
        print(f"  {report.cvat_xml.name}, {report.counts_csv.name}, {report.plot.name}, "
              f"{len(report.previews)} previews")
