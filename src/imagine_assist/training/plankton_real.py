"""The plankton models on real vignettes: which real vignettes train, and the figures on
the ones that do not.

    python -m imagine_assist.training.plankton_real --vignettes DIR [--labels CSV]

The hand labels (`docs/data/zooscan-85457-labels.csv`: single, multiple or unclear, by
eye; the systematic sample of 100 marked) split the real vignettes:
- **train**: singles outside the sample of 100. They train the classifier as they are, and
  their cut-out organisms (`samples.real_plankton`) make composite multiples; a hash of the
  name holds 15 % of the organisms out of training, for the separator's test composites.
- **test**: the sample of 100, and every multiple and unclear vignette (none of them is
  ever used in training).

Figures:
- the tag (`plankton-separator` as served) on the hand-labelled test vignettes: precision
  and recall of "multiple" (unclear ones left out), singles cut into more than one object,
  and the share tagged multiple on every real vignette;
- the separator against the watershed on composites of held-out real organisms: object F1
  at IoU 0.5, over- and under-splits;
- vignettes per second through `separate` with 2 workers is `tests/benchmarks`' job.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm.auto import tqdm

from imagine_assist.training.plankton_eval import SeparationScores

LABELS = Path(__file__).resolve().parents[3] / "docs" / "data" / "zooscan-85457-labels.csv"
SINGLE, MULTIPLE, UNCLEAR = "single", "multiple", "unclear"


@dataclass(frozen=True)
class HandLabels:
    labels: dict[str, str]  # vignette file name -> single / multiple / unclear
    sample: frozenset[str]  # the systematic sample of 100

    @classmethod
    def read(cls, path: Path) -> HandLabels:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return cls(
            {row["vignette"]: row["label"] for row in rows},
            frozenset(row["vignette"] for row in rows if row["in_sample_of_100"] == "yes"),
        )

    def training_singles(self) -> tuple[str, ...]:
        chosen = (n for n, label in self.labels.items() if label == SINGLE)
        return tuple(sorted(n for n in chosen if n not in self.sample))

    def test_vignettes(self) -> tuple[str, ...]:
        return tuple(
            sorted(n for n, label in self.labels.items() if n in self.sample or label != SINGLE)
        )


def tag_scores(calls: dict[str, tuple[str, int]], labels: dict[str, str]) -> dict:
    """Precision and recall of the "multiple" tag against hand labels (unclear left out),
    and how many singles came back as more than one object."""
    judged = {n: labels[n] for n in calls if labels.get(n) in (SINGLE, MULTIPLE)}
    tp = sum(calls[n][0] == MULTIPLE and truth == MULTIPLE for n, truth in judged.items())
    fp = sum(calls[n][0] == MULTIPLE and truth == SINGLE for n, truth in judged.items())
    fn = sum(calls[n][0] != MULTIPLE and truth == MULTIPLE for n, truth in judged.items())
    singles = [n for n, truth in judged.items() if truth == SINGLE]
    return {
        "vignettes": len(judged),
        "multiples": tp + fn,
        "tagged_multiple": tp + fp,
        # None where nothing can be said (no multiples; none tagged), not a 0 that reads as one
        "recall_multiple": tp / (tp + fn) if tp + fn else None,
        "precision_multiple": tp / (tp + fp) if tp + fp else None,
        "singles_cut_apart": sum(calls[n][1] > 1 for n in singles),
        "singles": len(singles),
        "false_multiples": sorted(n for n in singles if calls[n][0] == MULTIPLE),
        "missed_multiples": sorted(
            n for n, truth in judged.items() if truth == MULTIPLE and calls[n][0] != MULTIPLE
        ),
    }


def evaluate_real_tags(function, folder: Path, names: list[str]) -> dict[str, tuple[str, int]]:
    """(tag, objects) of `plankton-separator` for each named vignette."""
    calls = {}
    for name in tqdm(names, desc="tagging real vignettes", unit="vignette"):
        bgr = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        separation = function.split(bgr[:, :, ::-1].copy())
        calls[name] = (separation.tag, len(separation.detections))
    return calls


def evaluate_real_composites(separators: dict, organisms, n: int, seed: int) -> dict:
    """Object F1 of each separator on `n` composites (half multiples) of the given real
    organisms."""
    from imagine_assist.samples.real_plankton import real_composite_sample

    separation = SeparationScores(separators)
    for index in tqdm(range(n), desc="separating real composites", unit="vignette"):
        separation.add(real_composite_sample(seed, index, organisms, multiple_share=0.5))
    report = {"vignettes": n, "seed": seed} | separation.report()
    return report


def evaluate(
    vignettes: Path,
    labels_path: Path = LABELS,
    models_dir: str | Path | None = None,
    composites: int = 300,
    seed: int = 4000,
    classifier: Path | None = None,
    threshold: float | None = None,
    separator: Path | None = None,
) -> dict:
    """`classifier` (an .onnx) and `threshold` try a candidate classifier and its
    P(multiple) threshold in the live function, and `separator` (an .onnx) a candidate
    separator, before they are installed."""
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.models.plankton import load_classifier, load_separator
    from imagine_assist.models.separate import separate_touching
    from imagine_assist.samples.real_plankton import load_organisms, organism_split

    labels = HandLabels.read(labels_path)
    function = load_function("plankton-separator", models_dir=models_dir)
    if classifier is not None:
        function.classifier = load_classifier(classifier)
        function.multiple_threshold = function.classifier.multiple_threshold
    if threshold is not None:
        function.multiple_threshold = threshold
    if separator is not None:
        function.separate = load_separator(separator)
    every = sorted(labels.labels)
    calls = evaluate_real_tags(function, vignettes, every)
    organisms = load_organisms(str(vignettes), labels.training_singles())
    held_out = [o for o in organisms if organism_split(o.kind) == "held_out"]
    separators = {"model": function.separate, "watershed": separate_touching}
    test = set(labels.test_vignettes())
    return {
        "labels": str(labels_path),
        "classifier": str(getattr(function.classifier, "path", None)),
        "threshold": function.multiple_threshold,
        "separator": str(separator) if separator else "live",
        "sample_of_100": tag_scores(
            {n: c for n, c in calls.items() if n in labels.sample}, labels.labels
        ),
        "all_test_vignettes": tag_scores(
            {n: c for n, c in calls.items() if n in test}, labels.labels
        ),
        "multiple_rate_all": sum(tag == MULTIPLE for tag, _ in calls.values()) / len(calls),
        "vignettes": len(calls),
        "held_out_composites": evaluate_real_composites(separators, held_out, composites, seed)
        | {"organisms": len(held_out)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vignettes", type=Path, required=True, help="real vignettes folder")
    parser.add_argument("--labels", type=Path, default=LABELS, help="hand labels CSV")
    parser.add_argument("--models", help="models folder (default: the live models)")
    parser.add_argument("--composites", type=int, default=300, help="held-out composites")
    parser.add_argument("--classifier", type=Path, help="a candidate classifier .onnx")
    parser.add_argument("--threshold", type=float, help="P(multiple) threshold to try")
    parser.add_argument("--separator", type=Path, help="a candidate separator .onnx")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON too")
    args = parser.parse_args(argv)
    report = evaluate(
        args.vignettes,
        args.labels,
        args.models,
        args.composites,
        classifier=args.classifier,
        threshold=args.threshold,
        separator=args.separator,
    )
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
