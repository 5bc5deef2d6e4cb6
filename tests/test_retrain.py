"""Retraining from CVAT exports: import, deterministic split, training, gate, registry,
and a gateway that serves the promoted version after a reload."""

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests

from imagine_assist.app.main import main
from imagine_assist.errors import UserError
from imagine_assist.models.registry import Registry
from imagine_assist.nuclio.gateway import Gateway
from imagine_assist.nuclio.serve import background_server, build_hosts
from imagine_assist.samples import (
    generate_fish,
    generate_tow,
    write_cvat_export,
    write_cvat_video_export,
)
from imagine_assist.training.exports import (
    content_split,
    fiftyone,
    file_sha256,
    load_export,
    shape_bounds,
    unpack,
)
from imagine_assist.training.retrain import build_dataset, check_gate, load_recipe

from .fish_tasks import FISH_LABELS, fish_samples
from .onnx_files import tiny_onnx
from .test_gateway import b64, invoke_headers


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A corrected fish task as CVAT exports it (CVAT for images 1.1 with images)."""
    folder = tmp_path_factory.mktemp("exports")
    return write_cvat_export(folder / "task-1.zip", fish_samples(24, 90), FISH_LABELS)


def test_export_imports_through_fiftyone_with_its_boxes(export, tmp_path):
    info = unpack(export, tmp_path)
    assert info.format == "CVAT for images 1.1" and info.sha256 == file_sha256(export)
    dataset = load_export(info)
    assert len(dataset) == 24
    truth = {s.name: s for s in generate_fish(24, seed=90)}
    for sample in dataset:
        expected = truth[os.path.basename(sample.filepath)]
        boxes = sample.ground_truth.detections if sample.ground_truth else []
        assert len(boxes) == len(expected.objects)
    assert set(dataset.distinct("ground_truth.detections.label")) <= set(FISH_LABELS)


def test_cvat_box_corners_keep_their_fractions_of_a_pixel(tmp_path):
    """FiftyOne's CVAT importer rounds corners to whole pixels: half a pixel a side on a
    10-pixel fish. The export's own corners come through, and a turned box becomes the
    upright box around it."""
    from PIL import Image

    boxes = (
        '<box label="fish" xtl="10.37" ytl="20.71" xbr="19.62" ybr="27.25" occluded="0"/>'
        '<box label="fish" xtl="30" ytl="10" xbr="40" ybr="14" rotation="90" occluded="0"/>'
    )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>'
        f'<image id="0" name="a.png" width="64" height="48">{boxes}</image></annotations>'
    )
    archive = tmp_path / "task.zip"
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 48)).save(image)
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("annotations.xml", xml)
        zipped.write(image, "images/a.png")
    (sample,) = load_export(unpack(archive, tmp_path / "work"), name="fractions")
    straight, turned = sample.ground_truth.detections
    assert straight.bounding_box == pytest.approx(
        [10.37 / 64, 20.71 / 48, 9.25 / 64, 6.54 / 48], abs=1e-9
    )
    assert turned.bounding_box == pytest.approx([33 / 64, 7 / 48, 4 / 64, 10 / 48], abs=1e-9)


@pytest.mark.slow  # FiftyOne or a server: the full tier
def test_polygons_ellipses_and_masks_are_labelled_objects_too(tmp_path, caplog):
    """FiftyOne's importer reads a CVAT for images <box> only: a fish outlined with a
    polygon was not there, and a model's box on it was scored a false positive. Each shape
    with an area becomes the upright box around it; a polyline or points, by count."""
    from PIL import Image

    shapes = (
        '<box label="fish" xtl="1" ytl="2" xbr="11" ybr="12" occluded="0"/>'
        '<polygon label="fish" points="20.5,5;30,8;25,20.25" occluded="0"/>'
        '<ellipse label="fish" cx="50" cy="30" rx="4" ry="2" occluded="0"/>'
        '<mask label="fish" rle="3, 2, 3" left="5" top="30" width="2" height="4" occluded="0"/>'
        '<polyline label="fish" points="1,1;5,5" occluded="0"/>'
    )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>'
        f'<image id="0" name="a.png" width="64" height="48">{shapes}</image>'
        '<image id="1" name="b.png" width="64" height="48">'
        '<polygon label="fish " points="0,0;8,0;8,6" occluded="0"/></image></annotations>'
    )
    archive = tmp_path / "task.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("annotations.xml", xml)
        for name in ("a.png", "b.png"):
            Image.new("RGB", (64, 48)).save(tmp_path / name)
            zipped.write(tmp_path / name, f"images/{name}")
    with caplog.at_level("WARNING", logger="imagine_assist"):
        a, b = load_export(unpack(archive, tmp_path / "work"), name="outlines")
    assert "1 polyline have no area" in caplog.text
    boxes = [d.bounding_box for d in a.ground_truth.detections]
    assert np.asarray(boxes) == pytest.approx(
        np.array([[1, 2, 10, 10], [20.5, 5, 9.5, 15.25], [46, 28, 8, 4], [5, 30, 2, 4]])
        / [64, 48, 64, 48]
    )
    assert [d.bounding_box for d in b.ground_truth.detections] == [[0, 0, 8 / 64, 6 / 48]]
    assert b.ground_truth.detections[0].label == "fish"  # as CVAT keeps it: not a 2nd class


def test_exports_whose_images_share_names_all_reach_the_dataset(tmp_path):
    """Two tasks name their frames alike (CVAT's frame_000000.PNG, a camera's counter):
    every image of both is trained on, each with its own boxes."""
    first = fish_samples(12, 91)
    second = fish_samples(10, 92)
    assert {s.name for s in second} <= {s.name for s in first}  # the same names
    datasets = []
    for index, samples in enumerate((first, second)):
        export = write_cvat_export(tmp_path / f"task-{index}.zip", samples, FISH_LABELS)
        datasets.append(load_export(unpack(export, tmp_path / "work"), name=f"names-{index}"))
    out = tmp_path / "yolo"
    _, counts = build_dataset(datasets, load_recipe("fish"), out)
    images = [p for split in ("train", "val", "test") for p in (out / "images" / split).glob("*")]
    assert len(images) == sum(counts.values()) == 22
    boxes = sum(
        len(path.read_text().splitlines())
        for split in ("train", "val", "test")
        for path in (out / "labels" / split).glob("*.txt")
    )
    assert boxes == sum(len(s.objects) for s in first + second)
    for image in images:  # each image has its own label file
        assert (out / "labels" / image.parent.name / f"{image.stem}.txt").is_file()
    assert not list(out.glob(".part-*"))


def test_split_depends_on_image_content_only(tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(b"the same bytes")
    copy = tmp_path / "elsewhere" / "renamed.jpg"
    copy.parent.mkdir()
    copy.write_bytes(b"the same bytes")
    assert content_split(str(image), 0.15, 0.15) == content_split(str(copy), 0.15, 0.15)
    splits = [content_split(str(image), 0.15, 0.15)]
    for i in range(200):
        other = tmp_path / f"{i}.jpg"
        other.write_bytes(f"image {i}".encode())
        splits.append(content_split(str(other), 0.15, 0.15))
    assert 0.05 < splits.count("test") / len(splits) < 0.3


def test_gate_compares_on_the_same_images():
    deployed = {"mAP50": 0.8, "per_class": {"cod": {"recall": 0.9}, "ling": {"recall": 0.5}}}
    better = {"mAP50": 0.85, "per_class": {"cod": {"recall": 0.88}, "ling": {"recall": 0.6}}}
    worse_class = {"mAP50": 0.9, "per_class": {"cod": {"recall": 0.7}, "ling": {"recall": 0.9}}}
    gate = load_recipe("fish").gate
    assert check_gate(better, deployed, gate)["passed"]
    result = check_gate(worse_class, deployed, gate)
    assert not result["passed"] and "cod recall fell" in result["reasons"][0]
    assert not check_gate({"mAP50": 0.7, "per_class": {}}, deployed, gate)["passed"]


def _registry_state(models):
    return sorted(str(p.relative_to(models)) for p in models.rglob("*")) if models.exists() else []


def test_bad_exports_are_refused_and_change_nothing(tmp_path, capsys):
    models = tmp_path / "models"
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    empty = tmp_path / "empty.zip"
    write_cvat_export(empty, [], FISH_LABELS)
    from imagine_assist.samples import LITTER_CATEGORIES, generate_litter

    wrong = write_cvat_export(
        tmp_path / "litter.zip", generate_litter(1, seed=3), LITTER_CATEGORIES
    )
    not_cvat = tmp_path / "other.zip"
    with zipfile.ZipFile(not_cvat, "w") as archive:
        archive.writestr("readme.txt", "hello")
    expected = {
        corrupt: "not a readable zip",
        empty: "holds no images",
        wrong: "classes are: fish",
        not_cvat: "not an export this tool reads",
    }
    for path, message in expected.items():
        code = main(
            [
                "train",
                "fish",
                "--from",
                str(path),
                "--models",
                str(models),
                "--work",
                str(tmp_path / "work"),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2, err
        assert message in err, err
    assert _registry_state(models) == []


@pytest.mark.slow  # trains
def test_round_trip_export_train_promote_and_serve_the_new_version(export, tmp_path, capsys):
    models = tmp_path / "models"
    gateway = Gateway(build_hosts(["fish-detector"], models), port=0)
    with background_server(gateway) as url:
        before = requests.get(f"{url}/api/healthz", timeout=10).json()
        assert before["models"]["fish-detector"]["version"] == "bundled"
        code = main(
            [
                "train",
                "fish",
                "--from",
                str(export),
                "--models",
                str(models),
                "--work",
                str(tmp_path / "work"),
                "--epochs",
                "1",
                "--force",
                "--gateway",
                url,
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert "promoted v1" in out and "reloaded fish-detector" in out
        after = requests.get(f"{url}/api/healthz", timeout=10).json()
        assert after["models"]["fish-detector"]["version"] == "v1"
        image = next(iter(generate_fish(1, seed=91))).image
        response = requests.post(
            f"{url}/api/function_invocations",
            json={"image": b64(image), "threshold": 0.1},
            headers=invoke_headers("fish-detector"),
            timeout=60,
        )
        assert response.status_code == 200 and isinstance(response.json(), list)
    registry = Registry(models)
    card = registry.current("fish").card
    assert card["data"]["exports"][0]["sha256"] == file_sha256(export)
    assert card["data"]["split"]["train"] > 0 and card["metrics"]["deployed_version"] == "bundled"
    # the bundled model was evaluated as the live one: nothing was written inside the package
    from imagine_assist.models.store import BUNDLED_DIR

    assert sorted(p.name for p in BUNDLED_DIR.iterdir()) == ["burrow", "fish", "litter", "plankton"]
    assert card["code_version"].startswith("0.")
    assert card["promotions"][0]["forced"] == (not card["gate"]["passed"])
    assert main(["models", "list", "fish", "--models", str(models)]) == 0
    assert "* v1" in capsys.readouterr().out


@pytest.mark.slow  # trains
def test_killing_a_training_run_leaves_the_registry_as_it_was(export, tmp_path):
    models = tmp_path / "models"
    registry = Registry(models)
    good = tiny_onnx(tmp_path / "good.onnx", "the last good model")
    registry.add(
        "fish",
        {"model.onnx": good},
        {"classes": ["fish"], "metrics": "good"},
    )
    registry.promote("fish", "v1", "the last good model")
    before = _registry_state(models)
    work = tmp_path / "work"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagine_assist.app.main",
            "train",
            "fish",
            "--from",
            str(export),
            "--models",
            str(models),
            "--work",
            str(work),
            "--epochs",
            "50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    # killed mid-training: at the first checkpoint (ultralytics' or the CenterNet trainer's)
    while not list(work.glob("train/**/*.pt")):
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert _registry_state(models) == before
    assert registry.current("fish").name == "v1"
    assert json.loads((models / "fish" / "versions" / "v1" / "card.json").read_text())["metrics"]


@pytest.mark.parametrize("layout", ["COCO 1.0", "Ultralytics YOLO Detection 1.0"])
def test_coco_and_yolo_exports_import_with_the_same_boxes(export, tmp_path, layout, monkeypatch):
    fo = fiftyone()
    source = load_export(unpack(export, tmp_path / "source"), name=f"source-{layout[:4]}")
    folder = tmp_path / "layout"
    # two of a task's subsets, as CVAT names them: only the first file or a fixed list of
    # split names was read, and the other subset was left out without a word
    for subset, view in (("Train", source[:14]), ("Test", source[14:])):
        if layout == "COCO 1.0":  # instances_<subset>.json, images/<subset>/
            view.export(
                dataset_type=fo.types.COCODetectionDataset,
                data_path=str(folder / "images" / subset),
                labels_path=str(folder / "annotations" / f"instances_{subset}.json"),
                label_field="ground_truth",
                classes=FISH_LABELS,
            )
        else:  # data.yaml, images/<subset>, labels/<subset>
            view.export(
                export_dir=str(folder),
                dataset_type=fo.types.YOLOv5Dataset,
                label_field="ground_truth",
                split=subset,
                classes=FISH_LABELS,
                yaml_path="data.yaml",
            )
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in folder.rglob("*"):
            if path.is_file():
                zipped.write(path, path.relative_to(folder))
    monkeypatch.chdir(tmp_path)  # a relative work folder, as `publish card --out pub` gives
    info = unpack(archive, Path("unpacked"))
    assert info.format == layout
    dataset = load_export(info)
    assert len(dataset) == len(source)
    assert dataset.count("ground_truth.detections") == source.count("ground_truth.detections")
    assert set(dataset.distinct("ground_truth.detections.label")) == set(FISH_LABELS)


@pytest.mark.slow  # FiftyOne or a server: the full tier
def test_a_yolo_export_whose_data_yaml_names_its_folders_elsewhere_is_read(tmp_path):
    """`path: sub` and `train: images`, as Ultralytics reads them: only folders under the
    export's own images/ were read, and such an export loaded nothing."""
    from PIL import Image

    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data.yaml", "path: sub\ntrain: images\nnames: [fish]\n")
        for index in range(3):
            Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "a.png")
            zipped.write(tmp_path / "a.png", f"sub/images/a{index}.png")
            zipped.writestr(f"sub/labels/a{index}.txt", "0 0.5 0.5 0.2 0.2\n")
    dataset = load_export(unpack(archive, tmp_path / "work"), name="yaml-folders")
    assert len(dataset) == 3 and dataset.count("ground_truth.detections") == 3


