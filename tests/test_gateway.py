"""The gateway, as a real server on a loopback port, driven as CVAT's lambda manager drives it."""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import io
import json
import socket
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image

from imagine_assist.functions.catalog import FUNCTIONS, get_spec, load_function
from imagine_assist.functions.reid import ReidFunction
from imagine_assist.images import encode_jpeg
from imagine_assist.nuclio.gateway import Gateway
from imagine_assist.nuclio.hosting import FunctionHost
from imagine_assist.nuclio.serve import background_server, build_hosts
from imagine_assist.samples import generate_fish, generate_litter

# What CVAT's LambdaGateway sends (contract §3): on every request, plus two on invocations.
CVAT_HEADERS = {
    "x-nuclio-project-name": "cvat",
    "x-nuclio-function-namespace": "nuclio",
    "x-nuclio-invoke-via": "domain-name",
    "X-Nuclio-Invoke-Timeout": "120s",
}


def invoke_headers(name: str) -> dict:
    return {**CVAT_HEADERS, "x-nuclio-function-name": name, "x-nuclio-path": "/"}


def running(gateway: Gateway, wait_ready: bool = True):
    return background_server(gateway, wait_ready=wait_ready)


def b64(image: np.ndarray) -> str:
    return base64.b64encode(encode_jpeg(image)).decode()


FISH = next(iter(generate_fish(1, seed=51))).image


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory):
    log = tmp_path_factory.mktemp("gateway") / "access.jsonl"
    gateway = Gateway(build_hosts(None, None), access_log=log, workers=2)
    with running(gateway) as url:
        yield url, gateway, log


def test_lists_functions_as_cvat_reads_them(gateway_url):
    url, gateway, _ = gateway_url
    listing = requests.get(f"{url}/api/functions", headers=CVAT_HEADERS).json()
    assert set(listing) == set(FUNCTIONS)
    for name, config in listing.items():
        meta = config["metadata"]
        assert meta["name"] == name
        assert meta["labels"]["nuclio.io/project-name"] == "cvat"
        assert meta["annotations"]["type"] == get_spec(name).kind
        labels = json.loads(meta["annotations"]["spec"])  # CVAT json-loads this string
        assert [label["name"] for label in labels] == get_spec(name).label_names
        assert config["spec"]["description"]
        assert config["status"] == {"state": "ready", "httpPort": gateway.port}
    one = requests.get(f"{url}/api/functions/fish-detector", headers=CVAT_HEADERS).json()
    assert one == listing["fish-detector"]
    other = requests.get(f"{url}/api/functions", headers={"x-nuclio-project-name": "other"})
    assert other.json() == {}


def test_invocation_with_and_without_threshold(gateway_url):
    url, *_ = gateway_url
    for body in ({"image": b64(FISH)}, {"image": b64(FISH), "threshold": 0.05}):
        response = requests.post(
            f"{url}/api/function_invocations", json=body, headers=invoke_headers("fish-detector")
        )
        assert response.status_code == 200
        items = response.json()
        assert items and all(item["type"] == "rectangle" for item in items)
        assert {item["label"] for item in items} <= set(get_spec("fish-detector").label_names)


