"""`imagine-assist evaluate`: AP checked by hand on a tiny case, the command on a YOLO folder
and on a CVAT export, and one-line errors for what it cannot read."""

import json
import zipfile

import numpy as np
import pytest
import supervision as sv
from PIL import Image

from imagine_assist.app.evaluate import summary_lines
from imagine_assist.app.main import main
from imagine_assist.errors import UserError
from imagine_assist.families import get_family
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.functions.spec import FunctionSpec, LabelSpec
from imagine_assist.review.evaluate import evaluate_function
from imagine_assist.samples import FISH_SPECIES, generate_fish, write_cvat_export, write_dataset

from .fish_tasks import FISH_LABELS, fish_samples

SIZE = 100
# image (its grey level tells the stub which it is) -> (labelled boxes, predicted (box, confidence))
CASE = {
    "a": (10, [(10, 10, 40, 40), (60, 60, 90, 90)], [((10, 10, 40, 40), 0.9)]),
    "b": (60, [(20, 20, 50, 50)], [((20, 20, 50, 50), 0.7)]),
    "c": (110, [], [((5, 5, 30, 30), 0.8)]),
    "d": (160, [], [((50, 50, 80, 80), 0.3)]),
}


def fish_at_or_above(scored, threshold) -> sv.Detections:
    """The (box, score) pairs at `threshold` or above, as a detector's `fish`."""
    kept = [(box, score) for box, score in scored if score >= threshold]
    return sv.Detections(
        xyxy=np.array([box for box, _ in kept], dtype=np.float32).reshape(-1, 4),
        confidence=np.array([score for _, score in kept], dtype=np.float32),
        class_id=np.zeros(len(kept), dtype=int),
        data={"class_name": np.array(["fish"] * len(kept))},
    )


class StubDetector:
    """Fixed boxes per image, found by the image's grey level."""

    class_names = ["fish"]
    input_size = SIZE

    def __call__(self, image, threshold):
        level = int(image[0, 0, 0])
        _, _, predicted = next(v for v in CASE.values() if abs(v[0] - level) < 5)
        return fish_at_or_above(predicted, threshold)


def stub_function(threshold=0.75):
    spec = FunctionSpec(
        id="stub-detector",
        name="stub",
        kind="detector",
        family="fish",
        description="fixed boxes",
        labels=(LabelSpec(0, "fish"),),
        default_threshold=threshold,
    )
    return DetectorFunction(spec, StubDetector())


