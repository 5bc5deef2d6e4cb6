"""The bundled litter model's recipe: the previous bundled weights, fine-tuned on the
generator's real-looking shores (mud, grass, leaf litter, puddles, shadows; eight
categories; stones, shells, wood and leaves as unboxed distractors).

    python -m imagine_assist.training.litter_shore --out DIR [--hours 0.4] [--device cpu]
        [--install-into src/imagine_assist/models/bundled/litter]

No labelled real drone set could be had, so the model is trained and tested on synthetic
frames only; its card says so. The weights carry over from the 4-class model (backbone and
neck; the head is new for 8 classes), which is what lets a CPU budget of well under an hour
reach a usable model.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.training.defaults import build_datasets
from imagine_assist.training.detector import (
    evaluate_yolo,
    export_onnx,
    install_files,
    train_yolo,
    write_run_record,
)
from imagine_assist.training.recipes import RECIPES

DATA_NOTE = (
    "Trained and tested on synthetic drone frames only (real-looking shores: mud, grass, leaf "
    "litter, puddles, shadows, and dense dumps of weathered items, with stones, shells, wood and "
    "leaves as distractors): no "
    "labelled real drone set could be had for this project."
)


def train(out: Path, hours: float, device: str, images: int, start: Path) -> dict:
    started = time.time()
    recipe = replace(RECIPES["litter"], architecture=str(start), images=images, epochs=40)
    data_yaml, test_yaml, lineage = build_datasets(recipe, out)
    best = train_yolo(
        data_yaml,
        out,
        recipe,
        device,
        time=hours,
        optimizer="AdamW",
        lr0=0.001,
        warmup_epochs=0.5,
    )
    test = evaluate_yolo(best, test_yaml, "test", recipe.imgsz, device)
    onnx = export_onnx(best, recipe.imgsz)
    facts = {
        "family": "litter",
        "recipe": asdict(recipe) | {"hours": hours, "start": str(start)},
        "test": test,
        "data": lineage,
        "data_note": DATA_NOTE,
        "credits": [],
    }
    return write_run_record(out, facts, started, device, best, onnx)


def install(out: Path, target: Path) -> None:
    metrics = json.loads((out / "metrics.json").read_text())
    files = {"model.pt": Path(metrics.pop("best")), "model.onnx": Path(metrics.pop("onnx"))}
    install_files(target, files, metrics)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder")
    parser.add_argument("--hours", type=float, default=0.4, help="training budget")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=24, help="generated train+val frames")
    parser.add_argument("--start", type=Path, default=BUNDLED_DIR / "litter" / "model.pt")
    parser.add_argument("--install-into", type=Path, help="install the finished run here")
    args = parser.parse_args(argv)
    if args.install_into:
        install(args.out, args.install_into)
        return
    print(json.dumps(train(args.out, args.hours, args.device, args.images, args.start), indent=2))


if __name__ == "__main__":
    main()
