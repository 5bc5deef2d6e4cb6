"""The annotation loop on real images, the ground truth playing the annotator (issue 16).

One run is one scenario with one way of picking the images; each writes a JSON file, and
`--report` turns every JSON file in the folder into the section of docs/benchmarks.md:

    .venv/bin/python tests/benchmarks/sim_loop.py run --scenario camera --picks next \\
        --data ../shared/data/real-train/fish --out runs/loop [--rounds 3] [--images 50]
    .venv/bin/python tests/benchmarks/sim_loop.py report --out runs/loop \\
        --write docs/benchmarks.md

Scenarios:

- **camera**: one class, `fish`, on a new camera. The five DeepFish habitats the bundled fish
  model never trained on (`training.real_fish.RealFishRecipe.held_out_habitats`) are the
  new camera. A quarter of their frames (by a hash of the file name) is the held-out set for
  AP50; 60 others are the fixed validation export the gate decides on (`--val`), labelled
  once before the first round; the rest is the pool the rounds draw from.
- **species**: a user's own species. Fish4Knowledge's numbered species become labels
  `species-0` ... `species-8`. Round 1 is pre-annotated by the fish detector (its `fish`
  boxes must all be relabelled) and its export starts the family through `families create`
  (from the fish model); later rounds retrain that family. Pool: F4K train; validation
  export: 60 frames of F4K valid; held-out: the rest of F4K valid.

Each round: pick 50 images from the pool (`random`, or `next`: the rule of
`imagine-assist next`, with the live model), pre-annotate them with the live model at its
served threshold, correct them to the ground truth, export the round as a CVAT zip, train
`--from` every export so far with the fixed validation export, gate, promote.

The correction of each image: a pre-annotation is **accepted** when it has the right label
and IoU >= 0.5 with a true box (greedy by confidence, each true box used once);
**relabelled** when it overlaps a remaining true box at IoU >= 0.5 under another label;
**deleted** otherwise; each true box left over is **added** (drawn). Annotator time uses
published per-box costs of `imagine_assist.review.annotator_time`: drawing a box 7.0 s,
judging a shown box 1.6 s, a deletion or a relabelling 1.0 s more. Labelling from scratch
costs 7.0 s per true box.

Not collected by pytest: it needs ../shared and tens of CPU minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

IOU = 0.5
VALIDATION_IMAGES = 60
HELD_OUT_SHARE = 0.25
F4K_NAMES = ["0", "1", "2", "5", "6", "7", "8"]  # fish4knowledge/data.yaml


@dataclass(frozen=True)
class Frame:
    """A labelled real frame: boxes in pixels (x1, y1, x2, y2) with their labels."""

    path: Path
    xyxy: np.ndarray
    labels: tuple[str, ...]
    size: tuple[int, int]  # width, height


def read_yolo(images: Path, labels: Path, names: list[str]) -> list[Frame]:
    from PIL import Image

    frames = []
    for path in sorted(images.iterdir()):
        if path.suffix.lower() not in {".jpg", ".jpeg", ".png"}:
            continue
        with Image.open(path) as image:
            width, height = image.size
        label = labels / f"{path.stem}.txt"
        rows = [line.split() for line in label.read_text().splitlines()] if label.exists() else []
        rows = [row for row in rows if len(row) == 5]
        xyxy = np.array(
            [
                [
                    (float(x) - float(w) / 2) * width,
                    (float(y) - float(h) / 2) * height,
                    (float(x) + float(w) / 2) * width,
                    (float(y) + float(h) / 2) * height,
                ]
                for _, x, y, w, h in rows
            ],
            dtype=np.float64,
        ).reshape(-1, 4)
        labelled = tuple(names[int(row[0])] for row in rows)
        frames.append(Frame(path, xyxy, labelled, (width, height)))
    return frames


def name_hash(frame: Frame) -> float:
    digest = hashlib.sha256(frame.path.name.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Scenario:
    name: str
    family: str  # the family the rounds train
    function: str  # the family's detector
    first_function: str  # what pre-annotates round 1
    labels: list[str]
    pool: list[Frame]
    validation: list[Frame]
    held_out: list[Frame]
    class_agnostic: bool


def camera_scenario(data: Path) -> Scenario:
    from imagine_assist.training.real_fish import RealFishRecipe, habitat

    root = data / "deepfish"
    habitats = set(RealFishRecipe().held_out_habitats)
    frames = [
        frame
        for frame in read_yolo(root / "images", root / "labels", ["fish"])
        if habitat(frame.path) in habitats
    ]
    held_out = [frame for frame in frames if name_hash(frame) < HELD_OUT_SHARE]
    rest = sorted((frame for frame in frames if name_hash(frame) >= HELD_OUT_SHARE), key=name_hash)
    return Scenario(
        "camera",
        "fish",
        "fish-detector",
        "fish-detector",
        ["fish"],
        rest[VALIDATION_IMAGES:],
        rest[:VALIDATION_IMAGES],
        held_out,
        class_agnostic=True,
    )


def species_scenario(data: Path) -> Scenario:
    root = data / "fish4knowledge"
    names = [f"species-{name}" for name in F4K_NAMES]
    pool = read_yolo(root / "train" / "images", root / "train" / "labels", names)
    valid = sorted(
        read_yolo(root / "valid" / "images", root / "valid" / "labels", names), key=name_hash
    )
    return Scenario(
        "species",
        "f4k",
        "f4k-detector",
        "fish-detector",
        names,
        pool,
        valid[:VALIDATION_IMAGES],
        valid[VALIDATION_IMAGES:],
        class_agnostic=False,
    )


def as_sample(frame: Frame):
    from imagine_assist.images import read_image
    from imagine_assist.samples.base import Sample, SampleObject

    objects = [
        SampleObject(label, tuple(float(v) for v in box))
        for box, label in zip(frame.xyxy, frame.labels, strict=True)
    ]
    return Sample(frame.path.name, read_image(frame.path), objects)


def correction(predicted, frame: Frame) -> dict[str, int]:
    """What the annotator does to one image's pre-annotations (module docstring)."""
    import supervision as sv

    shown = len(predicted)
    names = list(predicted.data.get("class_name", [])) if shown else []
    truth_left = set(range(len(frame.labels)))
    order = np.argsort(-predicted.confidence) if shown else []
    overlaps = (
        sv.box_iou_batch(predicted.xyxy.astype(np.float64), frame.xyxy)
        if shown and len(frame.labels)
        else np.zeros((shown, len(frame.labels)))
    )
    unmatched = []
    accepted = 0
    for p in order:
        match = next(
            (
                t
                for t in np.argsort(-overlaps[p])
                if overlaps[p, t] >= IOU and t in truth_left and frame.labels[t] == names[p]
            ),
            None,
        )
        if match is None:
            unmatched.append(p)
        else:
            truth_left.discard(match)
            accepted += 1
    relabelled = 0
    for p in unmatched:
        match = next(
            (t for t in np.argsort(-overlaps[p]) if overlaps[p, t] >= IOU and t in truth_left),
            None,
        )
        if match is not None:
            truth_left.discard(match)
            relabelled += 1
    return {
        "shown": shown,
        "accepted": accepted,
        "relabelled": relabelled,
        "deleted": shown - accepted - relabelled,
        "added": len(truth_left),
        "true_boxes": len(frame.labels),
    }


