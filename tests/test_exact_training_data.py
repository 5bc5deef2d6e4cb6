"""`train --from` trains on exactly the exports it names: two runs in one home, the second on
a corrected export, each version's card against ultralytics' own label cache, and boxes a
person deleted gone from the second run's dataset."""

from __future__ import annotations

import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from ultralytics.data.utils import load_dataset_cache_file

from imagine_assist.app.main import main
from imagine_assist.checksums import file_sha256
from imagine_assist.models.registry import Registry
from imagine_assist.samples import generate_fish, with_labels, write_cvat_export

pytestmark = pytest.mark.slow  # trains twice, one epoch each

LABELS = ["swimmer"]
SPLITS = ("train", "val", "test")
FAMILY = """\
name: reef
labels: [swimmer]
functions:
  - kind: detector
training:
  start_from: scratch
  architecture: yolov8n.yaml
  imgsz: 160
  epochs: 1
  batch: 8
  split: {val: 0.25, test: 0.25}
  gate: {min_heldout_boxes: 0}
"""


@pytest.fixture
def home(home):
    (home / "families" / "reef.yaml").write_text(FAMILY)
    return home


def swimmers(n: int, seed: int) -> list:
    return list(with_labels(generate_fish(n, seed=seed), lambda _: "swimmer"))


def train(models: Path, export: Path) -> dict:
    code = main(["train", "reef", "--from", str(export), "--models", str(models)])
    assert code == 0
    return Registry(models).versions("reef")[-1].card


def trainer_read(dataset: Path) -> dict:
    """Images and boxes per split in ultralytics' label caches, each cache checked against
    the images on disk."""
    images, boxes = dict.fromkeys(SPLITS, 0), dict.fromkeys(SPLITS, 0)
    for split in SPLITS:
        on_disk = sorted(path.name for path in (dataset / "images" / split).glob("*"))
        if not on_disk:
            continue
        labels = load_dataset_cache_file(dataset / "labels" / f"{split}.cache")["labels"]
        assert sorted(Path(label["im_file"]).name for label in labels) == on_disk
        images[split] = len(labels)
        boxes[split] = sum(len(label["cls"]) for label in labels)
    return {"images": images, "boxes": boxes}


def check_card(card: dict, read: dict, samples: list) -> None:
    images, boxes = read["images"], read["boxes"]
    # what the trainer read is the named export, whole, and nothing else
    assert sum(images.values()) == len(samples)
    assert sum(boxes.values()) == sum(len(sample.objects) for sample in samples)
    assert card["data"]["split"] == images
    split = card["evaluated_on"]["split"]
    assert card["evaluated_on"]["images"] == images[split]
    assert card["data"]["boxes"] == boxes
    assert card["evaluated_on"]["boxes"] == boxes[split]


def test_each_run_trains_on_exactly_its_exports(home, tmp_path):
    models, run = tmp_path / "models", home / "runs" / "reef-retrain"
    task_a = swimmers(16, seed=101)
    export_a = write_cvat_export(tmp_path / "task-a.zip", task_a, LABELS)
    card_a = train(models, export_a)
    read_a = trainer_read(run / "dataset")

    # The corrected export: four of task-a's images with every box deleted (the same bytes,
    # so the same names and splits), and twelve new images, some named as task-a's others.
    emptied = [replace(sample, objects=[]) for sample in task_a[:4]]
    task_b = emptied + swimmers(16, seed=202)[4:]
    export_b = write_cvat_export(tmp_path / "task-b.zip", task_b, LABELS)
    card_b = train(models, export_b)
    read_b = trainer_read(run / "dataset")

    with zipfile.ZipFile(export_b) as archive:
        archive.extractall(tmp_path / "task-b")
    deleted = {file_sha256(tmp_path / "task-b" / "images" / s.name) for s in emptied}
    dataset = run / "dataset"
    negatives = [
        dataset / "labels" / image.parent.name / f"{image.stem}.txt"
        for image in sorted((dataset / "images").rglob("*.jpg"))
        if file_sha256(image) in deleted
    ]
    assert len(negatives) == len(emptied)  # each once, with no copy left from task-a
    for label in negatives:
        assert label.is_file() and not label.read_text().strip(), label

    check_card(card_b, read_b, task_b)
    check_card(card_a, read_a, task_a)
    assert not list((run / "exports").glob("export-*"))  # the unpacked exports are removed
