"""Families as data: a family file in the home is listed and served without touching code,
and bad family files get clear errors."""

from __future__ import annotations

import base64
import json
import shutil
import time

import numpy as np
import pytest
import requests
import yaml
from PIL import Image

from imagine_assist.app.main import main
from imagine_assist.errors import UserError
from imagine_assist.families import all_families, get_family
from imagine_assist.functions.catalog import FUNCTIONS, get_spec
from imagine_assist.images import encode_jpeg
from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.nuclio.gateway import Gateway
from imagine_assist.nuclio.serve import background_server, build_hosts
from imagine_assist.samples import generate_fish, with_labels

OBSEA = """\
name: obsea
title: Fish at the OBSEA observatory
labels: [fish]   # the bundled fish model, at this observatory's own threshold
functions:
  - kind: detector
    threshold: 0.3
"""


def test_the_built_in_families_are_files():
    families = all_families()
    assert {"fish", "litter", "burrow", "plankton"} <= set(families)
    assert all(family.builtin and family.source.suffix == ".yaml" for family in families.values())
    assert [spec.id for spec in FUNCTIONS.values() if spec.family == "burrow"] == [
        "burrow-detector",
        "burrow-tracker",
        "burrow-reid",
    ]
    assert get_spec("fish-detector").label_names == list(get_family("fish").labels)


def test_a_family_file_in_the_home_is_listed_and_served(home):
    """Adding a family is one file (and its model): no code changes."""
    (home / "families" / "obsea.yaml").write_text(OBSEA)
    (home / "models" / "obsea").mkdir(parents=True)
    shutil.copyfile(BUNDLED_DIR / "fish" / "model.onnx", home / "models" / "obsea" / "model.onnx")

    assert "obsea-detector" in FUNCTIONS
    # its Nuclio folder, generated as the built-in ones are
    assert main(["functions", "render", "--family", "obsea", "--out", str(home / "nuclio")]) == 0
    config = yaml.safe_load((home / "nuclio" / "obsea-detector" / "function.yaml").read_text())
    spec = json.loads(config["metadata"]["annotations"]["spec"])
    assert [label["name"] for label in spec] == ["fish"]
    assert sorted(p.name for p in (home / "nuclio").iterdir()) == ["obsea-detector"]
    gateway = Gateway(build_hosts(["obsea-detector"], None))
    with background_server(gateway) as url:
        listing = requests.get(
            f"{url}/api/functions", headers={"x-nuclio-project-name": "cvat"}
        ).json()
        meta = listing["obsea-detector"]["metadata"]
        labels = json.loads(meta["annotations"]["spec"])
        assert [label["name"] for label in labels] == ["fish"]
        assert meta["annotations"]["type"] == "detector"
        image = next(iter(generate_fish(1, seed=3))).image
        answer = requests.post(
            f"{url}/api/function_invocations",
            json={"image": base64.b64encode(encode_jpeg(image)).decode(), "threshold": 0.05},
            headers={"x-nuclio-function-name": "obsea-detector"},
        )
        assert answer.status_code == 200
        items = answer.json()
        assert items and {item["label"] for item in items} <= {"fish"}


