"""The generated Nuclio main.py, called through nuclio_sdk's own test platform."""

import base64
import importlib.util
import json
import re

import nuclio_sdk
import numpy as np
import pytest
from nuclio_sdk.test import Platform

from imagine_assist.errors import BadRequest
from imagine_assist.functions.catalog import FUNCTIONS, get_spec
from imagine_assist.functions.reid import ReidFunction
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.images import encode_jpeg
from imagine_assist.nuclio.protocol import parse_body
from imagine_assist.samples import generate_fish, generate_litter

from .conftest import REPO


def load_main(function_id):
    path = REPO / "serverless" / function_id / "main.py"
    name = f"nuclio_main_{function_id.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = module  # the platform finds init_context through the module
    spec.loader.exec_module(module)
    return module


def call(platform, module, body):
    event = nuclio_sdk.Event(body=body, content_type="application/json")
    response = platform.call_handler(module.handler, event)
    return response.status_code, json.loads(response.body)


@pytest.fixture(scope="module")
def fish(fish_model, monkeypatch_module):
    monkeypatch_module.setenv("IMAGINE_ASSIST_MODEL", str(fish_model.onnx))
    return Platform(), load_main("fish-detector")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def b64(image) -> str:
    return base64.b64encode(encode_jpeg(image)).decode()


def assert_detector_items(items, labels):
    assert isinstance(items, list)
    for item in items:
        assert item["label"] in labels
        assert item["type"] == "rectangle"
        assert item["attributes"] == []
        x1, y1, x2, y2 = item["points"]
        assert all(isinstance(v, float) for v in item["points"])
        assert x1 <= x2 and y1 <= y2
        assert 0.0 <= float(item["confidence"]) <= 1.0


def test_answers_as_cvat_expects_with_and_without_threshold(fish):
    platform, module = fish
    sample = next(iter(generate_fish(4, seed=7)))
    labels = FUNCTIONS["fish-detector"].label_names
    status, default_items = call(platform, module, {"image": b64(sample.image)})
    assert status == 200
    assert_detector_items(default_items, labels)
    status, low = call(platform, module, {"image": b64(sample.image), "threshold": 0.01})
    assert status == 200
    assert_detector_items(low, labels)
    status, none = call(platform, module, {"image": b64(sample.image), "threshold": 1.0})
    assert status == 200 and none == []
    assert len(low) >= len(default_items)
    assert all(float(i["confidence"]) >= 0.01 for i in low)


