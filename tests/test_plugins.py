"""cvat-plugins/*.py loaded the way cvat-cli loads them, output checked by cvat-sdk's mapper."""

import logging

import PIL.Image
import pytest
from cvat_cli._internal.common import FunctionLoader
from cvat_cli._internal.parsers import parse_function_parameter
from cvat_sdk import models
from cvat_sdk.auto_annotation.driver import _AnnotationMapper, _DetectionFunctionContextImpl

from imagine_assist.functions.catalog import FUNCTIONS
from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.samples import generate_fish

from .conftest import REPO


def load_plugin(name, weights):
    params = dict([parse_function_parameter(f"weights=str:{weights}")])
    return FunctionLoader(None, REPO / "cvat-plugins" / f"{name}.py", params).load()


def task_labels(names, shape_type="rectangle"):
    return [
        models.Label(id=100 + i, name=n, type=shape_type, attributes=[], sublabels=[])
        for i, n in enumerate(names)
    ]


@pytest.mark.parametrize("conv_mask_to_poly", [False, True])
@pytest.mark.parametrize("conf", [None, 0.05])
def test_fish_plugin_output_passes_cvat_sdk_validation(conv_mask_to_poly, conf):
    function = load_plugin("fish_detector", BUNDLED_DIR / "fish" / "model.onnx")
    names = FUNCTIONS["fish-detector"].label_names
    assert [label.name for label in function.spec.labels] == names
    mapper = _AnnotationMapper(
        logging.getLogger("test"),
        function.spec.labels,
        task_labels(names),
        allow_unmatched_labels=False,
        conv_mask_to_poly=conv_mask_to_poly,
    )
    total = 0
    for sample in generate_fish(3, seed=11):
        context = _DetectionFunctionContextImpl(
            frame_name=sample.name, conf_threshold=conf, conv_mask_to_poly=conv_mask_to_poly
        )
        output = function.detect(context, PIL.Image.fromarray(sample.image))
        tags, shapes = mapper.validate_and_remap(output, ds_frame=5)
        assert tags == []
        total += len(shapes)
        for shape in shapes:
            assert shape.frame == 5 and shape.label_id in {100, 101, 102}
            assert shape.type.value == "rectangle"
    assert total > 0  # the default model finds fish in sample scenes


def test_threshold_from_cvat_cli_is_honoured():
    function = load_plugin("fish_detector", BUNDLED_DIR / "fish" / "model.onnx")
    sample = next(iter(generate_fish(1, seed=12)))
    image = PIL.Image.fromarray(sample.image)

    def count(conf):
        context = _DetectionFunctionContextImpl(frame_name="x", conf_threshold=conf)
        return len(function.detect(context, image))

    assert count(1.0) == 0
    assert count(0.01) >= count(0.5) > 0


def test_litter_plugin_loads_with_its_labels(litter_model):
    function = load_plugin("litter_detector", litter_model.onnx)
    expected = FUNCTIONS["litter-detector"].label_names
    assert [label.name for label in function.spec.labels] == expected


def test_plugin_with_wrong_model_says_so(fish_model):
    from imagine_assist.errors import UserError

    with pytest.raises(UserError, match="not labels of litter-detector"):
        load_plugin("litter_detector", fish_model.onnx)