@pytest.mark.slow  # FiftyOne or a server: the full tier
def test_a_family_created_while_the_gateway_runs_is_served_from_the_next_sighup(home):
    """`families create` says the family is served by `imagine-assist serve`: a gateway
    already running listed only what existed when it started, SIGHUP or not."""
    import functools

    gateway = Gateway(
        build_hosts(None, None), find_hosts=functools.partial(build_hosts, None, None)
    )
    assert "obsea-detector" not in gateway.hosts and gateway.take_new_functions() == []
    (home / "families" / "obsea.yaml").write_text(OBSEA)
    (home / "models" / "obsea").mkdir(parents=True)
    shutil.copyfile(BUNDLED_DIR / "fish" / "model.onnx", home / "models" / "obsea" / "model.onnx")
    with background_server(gateway) as url:
        gateway.reload_all()  # what SIGHUP runs
        listing = requests.get(f"{url}/api/functions").json()
        assert "obsea-detector" in listing and "fish-detector" in listing
        image = next(iter(generate_fish(1, seed=3))).image
        for _ in range(200):  # its model loads in the background
            answer = requests.post(
                f"{url}/api/function_invocations",
                json={"image": base64.b64encode(encode_jpeg(image)).decode()},
                headers={"x-nuclio-function-name": "obsea-detector"},
            )
            if answer.status_code != 503:
                break
            time.sleep(0.05)
        assert answer.status_code == 200


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: obsea\n", "missing 'labels'"),
        ("name: obsea\nlabels: []\n", "labels must be a list"),
        ("name: obsea\nlabels: [a, a]\n", "not unique"),
        ("name: Obsea!\nlabels: [a]\n", "lower-case"),
        ("name: obsea\nlabels: [a]\nfunctions: [{kind: painter}]\n", "kind 'painter'"),
        ("name: other\nlabels: [a]\n", "name the file other.yaml"),
        ("[1, 2]\n", "YAML mapping"),
        ("name: obsea\nlabels: [a]\ntraining: {split: {val: 0.6, test: 0.5}}\n", "split"),
        (f"name: obsea\nlabels: [{'a' * 65}]\n", "65 characters; CVAT takes at most 64"),
        ("name: obsea\nlabels: ['fish ']\n", "starts or ends with a space"),
    ],
)
def test_a_bad_family_file_is_a_clear_error(home, text, fragment):
    (home / "families" / "obsea.yaml").write_text(text)
    with pytest.raises(UserError, match=fragment):
        get_family("obsea")
    # the other families keep working; the broken file is left out, and named
    assert "obsea" not in all_families() and "fish" in all_families()
    assert main(["families", "list"]) == 0


def test_a_value_cvat_would_refuse_names_the_family_file(home):
    (home / "families" / "obsea.yaml").write_text(
        "name: obsea\nlabels: [a]\nfunctions: [{kind: detector, threshold: 5}]\n"
    )
    with pytest.raises(UserError, match="obsea.yaml: .*threshold"):
        get_spec("obsea-detector")


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        ("{kind: detector, id: cam.x-}", "Nuclio's names"),  # a dot, a trailing '-'
        ("{kind: detector, id: " + "a" * 57 + "}", "at most 56"),  # nuclio-<id> over 63
        ("{kind: detector, timeout_s: 0}", "1 or more"),
        ("{kind: detector, max_body_mib: 0}", "1 or more"),
    ],
)
def test_a_function_nuclio_would_refuse_names_the_family_file(home, function, fragment):
    """These rendered and deployed: `eventTimeout: 0s`, an image tag ending in `x.:0.1.0`."""
    (home / "families" / "obsea.yaml").write_text(
        f"name: obsea\nlabels: [a]\nfunctions: [{function}]\n"
    )
    with pytest.raises(UserError, match=f"obsea.yaml: .*{fragment}"):
        get_spec(next(iter(get_family("obsea").functions)).id)


def test_a_user_family_cannot_take_a_built_in_name(home):
    (home / "families" / "fish.yaml").write_text("name: fish\nlabels: [fish]\n")
    assert get_family("fish").builtin
    assert main(["families", "list"]) == 0


def test_a_family_file_survives_being_written_and_read_back(home):
    from imagine_assist.families import builtin_families, load_family_file, save_family
    from imagine_assist.training.new_family import new_family

    litter_like = new_family("beach", ("net", "buoy"), builtin_families()["litter"])
    path = save_family(litter_like)
    again = load_family_file(path)
    assert again.functions == litter_like.functions and again.labels == ("net", "buoy")
    assert again.functions[0].max_body_mib == 64 and again.functions[0].tile_size == 640
    assert again.training == litter_like.training


