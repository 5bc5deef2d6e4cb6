"""A fish CenterNet adapted to one unseen camera, without labels, by aligning its features'
statistics to that camera (AdaBN, Li et al. 2016, on a network whose batch norms are folded).

    python tests/benchmarks/try_fish_feature_alignment.py DATASET CHECKPOINT [--layers K]

DATASET is a `real_fish_centernet` run's `dataset` folder, CHECKPOINT a fish CenterNet `.pt`
(the bundled `model.pt`). Each convolution that had a batch norm folded into it (it adds a
bias) gets, per channel, the mean and spread of its output on 256 training frames. Then,
for each held-out DeepFish habitat on its own (a camera), its unlabelled frames run through
once with every such output standardised batch by batch (a batch norm in training mode),
which gives that camera's statistics layer after layer; the habitat is then scored with
each output moved from the camera's statistics to the training frames'. `--layers K`
aligns only the first K such convolutions (the early layers, where colour and contrast
live); 0 aligns all but the heads. The idea: the bundled model finds an unseen camera's
fish but scores them low, as if its features were shifted. Diagnostic only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HABITATS = ("7398", "7585", "9866", "9892", "9908")


class Alignment:
    """Per-channel statistics of the chosen convolutions' outputs, and the alignment of a
    camera's to the training frames'."""

    def __init__(self, names: set[str]) -> None:
        self.names, self.mode = names, "off"
        self.source: dict = {}
        self.target: dict = {}
        self._sums: dict = {}

    def collect(self, name: str, y: torch.Tensor) -> None:
        sums = self._sums.setdefault(name, [0.0, 0.0, 0])
        sums[0] = sums[0] + y.double().sum((0, 2, 3))
        sums[1] = sums[1] + (y.double() ** 2).sum((0, 2, 3))
        sums[2] += y.shape[0] * y.shape[2] * y.shape[3]

    def statistics(self) -> dict:
        out = {}
        for name, (total, squares, count) in self._sums.items():
            mean = total / count
            spread = (squares / count - mean**2).clamp_min(1e-8).sqrt()
            out[name] = (mean.float().view(1, -1, 1, 1), spread.float().view(1, -1, 1, 1))
        self._sums = {}
        return out

    def __call__(self, name: str, y: torch.Tensor) -> torch.Tensor:
        if self.mode == "off" or name not in self.names or y.shape[2] * y.shape[3] == 1:
            return y  # a squeeze-excite vector has no spatial statistics
        if self.mode == "source":
            self.collect(name, y)
            return y
        mean_s, spread_s = self.source[name]
        if self.mode == "target":  # the camera's statistics, upstream layers already aligned
            self.collect(name, y)
            mean_b = y.mean((0, 2, 3), keepdim=True)
            spread_b = y.std((0, 2, 3), keepdim=True) + 1e-5
            return (y - mean_b) / spread_b * spread_s + mean_s
        mean_t, spread_t = self.target[name]
        return (y - mean_t) / spread_t * spread_s + mean_s


def aligned_convolution(alignment: Alignment):
    """`TfjsGraph._convolution` with the alignment between the convolution and its fused
    activation."""
    from imagine_assist.training import tfjs_graph as tg

    def convolution(node: dict, inputs: list) -> torch.Tensor:
        x, kernel = inputs[0], inputs[1]
        stride = (tg._ints(node, "strides") or [1, 1, 1, 1])[1:3]
        dilation = (tg._ints(node, "dilations") or [1, 1, 1, 1])[1:3]
        padding = (0, 0)
        if tg._text(node, "padding") == "SAME":
            top, bottom, left, right = tg._same_padding(x, kernel.shape[2:], stride, dilation)
            if top == bottom and left == right:
                padding = (top, left)
            else:
                x = F.pad(x, (left, right, top, bottom))
        fused = tg._fused(node)
        bias = inputs[2] if "BiasAdd" in fused else None
        groups = x.shape[1] if "Depthwise" in node["op"] else 1
        y = alignment(node["name"], F.conv2d(x, kernel, bias, stride, padding, dilation, groups))
        for step in fused:
            y = {"Relu": F.relu, "Relu6": F.relu6}.get(step, lambda v: v)(y)
        return y

    return convolution


def folded_convolutions(model) -> list[str]:
    """Convolutions that add a bias (a folded batch norm), in order, the heads left out."""
    from imagine_assist.training import tfjs_graph as tg

    graph = model.graph
    return [
        name
        for name in graph.order
        if graph.nodes[name]["op"] in tg._CONVOLUTIONS
        and "BiasAdd" in tg._fused(graph.nodes[name])
        and not any(head in name for head in ("cls_output", "wh_output"))
    ]


@torch.no_grad()
def run_through(model, frames, batch: int = 16) -> None:
    from imagine_assist.models import colour
    from imagine_assist.training.centernet import _read_rgb, place

    for start in range(0, len(frames), batch):
        placed = [
            place(colour.normalise(_read_rgb(f.image), model.normalisation), f.cxcywh, model.imgsz)
            for f in frames[start : start + batch]
        ]
        model(torch.from_numpy(np.stack([p[0] for p in placed])).permute(0, 3, 1, 2).float())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--layers", type=int, default=0, help="align the first K (0: all)")
    args = parser.parse_args()
    from imagine_assist.training import centernet
    from imagine_assist.training import tfjs_graph as tg

    torch.set_num_threads(2)
    model = centernet.load_checkpoint(args.checkpoint)
    model.eval()
    names = folded_convolutions(model)
    alignment = Alignment(set(names[: args.layers] if args.layers else names))
    original = tg.TfjsGraph._convolution
    tg.TfjsGraph._convolution = staticmethod(aligned_convolution(alignment))
    try:
        train = centernet.read_yolo_images(args.dataset / "train" / "images")
        picked = np.random.default_rng(0).choice(len(train), min(256, len(train)), replace=False)
        alignment.mode = "source"
        run_through(model, [train[i] for i in picked])
        alignment.source = alignment.statistics()
        held_out = centernet.read_yolo_images(args.dataset / "test-deepfish" / "images")
        print(f"aligning {len(alignment.names)} convolutions", flush=True)
        print("habitat | frames | AP50 as it is | AP50 aligned to the habitat", flush=True)
        for habitat in HABITATS:
            frames = [f for f in held_out if f.image.name.startswith(habitat)]
            alignment.mode = "off"
            before = centernet.evaluate(model, frames)["mAP50"]
            alignment.mode = "target"
            run_through(model, frames)
            alignment.target = alignment.statistics()
            alignment.mode = "align"
            after = centernet.evaluate(model, frames)["mAP50"]
            print(f"{habitat} | {len(frames)} | {before:.3f} | {after:.3f}", flush=True)
    finally:
        tg.TfjsGraph._convolution = original


if __name__ == "__main__":
    main()
