"""The plankton models and the watershed baseline on held-out synthetic ZooScan vignettes.

    .venv/bin/python tests/benchmarks/eval_separation.py [-n 200] [--seed 5150] [--models DIR]

Reports the classifier's recall and precision for "multiple", and for the trained separator
and the watershed: object-level F1 at IoU 0.5 with over- and under-split rates, on all
vignettes, singles and multiples. The seed is used by no training or development run.
Uses the installed plankton models, else the bundled ones. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5150)
    parser.add_argument("--models", help="models directory (default <home>/models)")
    args = parser.parse_args()

    from imagine_assist.models.store import resolve_model
    from imagine_assist.training.plankton_eval import evaluate_plankton

    separator = resolve_model("plankton", args.models, name="separator")
    classifier = resolve_model("plankton", args.models, name="classifier")
    report = evaluate_plankton(args.n, args.seed, separator=separator, classifier=classifier)
    report["models"] = {"separator": str(separator), "classifier": str(classifier)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
