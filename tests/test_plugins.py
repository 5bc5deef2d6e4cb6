"""cvat-plugins/imagine_assist_function.py loaded the way cvat-cli loads it (`--function-file
... -p NAME=TYPE:VALUE`), its output checked by cvat-sdk's own annotation mapper."""

import logging

import PIL.Image
import pytest
from cvat_cli._internal.common import CriticalError, FunctionLoader
from cvat_cli._internal.parsers import parse_function_parameter
from cvat_sdk import models
from cvat_sdk.auto_annotation.driver import _AnnotationMapper, _DetectionFunctionContextImpl

from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import FUNCTIONS
from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.samples import generate_fish, generate_litter, generate_plankton, generate_tow

from .conftest import REPO

PLUGIN = REPO / "cvat-plugins" / "imagine_assist_function.py"


def load_plugin(*parameters: str):
    """The module's function, from cvat-cli style parameters such as "function=str:x"."""
    params = dict(parse_function_parameter(p) for p in parameters)
    return FunctionLoader(None, PLUGIN, params).load()


def task_labels(function, conv_mask_to_poly=False):
    """A CVAT task's labels matching the function's spec, as the server would send them."""
    labels = []
    for i, label in enumerate(function.spec.labels):
        attributes = [
            models.Attribute(
                id=10 * i + j,
                name=a.name,
                input_type="text",
                mutable=False,
                values=[""],
                default_value="",
            )
            for j, a in enumerate(label.attributes or [])
        ]
        # cvat-sdk wants a polygon label where masks become polygons
        shape_type = "polygon" if conv_mask_to_poly and label.type == "mask" else label.type
        labels.append(
            models.Label(
                id=100 + i, name=label.name, type=shape_type, attributes=attributes, sublabels=[]
            )
        )
    return labels


def mapper_for(function, conv_mask_to_poly=False):
    return _AnnotationMapper(
        logging.getLogger("test"),
        function.spec.labels,
        task_labels(function, conv_mask_to_poly),
        allow_unmatched_labels=False,
        conv_mask_to_poly=conv_mask_to_poly,
    )


def burrow_frames():
    frame = next(f for f in generate_tow(10.0, seed=90).frames() if len(f.objects) >= 2)
    return [frame.image]


# Every function the old per-function modules served, with the model and images to try it on.
DETECTION_CASES = {
    "fish-detector": (
        ["weights=str:" + str(BUNDLED_DIR / "fish" / "model.onnx")],
        lambda: [s.image for s in generate_fish(2, seed=11)],
    ),
    "litter-detector": (
        ["weights=str:" + str(BUNDLED_DIR / "litter" / "model.onnx"), "tile_size=int:640"],
        lambda: [s.image for s in generate_litter(1, seed=9, width=2000, height=1500)],
    ),
    "burrow-detector": ([], burrow_frames),  # no weights: the bundled model
    "plankton-separator": (
        ["scale_bar_rows=int:22"],
        lambda: [s.image for s in generate_plankton(2, seed=77, multiple_share=1.0)],
    ),
}


@pytest.mark.parametrize("conv_mask_to_poly", [False, True])
@pytest.mark.parametrize("function_id", list(DETECTION_CASES))
def test_each_function_passes_cvat_sdk_validation(function_id, conv_mask_to_poly):
    parameters, images = DETECTION_CASES[function_id]
    function = load_plugin(f"function=str:{function_id}", *parameters)
    spec = FUNCTIONS[function_id]
    assert [label.name for label in function.spec.labels] == spec.label_names
    mapper = mapper_for(function, conv_mask_to_poly)
    shape_types = {
        "polygon" if conv_mask_to_poly and t == "mask" else t
        for t in spec.label_types.values()
        if t != "tag"
    }
    total = 0
    for image in images():
        context = _DetectionFunctionContextImpl(
            frame_name="f.jpg", conf_threshold=None, conv_mask_to_poly=conv_mask_to_poly
        )
        output = function.detect(context, PIL.Image.fromarray(image))
        tags, shapes = mapper.validate_and_remap(output, ds_frame=5)
        assert all(shape.frame == 5 and shape.label_id >= 100 for shape in shapes)
        assert {shape.type.value for shape in shapes} <= shape_types
        assert len(tags) == (1 if "tag" in spec.label_types.values() else 0)
        total += len(shapes)
    assert total > 0  # the bundled models find something in sample scenes