def big_png(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("name", "body", "status", "fragment"),
    [
        ("fish-detector", b"{not json", 400, "JSON"),
        ("fish-detector", {"image": "!!!"}, 400, "base64"),
        ("fish-detector", {"image": base64.b64encode(b"text").decode()}, 400, "not an image"),
        ("fish-detector", {"image": "FISH", "threshold": "high"}, 400, "minimum confidence"),
        ("fish-detector", {"image": "FISH", "threshold": 7}, 400, "in [0, 1]; got 7"),
        # CVAT's reference reid reads a distance in [0, 2]; ours a similarity in [0, 1]
        ("burrow-reid", {"image0": "FISH", "threshold": 1.5}, 400, "appearance similarity"),
        ("fish-detector", {}, 400, "no 'image' field"),
        ("fish-detector", {"image": "HUGE"}, 413, "pixels"),
        ("shark-detector", {"image": "FISH"}, 404, "shark-detector"),
        ("", {"image": "FISH"}, 400, "x-nuclio-function-name"),
    ],
)
def test_errors_are_json_with_a_reason_and_the_gateway_keeps_serving(
    gateway_url, name, body, status, fragment
):
    url, *_ = gateway_url
    if isinstance(body, dict) and body.get("image") == "FISH":
        body = {**body, "image": b64(FISH)}
    if isinstance(body, dict) and body.get("image0") == "FISH":
        body = {**body, "image0": b64(FISH), "image1": b64(FISH), "boxes0": [], "boxes1": []}
    if isinstance(body, dict) and body.get("image") == "HUGE":
        body = {"image": big_png(10000, 7000)}  # 70 MP, over the fish function's 60 MP
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**invoke_headers(name), "Content-Type": "application/json"}
    response = requests.post(f"{url}/api/function_invocations", data=data, headers=headers)
    assert response.status_code == status
    assert fragment in response.json()["message"]
    assert "Traceback" not in response.text
    again = requests.post(
        f"{url}/api/function_invocations",
        json={"image": b64(FISH)},
        headers=invoke_headers("fish-detector"),
    )
    assert again.status_code == 200


class Failing(ReidFunction):
    def __init__(self) -> None:
        super().__init__(get_spec("burrow-reid"))

    def match(self, *args, **kwargs):
        raise RuntimeError("/secret/path exploded")


def test_an_unexpected_error_is_a_500_naming_the_function_not_its_internals():
    spec = get_spec("burrow-reid")
    with running(Gateway({spec.id: FunctionHost(spec, Failing)})) as url:
        frame = b64(np.zeros((48, 64, 3), np.uint8))
        body = {"image0": frame, "image1": frame, "boxes0": [], "boxes1": []}
        response = requests.post(
            f"{url}/api/function_invocations", json=body, headers=invoke_headers(spec.id)
        )
        assert response.status_code == 500
        message = response.json()["message"]
        assert message == "burrow-reid failed on this request (RuntimeError); see its log"
        assert requests.get(f"{url}/api/healthz").status_code == 200


def test_unknown_function_details_are_404(gateway_url):
    url, *_ = gateway_url
    response = requests.get(f"{url}/api/functions/shark", headers=CVAT_HEADERS)
    assert response.status_code == 404 and "shark" in response.json()["message"]


def test_metrics_and_access_log_count_requests(gateway_url):
    url, gateway, log = gateway_url
    before = gateway.metrics.requests("fish-detector")
    requests.post(
        f"{url}/api/function_invocations",
        json={"image": b64(FISH)},
        headers=invoke_headers("fish-detector"),
    )
    requests.post(
        f"{url}/api/function_invocations",
        json={"image": "!"},
        headers=invoke_headers("fish-detector"),
    )
    after = gateway.metrics.requests("fish-detector")
    assert after.get(200, 0) == before.get(200, 0) + 1
    assert after.get(400, 0) == before.get(400, 0) + 1
    text = requests.get(f"{url}/metrics").text
    assert (
        f'imagine_assist_requests_total{{function="fish-detector",code="200"}} {after[200]}' in text
    )
    assert 'imagine_assist_request_seconds_count{function="fish-detector"}' in text
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["path"] == "/metrics"
    last_call = [r for r in records if r["path"] == "/api/function_invocations"][-1]
    assert {"time", "client", "function", "status", "ms", "user_agent"} <= set(last_call)
    assert last_call["status"] == 400 and last_call["function"] == "fish-detector"