@pytest.mark.parametrize("name", ["../escape", "Fish", "fish"])
def test_families_create_checks_the_name_before_any_work(home, tmp_path, capsys, name):
    assert main(["families", "create", name, "--from", str(tmp_path / "missing.zip")]) == 2
    err = capsys.readouterr().err
    assert "lower-case" in err or "exists already" in err
    assert not (home / "runs").exists()


def test_labels_can_come_from_the_model(home):
    (home / "families" / "obsea.yaml").write_text("name: obsea\nlabels: from-model\n")
    assert get_spec("obsea-detector").label_names == []  # no model yet: nothing to offer
    (home / "models" / "obsea").mkdir(parents=True)
    shutil.copyfile(BUNDLED_DIR / "fish" / "model.onnx", home / "models" / "obsea" / "model.onnx")
    assert get_spec("obsea-detector").label_names == ["fish"]


def test_a_family_whose_labels_are_its_models_serves_the_weights_given(home, tmp_path, capsys):
    """With no model installed yet, `--weights` (cvat-cli: -p weights) was refused: the
    labels came from the live model only, and there was none."""
    from imagine_assist.functions.catalog import load_function

    (home / "families" / "obsea.yaml").write_text("name: obsea\nlabels: from-model\n")
    weights = BUNDLED_DIR / "fish" / "model.onnx"
    function = load_function("obsea-detector", weights)
    assert function.spec.label_names == ["fish"]
    frame = tmp_path / "photos" / "f.png"
    frame.parent.mkdir()
    Image.fromarray(np.full((240, 320, 3), 120, np.uint8)).save(frame)
    argv = ["predict", str(frame.parent), "--function", "obsea-detector", "--weights", str(weights)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err


def test_the_gate_refuses_to_decide_on_too_little_evidence_and_on_a_tie():
    from imagine_assist.families import Gate
    from imagine_assist.training.retrain import check_gate

    gate = Gate(min_map50_gain=0.0, max_class_recall_drop=0.1, min_heldout_boxes=50)
    live = {"mAP50": 0.6, "per_class": {"fish": {"recall": 0.7}}}
    better = {"mAP50": 0.7, "per_class": {"fish": {"recall": 0.75}}}
    few = check_gate(better, live, gate, heldout_boxes=18)
    assert not few["passed"] and not few["decided"]
    assert "not enough held-out data" in few["reasons"][0] and "18" in few["reasons"][0]
    assert "or name a fixed validation export with --val" in few["reasons"][0]
    # with --val given, the advice is a larger one, not the option already used
    fixed = check_gate(better, live, gate, heldout_boxes=18, fixed_validation=True)
    assert "Give a larger validation export with --val" in fixed["reasons"][0]
    assert check_gate(better, live, gate, heldout_boxes=50)["passed"]
    tie = check_gate({**better, "mAP50": 0.6}, live, gate, heldout_boxes=80)
    assert not tie["passed"] and tie["decided"] and "does not beat" in tie["reasons"][0]


def test_an_export_without_boxes_or_with_a_wrong_map_is_a_clear_error(home, tmp_path, capsys):
    import dataclasses

    from imagine_assist.samples import write_cvat_export

    empty = write_cvat_export(
        tmp_path / "empty.zip",
        (dataclasses.replace(s, objects=[]) for s in generate_fish(3, seed=1)),
        ["fish"],
    )
    assert main(["families", "create", "reef", "--from", str(empty)]) == 2
    assert "no boxes" in capsys.readouterr().err
    assert main(["train", "fish", "--from", str(empty)]) == 2
    assert "no boxes" in capsys.readouterr().err
    one_label = with_labels(generate_fish(3, seed=1), lambda fish: "fish")
    labelled = write_cvat_export(tmp_path / "one.zip", one_label, ["fish"])
    assert main(["train", "fish", "--from", str(labelled), "--map", "fish=tuna"]) == 2
    assert "tuna, which is not among fish's labels" in capsys.readouterr().err


def test_a_user_family_runs_on_nuclio_with_its_live_version(home, tmp_path, monkeypatch, capsys):
    """The rendered folder carries the family file; in the container (an empty home), the
    function finds it, and serves the version promoted in the mounted models volume."""
    import importlib.util
    import sys

    import nuclio_sdk
    from nuclio_sdk.test import Platform

    from imagine_assist.models.registry import Registry

    (home / "families" / "obsea.yaml").write_text(OBSEA)
    models = tmp_path / "volume"
    registry = Registry(models)
    bundled = {"model.onnx": BUNDLED_DIR / "fish" / "model.onnx"}
    registry.add("obsea", bundled, {"classes": ["fish"]})
    registry.promote("obsea", "v1", "first")
    folder = tmp_path / "serverless"
    assert main(["functions", "render", "--family", "obsea", "--out", str(folder)]) == 0
    function_dir = folder / "obsea-detector"
    assert (function_dir / "families" / "obsea.yaml").read_text() == OBSEA

    # inside the container: nothing of the user's home, the folder and the volume only
    monkeypatch.setenv("IMAGINE_ASSIST_HOME", str(tmp_path / "container-home"))
    config = yaml.safe_load((function_dir / "function.yaml").read_text())
    for item in config["spec"]["env"]:  # as Nuclio sets them, with our paths for its mounts
        mounts = {"/opt/nuclio/models": str(models), "/opt/nuclio/families": ""}
        value = mounts.get(item["value"], item["value"]) or str(function_dir / "families")
        monkeypatch.setenv(item["name"], value)
    spec = importlib.util.spec_from_file_location("nuclio_main_obsea", function_dir / "main.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    platform = Platform()
    image = next(iter(generate_fish(1, seed=3))).image
    body = {"image": base64.b64encode(encode_jpeg(image)).decode(), "threshold": 0.05}
    event = nuclio_sdk.Event(body=body, content_type="application/json")
    response = platform.call_handler(module.handler, event)
    assert response.status_code == 200
    items = json.loads(response.body)
    assert items and {item["label"] for item in items} <= {"fish"}
    assert f"{registry.current('obsea').file()} (v1)" in capsys.readouterr().out  # its log


def test_an_offline_bundle_carries_a_user_family(home, tmp_path, capsys):
    from imagine_assist.models.registry import Registry

    (home / "families" / "obsea.yaml").write_text(OBSEA)
    registry = Registry(home / "models")
    bundled = {"model.onnx": BUNDLED_DIR / "fish" / "model.onnx"}
    registry.add("obsea", bundled, {"classes": ["fish"]})
    registry.promote("obsea", "v1", "first")
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    (wheels / "imagine_assist-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    (wheels / "onnxruntime-1.20.0-cp311-cp311-manylinux_x86_64.whl").write_bytes(b"wheel")
    out = tmp_path / "bundle"
    argv = ["bundle", "--out", str(out), "--wheelhouse", str(wheels)]
    assert main([*argv, "--functions", "obsea-detector"]) == 0, capsys.readouterr().err
    assert (out / "families" / "obsea.yaml").read_text() == OBSEA
    assert (out / "models" / "obsea" / "model.onnx").is_file()
    assert (out / "serverless" / "obsea-detector" / "families" / "obsea.yaml").is_file()
    assert 'cp -r "$here/families/." "$home/families/"' in (out / "install.sh").read_text()
    assert main(["bundle", "verify", str(out)]) == 0


def test_a_user_family_that_cannot_be_served_leaves_the_others_serving(home):
    (home / "families" / "obsea.yaml").write_text(
        "name: obsea\nlabels: [a]\nfunctions: [{kind: detector, id: fish-detector}]\n"
    )
    assert get_spec("fish-detector").family == "fish"  # the built-in keeps its id
    assert "fish-detector" in FUNCTIONS and len(FUNCTIONS) >= 6
    (home / "families" / "obsea.yaml").write_text(
        "name: obsea\nlabels: [a]\nfunctions: [{kind: detector, threshold: 5}]\n"
    )
    assert "obsea-detector" not in FUNCTIONS and "fish-detector" in FUNCTIONS
    # a label type CVAT has no name for: `functions list`, `render` and `serve` stopped
    # with a traceback for every family
    (home / "families" / "obsea.yaml").write_text(
        "name: obsea\nlabels: [a]\nfunctions: [{kind: detector, labels: [{name: a, "
        "type: skeleton}]}]\n"
    )
    assert "obsea-detector" not in FUNCTIONS and "fish-detector" in FUNCTIONS
    assert main(["functions", "list"]) == 0
    with pytest.raises(UserError, match="obsea.yaml: label 'a': type 'skeleton'"):
        get_spec("obsea-detector")


def test_families_create_never_writes_over_a_family_file_it_cannot_read(home, tmp_path, capsys):
    """The user's own file with a typo (`start_from: deployd`) was replaced, comments and
    settings gone, by the file of the new family."""
    mine = "# our observatory\nname: obsea\nlabels: [a]\ntraining: {start_from: deployd}\n"
    (home / "families" / "obsea.yaml").write_text(mine)
    assert main(["families", "create", "obsea", "--from", str(tmp_path / "x.zip")]) == 2
    assert "exists but cannot be used" in capsys.readouterr().err
    assert (home / "families" / "obsea.yaml").read_text() == mine


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fish:\n", None),
        ("yes: fish\n", None),
        ("6: fish\nSarpa salpa: sarpa\n", {"6": "fish", "Sarpa salpa": "sarpa"}),
    ],
)
def test_a_label_map_file_names_a_label_on_both_sides(tmp_path, text, expected):
    """YAML reads `fish:` as None and `yes` as True: a family got a label called None."""
    from imagine_assist.training.exports import parse_label_map

    (tmp_path / "map.yaml").write_text(text)
    if expected is None:
        with pytest.raises(UserError, match="both sides need a label name"):
            parse_label_map([str(tmp_path / "map.yaml")])
    else:
        assert parse_label_map([str(tmp_path / "map.yaml")]) == expected


def test_a_family_takes_every_label_its_task_declares_not_only_those_with_boxes(home, tmp_path):
    """Round one of a species task rarely holds every species: the labels the CVAT task
    declares become the family's, or round two's first box of a rare species is refused."""
    from imagine_assist.samples import write_cvat_export
    from imagine_assist.training.new_family import export_labels

    first_round = with_labels(generate_fish(2, seed=3), lambda fish: "sarpa")
    export = write_cvat_export(tmp_path / "round-1.zip", first_round, ["chromis", "sarpa", "tuna"])
    assert export_labels([export], tmp_path / "work") == ("chromis", "sarpa", "tuna")
    mapped = export_labels([export], tmp_path / "work", {"tuna": "thunnus"})
    assert mapped == ("chromis", "sarpa", "thunnus")


def _rezip(source, target, edit):
    """`source` zip again as `target`, its annotations.xml passed through `edit`."""
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            data = old.read(name)
            new.writestr(name, edit(data.decode()).encode() if name == "annotations.xml" else data)
    return target


@pytest.mark.slow  # FiftyOne reads the exports: the full tier
def test_declared_labels_keep_the_tasks_order_and_come_from_jobs_but_never_tags(home, tmp_path):
    """CVAT shows a task's labels in its own order; a job export declares them under
    <job>; a tag label ("no fish") can never be a box."""
    from imagine_assist.samples import write_cvat_export
    from imagine_assist.training.new_family import export_labels

    declared = ["Diplodus vulgaris", "Chromis chromis", "Sarpa salpa", "Coris julis"]
    first_round = with_labels(generate_fish(2, seed=3), lambda fish: "Sarpa salpa")
    task = write_cvat_export(tmp_path / "task.zip", first_round, declared)
    assert export_labels([task], tmp_path / "work") == tuple(declared)
    tag = "<label><name>no fish</name><type>tag</type><attributes></attributes></label></labels>"
    tagged = _rezip(task, tmp_path / "tagged.zip", lambda xml: xml.replace("</labels>", tag, 1))
    assert export_labels([tagged], tmp_path / "work") == tuple(declared)
    job = _rezip(
        task,
        tmp_path / "job.zip",
        lambda xml: xml.replace("<task>", "<job>").replace("</task>", "</job>"),
    )
    assert export_labels([job], tmp_path / "work") == tuple(declared)


def _yolo_export(path, names, images: int, kept: int):
    """An Ultralytics YOLO Detection 1.0 export as CVAT writes it: one label file per
    image; only the first `kept` images inside."""
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "data.yaml", yaml.safe_dump({"path": ".", "train": "images/train", "names": names})
        )
        for index, sample in enumerate(generate_fish(images, seed=9)):
            archive.writestr(f"labels/train/f{index}.txt", "0 0.5 0.5 0.2 0.1\n")
            if index < kept:
                Image.fromarray(sample.image).save(tmp := path.parent / f"f{index}.jpg")
                archive.write(tmp, f"images/train/f{index}.jpg")
    return path


