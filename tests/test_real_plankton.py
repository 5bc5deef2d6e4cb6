"""Training material from real vignettes (issue 14): organisms cut out of singles, composed
into multiples with exact masks, and the hand labels that split train from test. Generated
vignettes stand in for real ones here: their masks are known."""

import cv2
import numpy as np
import pytest
from PIL import Image

from imagine_assist.models.separate import crop_scale_bar
from imagine_assist.samples import generate_plankton
from imagine_assist.samples.real_plankton import (
    cut_organism,
    fibre,
    load_organisms,
    organism_split,
    real_composite_sample,
    real_single_sample,
)
from imagine_assist.training.plankton_real import HandLabels, tag_scores


@pytest.fixture(scope="module")
def singles():
    return [s for s in generate_plankton(40, seed=21, multiple_share=0.0) if len(s.objects) == 1]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def test_a_cut_out_is_the_organism_with_its_appendages(singles):
    checked = 0
    for sample in singles:
        organism = cut_organism(sample.image)
        if organism is None:
            continue
        truth = sample.objects[0].mask[: sample.image.shape[0] - sample.scale_bar_rows]
        ys, xs = np.nonzero(truth)
        box = truth[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        cut = organism.support[2:-2, 2:-2]  # the cut-out keeps a 2 px clear rim
        assert cut.shape == box.shape or abs(cut.shape[0] - box.shape[0]) <= 2
        h, w = min(cut.shape[0], box.shape[0]), min(cut.shape[1], box.shape[1])
        assert iou(cut[:h, :w], box[:h, :w]) > 0.75
        assert organism.alpha[~organism.support].max(initial=0) == 0  # clear outside
        checked += 1
    assert checked >= 0.8 * len(singles)


def test_an_organism_cut_by_the_vignette_edge_is_left_out(singles):
    image = crop_scale_bar(singles[0].image, singles[0].scale_bar_rows)
    ys, xs = np.nonzero(singles[0].objects[0].mask)
    cut_through = image[:, : (xs.min() + xs.max()) // 2]  # the organism runs off the edge
    assert cut_organism(cut_through) is None
    assert cut_organism(np.full((80, 80, 3), 250, np.uint8)) is None  # nothing there


def test_composites_of_real_organisms_have_exact_disjoint_masks(singles):
    organisms = [o for o in (cut_organism(s.image) for s in singles) if o is not None]
    multiples = 0
    for index in range(12):
        sample = real_composite_sample(5, index, organisms, multiple_share=0.7)
        masks = [obj.mask for obj in sample.objects]
        assert sample.multiple == (len(masks) >= 2)
        multiples += sample.multiple
        total = np.sum(masks, axis=0)
        assert total.max() == 1  # each pixel belongs to one organism at most
        grey = sample.image[..., 0].astype(int)
        strip = sample.image.shape[0] - sample.scale_bar_rows
        background = np.median(grey[:strip][total[:strip] == 0])
        assert (grey[:strip][total[:strip] == 1] < background - 3).mean() > 0.9  # darkened
        for obj in sample.objects:  # boxes are the masks' exact boxes
            ys, xs = np.nonzero(obj.mask)
            assert obj.xyxy == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert multiples >= 5
    again = real_composite_sample(5, 3, organisms, multiple_share=0.7)
    assert np.array_equal(again.image, real_composite_sample(5, 3, organisms, 0.7).image)


def test_fibre_partners_are_thin_strokes_touching_the_organism_with_their_own_mask(singles):
    """An organism with a fibre stuck to it is the commonest real multiple: the fibre is a
    thin stroke, its own object, touching the organism."""
    organisms = [o for o in (cut_organism(s.image) for s in singles) if o is not None]
    fibres = 0
    for index in range(16):
        sample = real_composite_sample(
            9, index, organisms, 1.0, small_partner_share=0.0, fibre_partner_share=1.0
        )
        assert len(sample.objects) >= 2 and sample.multiple
        for kind, obj in zip(sample.kinds, sample.objects, strict=True):
            if kind != "fibre":
                continue
            fibres += 1
            grown = cv2.dilate(obj.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            others = np.any([o.mask for o in sample.objects if o is not obj], axis=0)
            assert (grown & others).any()  # it touches another organism
    assert fibres >= 16
    rng = np.random.default_rng(0)
    for _ in range(5):
        stroke = fibre(rng, length=200.0, width=6.0)
        thickness = 2 * cv2.distanceTransform(stroke.support.astype(np.uint8), cv2.DIST_L2, 3)
        assert 4 <= thickness.max() <= 12  # about the width asked for
        assert max(stroke.support.shape) > 100  # long, however it curls
        assert stroke.alpha[~stroke.support].max(initial=0) == 0
    plain = real_composite_sample(9, 0, organisms, 1.0, small_partner_share=0.0)
    assert "fibre" not in plain.kinds  # no fibres unless asked for


def test_a_real_single_is_one_object_and_loads_from_a_folder(singles, tmp_path):
    for index, sample in enumerate(singles[:3]):
        Image.fromarray(sample.image).save(tmp_path / f"v{index}.png")
    loaded = load_organisms(str(tmp_path), ("v0.png", "v1.png", "v2.png", "missing.png"))
    assert 1 <= len(loaded) <= 3 and {o.kind for o in loaded} <= {"v0", "v1", "v2"}
    single = real_single_sample(tmp_path / "v0.png", "train")
    assert not single.multiple and len(single.objects) == 1
    assert single.scale_bar_rows > 0  # the strip was found, not assumed
    assert not single.objects[0].mask[-single.scale_bar_rows :].any()


def test_hand_labels_keep_the_test_vignettes_out_of_training(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "vignette,label,in_sample_of_100\n"
        "a.png,single,yes\nb.png,single,no\nc.png,multiple,no\nd.png,unclear,no\n"
        "e.png,single,no\nf.png,multiple,yes\n"
    )
    hand = HandLabels.read(labels)
    assert hand.training_singles() == ("b.png", "e.png")
    assert hand.test_vignettes() == ("a.png", "c.png", "d.png", "f.png")
    assert not set(hand.training_singles()) & set(hand.test_vignettes())
    assert {organism_split(f"{i:04d}") for i in range(200)} == {"train", "held_out"}


def test_tag_scores_leave_unclear_vignettes_out():
    labels = {"a": "single", "b": "multiple", "c": "multiple", "d": "unclear", "e": "single"}
    calls = {"a": ("multiple", 2), "b": ("multiple", 2), "c": ("single", 1)}
    calls |= {"d": ("multiple", 3), "e": ("single", 1)}
    scores = tag_scores(calls, labels)
    assert scores["vignettes"] == 4 and scores["multiples"] == 2
    assert scores["recall_multiple"] == 0.5 and scores["precision_multiple"] == 0.5
    assert scores["singles_cut_apart"] == 1 and scores["false_multiples"] == ["a"]
    assert scores["missed_multiples"] == ["c"]


def test_the_classifier_carries_its_own_threshold(tmp_path):
    """The threshold a classifier was validated with is written into its ONNX file and
    is the one the served function uses."""
    import shutil

    from imagine_assist.functions.catalog import load_function
    from imagine_assist.models.plankton import MULTIPLE_THRESHOLD, load_classifier
    from imagine_assist.models.store import BUNDLED_DIR
    from imagine_assist.models.vignette_classifier import write_threshold

    bundled = BUNDLED_DIR / "plankton"
    for name in ("separator.onnx", "classifier.onnx"):
        shutil.copyfile(bundled / name, tmp_path / name)
    before = load_classifier(tmp_path / "classifier.onnx").multiple_threshold
    assert before == MULTIPLE_THRESHOLD or 0 < before < 1
    write_threshold(tmp_path / "classifier.onnx", 0.83)
    assert load_classifier(tmp_path / "classifier.onnx").multiple_threshold == 0.83
    function = load_function("plankton-separator", weights=tmp_path / "separator.onnx")
    assert function.multiple_threshold == 0.83
    with pytest.raises(ValueError):
        write_threshold(tmp_path / "classifier.onnx", 1.5)