def write_case(root):
    """images/ and labels/ side by side, no data.yaml: class 0 is the function's first label."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name, (level, truth, _) in CASE.items():
        Image.fromarray(np.full((SIZE, SIZE, 3), level, np.uint8)).save(root / f"images/{name}.png")
        lines = [
            f"0 {(x1 + x2) / 2 / SIZE} {(y1 + y2) / 2 / SIZE} {(x2 - x1) / SIZE} {(y2 - y1) / SIZE}"
            for x1, y1, x2, y2 in truth
        ]
        (root / f"labels/{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    return root


@pytest.mark.slow  # seconds of FiftyOne work: the full tier
def test_ap_and_the_figures_at_the_threshold_match_a_hand_count(tmp_path):
    # 3 labelled boxes. Predictions by confidence: 0.9 TP, 0.8 FP, 0.7 TP, 0.3 FP.
    # Precision/recall after each: (1, 1/3), (1/2, 1/3), (2/3, 2/3), (1/2, 2/3).
    # Interpolated (the best precision at any recall >= r): 1 up to recall 1/3, 2/3 up to
    # recall 2/3, 0 beyond. COCO's 101 recall points 0.00..1.00: 0.00-0.33 (34 points) get 1,
    # 0.34-0.66 (33 points) get 2/3, 0.67-1.00 (34 points) get 0.
    # AP50 = (34 * 1 + 33 * 2/3) / 101 = 56/101 = 0.5545. The matches are exact boxes, so
    # every IoU threshold up to 0.95 gives the same: AP50-95 = AP50.
    # At threshold 0.75 only 0.9 (TP) and 0.8 (FP) are sent: precision 1/2, recall 1/3; of the
    # 2 empty images, c gets a box (0.8), d does not (0.3): share 1/2.
    source = write_case(tmp_path / "case")
    out = tmp_path / "out"
    result = evaluate_function(source, stub_function(0.75), out, tmp_path / "work")
    facts = result.facts
    assert facts["AP50"] == pytest.approx(56 / 101, abs=1e-3)
    assert facts["AP50-95"] == pytest.approx(56 / 101, abs=1e-3)
    assert facts["precision"] == pytest.approx(0.5) and facts["recall"] == pytest.approx(1 / 3)
    assert (facts["tp"], facts["fp"], facts["fn"]) == (1, 1, 2)
    assert (facts["images"], facts["boxes"], facts["empty_images"]) == (4, 3, 2)
    assert facts["empty_with_box_share"] == pytest.approx(0.5)
    # 2 shown (1 wrong) and 2 drawn: 2 x 1.6 + 1.0 + 2 x 7.0 s; sending 0.7 too (0.35 to
    # 0.70) saves a drawing: 3 x 1.6 + 1.0 + 7.0 s, the least (review/annotator_time.py)
    cost = facts["annotator_time"]
    assert (cost["seconds"], cost["from_scratch"]) == (pytest.approx(18.2), pytest.approx(21))
    assert (cost["cheapest_threshold"], cost["cheapest_seconds"]) == (0.35, pytest.approx(12.8))
    assert json.loads((out / "summary.json").read_text()) == facts
    for path in result.plots:
        assert path.stat().st_size > 1000

    lower = evaluate_function(source, stub_function(), out, tmp_path / "work", threshold=0.5)
    assert lower.facts["AP50"] == pytest.approx(facts["AP50"])  # the curve does not move
    assert (lower.facts["tp"], lower.facts["fp"], lower.facts["recall"]) == (2, 1, 2 / 3)
    assert lower.facts["empty_with_box_share"] == pytest.approx(0.5)


class DenseDetector:
    """A litter frame's worth: every one of 144 labelled boxes found, surely, plus 40
    unsure boxes on nothing."""

    class_names = ["fish"]
    input_size = 480
    boxes = [(x, y, x + 20, y + 20) for x in range(10, 480, 40) for y in range(10, 480, 40)]
    unsure = [(x + 20, y + 20, x + 30, y + 30) for x, y, *_ in boxes[:40]]

    def __call__(self, image, threshold):
        scored = [(b, 0.9 - 0.001 * i) for i, b in enumerate(self.boxes)]
        scored += [(b, 0.2) for b in self.unsure]
        return fish_at_or_above(scored, threshold)


@pytest.mark.slow  # seconds of FiftyOne work: the full tier
def test_an_image_with_more_boxes_than_coco_keeps_is_scored_on_all_that_are_sent(tmp_path):
    """Only the 100 most confident boxes of an image were kept: a drone frame with 144
    objects, every one of them sent, scored recall 0.69."""
    root = tmp_path / "dense"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.fromarray(np.full((480, 480, 3), 90, np.uint8)).save(root / "images/frame.png")
    lines = [
        f"0 {(x1 + x2) / 960} {(y1 + y2) / 960} {(x2 - x1) / 480} {(y2 - y1) / 480}\n"
        for x1, y1, x2, y2 in DenseDetector.boxes
    ]
    (root / "labels/frame.txt").write_text("".join(lines))
    function = DetectorFunction(stub_function(0.5).spec, DenseDetector())
    facts = evaluate_function(root, function, tmp_path / "out", tmp_path / "work").facts
    assert (facts["tp"], facts["fp"], facts["fn"]) == (144, 0, 0)
    assert facts["recall"] == 1.0 and facts["AP50"] == pytest.approx(1.0)


def check_summary(out, images, class_agnostic):
    for name in ("pr_curve.png", "worst_false_positives.png", "misses.png"):
        assert (out / name).stat().st_size > 1000, name
    facts = json.loads((out / "summary.json").read_text())
    assert facts["images"] == images and facts["boxes"] > 0
    for key in ("AP50", "AP50-95", "precision", "recall"):
        assert 0.0 <= facts[key] <= 1.0, key
    assert facts["AP50-95"] <= facts["AP50"]
    assert facts["tp"] + facts["fn"] == facts["boxes"]
    assert facts["class_agnostic"] is class_agnostic
    share = facts["empty_with_box_share"]
    assert share is None or 0.0 <= share <= 1.0
    return facts


@pytest.mark.slow  # the fish model over 12 frames, twice
def test_the_command_on_a_yolo_folder_and_a_cvat_export(tmp_path, capsys):
    samples = fish_samples(12, 131)
    folder = tmp_path / "yolo"
    write_dataset(folder, samples, FISH_LABELS)
    out = tmp_path / "yolo-eval"
    argv = ["evaluate", str(folder), "--function", "fish-detector", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    served = get_family("fish").detector.threshold
    assert "AP50" in printed and f"at threshold {served:g}" in printed  # the function's
    facts = check_summary(out, 12, class_agnostic=False)
    assert set(facts["per_class"]) <= set(FISH_LABELS)
    assert facts["boxes"] == sum(len(s.objects) for s in samples)
    # nothing sent at a threshold of 1: precision is undefined, not 0 ("every box wrong")
    assert main([*argv[:-1], str(tmp_path / "none-sent"), "--threshold", "1"]) == 0
    assert "precision n/a, recall 0.000 (TP 0, FP 0" in capsys.readouterr().out
    assert json.loads((tmp_path / "none-sent" / "summary.json").read_text())["precision"] is None

    # the same scenes labelled by species: other labels than the function's, compared as boxes
    species = list(generate_fish(12, seed=131))
    export = write_cvat_export(tmp_path / "task.zip", species, FISH_SPECIES)
    out = tmp_path / "cvat-eval"
    argv = ["evaluate", str(export), "--function", "fish-detector", "--out", str(out)]
    assert main([*argv, "--class-agnostic", "--threshold", "0.3"]) == 0
    facts = check_summary(out, 12, class_agnostic=True)
    assert facts["classes"] == ["object"] and list(facts["per_class"]) == ["object"]
    assert facts["threshold"] == 0.3 and facts["format"] == "CVAT for images 1.1"


@pytest.mark.slow  # seconds of FiftyOne work: the full tier
def test_labelled_boxes_outside_the_image_are_cut_to_it_or_left_out_by_name(tmp_path, caplog):
    """A box wholly outside its image, or of no area, is one no detector can match: it was
    scored a miss without a word (AP50 0.976 -> 0.909 on six frames)."""
    source = write_case(tmp_path / "case")
    label = source / "labels" / "a.txt"
    half_out = "0 0.95 0.35 0.3 0.3\n"  # reaches 0.15 past the right edge: cut to it
    label.write_text(label.read_text() + "0 1.3 0.5 0.2 0.2\n0 0.5 0.5 0 0\n" + half_out)
    with caplog.at_level("WARNING", logger="imagine_assist"):
        facts = evaluate_function(source, stub_function(0.75), tmp_path / "o", tmp_path / "w").facts
    assert facts["boxes"] == 4  # the case's 3 and the cut one
    assert "1 labelled boxes reach outside their image and were cut to it, and 2 lie" in caplog.text
    assert "a.png" in caplog.text


@pytest.mark.slow  # FiftyOne or a server: the full tier
def test_a_threshold_under_the_prediction_floor_is_scored_on_what_it_would_send(tmp_path):
    source = write_case(tmp_path / "case")
    CASE["e"] = (210, [(10, 10, 30, 30)], [((10, 10, 30, 30), 0.0007)])
    CASE["f"] = (240, [(50, 50, 70, 70)], [((50, 50, 70, 70), 0.0)])
    try:
        for name, level, line in (("e", 210, "0.2 0.2"), ("f", 240, "0.6 0.6")):
            Image.fromarray(np.full((SIZE, SIZE, 3), level, np.uint8)).save(
                source / f"images/{name}.png"
            )
            (source / f"labels/{name}.txt").write_text(f"0 {line} 0.2 0.2\n")
        low = evaluate_function(
            source, stub_function(), tmp_path / "o", tmp_path / "w", threshold=0.0005
        ).facts
        zero = evaluate_function(
            source, stub_function(), tmp_path / "o0", tmp_path / "w", threshold=0.0
        ).facts
    finally:
        del CASE["e"], CASE["f"]
    assert low["tp"] == 3  # the 0.0007 box is sent at 0.0005, the one scored 0 is not
    assert zero["tp"] == 4  # at 0, every box is sent: 0 was read as no threshold


@pytest.mark.slow  # three evaluations: the full tier
def test_a_split_folder_without_its_data_yaml_names_the_extra_class_ids_by_number(tmp_path):
    """A Roboflow split (fish4knowledge/valid: images/ and labels/, the data.yaml one level
    up) whose boxes are class 6: scored with --class-agnostic, or mapped by the id's number,
    as docs/models.md does for Fish4Knowledge; it was refused as naming one class."""
    source = write_case(tmp_path / "case")
    for label in (source / "labels").glob("*.txt"):
        label.write_text(label.read_text().replace("0 ", "6 "))
    with pytest.raises(UserError, match="labels this family does not know: 6"):
        evaluate_function(source, stub_function(), tmp_path / "out", tmp_path / "work")
    agnostic = evaluate_function(
        source, stub_function(0.75), tmp_path / "out", tmp_path / "work", class_agnostic=True
    ).facts
    mapped = evaluate_function(
        source, stub_function(0.75), tmp_path / "o2", tmp_path / "work", label_map={"6": "fish"}
    ).facts
    assert agnostic["AP50"] == mapped["AP50"] == pytest.approx(56 / 101, abs=1e-3)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("5 0.5 0.5 0.1 0.1", "line 2 has class 5, but data.yaml names 1 classes (0)"),
        ("garbage line", "line 2 is not a YOLO box"),
        ("0 0.5 nan 0.1 0.1", "line 2 is not a YOLO box"),
    ],
)
def test_a_yolo_box_of_an_unknown_class_or_unreadable_is_refused_not_dropped(
    tmp_path, capsys, line, message
):
    """FiftyOne's importer passed over such a line without a word: the figures were those
    of a set without that box."""
    folder = tmp_path / "yolo"
    write_dataset(folder, fish_samples(2, 131), FISH_LABELS)
    label = sorted(folder.rglob("labels/*/*.txt"))[0]
    label.write_text(label.read_text().splitlines()[0] + f"\n{line}\n")
    argv = ["evaluate", str(folder), "--function", "fish-detector", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert label.name in err and message in err


@pytest.mark.slow  # seconds of work: the full tier
def test_map_renames_labels_before_matching(tmp_path):
    source = write_case(tmp_path / "case")
    (source / "data.yaml").write_text("names: [fisk]\nval: images\n")
    with pytest.raises(Exception, match="fisk"):  # not a label of the function
        evaluate_function(source, stub_function(), tmp_path / "out", tmp_path / "work")
    facts = evaluate_function(
        source, stub_function(), tmp_path / "out", tmp_path / "work", label_map={"fisk": "fish"}
    ).facts
    assert facts["AP50"] == pytest.approx(56 / 101, abs=1e-3)


def test_class_agnostic_scores_any_label_as_one_class(tmp_path):
    source = write_case(tmp_path / "case")
    (source / "data.yaml").write_text("names: [fisk]\nval: images\n")  # not the function's
    out = tmp_path / "out"
    result = evaluate_function(
        source, stub_function(0.75), out, tmp_path / "work", class_agnostic=True
    )
    facts = result.facts
    assert facts["classes"] == ["object"] and list(facts["per_class"]) == ["object"]
    assert facts["AP50"] == pytest.approx(56 / 101, abs=1e-3)
    assert (facts["tp"], facts["fp"], facts["fn"]) == (1, 1, 2)
    assert json.loads((out / "summary.json").read_text()) == facts


@pytest.mark.parametrize(
    ("make", "function", "says"),
    [
        (lambda p: p / "missing", "fish-detector", "no folder or export"),
        (lambda p: write_zip(p / "notes.zip"), "fish-detector", "not an export"),
        (lambda p: p, "fish-detector", "not a YOLO folder"),
        (lambda p: write_zip(p / "notes.zip"), "burrow-tracker", "not a box detector"),
        (lambda p: write_zip(p / "notes.zip"), "plankton-separator", "not an export"),
        (lambda p: p, "plankton-separator", "single/ and multiple/"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, make, function, says):
    source = make(tmp_path)
    code = main(["evaluate", str(source), "--function", function, "--out", str(tmp_path / "o")])
    error = capsys.readouterr().err
    assert code == 2 and says in error and len(error.strip().splitlines()) == 1


def write_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not an export")
    return path


def test_a_data_yaml_naming_missing_split_folders_reads_images_and_labels_beside_it(tmp_path):
    """Roboflow's flattened downloads: data.yaml names train/valid/test, the files are in
    images/ and labels/ beside it."""
    source = write_case(tmp_path / "case")
    (source / "data.yaml").write_text("names: [fish]\ntrain: ../train/images\ntest: images/test\n")
    result = evaluate_function(source, stub_function(0.75), tmp_path / "out", tmp_path / "work")
    assert result.facts["AP50"] == pytest.approx(56 / 101, abs=1e-3)


def test_yolo_class_ids_are_the_names_keys_which_need_not_run_in_order(tmp_path):
    from imagine_assist.training.exports import check_yolo_labels, yolo_class_ids

    labels = tmp_path / "labels" / "train"
    labels.mkdir(parents=True)
    (tmp_path / "images" / "train").mkdir(parents=True)
    (labels / "a.txt").write_text("5 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.05 0.05\n")
    ids = yolo_class_ids({0: "fish", 5: "shark"})
    check_yolo_labels([tmp_path / "images" / "train"], ids, tmp_path)  # 5 is declared
    (labels / "a.txt").write_text("3 0.5 0.5 0.2 0.2\n")
    with pytest.raises(UserError, match=r"class 3, but data.yaml names 2 classes \(0, 5\)"):
        check_yolo_labels([tmp_path / "images" / "train"], ids, tmp_path)


@pytest.mark.slow  # seconds of FiftyOne work: the full tier
def test_labels_whose_image_is_gone_are_named_not_passed_over(tmp_path, caplog):
    source = write_case(tmp_path / "case")
    (source / "labels" / "gone.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with caplog.at_level("WARNING", logger="imagine_assist"):
        facts = evaluate_function(source, stub_function(0.75), tmp_path / "out", tmp_path / "w")
    assert facts.facts["boxes"] == 3  # the case's own
    assert "1 of the 5 label files" in caplog.text and "(gone first)" in caplog.text


@pytest.mark.slow  # seconds of FiftyOne work: the full tier
def test_an_image_unreadable_or_refused_is_left_out_and_named(tmp_path, caplog, capsys):
    """One cut-short file or 1x1 speck among thousands ended the whole evaluation, where
    predict, next and separate go on. Each is left out with its labels, and named."""
    source = write_case(tmp_path / "case")
    Image.fromarray(np.full((1, 1, 3), 90, np.uint8)).save(source / "images" / "speck.png")
    (source / "labels" / "speck.txt").write_text("0 0.5 0.5 1 1\n")
    whole = (source / "images" / "a.png").read_bytes()
    (source / "images" / "cut.png").write_bytes(whole[: len(whole) // 2])
    (source / "labels" / "cut.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with caplog.at_level("WARNING", logger="imagine_assist"):
        result = evaluate_function(source, stub_function(0.75), tmp_path / "out", tmp_path / "w")
    facts = result.facts
    assert sorted(facts["unreadable"]) == ["cut.png", "speck.png"]
    assert "speck.png: image is 1x1 pixels" in caplog.text
    assert "cut.png: the image could not be decoded" in caplog.text
    # the figures of the four readable images, as the hand count above
    assert (facts["images"], facts["boxes"]) == (4, 3)
    assert facts["AP50"] == pytest.approx(56 / 101, abs=1e-3)
    assert "unreadable or refused, left out with their labels: 2" in summary_lines(facts)
