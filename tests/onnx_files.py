"""Small real ONNX files for tests of what stores, checks and promotes models: they load in
ONNX Runtime, carry class names as an ultralytics export does, and a tag that tells them
apart."""

from __future__ import annotations

from pathlib import Path


def tiny_onnx(path: Path, tag: str = "weights", names: tuple[str, ...] | None = ("fish",)) -> Path:
    """An identity model at `path` with `tag` in its metadata, and `names` as its classes
    (None: no class names, as a model nobody can tell the classes of)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta = {"tag": tag}
    if names is not None:
        meta["names"] = str(dict(enumerate(names)))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def onnx_tag(path: Path) -> str:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}["tag"]
