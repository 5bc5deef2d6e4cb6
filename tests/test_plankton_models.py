"""The plankton models: our ONNX decoding against ultralytics' own, and the training run."""

import json

import numpy as np
import pytest

from imagine_assist.models.plankton import load_classifier
from imagine_assist.models.segmenter import OnnxSegmenter
from imagine_assist.models.separate import crop_scale_bar
from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.samples import generate_plankton

SEPARATOR = BUNDLED_DIR / "plankton" / "separator.onnx"


def _mask_iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


@pytest.mark.slow  # runs ultralytics (torch)
def test_our_instance_masks_agree_with_ultralytics_on_the_same_model():
    from ultralytics import YOLO

    ours, theirs = OnnxSegmenter(SEPARATOR), YOLO(str(SEPARATOR), task="segment")
    compared = 0
    for sample in generate_plankton(5, seed=81, multiple_share=1.0):
        image = crop_scale_bar(sample.image, sample.scale_bar_rows)
        mine = ours(image, 0.25)
        result = theirs.predict(
            image[:, :, ::-1], imgsz=320, conf=0.25, iou=0.7, retina_masks=True, verbose=False
        )[0]
        other = result.masks.data.numpy() > 0.5 if result.masks is not None else []
        assert len(mine) == len(other)
        for theirs_mask in other:
            best = max(_mask_iou(m > 0, theirs_mask) for m in mine.logits)
            assert best > 0.9
            compared += 1
        assert mine.logits.shape[1:] == image.shape[:2]
    assert compared >= 5


@pytest.mark.slow  # runs ultralytics (torch)
def test_classifier_probability_agrees_with_ultralytics():
    from ultralytics import YOLO

    from imagine_assist.models.vignette_classifier import square_on_white

    path = BUNDLED_DIR / "plankton" / "classifier.onnx"
    ours, theirs = load_classifier(path), YOLO(str(path), task="classify")
    for sample in generate_plankton(4, seed=82):
        image = crop_scale_bar(sample.image, sample.scale_bar_rows)
        # ultralytics' own transforms resize and centre-crop; a pre-squared input makes them a
        # plain resize, the picture the classifier was trained on
        square = square_on_white(image, ours.input_size)
        result = theirs.predict(square[:, :, ::-1], imgsz=ours.input_size, verbose=False)[0]
        index = list(result.names.values()).index("multiple")
        assert ours.p_multiple(image) == pytest.approx(float(result.probs.data[index]), abs=0.02)


@pytest.fixture(scope="session")
def tiny_plankton(models_dir):
    """Both plankton models trained for one epoch on a few vignettes: plumbing, not accuracy."""
    from imagine_assist.training.plankton import PLANKTON_RECIPE, train_plankton

    recipe = PLANKTON_RECIPE.scaled(epochs=1, images=40)
    family_dir = models_dir / "plankton"
    metrics = train_plankton(family_dir, models_dir.parent / "runs" / "plankton", recipe)
    return family_dir, metrics


def test_training_installs_both_models_with_held_out_scores(tiny_plankton):
    family_dir, metrics = tiny_plankton
    names = {p.name for p in family_dir.iterdir()}
    assert names >= {"separator.onnx", "separator.pt", "classifier.onnx", "classifier.pt"}
    assert json.loads((family_dir / "metrics.json").read_text()) == metrics
    test = metrics["test"]
    assert metrics["data"]["test"]["seed"] != metrics["data"]["train_val"]["seed"]
    for name in ("model", "watershed"):
        assert 0.0 <= test[name]["all"]["f1"] <= 1.0
    assert 0.0 <= test["classifier"]["recall_multiple"] <= 1.0


def test_installed_models_are_what_the_function_serves(tiny_plankton):
    import onnx

    from imagine_assist.functions.catalog import load_function

    family_dir, _ = tiny_plankton
    function = load_function("plankton-separator", models_dir=family_dir.parent)
    assert function.separate.segmenter.path == family_dir / "separator.onnx"
    assert function.classifier.path == family_dir / "classifier.onnx"
    # exported weights are stored as float16 and cast back when loaded
    model = onnx.load(str(family_dir / "separator.onnx"))
    large = [i for i in model.graph.initializer if int(np.prod(i.dims)) >= 1024]
    assert large and {i.data_type for i in large} == {onnx.TensorProto.FLOAT16}
