"""The compose overlay, validated offline: the compose-spec schema (vendored by
check-jsonschema) and the settings CVAT needs. No Docker engine runs here."""

import json
from importlib import resources

import jsonschema
import pytest
import yaml

from .conftest import REPO

OVERLAY = REPO / "compose" / "docker-compose.imagine-assist.yml"
NUCLIO = {
    "CVAT_NUCLIO_HOST": "imagine_assist_gateway",
    "CVAT_NUCLIO_PORT": "8070",
    "CVAT_NUCLIO_INVOKE_METHOD": "dashboard",
}


@pytest.fixture(scope="module")
def overlay():
    return yaml.safe_load(OVERLAY.read_text())


def test_overlay_matches_the_compose_spec(overlay):
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(overlay, schema)  # raises with the offending path when it does not
    broken = {**overlay, "services": {"x": {"imagee": "a typo compose would refuse"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_cvat_uses_the_gateway_and_nothing_is_published_to_the_world(overlay):
    services = overlay["services"]
    for name in ("cvat_server", "cvat_worker_annotation"):
        environment = services[name]["environment"]
        assert {k: environment[k] for k in NUCLIO} == NUCLIO, name
    assert services["cvat_server"]["environment"]["CVAT_SERVERLESS"] == "1"
    gateway = services["imagine_assist_gateway"]
    assert "ports" not in gateway  # reached on CVAT's network only
    assert "8070" in gateway["command"] and "serve" in gateway["command"]
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    models = [v for v in gateway["volumes"] if v.endswith(":/models:ro")]
    assert models, "the promoted models are mounted read-only"


def test_gateway_image_installs_no_torch():
    dockerfile = (REPO / "compose" / "Dockerfile.gateway").read_text()
    install = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert install and all("[" not in line and "torch" not in line for line in install)