def test_a_video_export_without_frames_gets_advice(tmp_path):
    archive = tmp_path / "video.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(
            "annotations.xml", '<annotations><track id="0" label="fish"/></annotations>'
        )
    info = unpack(archive, tmp_path)
    assert info.format == "CVAT for video 1.1"
    with pytest.raises(UserError, match="'Save images'"):
        load_export(info)


@pytest.fixture(scope="module")
def tow_export(tmp_path_factory):
    """A corrected Nephrops tow as CVAT exports a video task with a frame step of 10:
    40 s of video, 100 task frames, tracks with their burrow systems."""
    tow = generate_tow(40, seed=31, density_per_m2=1.2)
    folder = tmp_path_factory.mktemp("tow-export")
    return tow, write_cvat_video_export(folder / "tow-7.zip", tow, frame_step=10, task_name="tow 7")


def test_video_export_frames_carry_the_tracks_boxes_and_stretches_share_a_split(
    tow_export, tmp_path
):
    tow, export = tow_export
    dataset = load_export(unpack(export, tmp_path))
    frame_of = {sample.id: int(Path(sample.filepath).stem.split("_")[1]) for sample in dataset}
    # CVAT numbers a video task's frames as in the video: 0, 10, 20, ... at a step of 10
    assert sorted(frame_of.values()) == list(range(0, 1000, 10))
    found = {frame_of[s.id]: len(s.ground_truth.detections) for s in dataset}
    assert found == {index: len(tow.frame(index).objects) for index in range(0, 1000, 10)}
    assert sum(found.values()) > 20
    first = next(s for s in dataset if s.ground_truth.detections)
    x1, y1, x2, y2 = tow.frame(frame_of[first.id]).objects[0].xyxy
    width, height = tow.geometry.width, tow.geometry.height
    box = first.ground_truth.detections[0].bounding_box
    assert box == pytest.approx([x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height])
    # a stretch of 100 video frames (4 s) goes to one split whole
    _, counts = build_dataset([dataset], load_recipe("burrow"), tmp_path / "yolo")
    splits = {}
    for split in ("train", "val", "test"):
        for image in (tmp_path / "yolo" / "images" / split).glob("*"):
            splits[int(image.stem.split("_")[1])] = split
    assert len(splits) == 100 and counts["train"] > 0
    for start in range(0, 1000, 100):
        assert len({splits[frame] for frame in range(start, start + 100, 10)}) == 1


