"""Bring your own labels, end to end through the command line, as a new user would: a CVAT
task labelled `fish`, and one with five species of the user's choosing, each become a family
that is reviewed, retrained, promoted, served to CVAT and run over a folder; and the
registry protects the live model of a built-in family from a model with other classes."""

from __future__ import annotations

import base64
import json
import shutil
import xml.etree.ElementTree as ET

import pytest
import requests

from imagine_assist.app.main import main
from imagine_assist.functions.catalog import load_function
from imagine_assist.home import HOME_ENV
from imagine_assist.images import encode_jpeg
from imagine_assist.models.registry import Registry
from imagine_assist.nuclio.gateway import Gateway
from imagine_assist.nuclio.serve import background_server, build_hosts
from imagine_assist.samples import generate_fish, with_labels, write_cvat_export

pytestmark = pytest.mark.slow

WIDTH = 384  # generate_fish's default frame width

SPECIES = {"diplodus": "Diplodus vulgaris", "chromis": "Chromis chromis", "sarpa": "Sarpa salpa"}


def five_species(fish) -> str:
    """Five labels from three drawn kinds: two kinds split by where the fish swims."""
    right = (fish.xyxy[0] + fish.xyxy[2]) / 2 > WIDTH * 0.6
    if right and fish.label == "diplodus":
        return "Oblada melanura"
    if right and fish.label == "chromis":
        return "Coris julis"
    return SPECIES[fish.label]


FIVE = sorted([*SPECIES.values(), "Oblada melanura", "Coris julis"])


def task_export(path, seed: int, rename, labels, n: int = 40):
    return write_cvat_export(path, with_labels(generate_fish(n, seed=seed), rename), labels)


def run(capsys, *argv) -> str:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    assert code == 0, f"{' '.join(map(str, argv))} failed: {err}"
    return out


def served_labels_and_answer(function_id: str, image) -> tuple[list[str], list[dict]]:
    """What CVAT reads from the gateway: the function's labels, and its answer on one frame."""
    gateway = Gateway(build_hosts([function_id], None))
    with background_server(gateway) as url:
        listing = requests.get(
            f"{url}/api/functions", headers={"x-nuclio-project-name": "cvat"}
        ).json()
        spec = json.loads(listing[function_id]["metadata"]["annotations"]["spec"])
        answer = requests.post(
            f"{url}/api/function_invocations",
            json={"image": base64.b64encode(encode_jpeg(image)).decode(), "threshold": 0.01},
            headers={"x-nuclio-function-name": function_id},
        )
    assert answer.status_code == 200, answer.text
    return [label["name"] for label in spec], answer.json()


def assert_cvat_detector_answer(items: list[dict], labels: list[str]) -> None:
    """CVAT's contract for a detector's answer (docs/cvat-contract.md)."""
    assert isinstance(items, list)
    for item in items:
        assert item["label"] in labels and item["type"] == "rectangle"
        x1, y1, x2, y2 = item["points"]
        assert x1 <= x2 and y1 <= y2
        assert 0.0 <= float(item["confidence"]) <= 1.0


