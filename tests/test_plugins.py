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


def test_burrow_detector_plugin_finds_burrows():
    from imagine_assist.samples import generate_tow

    function = FunctionLoader(None, REPO / "cvat-plugins" / "burrow_detector.py", {}).load()
    frame = next(f for f in generate_tow(10.0, seed=90).frames() if len(f.objects) >= 2)
    context = _DetectionFunctionContextImpl(frame_name="f.jpg", conf_threshold=None)
    shapes = function.detect(context, PIL.Image.fromarray(frame.image))
    mapper = _AnnotationMapper(
        logging.getLogger("t"),
        function.spec.labels,
        task_labels(["burrow"]),
        allow_unmatched_labels=False,
        conv_mask_to_poly=False,
    )
    _, validated = mapper.validate_and_remap(shapes, ds_frame=0)
    assert len(validated) >= len(frame.objects) - 1


def test_burrow_tracking_plugin_follows_a_burrow_as_an_agent_would():
    import cvat_sdk.auto_annotation as cvataa

    from imagine_assist.samples import generate_tow

    function = FunctionLoader(None, REPO / "cvat-plugins" / "burrow_tracker.py", {}).load()
    assert function.spec.supported_shape_types == {"rectangle"}
    frames = list(generate_tow(6.0, seed=91).frames())
    start = next(f for f in frames if f.objects and f.objects[0].xyxy[1] > 0)
    target = start.objects[0]
    state = function.init_tracking_state(
        None,
        function.preprocess_image(None, PIL.Image.fromarray(start.image)),
        cvataa.TrackableShape(type="rectangle", points=list(target.xyxy)),
    )
    overlaps = []
    for frame in frames[start.index + 1 :]:
        truth = {o.track_id: o.xyxy for o in frame.objects}.get(target.track_id)
        if truth is None:
            break
        shape = function.track(
            None, function.preprocess_image(None, PIL.Image.fromarray(frame.image)), state
        )
        ix = max(0, min(shape.points[2], truth[2]) - max(shape.points[0], truth[0]))
        iy = max(0, min(shape.points[3], truth[3]) - max(shape.points[1], truth[1]))
        area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
        overlaps.append(ix * iy / (area(shape.points) + area(truth) - ix * iy))
    assert len(overlaps) > 10 and sum(overlaps) / len(overlaps) >= 0.7


@pytest.mark.parametrize("conv_mask_to_poly", [False, True])
def test_plankton_plugin_masks_and_tag_pass_cvat_sdk_validation(conv_mask_to_poly):
    from imagine_assist.samples import generate_plankton

    function = load_plugin("plankton_separator", BUNDLED_DIR / "plankton" / "separator.onnx")
    p_multiple = models.Attribute(
        id=7, name="p_multiple", input_type="text", mutable=False, values=[""], default_value=""
    )
    labels = [
        # cvat-sdk wants a polygon label where masks become polygons
        models.Label(
            id=100,
            name="organism",
            type="polygon" if conv_mask_to_poly else "mask",
            attributes=[],
            sublabels=[],
        ),
        models.Label(id=101, name="single", type="tag", attributes=[p_multiple], sublabels=[]),
        models.Label(id=102, name="multiple", type="tag", attributes=[p_multiple], sublabels=[]),
    ]
    mapper = _AnnotationMapper(
        logging.getLogger("test"),
        function.spec.labels,
        labels,
        allow_unmatched_labels=False,
        conv_mask_to_poly=conv_mask_to_poly,
    )
    for sample in generate_plankton(3, seed=77, multiple_share=1.0):
        context = _DetectionFunctionContextImpl(
            frame_name=sample.name, conf_threshold=None, conv_mask_to_poly=conv_mask_to_poly
        )
        output = function.detect(context, PIL.Image.fromarray(sample.image))
        tags, shapes = mapper.validate_and_remap(output, ds_frame=2)
        assert len(tags) == 1 and tags[0].label_id in (101, 102)
        (value,) = tags[0].attributes
        assert value.spec_id == 7 and 0.0 <= float(value.value) <= 1.0
        assert shapes and {s.label_id for s in shapes} == {100}
        assert {s.type.value for s in shapes} == {"polygon" if conv_mask_to_poly else "mask"}
