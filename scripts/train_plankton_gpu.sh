#!/usr/bin/env bash
# How the bundled plankton models were trained: one GPU machine, both models at once.
#
#   OUT=<dir> bash scripts/train_plankton_gpu.sh [images] [separator hours] [classifier hours] [device]
#
# Writes separator.pt, classifier.pt, their results.csv and logs into $OUT. The weights are
# copied every 20 s while training runs, so a run cut off by a time limit still leaves its
# best checkpoint. Export and evaluation then run anywhere:
#   imagine-assist train plankton ... or python -m imagine_assist.training.plankton_finish
set -u
images=${1:-10000}
separator_hours=${2:-0.1}
classifier_hours=${3:-0.06}
device=${4:-0}
work=${WORK:-/tmp/plankton-gpu}
out=${OUT:?set OUT to the folder for the results}
mkdir -p "$work" "$out"
python3 - "$work/data" "$images" <<'PY'
import sys
from pathlib import Path
from imagine_assist.training.plankton import PLANKTON_RECIPE, write_training_data
print(write_training_data(Path(sys.argv[1]), int(sys.argv[2]), PLANKTON_RECIPE.seed,
                          PLANKTON_RECIPE.classifier_imgsz))
PY
train() {  # model hours log
    python3 - "$work" "$1" "$2" "$device" <<'PY' > "$out/$3" 2>&1
import sys
from dataclasses import replace
from pathlib import Path
from imagine_assist.training import plankton
work, model, hours, device = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
recipe = replace(plankton.PLANKTON_RECIPE, hours=hours, separator_epochs=300, classifier_epochs=300)
train = plankton.train_separator if model == "separator" else plankton.train_classifier
print("best:", train(work / "data", work / model, recipe, device))
PY
}
train separator "$separator_hours" separator.log &
separator=$!
train classifier "$classifier_hours" classifier.log &
classifier=$!
copy() {
    for pair in separator:segment classifier:classify; do
        name=${pair%%:*} task=${pair##*:}
        weights="$work/$name/$task/weights/best.pt"
        [ -f "$weights" ] && cp "$weights" "$out/$name.pt.partial" && mv "$out/$name.pt.partial" "$out/$name.pt"
        [ -f "$work/$name/$task/results.csv" ] && cp "$work/$name/$task/results.csv" "$out/$name-results.csv"
    done
}
while kill -0 $separator 2>/dev/null || kill -0 $classifier 2>/dev/null; do sleep 20; copy; done
wait $separator; echo "separator exit $?"
wait $classifier; echo "classifier exit $?"
copy
ls -la "$out"
