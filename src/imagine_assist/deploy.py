"""`imagine-assist deploy <function>`: a Nuclio build folder for one function, and `nuctl`.

The folder holds function.yaml (from the spec, as `serverless/<id>/`), main.py and a
`wheels/` folder. With `--wheelhouse`, every wheel the function needs comes from that folder
and pip is told `--no-index`, so the image builds with no network (nuclio/nuclio#2021,
cvat-ai/cvat#7015). The models are never baked in: the models directory is mounted
read-only, so a promotion needs a restart, not a rebuild.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from imagine_assist.errors import UserError
from imagine_assist.functions.render import (
    HEADER,
    _Dumper,
    family_files,
    function_config,
    main_py,
)
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.functions.tracker_state import KEY_ENV
from imagine_assist.wheelhouse import check_wheelhouse

NUCLIO_WHEELS = "/opt/nuclio/wheels"
# The Kubernetes secret that holds the tracker's state key, shared by every replica.
TRACKER_KEY_SECRET = "imagine-assist-tracker-key"


@dataclass(frozen=True)
class KubeSettings:
    """Nuclio on Kubernetes: replicas scale between the bounds on CPU load; GPU functions
    are placed on GPU nodes."""

    min_replicas: int = 1
    max_replicas: int = 4
    target_cpu: int = 75  # percent of the CPU request, where Nuclio adds a replica
    cpu: str = "2"
    memory: str = "4Gi"
    gpu_node_selector: tuple[tuple[str, str], ...] = (("nvidia.com/gpu.present", "true"),)


@dataclass(frozen=True)
class KafkaSource:
    """A Kafka topic of CVAT-shaped requests ({"image": base64, ...}) as a trigger."""

    brokers: tuple[str, ...]
    topics: tuple[str, ...]
    consumer_group: str = "imagine-assist"
    initial_offset: str = "latest"  # a live stream: start from now, not from the archive


def kube_settings(config: dict, settings: KubeSettings, gpu: bool) -> None:
    spec = config["spec"]
    if not 1 <= settings.min_replicas <= settings.max_replicas:
        raise UserError("replicas: need 1 <= min <= max")
    spec["minReplicas"], spec["maxReplicas"] = settings.min_replicas, settings.max_replicas
    spec["targetCPU"] = settings.target_cpu
    limits = {"cpu": settings.cpu, "memory": settings.memory}
    if gpu:
        limits["nvidia.com/gpu"] = 1
        spec["nodeSelector"] = dict(settings.gpu_node_selector)
        spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    spec["resources"] = {
        "requests": {"cpu": settings.cpu, "memory": settings.memory},
        "limits": limits,
    }
    # hostPath volumes tie a pod to one node: on a cluster the models come from a claim
    spec["volumes"][0]["volume"] = {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "imagine-assist-models", "readOnly": True},
    }
    spec.pop("platform", None)  # restart policies are Docker's; Kubernetes has its own


def kafka_trigger(config: dict, source: KafkaSource) -> None:
    if not source.brokers or not source.topics:
        raise UserError("a Kafka trigger needs at least one broker and one topic")
    if source.initial_offset not in ("earliest", "latest"):
        raise UserError("initialOffset is 'earliest' or 'latest'")
    config["spec"]["triggers"]["observatoryStream"] = {
        "kind": "kafka-cluster",
        "attributes": {
            "brokers": list(source.brokers),
            "topics": list(source.topics),
            "consumerGroup": source.consumer_group,
            "initialOffset": source.initial_offset,
        },
    }


@dataclass
class DeployPlan:
    folder: Path
    config: Path
    commands: list[list[str]]
    notes: list[str]


def tracker_key(config: dict, folder: Path, kube: bool) -> str:
    """Give a tracker function its state key; return the note that says where it is.

    CVAT hands each track's state back to the function, which refuses a state it did not
    sign. Left to itself each container makes a key of its own: a state signed by one
    replica is refused by the next, and every redeploy breaks the tracks being followed.
    On Kubernetes every replica reads one secret; locally the key is kept in the build
    folder, so a redeploy from it signs as before."""
    env = config["spec"]["env"]
    if kube:
        secret = {"secretKeyRef": {"name": TRACKER_KEY_SECRET, "key": "key"}}
        env.append({"name": KEY_ENV, "valueFrom": secret})
        return (
            "tracker states are signed with one key for every replica: create it once with "
            f"`kubectl -n nuclio create secret generic {TRACKER_KEY_SECRET} "
            "--from-literal=key=$(openssl rand -hex 32)`"
        )
    path = folder / "tracker-state.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    env.append({"name": KEY_ENV, "value": path.read_text().strip()})
    return f"tracker states are signed with the key in {path}: keep it to redeploy"


def plan_deploy(
    spec: FunctionSpec,
    folder: Path,
    models_dir: Path,
    gpu: bool = False,
    wheelhouse: Path | None = None,
    base_image: str | None = None,
    project: str = "cvat",
    kube: KubeSettings | None = None,
    kafka: KafkaSource | None = None,
    registry: str | None = None,
) -> DeployPlan:
    """The build folder, its function.yaml and the nuctl command. `registry`: where a
    Kubernetes build pushes its image."""
    config = function_config(spec, gpu, offline=wheelhouse is not None)
    build = config["spec"]["build"]
    notes: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wheels").mkdir(exist_ok=True)
    if wheelhouse is not None:
        python = str(config["spec"]["runtime"]).partition(":")[2] or None
        for wheel in check_wheelhouse(wheelhouse, gpu, python):
            shutil.copyfile(wheel, folder / "wheels" / wheel.name)
        if gpu:
            notes.append(
                "the GPU base image must already have python3 with venv: the offline build "
                "skips `apt-get install` (use --base-image with such an image)"
            )
    else:
        notes.append(
            "no --wheelhouse: the build installs from PyPI and needs a network; put the "
            f"imagine-assist wheel in {folder / 'wheels'} (`pip wheel --no-deps . -w ...`)"
        )
    if base_image:
        build["baseImage"] = base_image
    volume = config["spec"]["volumes"][0]
    volume["volume"]["hostPath"]["path"] = str(models_dir.resolve())  # mounted, read-only
    if kube is not None:
        kube_settings(config, kube, gpu)
    if kafka is not None:
        kafka_trigger(config, kafka)
    if spec.kind == "tracker":
        notes.append(tracker_key(config, folder, kube is not None))
    target = folder / ("function-gpu.yaml" if gpu else "function.yaml")
    target.write_text(HEADER + yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=100))
    (folder / "main.py").write_text(main_py(spec))
    for name, content in family_files(spec).items():  # a user's family rides with its code
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    command = [
        "nuctl",
        "deploy",
        spec.id,
        "--project-name",
        project,
        "--path",
        str(folder.resolve()),
        "--file",
        str(target.resolve()),
        "--platform",
        "kube" if kube else "local",
    ]
    if kube:
        command += ["--namespace", "nuclio", "--registry", registry or "<your registry>"]
        notes.append("copy the promoted models into the claim imagine-assist-models (kubernetes/)")
    return DeployPlan(folder, target, [command], notes)
