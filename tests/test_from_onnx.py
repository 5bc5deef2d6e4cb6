"""A shipped ONNX model turned back into a trainable ultralytics model: it must compute what
the ONNX file computes, train from where that model stands, and refuse a file that does not
fit the architecture."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.samples.plankton import generate_plankton
from imagine_assist.training.from_onnx import recover_model, write_checkpoint

SEPARATOR = BUNDLED_DIR / "plankton" / "separator.onnx"
CLASSIFIER = BUNDLED_DIR / "plankton" / "classifier.onnx"


def _first(output):
    while isinstance(output, (list, tuple)):
        output = output[0]
    return output


def _onnx_output(path, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


def _vignettes(n: int) -> list[np.ndarray]:
    return [sample.image for sample in generate_plankton(n, seed=5)]


def _batch(images, size: int) -> np.ndarray:
    import cv2

    squares = [cv2.resize(image, (size, size)) for image in images]
    return np.stack(squares).astype(np.float32).transpose(0, 3, 1, 2) / 255.0


@pytest.mark.slow
@pytest.mark.parametrize(("path", "size"), [(SEPARATOR, 320), (CLASSIFIER, 224)])
def test_recovered_model_computes_what_the_onnx_file_computes(path, size):
    images = _vignettes(4)
    batch = _batch(images[:1], size)
    expected = _onnx_output(path, batch)
    for calibration in ([], images):
        model = recover_model(path, calibration)
        with torch.no_grad():
            got = _first(model(torch.from_numpy(batch))).numpy()
        assert got.shape == expected.shape
        # float16 weights cast back to float32 on both sides; the sums differ only in order
        assert np.abs(got - expected).max() <= 1e-3 * max(1.0, np.abs(expected).max())


@pytest.mark.slow
def test_calibrated_batch_norms_train_from_where_the_model_stands():
    """In training mode a batch norm uses the batch's statistics. Without calibration every
    layer is renormalised and the network computes something else; with it, a training
    batch like the calibration images goes through nearly as in eval mode."""
    images = _vignettes(12)
    batch = torch.from_numpy(_batch(images[8:], 320))

    def backbone_change(model) -> float:
        features = {}
        hook = model.model[9].register_forward_hook(lambda m, i, o: features.update(out=o))
        with torch.no_grad():
            model.eval()
            model(batch)
            evaluated = features["out"]
            model.train()
            model(batch)
        hook.remove()
        return float((features["out"] - evaluated).abs().mean() / evaluated.abs().mean())

    calibrated = backbone_change(recover_model(SEPARATOR, images[:8]))
    uncalibrated = backbone_change(recover_model(SEPARATOR))
    assert calibrated < 0.5
    assert uncalibrated > 3 * calibrated


def test_a_file_for_another_architecture_is_refused():
    with pytest.raises(ValueError, match="wants|lacks|no weights"):
        recover_model(CLASSIFIER, architecture="yolov8s-cls.yaml")


def test_ultralytics_loads_the_checkpoint_with_the_shipped_weights(tmp_path):
    from ultralytics import YOLO

    checkpoint = write_checkpoint(CLASSIFIER, tmp_path / "start.pt")
    model = YOLO(str(checkpoint), task="classify")
    assert model.task == "classify"
    assert model.names == {0: "multiple", 1: "single"}
    batch = _batch(_vignettes(1), 224)
    model.model.eval()
    with torch.no_grad():
        got = _first(model.model(torch.from_numpy(batch))).numpy()
    assert np.allclose(got, _onnx_output(CLASSIFIER, batch), atol=1e-4)


@pytest.mark.slow
def test_the_separator_fine_tunes_from_the_shipped_file_on_real_style_vignettes(tmp_path):
    """The recipe end to end, shrunk: vignettes in a folder with hand labels, the bundled
    separator recovered, one short epoch, and an ONNX separator that serves."""
    from dataclasses import replace

    from PIL import Image

    from imagine_assist.models.plankton import load_separator
    from imagine_assist.training import plankton_separator_real as recipe_module

    folder = tmp_path / "vignettes"
    folder.mkdir()
    rows = ["vignette,label,in_sample_of_100"]
    for index, sample in enumerate(generate_plankton(24, seed=31, multiple_share=0.0)):
        Image.fromarray(sample.image).save(folder / f"{index:04d}.png")
        rows.append(f"{index:04d}.png,single,{'yes' if index < 4 else 'no'}")
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    recipe = replace(
        recipe_module.RealSeparatorRecipe(),
        real_composites=16,
        synthetic=4,
        epochs=1,
        hours=0.005,
        batch=8,
        calibration_images=8,
    )
    record = recipe_module.train(folder, tmp_path / "run", recipe, labels)
    assert record["data"]["real_singles"] >= 10  # the 20 training singles, less held-out ones
    assert record["start"].endswith("separator.onnx")
    separator = load_separator(record["onnx"])
    sample = next(iter(generate_plankton(1, seed=32, multiple_share=1.0)))
    masks = separator(sample.image[: -sample.scale_bar_rows])
    assert masks  # it serves: a foreground gives at least one organism
