"""serverless/ is generated from the built-in families' specs; a checked-in file that drifts
fails here."""

import json

import yaml

from imagine_assist.functions.catalog import builtin_specs
from imagine_assist.functions.render import drift, function_config, render
from imagine_assist.functions.spec import LabelSpec

from .conftest import REPO


def test_checked_in_serverless_matches_the_specs():
    stale = drift(list(builtin_specs().values()), REPO / "serverless")
    assert stale == [], f"run `imagine-assist functions render`: {stale}"


def test_drift_is_detected(tmp_path):
    specs = list(builtin_specs().values())
    render(specs, tmp_path)
    assert drift(specs, tmp_path) == []
    target = tmp_path / "fish-detector" / "function.yaml"
    target.write_text(target.read_text().replace("eventTimeout: 30s", "eventTimeout: 31s"))
    assert drift(specs, tmp_path) == [str(target)]


def test_the_folder_of_a_function_that_is_gone_is_drift(tmp_path):
    """CVAT's deploy scripts deploy every function.yaml they find: a folder left from a
    function renamed or removed passed `render --check` and would be deployed."""
    specs = list(builtin_specs().values())
    render(specs, tmp_path)
    (tmp_path / "old-fish-detector").mkdir()
    (tmp_path / "fish-detector" / "function.yaml").rename(
        tmp_path / "old-fish-detector" / "function.yaml"
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "function.yaml").write_text("# a user's own Nuclio function\n")
    render(specs, tmp_path)  # writes fish-detector again
    assert drift(specs, tmp_path) == [str(tmp_path / "old-fish-detector" / "function.yaml")]
    fish = [spec for spec in specs if spec.family == "fish"]
    assert drift(fish, tmp_path, whole=False) == []  # a folder of several families' functions


def test_function_yaml_has_what_cvat_reads():
    for spec in builtin_specs().values():
        for name in ("function.yaml", "function-gpu.yaml"):
            config = yaml.safe_load((REPO / "serverless" / spec.id / name).read_text())
            meta = config["metadata"]
            assert meta["name"] == spec.id
            assert meta["annotations"]["type"] == spec.kind
            labels = json.loads(meta["annotations"]["spec"])
            assert [label["name"] for label in labels] == spec.label_names
            for label in labels:  # a malformed label breaks CVAT's listing of every function
                assert label["type"] == spec.label_types[label["name"]]
                for attribute in label["attributes"]:  # CVAT reads these keys unguarded
                    assert {"name", "input_type", "values"} <= set(attribute)
                    assert attribute["input_type"] in {"text", "number", "select", "checkbox"}
                names = [a["name"] for a in label["attributes"]]
                assert len(names) == len(set(names))
            assert config["spec"]["handler"] == "main:handler"
            assert config["spec"]["eventTimeout"] == f"{spec.event_timeout_s}s"
            trigger = config["spec"]["triggers"]["myHttpTrigger"]
            assert trigger["attributes"]["maxRequestBodySize"] == spec.max_body_bytes
            assert "maxWorkers" not in trigger  # deprecated in Nuclio 1.13
            gpu = config["spec"]["resources"].get("limits", {}).get("nvidia.com/gpu")
            assert gpu == (1 if name == "function-gpu.yaml" else None)


def test_spec_annotation_is_a_yaml_block_scalar():
    text = (REPO / "serverless" / "fish-detector" / "function.yaml").read_text()
    assert "spec: |" in text


def test_label_types_flow_into_the_yaml():
    spec = builtin_specs()["fish-detector"]
    labels = (LabelSpec(0, "diplodus", "mask"),)
    config = function_config(type(spec)(**{**spec.__dict__, "labels": labels}))
    assert json.loads(config["metadata"]["annotations"]["spec"])[0]["type"] == "mask"


def test_description_says_what_the_threshold_means_where_cvat_asks_for_one():
    for spec in builtin_specs().values():
        config = yaml.safe_load((REPO / "serverless" / spec.id / "function.yaml").read_text())
        description = config["spec"]["description"]
        assert description.startswith(spec.description)
        # CVAT sends a tracker no threshold, so its description does not mention one
        assert ("Threshold: " + spec.threshold_help in description) == (spec.kind != "tracker")
