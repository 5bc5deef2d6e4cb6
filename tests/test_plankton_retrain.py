"""`imagine-assist train plankton --from`: the separator retrained from organisms corrected in
CVAT (mask exports), gated on held-out vignettes, versioned and promoted."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from imagine_assist.app.main import main
from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import load_function
from imagine_assist.images import read_image
from imagine_assist.models.plankton import load_separator
from imagine_assist.models.registry import Registry
from imagine_assist.models.scale_bar import scale_bar_rows
from imagine_assist.models.store import live_model
from imagine_assist.samples import generate_plankton, write_cvat_export
from imagine_assist.samples.plankton import PLANKTON_LABELS
from imagine_assist.training.plankton_retrain import (
    SeparatorRetrainRecipe,
    build_dataset,
    check_gate,
    separation_f1,
)


def mask_export(path, samples):
    return write_cvat_export(path, samples, PLANKTON_LABELS, masks=True)


def label_rows(dataset, split):
    return {
        p.stem: len([line for line in p.read_text().splitlines() if line.strip()])
        for p in (dataset / "labels" / split).glob("*.txt")
    }


def test_each_corrected_organism_becomes_one_outline_of_the_cut_vignette(tmp_path):
    samples = list(generate_plankton(20, seed=41, max_size=300))
    untouched = dataclasses.replace(samples[0], name="untouched.png", objects=[])
    export = mask_export(tmp_path / "e.zip", [*samples, untouched])
    recipe = SeparatorRetrainRecipe(val_share=0.2, test_share=0.2)
    counts, held_out, calibration = build_dataset(
        [export], [], tmp_path / "ds", recipe, tmp_path / "work"
    )
    assert counts["train"] + counts["val"] + counts["test"] == 20  # the untouched one: out
    assert counts["train"] and counts["left_out"] == []
    drawn = sorted(len(s.objects) for s in samples)
    written = sorted(
        n for split in ("train", "val", "test") for n in label_rows(tmp_path / "ds", split).values()
    )
    assert written == drawn
    # the scale bar is cut as the served function cuts it, masks with it
    heights = sorted(s.image.shape[0] - scale_bar_rows(s.image) for s in samples)
    images = sorted((tmp_path / "ds" / "images").glob("*/*.jpg"))
    assert sorted(read_image(p).shape[0] for p in images) == heights
    assert len(held_out.images) == counts["test"] and calibration
    for path, organisms in zip(held_out.images, held_out.organisms, strict=True):
        assert all(o.full(read_image(path).shape[:2]).any() for o in organisms)


def test_a_fixed_validation_export_never_trains_and_a_later_export_wins(tmp_path):
    samples = list(generate_plankton(16, seed=42, max_size=300))
    val = mask_export(tmp_path / "val.zip", samples[:4])
    first = mask_export(tmp_path / "first.zip", samples[:10])
    # the same vignettes corrected again: their last organism removed
    corrected = [
        dataclasses.replace(s, objects=s.objects[:-1]) if len(s.objects) > 1 else s
        for s in samples[4:10]
    ]
    later = mask_export(tmp_path / "later.zip", [*corrected, *samples[10:]])
    counts, held_out, _ = build_dataset(
        [first, later], [val], tmp_path / "ds", SeparatorRetrainRecipe(), tmp_path / "work"
    )
    assert counts["test"] == 4 == len(held_out.images)  # exactly the --val vignettes
    assert counts["train"] + counts["val"] == 12  # each vignette once
    rows = {**label_rows(tmp_path / "ds", "train"), **label_rows(tmp_path / "ds", "val")}
    assert sorted(rows.values()) == sorted(len(s.objects) for s in [*corrected, *samples[10:]])


def test_exports_without_drawn_organisms_are_refused(tmp_path):
    samples = list(generate_plankton(6, seed=43, max_size=300))
    boxes = write_cvat_export(tmp_path / "boxes.zip", samples, PLANKTON_LABELS)
    with pytest.raises(UserError, match="too few vignettes with drawn organisms"):
        build_dataset([boxes], [], tmp_path / "ds", SeparatorRetrainRecipe(), tmp_path / "w")


def test_the_gate_needs_enough_held_out_organisms_and_a_better_f1():
    recipe = SeparatorRetrainRecipe(min_heldout_organisms=30, min_f1_gain=0.0)
    few = check_gate({"f1": 0.9}, {"f1": 0.5}, recipe, drawn=29)
    assert few["decided"] is False and not few["passed"]
    assert not check_gate({"f1": 0.8}, {"f1": 0.8}, recipe, drawn=30)["passed"]  # a tie
    assert check_gate({"f1": 0.81}, {"f1": 0.8}, recipe, drawn=30)["passed"]
    assert check_gate({"f1": 0.1}, None, recipe, drawn=30)["passed"]  # nothing live


@pytest.mark.slow
def test_train_plankton_from_a_mask_export(tmp_path, home, capsys):
    samples = list(generate_plankton(40, seed=44, max_size=300))
    export = mask_export(tmp_path / "task.zip", samples)
    models = tmp_path / "models"
    argv = ["train", "plankton", "--from", str(export), "--models", str(models)]
    argv += ["--work", str(tmp_path / "work"), "--epochs", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    registry = Registry(models)
    (v1,) = registry.versions("plankton")
    card = v1.card
    held = card["evaluated_on"]
    # 40 vignettes hold out too few organisms to decide: kept, not promoted
    assert held["organisms"] < 30 and card["gate"]["decided"] is False
    assert registry.current("plankton") is None and "not enough held-out data" in out
    assert f"separator F1 {card['metrics']['candidate']['f1']:.3f}" in out
    assert live_model("plankton", models, name="separator").source == "bundled"

    # --force promotes; the served function now cuts with the new separator, the
    # classifier stays the bundled one
    assert main([*argv, "--force"]) == 0
    v2 = registry.current("plankton")
    assert v2.name == "v2" and (v2.path / "separator.onnx").is_file()
    assert live_model("plankton", models, name="separator").path == v2.file("separator.onnx")
    assert live_model("plankton", models, name="classifier").source == "bundled"
    function = load_function("plankton-separator", models_dir=models)
    new = load_separator(v2.file("separator.onnx"))
    image = samples[0].image
    served = function.split(image)
    cut = image[: image.shape[0] - scale_bar_rows(image)]
    expected = new(cut)
    assert len(served.masks) == len(expected)
    for got, want in zip(served.masks, expected, strict=True):
        np.testing.assert_array_equal(got.full(cut.shape[:2]), want.full(cut.shape[:2]))
    # the card's figure is the separator's on the held-out vignettes, recomputed
    card = v2.card
    images = sorted((tmp_path / "work" / "dataset" / "images" / "test").glob("*.jpg"))
    assert card["evaluated_on"]["vignettes"] == len(images) > 0
    assert card["data"]["exports"][0]["sha256"] and card["classes"] == ["organism"]
    assert json.loads((v2.path / "card.json").read_text())["gate"] == card["gate"]
    assert card["metrics"]["deployed_version"] == "bundled"
    assert 0.0 <= card["metrics"]["candidate"]["f1"] <= 1.0
    capsys.readouterr()
    assert main(["models", "list", "plankton", "--models", str(models)]) == 0
    listed = capsys.readouterr().out
    assert f"* v2  F1 {card['metrics']['candidate']['f1']:.3f}  gate undecided" in listed


def test_plankton_refuses_a_label_map(tmp_path, home):
    samples = list(generate_plankton(2, seed=45, max_size=300))
    export = mask_export(tmp_path / "task.zip", samples)
    argv = ["train", "plankton", "--from", str(export), "--map", "blob=organism"]
    assert main(argv) == 2


def test_separation_f1_scores_the_served_separator(tmp_path):
    samples = list(generate_plankton(12, seed=46, max_size=300))
    export = mask_export(tmp_path / "e.zip", samples)
    _, held_out, _ = build_dataset(
        [export], [], tmp_path / "ds", SeparatorRetrainRecipe(test_share=0.5), tmp_path / "w"
    )
    bundled = live_model("plankton", tmp_path / "none", name="separator").path
    facts = separation_f1(bundled, held_out)
    assert facts["vignettes"] == len(held_out.images) and facts["organisms"] == held_out.drawn
    separator = load_separator(bundled)
    tp = 0
    for path, organisms in zip(held_out.images, held_out.organisms, strict=True):
        image = read_image(path)
        predicted = [p.full(image.shape[:2]) for p in separator(image)]
        truth = [o.full(image.shape[:2]) for o in organisms]
        for t in truth:  # a true organism matched at IoU 0.5 by one prediction
            ious = [np.logical_and(p, t).sum() / np.logical_or(p, t).sum() for p in predicted]
            tp += max(ious, default=0) >= 0.5
    assert facts["recall"] == pytest.approx(tp / held_out.drawn)


def test_the_cvat_loop_points_plankton_to_train_from(home, capsys):
    # refused before any CVAT server is asked (this port has none)
    assert main(["loop", "plankton", "--cvat", "http://127.0.0.1:9", "--task", "1"]) == 2
    assert "imagine-assist train plankton --from" in capsys.readouterr().err
