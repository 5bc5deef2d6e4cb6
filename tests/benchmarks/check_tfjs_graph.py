"""Check `training.tfjs_graph` against TensorFlow.js itself on a real image: the same graph,
the same input, both outputs compared (not a test: it needs Node.js and @tensorflow/tfjs,
which the project does not install).

    npm install --prefix /tmp/tfjs @tensorflow/tfjs@4
    python tests/benchmarks/check_tfjs_graph.py \
        runs/pretrained/human-models/package/models/centernet.json some-photo.jpg \
        --node-modules /tmp/tfjs/node_modules

Measured 2026-12-01 on ../shared/data/real/litter/cambodia1.png at 512 px (docs/models.md):
heatmap max |difference| 3.5e-7 (values up to 0.11), box distances 2.4e-3 (mean 97 px).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from imagine_assist.training.tfjs_graph import load_graph

OUTPUTS = ["tower_0/keypoints", "tower_0/wh"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_json", type=Path)
    parser.add_argument("image", type=Path)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--node-modules", type=Path, required=True)
    args = parser.parse_args()
    rgb = cv2.imread(str(args.image))[:, :, ::-1]
    image = cv2.resize(rgb, (args.size, args.size)).astype(np.float32)
    graph = load_graph(args.model_json, OUTPUTS).eval()
    with torch.no_grad():
        ours = graph(torch.from_numpy(image).permute(2, 0, 1)[None])
    with tempfile.TemporaryDirectory() as scratch:
        image.tofile(f"{scratch}/input.bin")
        script = Path(__file__).with_suffix(".js")
        env = {**os.environ, "NODE_PATH": str(args.node_modules)}
        subprocess.run(
            ["node", str(script), str(args.model_json), f"{scratch}/input.bin",
             str(args.size), str(args.size), f"{scratch}/out", *OUTPUTS],
            check=True, env=env,
        )  # fmt: skip
        for index, name in enumerate(OUTPUTS):
            mine = ours[name][0].permute(1, 2, 0).numpy()  # NHWC, as TensorFlow.js gives it
            theirs = np.fromfile(f"{scratch}/out{index}.bin", np.float32).reshape(mine.shape)
            print(
                f"{name}: max |difference| {np.abs(mine - theirs).max():.2g} "
                f"(values up to {np.abs(theirs).max():.3g}, mean {np.abs(theirs).mean():.3g})"
            )


if __name__ == "__main__":
    main()
