"""The real-frame fish recipe's data plumbing, on generated stand-ins for DeepFish and
Fish4Knowledge (the real sets are not part of the repository and tests never need them)."""

import numpy as np
import pytest
from PIL import Image

from imagine_assist.training.camera_effects import EFFECTS, degrade
from imagine_assist.training.real_fish import RealFishRecipe, build_datasets, evenly_spaced


def _frame(folder, name, picture_rows=(80, 280), box=(100, 150, 60, 40)):
    """A 360x360 letterboxed frame (black bars above and below) with one fish-like box,
    its YOLO label in full-frame coordinates as DeepFish gives them."""
    image = np.zeros((360, 360, 3), np.uint8)
    top, bottom = picture_rows
    image[top:bottom] = (40, 110, 120)
    x, y, w, h = box
    image[y : y + h, x : x + w] = 200
    Image.fromarray(image).save(folder / "images" / f"{name}.jpg", quality=95)
    label = f"3 {(x + w / 2) / 360} {(y + h / 2) / 360} {w / 360} {h / 360}\n"
    (folder / "labels" / f"{name}.txt").write_text(label)


@pytest.fixture
def real_like(tmp_path):
    root = tmp_path / "fish"
    for sub in ("deepfish", "fish4knowledge/train", "fish4knowledge/valid"):
        (root / sub / "images").mkdir(parents=True)
        (root / sub / "labels").mkdir(parents=True)
    for habitat in ("7117", "7398", "9866", "9908"):
        for index in range(3):
            _frame(root / "deepfish", f"{habitat}_F1_f{index:06d}_jpg.rf.x")
    for split in ("train", "valid"):
        for index in range(2):
            _frame(root / "fish4knowledge" / split, f"f4k_{index}", picture_rows=(0, 360))
    return root


def test_held_out_habitats_never_train_and_boxes_follow_the_picture(real_like, tmp_path):
    recipe = RealFishRecipe(
        held_out_habitats=("7398", "9866"),
        deepfish_per_habitat=1000,
        f4k_every=1,
        degrade_chance=0.0,
    )
    out = tmp_path / "dataset"
    lineage = build_datasets(real_like, out, recipe)
    train = {p.name.split("_")[0] for p in (out / "train" / "images").iterdir()}
    test = {p.name.split("_")[0] for p in (out / "test-deepfish" / "images").iterdir()}
    assert test == {"7398", "9866"} and not test & train
    assert lineage["train"]["deepfish_habitats"] == ["7117", "9908"]
    assert lineage["train"]["images"] == 6 + 2 and lineage["val"]["images"] == 2
    # the bars are cut away: the picture is 360x200, the box moved up by the 80-row bar
    sample = out / "train" / "images" / "7117_F1_f000000_jpg.rf.x.jpg"
    assert Image.open(sample).size == (360, 200)
    cls, cx, cy, w, h = map(float, (out / "train" / "labels" / sample.with_suffix(".txt").name)
                            .read_text().split())  # fmt: skip
    assert cls == 0  # one class: fish
    assert (cx * 360, cy * 200, w * 360, h * 200) == pytest.approx((130, 90, 60, 40), abs=0.5)
    # a dataset is rebuilt from scratch: nothing of an earlier one survives
    (out / "train" / "images" / "stale.jpg").write_bytes(b"x")
    build_datasets(real_like, out, recipe)
    assert not (out / "train" / "images" / "stale.jpg").exists()


def test_a_habitat_keeps_at_most_its_share_spread_over_all_its_frames():
    frames = list(range(10))
    assert evenly_spaced(frames, 4) == [0, 3, 6, 9]
    assert evenly_spaced(frames, 10) == frames and evenly_spaced(frames, 50) == frames
    assert evenly_spaced(frames, 1) == [0] and evenly_spaced(frames, 0) == []


def test_camera_effects_keep_the_frame_and_change_its_look():
    rng = np.random.default_rng(0)
    image = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for effect in EFFECTS:
        source = image if effect.__name__ == "compression" else image.astype(np.float32)
        out = np.clip(effect(source, rng), 0, 255)
        assert out.shape == image.shape, effect.__name__
        assert np.abs(out.astype(float) - image).mean() > 1, effect.__name__
    assert degrade(image, rng, chance=0.0).tolist() == image.tolist()
    changed = degrade(image, rng, chance=1.0)
    assert changed.dtype == np.uint8 and changed.shape == image.shape