@pytest.mark.slow  # FiftyOne reads the exports: the full tier
def test_a_yolo_export_keeps_its_declared_names_and_is_refused_without_its_images(home, tmp_path):
    from imagine_assist.training.new_family import export_labels

    names = {0: "Zebra", 1: "apple", 2: "Mango"}  # Mango has no box yet
    whole = _yolo_export(tmp_path / "whole.zip", names, images=3, kept=3)
    assert export_labels([whole], tmp_path / "work") == ("Zebra", "apple", "Mango")
    part = _yolo_export(tmp_path / "part.zip", names, images=3, kept=2)
    with pytest.raises(UserError, match="part.zip lacks 1 of the 3 images"):
        export_labels([part], tmp_path / "work")
    none = _yolo_export(tmp_path / "none.zip", names, images=3, kept=0)
    with pytest.raises(UserError, match="none.zip holds the annotations of 3 images but none"):
        export_labels([none], tmp_path / "work")


@pytest.mark.slow  # FiftyOne reads the exports: the full tier
def test_the_labels_of_a_fixed_validation_export_are_the_familys_too(home, tmp_path, monkeypatch):
    """`families create --from a.zip --val b.zip`: b's species was refused as unknown to
    the family, with advice to run the command being run."""
    from imagine_assist.samples import write_cvat_export
    from imagine_assist.training import new_family

    train = with_labels(generate_fish(2, seed=3), lambda fish: "Sarpa salpa")
    val = with_labels(generate_fish(2, seed=4), lambda fish: "Sparus aurata")
    exports = [write_cvat_export(tmp_path / "a.zip", train, ["Sarpa salpa"])]
    vals = [write_cvat_export(tmp_path / "b.zip", val, ["Sarpa salpa", "Sparus aurata"])]
    made = {}

    def stop_before_training(name, labels, base):
        made["labels"] = labels
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(new_family, "new_family", stop_before_training)
    with pytest.raises(RuntimeError, match="stopped before training"):
        new_family.create_family("reef", exports, tmp_path / "work", val_exports=vals)
    assert made["labels"] == ("Sarpa salpa", "Sparus aurata")


def test_a_family_file_with_a_tile_overlap_over_half_a_tile_is_refused_when_read():
    """Read as valid, it made the function fail only when the gateway loaded it."""
    from imagine_assist.families import family_from_dict

    raw = {
        "name": "shore",
        "labels": ["bottle"],
        "functions": [{"kind": "detector", "tile_size": 640, "tile_overlap": 400}],
    }
    with pytest.raises(UserError, match="tile_overlap 400 must lie in .0, 320. for tile_size 640"):
        family_from_dict(raw)
