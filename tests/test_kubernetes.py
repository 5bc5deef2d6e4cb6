"""Nuclio-on-Kubernetes and Kafka settings, validated offline (no cluster, no broker here)."""

import pytest
import yaml

from imagine_assist.app.main import main

from .conftest import REPO


def deploy(tmp_path, *extra):
    out = tmp_path / "build"
    argv = [
        "deploy",
        "fish-detector",
        "--out",
        str(out),
        "--models",
        str(tmp_path / "m"),
        "--print-only",
        *extra,
    ]
    assert main(argv) == 0
    name = "function-gpu.yaml" if "--gpu" in extra else "function.yaml"
    return yaml.safe_load((out / name).read_text())


def test_kube_settings_scale_place_and_limit(tmp_path, capsys):
    config = deploy(tmp_path, "--kube", "--gpu", "--replicas", "2", "6")
    spec = config["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 6)
    assert isinstance(spec["targetCPU"], int) and 0 < spec["targetCPU"] <= 100
    assert spec["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert set(spec["resources"]["requests"]) == {"cpu", "memory"}
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    volume = spec["volumes"][0]
    assert volume["volume"]["persistentVolumeClaim"] == {
        "claimName": "imagine-assist-models",
        "readOnly": True,
    }
    assert volume["volumeMount"]["readOnly"] is True and "platform" not in spec
    assert "--platform kube" in capsys.readouterr().out
    cpu = deploy(tmp_path, "--kube")["spec"]
    assert "nodeSelector" not in cpu and "nvidia.com/gpu" not in cpu["resources"]["limits"]


def test_bad_replica_bounds_are_refused(tmp_path, capsys):
    argv = [
        "deploy",
        "fish-detector",
        "--out",
        str(tmp_path / "b"),
        "--print-only",
        "--kube",
        "--replicas",
        "5",
        "2",
    ]
    assert main(argv) == 2 and "min <= max" in capsys.readouterr().err


def test_kafka_trigger_for_an_observatory_stream(tmp_path):
    config = deploy(
        tmp_path, "--kafka-brokers", "kafka-1:9092,kafka-2:9092", "--kafka-topics", "obsea.camera"
    )
    trigger = config["spec"]["triggers"]["observatoryStream"]
    assert trigger["kind"] == "kafka-cluster"
    attributes = trigger["attributes"]
    assert attributes["brokers"] == ["kafka-1:9092", "kafka-2:9092"]
    assert attributes["topics"] == ["obsea.camera"]
    assert attributes["initialOffset"] in ("earliest", "latest") and attributes["consumerGroup"]
    assert "myHttpTrigger" in config["spec"]["triggers"]  # CVAT still calls it over HTTP


def test_helm_values_and_claim():
    values = yaml.safe_load((REPO / "kubernetes" / "nuclio-values.yaml").read_text())
    assert values["offline"] is True
    assert values["controller"]["enabled"] and values["dashboard"]["enabled"]
    assert "nodePort" not in values["dashboard"]  # the dashboard is not published
    assert values["registry"]["secretName"] and values["rbac"]["create"]
    claim = yaml.safe_load((REPO / "kubernetes" / "models-pvc.yaml").read_text())
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["metadata"]["name"] == "imagine-assist-models"
    assert claim["spec"]["accessModes"] == ["ReadOnlyMany"]


@pytest.mark.parametrize("brokers,topics", [("", "t"), ("k:9092", "")])
def test_a_kafka_trigger_needs_brokers_and_topics(tmp_path, capsys, brokers, topics):
    argv = [
        "deploy",
        "fish-detector",
        "--out",
        str(tmp_path / "b"),
        "--print-only",
        "--kafka-brokers",
        brokers,
        "--kafka-topics",
        topics,
    ]
    assert main(argv) == 2 and "broker" in capsys.readouterr().err


def tracker_config(tmp_path, *extra):
    out = tmp_path / "tracker-build"
    (tmp_path / "m").mkdir(exist_ok=True)
    argv = ["deploy", "burrow-tracker", "--out", str(out), "--models", str(tmp_path / "m")]
    assert main([*argv, "--print-only", *extra]) == 0
    return yaml.safe_load((out / "function.yaml").read_text())["spec"]["env"], out


def test_every_replica_of_a_tracker_signs_states_with_one_key(tmp_path, capsys):
    """A state signed by one replica was refused by the next: each made its own key."""
    from imagine_assist.deploy import TRACKER_KEY_SECRET
    from imagine_assist.functions.tracker_state import KEY_ENV

    env, _ = tracker_config(tmp_path, "--kube", "--replicas", "1", "4")
    (key,) = [item for item in env if item["name"] == KEY_ENV]
    assert key["valueFrom"]["secretKeyRef"] == {"name": TRACKER_KEY_SECRET, "key": "key"}
    assert "value" not in key  # the key itself never lands in a file on the way
    assert f"create secret generic {TRACKER_KEY_SECRET}" in capsys.readouterr().out


def test_a_local_tracker_keeps_its_key_from_one_deploy_to_the_next(tmp_path):
    from imagine_assist.functions.tracker_state import KEY_ENV

    first, folder = tracker_config(tmp_path)
    again, _ = tracker_config(tmp_path)
    values = [{i["name"]: i.get("value") for i in env}[KEY_ENV] for env in (first, again)]
    assert values[0] == values[1] and len(values[0]) == 64
    assert (folder / "tracker-state.key").stat().st_mode & 0o077 == 0
    detector = deploy(tmp_path, "--kube")  # a detector signs nothing
    assert KEY_ENV not in {item["name"] for item in detector["spec"]["env"]}
