"""A trainable ultralytics checkpoint recovered from a bundled ONNX file.

Only the ONNX files of some bundled models ship (the plankton separator was trained on a
GPU machine whose checkpoints are gone), yet "fine-tune from the current weights" is the
cheapest way to teach them something new on 2 CPU cores. The export keeps every weight:
ultralytics folds each batch norm into the convolution before it (`w' = w·γ/σ`,
`b' = β + (b - μ)·γ/σ`) and names the initialisers after the modules. So the architecture
is rebuilt, each folded convolution is loaded into its `Conv`, and its batch norm is set so
that it adds the folded bias and changes nothing else:

- in eval mode that is exact: running mean μ and variance σ² - ε, scale γ = σ, shift
  β = μ + b', so `γ (x - μ) / σ + β = x + b'`;
- in training mode a batch norm uses the batch's own statistics, so μ and σ are those of
  the layer's input over a few calibration images (a forward pass of the exact eval-mode
  network). With γ = σ, the first training steps then compute what the shipped model
  computes, instead of a network whose every layer is suddenly renormalised.

`tests/test_from_onnx.py` checks the recovered model against ONNX Runtime on the bundled
files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from imagine_assist.models.detector import names_and_size

ARCHITECTURES = {
    "detect": "yolov8n.yaml",
    "segment": "yolov8n-seg.yaml",
    "classify": "yolov8n-cls.yaml",
}


def _initialisers(model) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    # models/compact.py stores weights as float16 under a "__fp16" suffix
    return {
        init.name.removesuffix("__fp16"): numpy_helper.to_array(init).astype(np.float32)
        for init in model.graph.initializer
    }


def _as_batch(images: Iterable[np.ndarray], imgsz: int):
    import torch

    squares = [cv2.resize(np.asarray(image)[:, :, :3], (imgsz, imgsz)) for image in images]
    if not squares:
        return None
    batch = np.stack(squares).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return torch.from_numpy(batch)


def recover_model(onnx_path: Path, calibration: Iterable[np.ndarray] = (), architecture=None):
    """The ultralytics model (a torch module) whose weights are those of `onnx_path`.
    `calibration`: RGB images of the data it will train on, for the batch-norm statistics
    (none: μ = 0, σ = 1, exact in eval mode only)."""
    import onnx
    import torch
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel, SegmentationModel

    graph = onnx.load(str(onnx_path))
    meta = {prop.key: prop.value for prop in graph.metadata_props}
    task = meta.get("task", "detect")
    # the serving side's reader: literals only, a clear error for anything else
    labels, imgsz = names_and_size(meta, Path(onnx_path))
    names = dict(enumerate(labels))
    kind = {"detect": DetectionModel, "segment": SegmentationModel, "classify": ClassificationModel}
    model = kind[task](architecture or ARCHITECTURES[task], nc=len(names), verbose=False)
    weights = _initialisers(graph)
    folded = {}
    for name, module in model.named_modules():
        batch_norm = getattr(module, "bn", None)
        if isinstance(module, Conv) and isinstance(batch_norm, torch.nn.BatchNorm2d):
            try:
                weight = torch.from_numpy(weights.pop(f"{name}.conv.weight"))
                bias = torch.from_numpy(weights.pop(f"{name}.conv.bias"))
            except KeyError as missing:
                raise ValueError(
                    f"{onnx_path} has no weights for {missing}: not this architecture"
                ) from None
            if weight.shape != module.conv.weight.shape:
                raise ValueError(
                    f"{onnx_path}: {name} is {tuple(weight.shape)}, "
                    f"the architecture wants {tuple(module.conv.weight.shape)}"
                )
            module.conv.weight.data = weight
            module.bn.weight.data.fill_(1.0)
            module.bn.bias.data = bias.clone()
            module.bn.running_mean.zero_()
            module.bn.running_var.fill_(1.0 - module.bn.eps)
            folded[name] = (module.bn, bias)
    loaded = {f"{name}.conv.weight" for name in folded}
    loaded |= {f"{name}.bn.{part}" for name in folded for part in ("weight", "bias")}
    state = model.state_dict()
    for key, value in weights.items():
        if key in state:
            if tuple(state[key].shape) != value.shape:
                raise ValueError(
                    f"{onnx_path}: {key} is {value.shape}, "
                    f"the architecture wants {tuple(state[key].shape)}"
                )
            state[key].copy_(torch.from_numpy(value))
            loaded.add(key)
    missing = [key for key, _ in model.named_parameters() if key not in loaded]
    if missing:
        raise ValueError(
            f"{onnx_path} lacks {len(missing)} weights of the architecture, e.g. {missing[:3]}"
        )
    model.names, model.task = names, task
    model.eval()
    batch = _as_batch(calibration, imgsz)
    if batch is not None:
        _calibrate(model, folded, batch)
    return model


def _calibrate(model, folded: dict, batch) -> None:
    """Batch-norm statistics from the inputs each one sees in the exact eval-mode network."""
    import torch

    seen: dict[str, tuple] = {}

    def hook(name):
        def record(_module, inputs, _output):
            x = inputs[0].double()
            seen[name] = (x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False))

        return record

    handles = [bn.register_forward_hook(hook(name)) for name, (bn, _) in folded.items()]
    with torch.no_grad():
        model(batch)
    for handle in handles:
        handle.remove()
    for name, (bn, bias) in folded.items():
        if name not in seen:
            continue
        mean, var = (t.float() for t in seen[name])
        sigma = torch.sqrt(var + bn.eps)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.data.copy_(sigma)
        bn.bias.data.copy_(mean + bias)


def fine_tune_schedule(lr0: float) -> dict:
    """ultralytics train arguments for fine-tuning a recovered model: a small fixed rate and
    no warm-up, whose high bias rate would undo the start it fine-tunes."""
    return {"optimizer": "AdamW", "lr0": lr0, "warmup_epochs": 0.0}


def separator_fine_tune_args(lr0: float, device: str) -> dict:
    """ultralytics train arguments of every fine-tune of the plankton separator: the
    schedule above, no early stop, and augmentations that keep a ZooScan vignette one (any
    way up on the scanner, grey, never turned off the square)."""
    return fine_tune_schedule(lr0) | {
        "amp": device != "cpu",
        "patience": 1000,
        "flipud": 0.5,
        "degrees": 0.0,
        "hsv_h": 0.0,
        "hsv_s": 0.0,
        "close_mosaic": 2,
    }


def write_checkpoint(onnx_path: Path, out: Path, calibration: Iterable[np.ndarray] = ()) -> Path:
    """A `.pt` that `ultralytics.YOLO(out).train(...)` fine-tunes from the ONNX file's
    weights."""
    import torch

    model = recover_model(onnx_path, calibration)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"model": model, "train_args": {"task": model.task}, "source_onnx": str(onnx_path)}
    torch.save(record, out)
    return out