def test_raw_json_bytes_body_is_accepted(fish):
    platform, module = fish
    sample = next(iter(generate_fish(1, seed=8)))
    status, items = call(platform, module, json.dumps({"image": b64(sample.image)}).encode())
    assert status == 200 and isinstance(items, list)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"image": "%%% not base64"}, "base64"),
        ({"image": base64.b64encode(b"hello, not an image").decode()}, "not an image"),
        ({"threshold": 0.5}, "no 'image' field"),
        ({"image": "TRUNCATED"}, "truncated"),
        ({"image": "HUGE"}, "pixels"),
        ({"image": "OK", "threshold": "high"}, "'threshold' is the minimum confidence"),
        ({"image": "OK", "threshold": 1.5}, "a number in [0, 1]; got 1.5"),
        ({"image": "OK", "threshold": -0.2}, "a number in [0, 1]; got -0.2"),
        (b"{broken json", "JSON"),
    ],
)
def test_bad_input_gets_a_clear_error_and_the_function_keeps_serving(fish, body, fragment):
    platform, module = fish
    frame = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    jpeg = encode_jpeg(frame)
    if isinstance(body, dict) and body.get("image") == "TRUNCATED":
        body = {"image": base64.b64encode(jpeg[: len(jpeg) // 2]).decode()}
    elif isinstance(body, dict) and body.get("image") == "HUGE":
        # 12000 x 6000 = 72 MP, over the 60 MP default; PNG of a flat frame stays small
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.new("L", (12000, 6000)).save(buffer, format="PNG")
        body = {"image": base64.b64encode(buffer.getvalue()).decode()}
    elif isinstance(body, dict) and body.get("image") == "OK":
        body = {**body, "image": base64.b64encode(jpeg).decode()}
    status, payload = call(platform, module, body)
    assert status in (400, 413)
    assert fragment in payload["message"]
    assert "Traceback" not in payload["message"]
    status, items = call(platform, module, {"image": base64.b64encode(jpeg).decode()})
    assert status == 200 and isinstance(items, list)


def test_litter_function_tiles_a_large_frame(litter_model, monkeypatch):
    monkeypatch.setenv("IMAGINE_ASSIST_MODEL", str(litter_model.onnx))
    platform, module = Platform(), load_main("litter-detector")
    sample = next(iter(generate_litter(1, seed=9, width=2000, height=1500)))
    status, items = call(platform, module, {"image": b64(sample.image), "threshold": 0.05})
    assert status == 200
    assert_detector_items(items, FUNCTIONS["litter-detector"].label_names)
    for item in items:
        x1, y1, x2, y2 = item["points"]
        assert x2 <= 2000 and y2 <= 1500  # frame coordinates, not window coordinates


def test_threshold_out_of_range_is_400_saying_what_it_means():
    platform, module = Platform(), load_main("burrow-reid")  # reid loads no model
    frame = b64(np.zeros((48, 64, 3), np.uint8))
    body = {"image0": frame, "image1": frame, "boxes0": [], "boxes1": []}
    # the reference reid reads a distance up to 2; ours reads a similarity in [0, 1]
    status, payload = call(platform, module, {**body, "threshold": 1.5})
    assert status == 400
    assert payload["message"] == (
        "burrow-reid: 'threshold' is the minimum appearance similarity (template correlation) "
        "of two matched boxes, a number in [0, 1]; got 1.5"
    )
    assert call(platform, module, {**body, "threshold": 0.5}) == (200, [])
    assert call(platform, module, body) == (200, [])  # CVAT may leave it out


@pytest.mark.parametrize(
    "points", [[float("nan"), 0, 10, 10], [0, 0, float("inf"), 10], [0, 0, 1e300, 1e300]]
)
def test_a_number_past_any_frame_is_a_400_from_nuclio_as_from_the_gateway(points):
    """Nuclio hands over JSON it parsed itself, NaN and 1e300 included; it was a 500 (or a
    200 from numbers that overflowed) where the gateway said 400."""
    platform, module = Platform(), load_main("burrow-reid")
    frame = b64(np.zeros((48, 64, 3), np.uint8))
    shape = {"type": "rectangle", "points": points}
    body = {"image0": frame, "image1": frame, "boxes0": [shape], "boxes1": [shape]}
    status, payload = call(platform, module, body)
    assert status == 400, payload
    assert "numbers are at most" in payload["message"]
    clean = {"type": "rectangle", "points": [0, 0, 10, 10]}
    as_text = {**body, "boxes0": [{"points": [str(v) for v in points]}], "boxes1": [clean]}
    status, payload = call(platform, module, as_text)
    assert status == 400 and "finite numbers" in payload["message"]


def test_reid_across_frames_of_different_sizes_matches_nothing():
    """An image task of mixed cameras: CVAT's automatic annotation sends consecutive frames
    of different sizes, and one 400 would end its whole request."""
    platform, module = Platform(), load_main("burrow-reid")
    shape = {"type": "rectangle", "points": [4, 4, 20, 20]}
    body = {
        "image0": b64(np.full((48, 64, 3), 90, np.uint8)),
        "image1": b64(np.full((96, 128, 3), 90, np.uint8)),
        "boxes0": [shape, shape],
        "boxes1": [shape],
    }
    assert call(platform, module, body) == (200, [-1, -1])


class Failing(ReidFunction):
    def __init__(self) -> None:
        super().__init__(get_spec("burrow-reid"))

    def match(self, *args, **kwargs):
        raise RuntimeError("/secret/path exploded")


def test_an_unexpected_error_is_a_500_that_names_no_internals():
    platform, module = Platform(), load_main("burrow-reid")

    def broken(context):
        context.user_data.function = Failing()
        return context

    frame = b64(np.zeros((48, 64, 3), np.uint8))
    body = {"image0": frame, "image1": frame, "boxes0": [], "boxes1": []}
    event = nuclio_sdk.Event(body=body, content_type="application/json")
    response = platform.call_handler_with_context_mutation(module.handler, event, broken)
    payload = json.loads(response.body)
    assert response.status_code == 500 and payload["status"] == 500
    assert "burrow-reid failed on this request (RuntimeError)" in payload["message"]
    assert "secret" not in payload["message"]


def spec_of(kind: str, default: float = 0.4) -> FunctionSpec:
    return FunctionSpec("f", "F", kind, "fish", "d", (), default_threshold=default)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 0.4), ("", 0.4), (0.7, 0.7), (0, 0.0), (1, 1.0), ("0.25", 0.25)],
)
def test_threshold_defaults_and_values(value, expected):
    assert spec_of("detector").check_threshold(value) == expected