@pytest.mark.slow  # a load test
def test_load_with_bad_requests_mixed_in(gateway_url):
    url, *_ = gateway_url
    import resource

    good = {"image": b64(FISH)}
    bad = {"image": "not base64!"}

    def one(i: int) -> tuple[bool, int]:
        is_bad = i % 4 == 3
        response = requests.post(
            f"{url}/api/function_invocations",
            json=bad if is_bad else good,
            headers=invoke_headers("fish-detector"),
            timeout=60,
        )
        return is_bad, response.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as clients:
        list(clients.map(one, range(40)))  # warm-up: buffers and caches reach their size
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results = list(clients.map(one, range(200)))
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert all(code == 200 for is_bad, code in results if not is_bad)
    assert all(code == 400 for is_bad, code in results if is_bad)
    assert (rss_after - rss_before) / 1024 < 100  # MiB: peak memory stays flat
    assert requests.get(f"{url}/api/healthz").status_code == 200


def test_reload_keeps_requests_in_flight(gateway_url):
    url, *_ = gateway_url
    statuses: list[int] = []

    def burst() -> None:
        for _ in range(10):
            statuses.append(
                requests.post(
                    f"{url}/api/function_invocations",
                    json={"image": b64(FISH)},
                    headers=invoke_headers("fish-detector"),
                ).status_code
            )

    clients = [threading.Thread(target=burst) for _ in range(3)]
    for client in clients:
        client.start()
    reloaded = requests.post(f"{url}/api/functions/fish-detector/reload")
    for client in clients:
        client.join()
    assert reloaded.status_code == 200 and reloaded.json()["state"] == "ready"
    assert statuses == [200] * 30


def test_failed_reload_keeps_the_previous_model(tmp_path):
    spec = get_spec("fish-detector")
    model = {"path": None}

    def loader():
        return load_function(spec.id, model["path"])

    gateway = Gateway({spec.id: FunctionHost(spec, loader)})
    with running(gateway) as url:
        broken = tmp_path / "broken.onnx"
        broken.write_bytes(b"truncated model")
        model["path"] = broken
        response = requests.post(f"{url}/api/functions/fish-detector/reload")
        assert response.status_code == 422
        assert "is ready" in response.json()["message"]
        ok = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(FISH)},
            headers=invoke_headers("fish-detector"),
        )
        assert ok.status_code == 200
        # healthz says the model serving is not the one asked for, and why
        served = requests.get(f"{url}/api/healthz").json()["models"]["fish-detector"]
        assert "not a readable ONNX model" in served["reload_error"]
        model["path"] = None  # a reload that works clears it
        assert requests.post(f"{url}/api/functions/fish-detector/reload").status_code == 200
        served = requests.get(f"{url}/api/healthz").json()["models"]["fish-detector"]
        assert "reload_error" not in served


def test_503_while_loading_and_after_a_failed_load(tmp_path):
    spec = get_spec("fish-detector")
    release = threading.Event()

    def slow_loader():
        release.wait(30)
        return load_function(spec.id)

    broken = tmp_path / "model.onnx"
    broken.write_bytes(b"not a model")
    failing = dataclasses.replace(get_spec("litter-detector"))
    hosts = {
        spec.id: FunctionHost(spec, slow_loader),
        failing.id: FunctionHost(failing, lambda: load_function(failing.id, broken)),
    }
    with running(Gateway(hosts), wait_ready=False) as url:
        loading = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(FISH)},
            headers=invoke_headers(spec.id),
        )
        assert loading.status_code == 503 and "loading" in loading.json()["message"]
        assert requests.get(f"{url}/api/healthz").status_code == 503
        release.set()
        deadline = time.time() + 30
        while requests.get(f"{url}/api/functions/{spec.id}").json()["status"]["state"] != "ready":
            assert time.time() < deadline
            time.sleep(0.05)
        assert (
            requests.post(
                f"{url}/api/function_invocations",
                json={"image": b64(FISH)},
                headers=invoke_headers(spec.id),
            ).status_code
            == 200
        )
        failed = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(FISH)},
            headers=invoke_headers(failing.id),
        )
        assert failed.status_code == 503 and "failed to load" in failed.json()["message"]
        listed = requests.get(f"{url}/api/functions/{failing.id}").json()
        assert listed["status"]["state"] == "error"
        health = requests.get(f"{url}/api/healthz").json()["models"][failing.id]
        assert "not a readable ONNX model" in health["error"]  # healthz says why, too