def test_cvat_shapes_become_the_boxes_around_them():
    def shape(tag, **attributes):
        return ET.Element(tag, {key: str(value) for key, value in attributes.items()})

    turned = shape("box", xtl=10, ytl=20, xbr=50, ybr=24, rotation=90)  # 40 x 4, turned
    assert shape_bounds(turned) == pytest.approx((28, 2, 32, 42))
    assert shape_bounds(shape("polygon", points="1,5;9,2;4,8")) == (1, 2, 9, 8)
    ellipse = shape("ellipse", cx=50, cy=50, rx=20, ry=5, rotation=90)
    assert shape_bounds(ellipse) == pytest.approx((45, 30, 55, 70))
    assert shape_bounds(shape("mask", left=3, top=4, width=10, height=20, rle="1")) == (
        3,
        4,
        13,
        24,
    )
    assert shape_bounds(shape("polyline", points="1,1;5,5")) is None


def test_long_video_meta_and_project_exports(tmp_path):
    segments = "".join(f"<segment><id>{i}</id><start>{i}</start></segment>" for i in range(900))
    xml = (
        f"<annotations><meta><task><name>tow 9</name><mode>interpolation</mode>"
        f"<segments>{segments}</segments></task></meta>"
        '<track id="0" label="burrow"><box frame="0" outside="0" xtl="1" ytl="1" xbr="9" '
        'ybr="9"/></track></annotations>'
    )
    assert xml.index("<track ") > 20000
    long_export = tmp_path / "long.zip"
    with zipfile.ZipFile(long_export, "w") as zipped:
        zipped.writestr("annotations.xml", xml)
    assert unpack(long_export, tmp_path / "a").format == "CVAT for video 1.1"
    project = tmp_path / "project.zip"
    with zipfile.ZipFile(project, "w") as zipped:
        zipped.writestr(
            "annotations.xml",
            xml.replace("<meta><task>", "<meta><project>").replace(
                "</task></meta>", "</project></meta>"
            ),
        )
        zipped.writestr("images/Train/frame_000000.PNG", b"")
    with pytest.raises(UserError, match="export each video task on its own"):
        load_export(unpack(project, tmp_path / "b"))


def test_a_tow_export_retrains_the_burrow_detector(tow_export, tmp_path, capsys):
    _, export = tow_export
    argv = ["train", "burrow", "--from", str(export), "--models", str(tmp_path / "models")]
    assert main([*argv, "--work", str(tmp_path / "work"), "--epochs", "1", "--force"]) == 0
    card = Registry(tmp_path / "models").current("burrow").card
    assert card["data"]["exports"][0]["format"] == "CVAT for video 1.1"
    assert sum(card["data"]["split"].values()) == 100


@pytest.mark.slow  # FiftyOne: the full tier
def test_two_runs_reading_one_export_each_keep_their_own_dataset(tmp_path, home):
    """Two trainings in their own work folders read one export under one dataset name, and
    each deleted the other's: "export.zip holds no images" for a valid export."""
    from imagine_assist.training.exports import load_export, unpack

    export = write_cvat_export(tmp_path / "task.zip", fish_samples(4, 98), FISH_LABELS)
    first = load_export(unpack(export, tmp_path / "w1"))
    second = load_export(unpack(export, tmp_path / "w2"))
    try:
        assert first.name != second.name
        assert len(first) == len(second) == 4
    finally:
        first.delete()
        second.delete()
