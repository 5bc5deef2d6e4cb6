"""The generated Nuclio main.py, called through nuclio_sdk's own test platform."""

import base64
import importlib.util
import json

import nuclio_sdk
import pytest
from nuclio_sdk.test import Platform

from imagine_assist.functions.catalog import FUNCTIONS
from imagine_assist.images import encode_jpeg
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
        ({"image": "OK", "threshold": "high"}, "threshold"),
        ({"image": "OK", "threshold": 1.5}, "threshold"),
        ({"image": "OK", "threshold": -0.2}, "threshold"),
        (b"{broken json", "JSON"),
    ],
)
def test_bad_input_gets_a_clear_error_and_the_function_keeps_serving(fish, body, fragment):
    platform, module = fish
    import numpy as np

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
