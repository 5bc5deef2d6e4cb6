"""Training the default models: what lands in the models directory, and the two runtimes agree."""

import json

import numpy as np
import pytest
import supervision as sv

from imagine_assist.models.detector import OnnxDetector, UltralyticsDetector, load_detector
from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.samples import generate_fish, generate_litter
from imagine_assist.training import detector as training


def test_trained_model_is_installed_with_its_metrics(fish_model):
    family_dir = fish_model.onnx.parent
    assert {p.name for p in family_dir.iterdir()} >= {"model.pt", "model.onnx", "metrics.json"}
    metrics = json.loads((family_dir / "metrics.json").read_text())
    assert metrics["test"]["split"] == "test"
    assert 0.0 <= metrics["test"]["mAP50"] <= 1.0
    assert metrics["data"]["test"]["seed"] != metrics["data"]["train_val"]["seed"]
    assert metrics["recipe"]["architecture"] == "yolov8n.yaml"


def test_onnx_reads_class_names_and_input_size_from_metadata(fish_model):
    detector = load_detector(fish_model.onnx)
    assert isinstance(detector, OnnxDetector)
    assert detector.class_names == ["fish"]
    assert detector.input_size == 320


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_pt_weights_load_with_ultralytics(fish_model):
    detector = load_detector(fish_model.pt)
    assert isinstance(detector, UltralyticsDetector)
    assert detector.class_names == ["fish"] and detector.input_size == 320
    found = detector(next(iter(generate_fish(1, seed=40))).image, 0.001)
    assert set(found.data["class_name"]) <= {"fish"}


@pytest.mark.slow  # runs ultralytics (torch)
def test_our_onnx_runtime_agrees_with_ultralytics_on_the_same_model():
    """Our letterbox, decoding and NMS against ultralytics' own, on the bundled litter model
    (a YOLOv8n; the bundled fish model is a CenterNet, which ultralytics cannot run)."""
    from ultralytics import YOLO

    path = BUNDLED_DIR / "litter" / "model.onnx"
    ours, theirs = load_detector(path), YOLO(str(path), task="detect")
    assert isinstance(ours, OnnxDetector)
    compared = 0
    for sample in generate_litter(6, seed=41, width=ours.input_size, height=ours.input_size):
        mine = ours(sample.image, 0.25)
        result = theirs.predict(
            sample.image[:, :, ::-1],
            imgsz=ours.input_size,
            conf=0.25,
            iou=0.5,
            verbose=False,
            device="cpu",
        )[0]
        other = sv.Detections.from_ultralytics(result)
        for box, conf, cls in zip(other.xyxy, other.confidence, other.class_id, strict=True):
            if conf < 0.35:
                continue  # near the threshold either side may keep or drop a box
            same_class = mine.xyxy[mine.class_id == cls]
            assert len(same_class), "our runtime missed a box ultralytics found"
            assert max(_iou(box, b) for b in same_class) > 0.95
            compared += 1
    assert compared >= 5


def test_a_training_run_that_dies_keeps_the_installed_model(fish_model, tmp_path, monkeypatch):
    family_dir = tmp_path / "fish"
    training.install_model(family_dir, fish_model.pt, fish_model.onnx, {"family": "fish", "v": 1})
    before = {p.name: p.read_bytes() for p in family_dir.iterdir()}

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # a user's Ctrl-C halfway through

    monkeypatch.setattr(training, "train_yolo", dies)
    from imagine_assist.training.recipes import RECIPES

    with pytest.raises(KeyboardInterrupt):
        training.train_and_install(
            tmp_path / "d.yaml",
            tmp_path / "t.yaml",
            tmp_path / "w",
            family_dir,
            RECIPES["fish"],
            lineage={},
        )
    assert {p.name: p.read_bytes() for p in family_dir.iterdir()} == before


def test_unknown_weights_are_clear_errors(tmp_path):
    from imagine_assist.errors import ModelNotFound, UserError

    with pytest.raises(ModelNotFound, match="imagine-assist train"):
        load_detector(tmp_path / "nope.onnx")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a readable ONNX model"):
        load_detector(bad)
    other = tmp_path / "model.tflite"
    other.write_bytes(b"x")
    with pytest.raises(UserError, match="unknown weights format"):
        load_detector(other)


def test_empty_frame_gives_no_detections(fish_model):
    detector = load_detector(fish_model.onnx)
    found = detector(np.full((200, 300, 3), 255, np.uint8), 0.5)
    assert len(found) == 0 and found.data["class_name"].shape == (0,)


@pytest.mark.slow
def test_training_and_validation_use_every_core(tmp_path):
    """ultralytics sets torch to cores - 1 threads on the CPU: one of a laptop's two cores.
    Training (and the validation it ends with) must leave torch on every core."""
    import os

    import torch

    from imagine_assist.samples import write_dataset

    data = write_dataset(
        tmp_path / "data", generate_fish(4, seed=3), ["diplodus", "chromis", "sarpa"]
    )
    torch.set_num_threads(1)
    try:
        training.fit(
            "yolov8n.yaml", "detect", str(data.data_yaml), tmp_path / "run", "run", 1, "cpu",
            "training", imgsz=64, batch=4,
        )  # fmt: skip
        assert torch.get_num_threads() == os.cpu_count()
    finally:
        torch.set_num_threads(os.cpu_count())