def test_threshold_from_cvat_cli_is_honoured():
    function = load_plugin("function=str:fish-detector")
    image = PIL.Image.fromarray(next(iter(generate_fish(1, seed=12))).image)

    def count(conf):
        context = _DetectionFunctionContextImpl(frame_name="x", conf_threshold=conf)
        return len(function.detect(context, image))

    assert count(1.0) == 0
    assert count(0.01) > count(0.25) > 0  # the real-frame model is shy on synthetic scenes


def test_plankton_tag_carries_p_multiple():
    function = load_plugin("function=str:plankton-separator")
    mapper = mapper_for(function)
    sample = next(iter(generate_plankton(1, seed=78, multiple_share=1.0)))
    context = _DetectionFunctionContextImpl(frame_name="v.png", conf_threshold=None)
    tags, shapes = mapper.validate_and_remap(
        function.detect(context, PIL.Image.fromarray(sample.image)), ds_frame=0
    )
    (tag,) = tags
    assert tag.label_id in (101, 102)  # single, multiple
    (value,) = tag.attributes
    assert value.spec_id == 10 * (tag.label_id - 100) and 0.0 <= float(value.value) <= 1.0
    assert shapes and {s.label_id for s in shapes} == {100}


def test_conf_threshold_from_cvat_cli_moves_the_plankton_tag():
    function = load_plugin("function=str:plankton-separator")
    mapper = mapper_for(function)
    images = [s.image for s in generate_plankton(3, seed=79, multiple_share=1.0)]

    def tags_at(conf):
        context = _DetectionFunctionContextImpl(frame_name="v.png", conf_threshold=conf)
        found = [
            mapper.validate_and_remap(function.detect(context, PIL.Image.fromarray(i)), 0)
            for i in images
        ]
        return [(tags[0].label_id, len(shapes)) for tags, shapes in found]

    assert tags_at(1.0) == [(101, 1)] * 3  # never cut: single, one organism
    assert sum(label == 102 and count >= 2 for label, count in tags_at(0.0)) >= 2


def test_scale_bar_rows_reaches_the_separator():
    function = load_plugin("function=str:plankton-separator", "scale_bar_rows=int:0")
    assert function.scale_bar_rows == 0
    with pytest.raises(UserError, match="scale_bar_rows applies to plankton-separator"):
        load_plugin("function=str:fish-detector", "scale_bar_rows=int:22")


def test_burrow_tracker_follows_a_burrow_as_an_agent_would():
    import cvat_sdk.auto_annotation as cvataa

    function = load_plugin("function=str:burrow-tracker")
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


def test_wrong_model_says_so():
    fish_weights = BUNDLED_DIR / "fish" / "model.onnx"
    with pytest.raises(UserError, match="not labels of litter-detector"):
        load_plugin("function=str:litter-detector", f"weights=str:{fish_weights}")


@pytest.mark.parametrize(
    "parameters, message",
    [
        (["function=str:sea-monster-detector"], "unknown function 'sea-monster-detector'"),
        ([], "unknown function ''"),
        (["function=str:burrow-reid"], "burrow-reid .reid. has no cvat-sdk form"),
        (["function=str:fish-detector", "threshold=float:0.3"], "no parameter 'threshold'"),
        (["function=str:litter-detector", "tile_size=str:640"], "tile_size=int:..., not '640'"),
        (["function=int:5"], "function=str:..., not 5"),
        (["function=str:fish-detector", "weights=int:5"], "weights=str:..., not 5"),
        (["function=str:plankton-separator", "scale_bar_rows=int:-3"], "0 or more, not -3"),
        # 0 became the family's 640 without a word; predict --tile-size 0 is refused
        (["function=str:litter-detector", "tile_size=int:0"], "tile_size must be at least 64"),
    ],
)
def test_user_errors_are_ones_cvat_cli_prints_without_a_traceback(parameters, message):
    with pytest.raises(UserError, match=message) as raised:
        load_plugin(*parameters)
    # cvat-cli's main() logs a CriticalError's message and exits 1; anything else escapes it
    assert isinstance(raised.value, CriticalError)
    if "unknown" in message:
        assert all(function_id in str(raised.value) for function_id in DETECTION_CASES)