def test_body_over_the_limit_is_413():
    spec = dataclasses.replace(get_spec("fish-detector"), max_body_bytes=50_000)
    gateway = Gateway({spec.id: FunctionHost(spec, lambda: load_function("fish-detector"))})
    with running(gateway) as url:
        big = np.random.default_rng(1).integers(0, 255, (400, 400, 3), dtype=np.uint8)
        response = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(big)},
            headers=invoke_headers(spec.id),
        )
        assert response.status_code == 413 and "limit" in response.json()["message"]
        small = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(FISH)},
            headers=invoke_headers(spec.id),
        )
        assert small.status_code == 200


def test_timeout_is_504_and_the_gateway_still_answers():
    gateway = Gateway(build_hosts(["litter-detector"], None), timeout_s=0.05)
    frame = next(iter(generate_litter(1, seed=52))).image
    with running(gateway) as url:
        response = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(frame)},
            headers=invoke_headers("litter-detector"),
        )
        assert response.status_code == 504 and "timeout" in response.json()["message"]
        assert requests.get(f"{url}/api/healthz").status_code == 200


def test_token_guards_everything_but_readiness():
    gateway = Gateway(build_hosts(["fish-detector"], None), token="s3cret")
    with running(gateway) as url:
        assert requests.get(f"{url}/api/healthz").status_code == 200
        denied = requests.get(f"{url}/api/functions", headers=CVAT_HEADERS)
        assert denied.status_code == 401 and "token" in denied.json()["message"]
        assert requests.post(f"{url}/api/functions/fish-detector/reload").status_code == 401
        assert requests.get(f"{url}/metrics").status_code == 401
        wrong = {**CVAT_HEADERS, "x-imagine-assist-token": "guess"}
        assert requests.get(f"{url}/api/functions", headers=wrong).status_code == 401
        right = {**CVAT_HEADERS, "x-imagine-assist-token": "s3cret"}
        assert requests.get(f"{url}/api/functions", headers=right).status_code == 200
        bearer = {**CVAT_HEADERS, "Authorization": "Bearer s3cret"}
        assert requests.get(f"{url}/api/functions", headers=bearer).status_code == 200


def test_gateway_makes_no_outbound_connection(monkeypatch):
    seen: list = []
    original = socket.socket.connect

    def recording(self, address):
        seen.append(address)
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording)
    with running(Gateway(build_hosts(["fish-detector"], None))) as url:
        response = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(FISH)},
            headers=invoke_headers("fish-detector"),
        )
        assert response.status_code == 200
    assert seen, "the recorder saw the test's own connections"
    assert all(address[0] == "127.0.0.1" for address in seen)


def test_tracker_states_through_the_gateway(gateway_url):
    url, *_ = gateway_url
    frame = b64(np.full((240, 320, 3), 90, np.uint8))
    headers = invoke_headers("burrow-tracker")
    start = requests.post(
        f"{url}/api/function_invocations",
        headers=headers,
        json={"image": frame, "shapes": [[100, 100, 140, 130]], "states": [None]},
    )
    assert start.status_code == 200
    state = start.json()["states"][0]
    tampered = {**state, "box": [0, 0, 10, 10]}
    refused = requests.post(
        f"{url}/api/function_invocations",
        headers=headers,
        json={"image": frame, "shapes": [[100, 100, 140, 130]], "states": [tampered]},
    )
    assert refused.status_code == 400 and "altered" in refused.json()["message"]
    again = requests.post(
        f"{url}/api/function_invocations",
        headers=headers,
        json={"image": frame, "shapes": [[100, 100, 140, 130]], "states": [state]},
    )
    assert again.status_code == 200 and len(again.json()["shapes"]) == 1


