"""`imagine-assist demo`: the main job end to end on the bundled default data.

1. Install the default fish and litter models into the models directory (the bundled
   ones, trained by `imagine-assist train <family>`), unless models are there already.
2. Write the demo images: observatory-like fish scenes and 4000x3000 drone-like frames,
   generated from a seed no training run uses, with their ground truth.
3. Run `fish-detector` and `litter-detector` over them: CVAT XML, counts CSV, plot, previews.
4. One turn of the annotation loop (`loop_demo`): pre-annotate, a simulated correction,
   review, retrain, gate and promote, then serve the live models and say how CVAT uses them.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from imagine_assist.families import get_family
from imagine_assist.functions.catalog import FUNCTIONS, load_function
from imagine_assist.models.store import install_bundled
from imagine_assist.predict import predict_to_files
from imagine_assist.samples import Sample, family_samples, write_dataset
from imagine_assist.training.defaults import family_labels

DEMO_SEED = 2024  # not used by any training recipe
DEMO_DATA = {  # generated scenes under each family's own labels (fish: one label, `fish`)
    "fish": lambda: family_samples(get_family("fish"), 12, DEMO_SEED, fractions=(0, 0, 1)),
    "litter": lambda: family_samples(get_family("litter"), 2, DEMO_SEED, fractions=(0, 0, 1)),
}


def write_demo_images(family: str, out_dir: Path) -> tuple[Path, int]:
    """Plain images to predict on, plus their ground truth beside them for comparison."""
    samples: list[Sample] = list(DEMO_DATA[family]())
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        Image.fromarray(sample.image).save(images_dir / sample.name, quality=92)
    write_dataset(out_dir / "ground-truth", samples, family_labels(family))
    return images_dir, sum(len(s.objects) for s in samples)


def run_demo(out: Path, models_dir: str | None = None, loop: bool = True) -> None:
    from imagine_assist.home import Home

    home = Home.resolve()
    print(
        "Every image in this demo is synthetic (generated scenes with exact ground truth): "
        "the counts below say nothing about real cameras. The bundled fish model was trained "
        "on real frames (docs/models.md); the litter and burrow models on synthetic ones "
        "only.\n"
        f"The demo writes to this home: {home.root} (models "
        f"{Path(models_dir) if models_dir else home.models}, a new version of fish, the family "
        "reef); set IMAGINE_ASSIST_HOME or --home to keep it apart from your own.\n"
    )
    for spec in (s for s in FUNCTIONS.values() if s.kind == "detector" and s.family in DEMO_DATA):
        model = install_bundled(spec.family, models_dir)
        metrics = json.loads((model.parent / "metrics.json").read_text())
        on = metrics.get("test_set", "held-out synthetic scenes")
        print(f"{spec.family} model {model} (mAP50 {metrics['test']['mAP50']:.3f} on {on})")
        images, truth = write_demo_images(spec.family, out / "data" / spec.family)
        report = predict_to_files(
            load_function(spec.id, models_dir=models_dir), images, out / spec.id
        )
        found = sum(report.totals.values())
        print(f"{spec.id}: {found} objects found, {truth} in the ground truth -> {report.out_dir}")
        print(
            f"  {report.cvat_xml.name}, {report.counts_csv.name}, {report.plot.name}, "
            f"{len(report.previews)} previews"
        )
    if loop:
        from imagine_assist.loop_demo import run_loop_demo

        run_loop_demo(out, models_dir)
