"""Store an ONNX model's weights as float16 on disk, computed in float32 at run time.

Each large float32 weight becomes a float16 initializer followed by a Cast back to float32.
ONNX Runtime folds those casts into float32 constants when it loads the model, so inference
runs exactly as before (on weights rounded to half precision) from a file half the size:
what keeps the bundled models, and an offline bundle, small. Needs the `onnx` package
(the train extra); loading the result needs only onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MIN_ELEMENTS = 1024  # small tensors (shapes, scales) stay as they are


def halve_weights(source: str | Path, target: str | Path | None = None) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    source = Path(source)
    target = Path(target) if target else source
    model = onnx.load(str(source))
    graph = model.graph
    casts = []
    for initializer in graph.initializer:
        if initializer.data_type != TensorProto.FLOAT:
            continue
        weights = numpy_helper.to_array(initializer)
        if weights.size < MIN_ELEMENTS:
            continue
        name = initializer.name
        half = numpy_helper.from_array(weights.astype(np.float16), f"{name}__fp16")
        initializer.CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT))
    if casts:
        nodes = [*casts, *graph.node]
        del graph.node[:]
        graph.node.extend(nodes)
    onnx.checker.check_model(model)
    partial = target.with_name(f".{target.name}.partial")
    onnx.save(model, str(partial))
    partial.replace(target)
    return target