def annotator_seconds(counts: dict[str, int]) -> float:
    from imagine_assist.review.annotator_time import correction_seconds

    wrong = counts["deleted"] + counts["relabelled"]  # a relabelled object is not drawn again
    return correction_seconds(counts["accepted"], wrong, counts["added"])


def held_out_ap50(function, scenario: Scenario) -> float:
    """AP50 (COCO-style, mean over the classes with boxes) of the function on the held-out
    frames, as `imagine-assist evaluate` computes it."""
    from imagine_assist.models import detection_metrics as metrics
    from imagine_assist.review.evaluate import ap_facts, predict
    from imagine_assist.review.review import AGNOSTIC_LABEL

    classes = [AGNOSTIC_LABEL] if scenario.class_agnostic else list(scenario.labels)
    ids = {label: index for index, label in enumerate(classes)}
    truth = []
    for frame in scenario.held_out:
        width, height = frame.size
        x1, y1, x2, y2 = frame.xyxy.T
        xywh = np.stack([x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height], axis=1)
        class_id = [0 if scenario.class_agnostic else ids[label] for label in frame.labels]
        truth.append(metrics.Boxes(xywh, class_id))
    filepaths = [str(frame.path) for frame in scenario.held_out]
    predicted = predict(function, filepaths, classes, scenario.class_agnostic)
    return ap_facts(metrics.evaluate(truth, predicted, len(classes)), classes)["AP50"]