@pytest.mark.parametrize("kind", ["detector", "interactor", "tracker", "reid"])
@pytest.mark.parametrize("value", [-0.1, 1.5, 2, "high", float("nan"), True, [0.5], {"v": 1}])
def test_threshold_out_of_range_or_not_a_number(kind, value):
    spec = spec_of(kind)
    with pytest.raises(BadRequest, match=re.escape(f"'threshold' is {spec.threshold_meaning}")):
        spec.check_threshold(value)


def test_a_default_threshold_out_of_range_is_refused_when_the_spec_is_built():
    with pytest.raises(ValueError, match="default_threshold"):
        spec_of("reid", default=1.2)


@pytest.mark.parametrize("raw", [b"{not json", "[1, 2]", b"\xff\xfe", 12])
def test_body_must_be_a_json_object(raw):
    with pytest.raises(BadRequest):
        parse_body(raw)


def test_body_bytes_and_dict_are_accepted():
    assert parse_body(b'{"image": "x"}') == {"image": "x"}
    assert parse_body({"image": "x"}) == {"image": "x"}


def test_a_body_of_millions_of_tiny_values_is_refused_before_it_is_parsed():
    """11 million `{}` fit the 32 MiB body limit and took 860 MB once parsed."""
    import tracemalloc

    bomb = b'{"image": "x", "pad": [' + b"{}," * 2_000_000 + b"{}]}"
    tracemalloc.start()
    with pytest.raises(BadRequest, match="holds about 4,000,006 JSON values"):
        parse_body(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20e6  # bytes: nothing was parsed
    boxes = {"image": "x", "boxes": [[1.0, 2.0, 3.0, 4.0]] * 5000}  # a real reid request
    assert parse_body(json.dumps(boxes).encode()) == boxes


def test_a_deployed_function_follows_a_promotion_without_a_redeploy(tmp_path, monkeypatch):
    """The mounted models folder gets a new CURRENT (`models promote`, the loop): the
    function serves it at its next look, and a version that does not load leaves the one
    serving."""
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import BUNDLED_DIR
    from imagine_assist.nuclio import adapter

    models = tmp_path / "models"
    monkeypatch.delenv("IMAGINE_ASSIST_MODEL", raising=False)
    monkeypatch.setenv("IMAGINE_ASSIST_MODELS", str(models))
    monkeypatch.setattr(adapter, "WATCH_MODELS_S", 0.0)  # look before every request
    platform, module = Platform(), load_main("fish-detector")
    image = {"image": b64(next(iter(generate_fish(1, seed=7))).image)}

    def served():
        status, _ = call(platform, module, image)
        assert status == 200
        context = platform._get_handler_context(module.handler)
        return str(context.user_data.function.detector.path)

    assert served() == str(BUNDLED_DIR / "fish" / "model.onnx")
    registry = Registry(models)
    registry.add("fish", {"model.onnx": BUNDLED_DIR / "fish" / "model.onnx"}, {})
    registry.promote("fish", "v1", "corrected frames")
    assert served() == str(models / "fish" / "versions" / "v1" / "model.onnx")
    registry.add("fish", {"model.onnx": BUNDLED_DIR / "fish" / "model.onnx"}, {})
    registry.promote("fish", "v2", "more frames")
    (models / "fish" / "versions" / "v2" / "model.onnx").write_bytes(b"cut short")
    assert served().endswith("v1/model.onnx")  # v2 does not load: v1 serves on