@pytest.mark.parametrize(
    ("name", "rename", "labels"),
    [("reef", lambda fish: "fish", ["fish"]), ("obsea", five_species, FIVE)],
    ids=["one-label-fish", "five-species"],
)
def test_a_users_labels_become_a_served_retrainable_function(
    tmp_path, monkeypatch, capsys, name, rename, labels
):
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    lab, desk = tmp_path / "lab", tmp_path / "desk"
    lab.mkdir(), desk.mkdir()
    first = task_export(lab / "task-1.zip", 11, rename, labels, n=60)
    second = task_export(tmp_path / "task-2.zip", 12, rename, labels)
    function_id = f"{name}-detector"

    # 1. the export starts the family (run from the lab folder, the export named relatively)
    monkeypatch.chdir(lab)
    out = run(capsys, "families", "create", name, "--from", "task-1.zip", "--epochs", 2)
    assert f"served as {function_id}" in out
    assert name in run(capsys, "families", "list")

    # 2. review the next task against it, by class and class-agnostically
    run(capsys, "review", second, "--function", function_id, "--out", tmp_path / "review")
    summary = json.loads((tmp_path / "review" / "summary.json").read_text())
    assert set(summary["per_class"]) <= set(labels) and summary["samples"] == 40
    run(
        capsys, "review", second, "--function", function_id, "--class-agnostic",
        "--out", tmp_path / "review-agnostic",
    )  # fmt: skip
    agnostic = json.loads((tmp_path / "review-agnostic" / "summary.json").read_text())
    assert list(agnostic["per_class"]) == ["object"]

    # 3. retrain from the 40-image task: too little held-out data to decide
    out = run(capsys, "train", name, "--from", second, "--epochs", 1)
    assert "not enough held-out data" in out
    registry = Registry(tmp_path / "home" / "models")
    assert registry.current(name).name == "v1"

    # 4. promoted by hand, then rolled back: the function works at every step
    run(capsys, "models", "promote", name, "v2", "--force")
    assert registry.current(name).name == "v2"
    run(capsys, "models", "rollback", name)
    assert registry.current(name).name == "v1"

    # 5. the gateway lists exactly the export's labels and answers as CVAT expects
    image = next(iter(generate_fish(1, seed=99))).image
    served, items = served_labels_and_answer(function_id, image)
    assert served == labels
    assert_cvat_detector_answer(items, labels)

    # 6. predict over a folder writes CVAT XML with the family's labels
    images = tmp_path / "images"
    images.mkdir()
    for sample in generate_fish(3, seed=5):
        (images / sample.name).write_bytes(encode_jpeg(sample.image))
    run(capsys, "predict", images, "--function", function_id, "--out", tmp_path / "predicted")
    tree = ET.parse(tmp_path / "predicted" / "annotations.xml")
    assert [label.findtext("name") for label in tree.iter("label")] == labels

    # 7. cards from another directory, after the export that trained v1 moved away
    shutil.move(first, tmp_path / "archived.zip")
    monkeypatch.chdir(desk)
    out = run(capsys, "publish", "card", name, "--out", "cards")
    assert (desk / "cards" / "model-card.md").is_file()
    assert f"{name} v1" in out


def test_the_live_model_is_protected_from_other_classes(tmp_path, monkeypatch, capsys):
    """A built-in family's live model cannot be replaced by a model with other classes, even
    with --force; after a forced (gate-failing) promotion, rollback restores the default."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    species = list(SPECIES)  # the generator's own kinds: diplodus, chromis, sarpa
    task_export(tmp_path / "species-task.zip", 21, lambda fish: fish.label, species)
    run(capsys, "families", "create", "reef", "--from", "species-task.zip", "--epochs", 1)
    registry = Registry(tmp_path / "home" / "models")
    reef = registry.current("reef")

    # the route an older error message suggested: store the species model as a fish version
    card = {k: v for k, v in reef.card.items() if k not in ("family", "version", "promotions")}
    wrong = registry.add(
        "fish", {"model.onnx": reef.file(), "model.pt": reef.file("model.pt")}, card
    )
    assert main(["models", "promote", "fish", wrong.name, "--force"]) == 2
    assert "never promoted" in capsys.readouterr().err
    assert registry.current("fish") is None  # the bundled model still serves
    assert load_function("fish-detector").spec.label_names == ["fish"]

    # a fish version with the right classes that failed its gate, forced live, rolled back
    right = registry.add(
        "fish",
        {"model.onnx": load_function("fish-detector").detector.path},
        {"classes": ["fish"], "gate": {"passed": False, "reasons": ["x"]}},
    )
    assert main(["models", "promote", "fish", right.name]) == 2  # the gate failed: needs --force
    capsys.readouterr()
    run(capsys, "models", "promote", "fish", right.name, "--force")
    assert registry.current("fish").name == right.name
    out = run(capsys, "models", "rollback", "fish")
    assert "default model" in out and registry.current("fish") is None
    image = next(iter(generate_fish(1, seed=3))).image
    assert load_function("fish-detector").detect(image, 0.05) is not None


def test_a_version_trained_with_a_fixed_validation_export_and_a_label_map_publishes(
    tmp_path, monkeypatch, capsys
):
    """publish rebuilds the training data as training saw it: the --val export held out
    whole, the --map renames applied."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    task_export(tmp_path / "task.zip", 31, lambda fish: "poisson", ["poisson"])
    task_export(tmp_path / "val.zip", 32, lambda fish: "poisson", ["poisson"], n=20)
    run(
        capsys, "families", "create", "lagoon", "--from", "task.zip", "--val", "val.zip",
        "--map", "poisson=fish", "--epochs", 1,
    )  # fmt: skip
    registry = Registry(tmp_path / "home" / "models")
    card = registry.current("lagoon").card
    assert card["classes"] == ["fish"] and card["evaluated_on"]["fixed_validation"]
    assert card["data"]["split"]["test"] == 20  # the validation export, whole
    out = run(capsys, "publish", "card", "lagoon", "--out", "cards")
    assert "lagoon v1" in out
    dataset_card = (tmp_path / "cards" / "dataset-card.md").read_text()
    assert "fish" in dataset_card and "poisson" not in dataset_card