def test_small_tiles_for_litter_take_their_own_overlap():
    """litter's overlap of 160 px is over half a 256 px tile: without tile_overlap the
    error pointed to a flag the module did not take."""
    with pytest.raises(UserError, match="overlap 160"):
        load_plugin("function=str:litter-detector", "tile_size=int:256")
    function = load_plugin(
        "function=str:litter-detector", "tile_size=int:256", "tile_overlap=int:64"
    )
    assert (function.function.tile_size, function.function.tile_overlap) == (256, 64)


def test_a_frame_the_function_refuses_is_skipped_not_the_whole_task(caplog):
    """cvat-cli uploads after the last frame: one frame too small (or a vignette too large)
    used to end the run with a traceback and upload nothing."""
    import numpy as np

    function = load_plugin("function=str:plankton-separator")
    context = _DetectionFunctionContextImpl(frame_name="tiny.png", conf_threshold=None)
    with caplog.at_level("WARNING"):
        assert function.detect(context, PIL.Image.new("RGB", (12, 40), "white")) == []
    assert "frame tiny.png skipped" in caplog.text and "16 pixels" in caplog.text
    sample = next(iter(generate_plankton(1, seed=80))).image
    assert function.detect(context, PIL.Image.fromarray(np.ascontiguousarray(sample)))


def test_the_tracker_under_auto_annotate_says_how_to_run_it(monkeypatch):
    monkeypatch.setattr("sys.argv", ["cvat-cli", "task", "auto-annotate", "42"])
    with pytest.raises(CriticalError, match="tracking function, for CVAT's agents"):
        load_plugin("function=str:burrow-tracker")


@pytest.mark.parametrize("stored", ["on its side, EXIF orientation 6", "16-bit grey"])
def test_the_module_sees_a_frame_as_the_gateway_does(stored):
    """cvat-sdk hands the module a PIL image as the frame's bytes decode: a photo stored on
    its side with an EXIF orientation, or a 16-bit frame, must give the boxes the gateway
    gives for the same bytes (they came out in the sideways frame, or none on a white page)."""
    import base64
    import io

    import numpy as np

    from imagine_assist.functions.catalog import load_function
    from imagine_assist.nuclio.cvat_requests import answer

    upright = PIL.Image.fromarray(next(iter(generate_fish(1, seed=12))).image)
    buffer = io.BytesIO()
    if stored.startswith("on its side"):
        exif = PIL.Image.Exif()
        exif[0x0112] = 6  # shown turned a quarter clockwise
        upright.transpose(PIL.Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, exif=exif)
    else:
        grey = np.asarray(upright.convert("L"), np.uint16) * 16  # a 12-bit camera
        PIL.Image.fromarray(grey).save(buffer, "PNG")
    data = buffer.getvalue()
    served = answer(
        load_function("fish-detector"),
        {"image": base64.b64encode(data).decode(), "threshold": 0.05},
    )
    module = load_plugin("function=str:fish-detector")
    context = _DetectionFunctionContextImpl(frame_name="f", conf_threshold=0.05)
    shapes = module.detect(context, PIL.Image.open(io.BytesIO(data)))
    assert len(served) > 0
    assert sorted(np.round(s.points, 1).tolist() for s in shapes) == sorted(
        np.round(s["points"], 1).tolist() for s in served
    )
