"""The human-in-the-loop, simulated: the ground truth plays the annotator.

    .venv/bin/python tests/benchmarks/sim_loop.py [--rounds 3] [--images 50] \\
        [--models DIR] [--write docs/benchmarks.md]

Each round takes 50 new synthetic fish images, pre-annotates them with the promoted model,
and "corrects" them to the ground truth. The **acceptance rate** is the share of
pre-annotations a person would keep as they are (right class, IoU >= 0.5 with a true box,
each true box used once); the boxes the annotator had to add are the true boxes no
pre-annotation matched. The corrected round is exported as a CVAT zip and the model is
retrained from all exports so far (`imagine-assist train fish --from ...`), gated and
promoted. mAP50 is measured on a fixed held-out set (seed 7777) for every model that was
live. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def accepted_and_added(predicted, truth, iou: float = 0.5) -> tuple[int, int, int]:
    """(kept pre-annotations, all pre-annotations, true boxes left to add)."""
    import supervision as sv

    if len(predicted) == 0 or len(truth) == 0:
        return 0, len(predicted), len(truth)
    overlaps = sv.box_iou_batch(predicted.xyxy, truth.xyxy)
    used, kept = set(), 0
    for p in np.argsort(-predicted.confidence):
        for t in np.argsort(-overlaps[p]):
            if overlaps[p, t] < iou:
                break
            if t not in used and predicted.data["class_name"][p] == truth.data["class_name"][t]:
                used.add(t)
                kept += 1
                break
    return kept, len(predicted), len(truth) - len(used)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--models", help="models directory (default: a new temporary one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write", help="also write the section into this Markdown file")
    args = parser.parse_args()

    from imagine_assist.families import get_family
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import resolve_model
    from imagine_assist.samples import family_samples, write_cvat_export, write_dataset

    fish = get_family("fish")
    labels = list(fish.labels)
    from imagine_assist.training.detector import evaluate_yolo
    from imagine_assist.training.retrain import load_recipe, retrain

    work = Path(tempfile.mkdtemp(prefix="sim-loop-"))
    models = Path(args.models) if args.models else work / "models"
    registry = Registry(models)
    held_out = write_dataset(
        work / "held-out", family_samples(fish, 100, seed=7777, fractions=(0, 0, 1)), labels
    ).data_yaml
    recipe = load_recipe("fish")

    def held_out_map50() -> float:
        weights = resolve_model("fish", models, "pt")
        return evaluate_yolo(weights, held_out, "test", recipe.imgsz, args.device)["mAP50"]

    rows, exports = [], []
    started = time.time()
    for round_index in range(1, args.rounds + 1):
        function = load_function("fish-detector", models_dir=models)
        live = registry.current("fish")
        live_name = live.name if live else "bundled"
        map50 = held_out_map50()
        kept = shown = added = 0
        samples = list(
            family_samples(fish, args.images, seed=7000 + round_index, fractions=(1, 0, 0))
        )
        for sample in samples:
            predicted = function.detect(sample.image)
            k, s, a = accepted_and_added(predicted, sample.detections(labels))
            kept, shown, added = kept + k, shown + s, added + a
        export = write_cvat_export(work / f"round-{round_index}.zip", samples, labels)
        exports.append(export)
        result = retrain(
            "fish", exports, registry, work / f"train-{round_index}", recipe, args.device
        )
        rows.append(
            {
                "round": round_index,
                "live_model": live_name,
                "held_out_mAP50": map50,
                "pre_annotations": shown,
                "acceptance_rate": kept / max(shown, 1),
                "boxes_added": added,
                "true_boxes": sum(len(s.objects) for s in samples),
                "candidate": result.version.name,
                "candidate_gate_mAP50": result.card["metrics"]["candidate"]["mAP50"],
                "deployed_gate_mAP50": (result.card["metrics"]["deployed"] or {}).get("mAP50"),
                "promoted": result.promoted,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    final_live = registry.current("fish")
    final = {
        "live_model": final_live.name if final_live else "bundled",
        "held_out_mAP50": held_out_map50(),
    }
    minutes = (time.time() - started) / 60

    lines = [
        f"{args.rounds} rounds of {args.images} new fish images, ground truth as the annotator, "
        f"`src/imagine_assist/training/recipes/fish.yaml` ({recipe.epochs} epochs fine-tuning the "
        "live model), "
        f"{args.device}, {minutes:.0f} min in all:",
        "",
        "| round | live model | acceptance rate | pre-annotations | boxes added | held-out mAP50 "
        "| candidate | gate mAP50 candidate / live | promoted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['round']} | {row['live_model']} | {row['acceptance_rate']:.3f} | "
            f"{row['pre_annotations']} | {row['boxes_added']} / {row['true_boxes']} | "
            f"{row['held_out_mAP50']:.3f} | {row['candidate']} | "
            f"{row['candidate_gate_mAP50']:.3f} / {row['deployed_gate_mAP50'] or 0:.3f} | "
            f"{'yes' if row['promoted'] else 'no'} |"
        )
    lines.append(f"| after | {final['live_model']} | | | | {final['held_out_mAP50']:.3f} | | | |")
    _plot(
        rows,
        final,
        Path(args.write).parent / "images" / "sim-loop.png"
        if args.write
        else work / "sim-loop.png",
    )
    text = "\n".join(lines)
    print(text)
    if args.write:
        from report import write_report

        plot = "![acceptance and mAP50 by round](images/sim-loop.png)\n\n"
        write_report(args.write, "loop", "Simulated annotation loop (issue 6)", plot + text)


def _plot(rows, final, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target.parent.mkdir(parents=True, exist_ok=True)
    rounds = [row["round"] for row in rows]
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    axis.plot(rounds, [row["acceptance_rate"] for row in rows], "o-", label="acceptance rate")
    maps = [row["held_out_mAP50"] for row in rows] + [final["held_out_mAP50"]]
    axis.plot([*rounds, rounds[-1] + 1], maps, "s--", label="held-out mAP50 of the live model")
    axis.axhline(0.8, color="grey", linewidth=0.8, linestyle=":")
    axis.set(xlabel="round", ylim=(0, 1.02), title="simulated loop, fish")
    axis.set_xticks([*rounds, rounds[-1] + 1], [*map(str, rounds), "after"])
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(target, dpi=90)
    plt.close(figure)


if __name__ == "__main__":
    main()