def pick(function, remaining: list[Frame], n: int, picks: str, rng: random.Random) -> list[Frame]:
    if picks == "random":
        return rng.sample(remaining, min(n, len(remaining)))
    from imagine_assist.review.next_images import choose, score_images

    by_path = {frame.path: frame for frame in remaining}
    scores = score_images(function, list(by_path))
    return [by_path[score.path] for score in choose(scores, n)]


def run(args: argparse.Namespace) -> Path:
    work = Path(tempfile.mkdtemp(prefix=f"sim-loop-{args.scenario}-{args.picks}-"))
    os.environ["IMAGINE_ASSIST_HOME"] = str(work / "home")  # families and exports go here
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.models.registry import Registry
    from imagine_assist.review.annotator_time import DRAW_S
    from imagine_assist.samples.base import write_cvat_export
    from imagine_assist.training.new_family import create_family
    from imagine_assist.training.retrain import load_recipe, retrain

    data = Path(args.data)
    scenario = (camera_scenario if args.scenario == "camera" else species_scenario)(data)
    models = work / "models"
    registry = Registry(models)
    validation = write_cvat_export(
        work / "validation.zip", map(as_sample, scenario.validation), scenario.labels
    )
    print(
        f"{scenario.name}: pool {len(scenario.pool)}, validation {len(scenario.validation)}, "
        f"held-out {len(scenario.held_out)} frames",
        flush=True,
    )
    start_function = load_function(scenario.first_function, models_dir=models)
    start_ap50 = held_out_ap50(start_function, scenario) if scenario.family == "fish" else 0.0
    rng = random.Random(args.seed)
    remaining = list(scenario.pool)
    rows, exports = [], []
    started = time.time()
    for round_index in range(1, args.rounds + 1):
        round_started = time.time()
        # the species family exists once round 1's export has created it
        has_family_model = round_index > 1 or scenario.function == scenario.first_function
        function = load_function(
            scenario.function if has_family_model else scenario.first_function, models_dir=models
        )
        chosen = pick(function, remaining, args.images, args.picks, rng)
        chosen_paths = {frame.path for frame in chosen}
        remaining = [frame for frame in remaining if frame.path not in chosen_paths]
        counts = dict.fromkeys(
            ("shown", "accepted", "relabelled", "deleted", "added", "true_boxes"), 0
        )
        samples = [as_sample(frame) for frame in chosen]  # each frame decoded once
        for frame, sample in zip(chosen, samples, strict=True):
            for key, value in correction(function.detect(sample.image), frame).items():
                counts[key] += value
        exports.append(
            write_cvat_export(work / f"round-{round_index}.zip", samples, scenario.labels)
        )
        train_wall, train_cpu = time.time(), time.process_time()
        if has_family_model:
            result = retrain(
                scenario.family,
                exports,
                registry,
                work / f"train-{round_index}",
                load_recipe(scenario.family),
                args.device,
                epochs=args.epochs,
                val_exports=[validation],
            )
        else:
            result = create_family(
                scenario.family,
                exports,
                work / f"train-{round_index}",
                models_dir=models,
                base="fish",
                val_exports=[validation],
                epochs=args.epochs,
                device=args.device,
            ).result
        train_wall = time.time() - train_wall
        train_cpu = time.process_time() - train_cpu
        live = registry.current(scenario.family)
        after = load_function(scenario.function, models_dir=models)
        gate = result.card["metrics"]
        rows.append(
            {
                "round": round_index,
                "images": len(chosen),
                **counts,
                "acceptance": counts["accepted"] / counts["shown"] if counts["shown"] else 0.0,
                "annotator_minutes": annotator_seconds(counts) / 60,
                "from_scratch_minutes": counts["true_boxes"] * DRAW_S / 60,
                "candidate": result.version.name,
                "gate_candidate_mAP50": gate["candidate"]["mAP50"],
                "gate_live_mAP50": (gate["deployed"] or {}).get("mAP50"),
                "promoted": result.promoted,
                "live_after": live.name if live else "bundled",
                "held_out_AP50_after": held_out_ap50(after, scenario),
                "train_wall_minutes": train_wall / 60,
                "train_cpu_minutes": train_cpu / 60,
                "round_wall_minutes": (time.time() - round_started) / 60,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    model = start_architecture()
    result_path = Path(args.out) / f"{scenario.name}-{args.picks}-{model}.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(scenario.family)
    from imagine_assist.training.centernet import FINE_TUNE_LR

    result_path.write_text(
        json.dumps(
            {
                "scenario": scenario.name,
                "picks": args.picks,
                "start_model": model,
                "images_per_round": args.images,
                "pool": len(scenario.pool),
                "validation": len(scenario.validation),
                "held_out": len(scenario.held_out),
                "held_out_boxes": int(sum(len(f.labels) for f in scenario.held_out)),
                "start_held_out_AP50": start_ap50,
                "recipe": {
                    "epochs": args.epochs or recipe.epochs,
                    "imgsz": recipe.imgsz,
                    # ultralytics' arguments train a YOLO only; a CenterNet round is
                    # `centernet.fit` for the recipe's epochs as passes, at its own rate
                    **(
                        {"trainer": "training.centernet.fit", "lr": FINE_TUNE_LR}
                        if model.startswith("centernet")
                        else {"train_args": recipe.train_args}
                    ),
                },
                "device": args.device,
                "cpus": os.cpu_count(),
                "wall_minutes": (time.time() - started) / 60,
                "date": date.today().isoformat(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {result_path} (work folder {work})", flush=True)
    return result_path


# runs written before the fish model changed do not name their start model: it was the YOLOv8n
EARLIER_FISH_MODEL = "yolov8n"


def start_architecture() -> str:
    """The bundled fish model's architecture, as its metrics.json names it."""
    from imagine_assist.models.store import BUNDLED_DIR

    facts = json.loads((BUNDLED_DIR / "fish" / "metrics.json").read_text())
    return facts.get("architecture", EARLIER_FISH_MODEL)


SCENARIO_TITLES = {
    "camera": "(a) one class `fish`, new camera: 5 DeepFish habitats the bundled model never saw",
    "species": "(b) a user's own species: Fish4Knowledge's 7 numbered species, family "
    "created in round 1 from the fish model",
}


def report(args: argparse.Namespace) -> str:
    runs = [json.loads(path.read_text()) for path in sorted(Path(args.out).glob("*.json"))]
    if not runs:
        sys.exit(f"no run results in {args.out}")
    lines = []
    for run_result in runs:
        rows = run_result["rows"]
        lines += [
            f"**{SCENARIO_TITLES[run_result['scenario']]}**, {run_result['picks']} picks, "
            f"starting from the {_model(run_result)} fish model: "
            f"{run_result['images_per_round']} images per round from a pool of "
            f"{run_result['pool']}; gate on a fixed validation export of "
            f"{run_result['validation']} frames; held-out AP50 on {run_result['held_out']} "
            f"frames ({run_result['held_out_boxes']} boxes), "
            f"{'class-agnostic' if run_result['scenario'] == 'camera' else 'per species'}. "
            f"{_start(run_result)} Recipe: {run_result['recipe']['epochs']} "
            f"epochs at {run_result['recipe']['imgsz']} px, "
            f"{run_result['device']}, {run_result['cpus']} cores, "
            f"{run_result['wall_minutes']:.0f} min in all ({run_result['date']}).",
            "",
            "| round | acceptance | shown | accepted | relabelled | deleted | added / true "
            "| annotator min (from scratch) | candidate: gate mAP50 candidate / live | promoted "
            "| held-out AP50 after | training min (CPU min) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            live = row["gate_live_mAP50"]
            lines.append(
                f"| {row['round']} | **{row['acceptance']:.3f}** | {row['shown']} | "
                f"{row['accepted']} | {row['relabelled']} | {row['deleted']} | "
                f"{row['added']} / {row['true_boxes']} | {row['annotator_minutes']:.1f} "
                f"({row['from_scratch_minutes']:.1f}) | {row['candidate']}: "
                f"{row['gate_candidate_mAP50']:.3f} / "
                f"{'none' if live is None else f'{live:.3f}'} | "
                f"{'yes' if row['promoted'] else 'no'} | {row['held_out_AP50_after']:.3f} | "
                f"{row['train_wall_minutes']:.1f} ({row['train_cpu_minutes']:.1f}) |"
            )
        lines.append("")
        if run_result["scenario"] == "camera":
            lines += [_goal(rows), ""]
        if run_result.get("note"):
            lines += [run_result["note"], ""]
    plot = Path(args.write).parent / "images" / "sim-loop.png" if args.write else None
    if plot:
        _plot(runs, plot)
    return "\n".join(lines)


def _model(run_result: dict) -> str:
    return run_result.get("start_model", EARLIER_FISH_MODEL)


def _start(run_result: dict) -> str:
    if run_result["scenario"] == "species":
        return "No species model exists before round 1: `fish-detector` pre-annotates it."
    start = run_result["start_held_out_AP50"]
    return f"Before round 1 the live model's held-out AP50 is {start:.3f}."


def _goal(rows: list[dict]) -> str:
    """Issue 16's goal for scenario (a): acceptance rises every round, >= 0.8 by round 3."""
    rates = [row["acceptance"] for row in rows]
    rising = all(later > earlier for earlier, later in zip(rates, rates[1:], strict=False))
    by_third = len(rates) >= 3 and max(rates[:3]) >= 0.8
    verdict = "met" if rising and by_third else "not met"
    return (
        f"Goal (acceptance rises every round and reaches 0.8 by round 3): **{verdict}** "
        f"({', '.join(f'{rate:.3f}' for rate in rates)}"
        f"{'' if rising else '; it does not rise every round'})."
    )


def _plot(runs: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for run_result in runs:
        rows = run_result["rows"]
        rounds = [row["round"] for row in rows]
        label = f"{run_result['scenario']}, {run_result['picks']} picks, {_model(run_result)}"
        axes[0].plot(rounds, [row["acceptance"] for row in rows], "o-", label=label)
        axes[1].plot(
            [0, *rounds],
            [run_result["start_held_out_AP50"]] + [row["held_out_AP50_after"] for row in rows],
            "s--",
            label=label,
        )
        axes[2].plot(
            rounds,
            [row["annotator_minutes"] / row["from_scratch_minutes"] for row in rows],
            "^-",
            label=label,
        )
    axes[0].axhline(0.8, color="grey", linewidth=0.8, linestyle=":")
    axes[0].set(xlabel="round", ylabel="pre-annotations accepted unchanged", ylim=(0, 1.02))
    axes[1].set(xlabel="after round (0: before)", ylabel="held-out AP50", ylim=(0, 1.02))
    axes[2].set(xlabel="round", ylabel="annotator time / drawing every box", ylim=(0, 1.1))
    last = max(len(run_result["rows"]) for run_result in runs)
    for index, axis in enumerate(axes):
        axis.set_xticks(range(0 if index == 1 else 1, last + 1))
        axis.legend(fontsize=8)
    figure.suptitle("annotation loop on real fish frames", fontsize=10)
    figure.tight_layout()
    figure.savefig(target, dpi=90)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="one scenario with one way of picking")
    one.add_argument("--scenario", choices=["camera", "species"], required=True)
    one.add_argument("--picks", choices=["random", "next"], default="next")
    one.add_argument("--data", default="../shared/data/real-train/fish")
    one.add_argument("--rounds", type=int, default=3)
    one.add_argument("--images", type=int, default=50)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--epochs", type=int, help="instead of the recipe's (a quick try)")
    one.add_argument("--device", default="cpu")
    one.add_argument("--out", required=True, help="folder for the run's JSON")
    every = commands.add_parser("report", help="the tables and plot of the runs in --out")
    every.add_argument("--out", required=True)
    every.add_argument("--write", help="also write the section into this Markdown file")
    args = parser.parse_args()
    if args.command == "run":
        run(args)
        return
    text = report(args)
    print(text)
    if args.write:
        from report import write_report

        plot = "![acceptance and held-out AP50 by round](images/sim-loop.png)\n\n"
        command = (
            "Each run: `python tests/benchmarks/sim_loop.py run --scenario S --picks P --out "
            "DIR`, with the real frames of `../shared/data/real-train/fish`; the ground truth "
            "plays the annotator. Annotator time: 7.0 s to draw a box (extreme clicking, "
            "Papadopoulos et al. ICCV 2017), 1.6 s to judge a shown box (Papadopoulos et al. "
            "CVPR 2016), 1.0 s more to delete or relabel one (our assumption).\n\n"
        )
        write_report(
            args.write, "loop", "Annotation loop on real images (issue 16)", command + plot + text
        )


if __name__ == "__main__":
    main()