def wait_for_version(url: str, function_id: str, version: str, timeout_s: float = 30) -> dict:
    deadline = time.time() + timeout_s
    while True:
        served = requests.get(f"{url}/api/healthz").json()["models"][function_id]
        if served["version"] == version or time.time() > deadline:
            return served
        time.sleep(0.05)


def test_a_promotion_by_another_process_serves_without_a_reload(tmp_path):
    """`models promote` without --gateway (or the loop) rewrites CURRENT; the gateway sees
    it at its next look and serves the new version, then the bundled one after a rollback."""
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import BUNDLED_DIR

    models = tmp_path / "models"
    gateway = Gateway(build_hosts(["fish-detector"], models), watch_models_s=0.05)
    with running(gateway) as url:
        assert wait_for_version(url, "fish-detector", "bundled")["version"] == "bundled"
        registry = Registry(models)
        registry.add("fish", {"model.onnx": BUNDLED_DIR / "fish" / "model.onnx"}, {})
        registry.promote("fish", "v1", "corrected frames")
        served = wait_for_version(url, "fish-detector", "v1")
        assert served["version"] == "v1" and served["model"].endswith("v1/model.onnx")
        answer = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(FISH)},
            headers=invoke_headers("fish-detector"),
        )
        assert answer.status_code == 200
        registry.rollback("fish")
        assert wait_for_version(url, "fish-detector", "bundled")["version"] == "bundled"


def test_the_model_watch_reloads_once_per_change_and_not_a_failed_load_again(tmp_path):
    from imagine_assist.nuclio.hosting import ModelWatch

    stamp_file = tmp_path / "CURRENT"
    stamp_file.write_text("v1")
    loads = {"count": 0, "fail": False}

    def loader():
        loads["count"] += 1
        if loads["fail"]:
            raise ValueError("cut short")
        return load_function("fish-detector")

    host = FunctionHost(get_spec("fish-detector"), loader, lambda: stamp_file.read_text())
    watch = ModelWatch([host], interval_s=60)
    assert watch.look() == []  # never loaded: the first load is the gateway's, not the watch's
    host.load()
    assert watch.look() == [] and loads["count"] == 1
    stamp_file.write_text("v2")
    assert watch.look() == ["fish-detector"] and loads["count"] == 2
    assert watch.look() == []
    loads["fail"] = True
    stamp_file.write_text("v3")
    assert watch.look() == ["fish-detector"] and loads["count"] == 3
    assert host.status.state == "ready" and "cut short" in host.status.reload_error
    assert watch.look() == [] and loads["count"] == 3  # a broken version is not retried


def test_the_stamp_follows_the_live_versions_own_files(tmp_path):
    """A live model cut short, then restored by hand: CURRENT did not change, so the watch
    never reloaded and healthz kept a reload_error that `models repair` called sound."""
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import BUNDLED_DIR, live_model_stamp

    models = tmp_path / "models"
    registry = Registry(models)
    registry.add("fish", {"model.onnx": BUNDLED_DIR / "fish" / "model.onnx"}, {})
    registry.promote("fish", "v1", "corrected frames")
    model = models / "fish" / "versions" / "v1" / "model.onnx"
    host = FunctionHost(
        get_spec("fish-detector"),
        lambda: load_function("fish-detector", models_dir=models),
        lambda: live_model_stamp("fish", models),
    )
    from imagine_assist.nuclio.hosting import ModelWatch

    good = model.read_bytes()
    model.write_bytes(good[:1000])
    assert host.load().state == "failed"
    model.write_bytes(good)  # restored by hand
    assert ModelWatch([host], 60).look() == ["fish-detector"]
    assert host.status.state == "ready" and not host.status.reload_error
