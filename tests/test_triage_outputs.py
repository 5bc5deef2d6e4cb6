"""Outputs a person triages by: each predicted box with its score (CSV and CVAT XML), one box
per fish whatever its species, preview labels inside the image."""

import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import supervision as sv
from PIL import Image

from imagine_assist.families import builtin_families, family_from_dict, family_to_dict
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.functions.spec import FunctionSpec, LabelSpec
from imagine_assist.predict import BOX_COLUMNS, draw_preview, predict_to_files
from imagine_assist.training.new_family import new_family

SPECIES = ["Chromis chromis", "Diplodus vulgaris"]
# (box, species index, score): two species named on one fish, and a second fish
BOXES = [((20, 20, 80, 70), 0, 0.91), ((22, 18, 82, 72), 1, 0.42), ((120, 30, 170, 90), 1, 0.66)]


class TwoSpeciesOnOneFish:
    """A model that names the first fish twice, as two species."""

    class_names = SPECIES
    input_size = 200

    def __call__(self, image, threshold):
        kept = [(box, label, score) for box, label, score in BOXES if score >= threshold]
        return sv.Detections(
            xyxy=np.array([box for box, _, _ in kept], dtype=np.float32).reshape(-1, 4),
            confidence=np.array([score for _, _, score in kept], dtype=np.float32),
            class_id=np.array([label for _, label, _ in kept], dtype=int),
            data={"class_name": np.array([SPECIES[label] for _, label, _ in kept])},
        )


def species_function(family="fish", **options) -> DetectorFunction:
    spec = FunctionSpec(
        id="reef-detector",
        name="reef",
        kind="detector",
        family=family,
        description="two species",
        labels=tuple(LabelSpec(i, name) for i, name in enumerate(SPECIES)),
        default_threshold=0.3,
    )
    return DetectorFunction(spec, TwoSpeciesOnOneFish(), **options)


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((120, 200, 3), 90, np.uint8)).save(folder / name)
    return folder


def test_predict_writes_each_box_with_its_score(frames, tmp_path):
    report = predict_to_files(species_function(class_agnostic_nms=False), frames, tmp_path / "o")
    with report.boxes_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == BOX_COLUMNS
    assert len(rows) == 2 * len(BOXES)
    first = [r for r in rows if r["image"] == "a.png"]
    assert [float(r["score"]) for r in first] == pytest.approx([0.91, 0.66, 0.42], abs=1e-4)
    assert first[0]["label"] == SPECIES[0]
    assert [float(first[0][k]) for k in ("x1", "y1", "x2", "y2")] == [20, 20, 80, 70]

    root = ET.parse(report.cvat_xml).getroot()
    for label in root.findall("meta/task/labels/label"):  # declared, or CVAT drops the values
        (score,) = label.findall("attributes/attribute")
        assert score.findtext("name") == "score" and score.findtext("input_type") == "number"
        assert score.findtext("values").split("\n") == ["0", "100", "1"]  # CVAT's whole numbers
    boxes = root.findall("image[@name='a.png']/box")
    assert [b.findtext("attribute[@name='score']") for b in boxes] == ["91", "42", "66"]


@pytest.mark.slow  # imports FiftyOne: about 2 s
def test_fiftyone_reads_the_scores_as_cvat_attributes(tmp_path):
    from fiftyone.utils.cvat import load_cvat_image_annotations

    from imagine_assist.cvat.xml import write_cvat_images_xml

    detections = TwoSpeciesOnOneFish()(None, 0.0)
    path = write_cvat_images_xml(
        tmp_path / "a.xml", [("a.png", 200, 120, detections)], SPECIES, scores=True
    )
    _, labels, images = load_cvat_image_annotations(str(path))
    assert all(label["attributes"][0]["name"] == "score" for label in labels.labels)
    scores = [{a.name: a.value for a in box.attributes}["score"] for box in images[0].boxes]
    assert scores == [91, 42, 66]


def test_the_scores_stay_out_of_xml_that_is_not_a_prediction():
    from imagine_assist.cvat.xml import cvat_images_tree

    detections = TwoSpeciesOnOneFish()(None, 0.0)
    root = cvat_images_tree([("a.png", 200, 120, detections)], SPECIES).getroot()
    assert root.find(".//attribute") is None


def test_two_species_on_one_fish_keep_the_best_box():
    image = np.full((120, 200, 3), 90, np.uint8)
    merged = species_function(class_agnostic_nms=True).detect(image)
    assert sorted(merged.confidence.round(2)) == [0.66, 0.91]
    assert list(merged.data["class_name"]) == [SPECIES[0], SPECIES[1]]
    kept_apart = species_function(class_agnostic_nms=False).detect(image)
    assert len(kept_apart) == 3


def test_the_served_function_follows_its_family_recipe():
    from imagine_assist.functions.catalog import load_function

    assert load_function("fish-detector").class_agnostic_nms  # the fish family's recipe: on
    # one item is one item: a rope also called a bottle was counted in both categories
    assert load_function("litter-detector").class_agnostic_nms
    assert not load_function("burrow-detector").class_agnostic_nms


def test_a_species_family_started_from_fish_keeps_one_box_per_fish():
    families = builtin_families()
    assert families["fish"].training.class_agnostic_nms
    assert not families["burrow"].training.class_agnostic_nms
    reef = new_family("reef", tuple(SPECIES), families["fish"])
    assert reef.training.class_agnostic_nms
    written = family_to_dict(reef)
    assert written["training"]["class_agnostic_nms"] is True
    assert family_from_dict(written).training.class_agnostic_nms


def test_a_family_file_with_a_bad_nms_flag_is_refused():
    from imagine_assist.errors import UserError

    raw = {"name": "reef", "labels": ["a"], "training": {"class_agnostic_nms": "yes"}}
    with pytest.raises(UserError, match="class_agnostic_nms must be true or false"):
        family_from_dict(raw)


def test_preview_labels_at_the_top_edge_stay_inside_the_image():
    image = np.zeros((120, 200, 3), np.uint8)

    def drawn_pixels(y1):
        detections = sv.Detections(
            xyxy=np.array([[40, y1, 120, y1 + 50]], dtype=np.float32),
            confidence=np.array([0.9], dtype=np.float32),
            class_id=np.array([0]),
            data={"class_name": np.array(["fish"])},
        )
        return int((draw_preview(image, detections) > 0).any(axis=2).sum())

    # the label drawn in full, whether the box touches the top edge or lies lower
    assert drawn_pixels(0) == pytest.approx(drawn_pixels(40), rel=0.05)


def test_a_rerun_stopped_halfway_leaves_no_earlier_counts_beside_its_previews(frames, tmp_path):
    out = tmp_path / "o"
    predict_to_files(species_function(), frames, out)
    assert (out / "counts.csv").is_file()

    class StoppedAtTheSecondFrame(TwoSpeciesOnOneFish):
        calls = 0

        def __call__(self, image, threshold):
            StoppedAtTheSecondFrame.calls += 1
            if StoppedAtTheSecondFrame.calls == 2:
                raise KeyboardInterrupt
            return super().__call__(image, threshold)

    stopped = DetectorFunction(species_function().spec, StoppedAtTheSecondFrame())
    with pytest.raises(KeyboardInterrupt):
        predict_to_files(stopped, frames, out)
    left = sorted(p.name for p in out.iterdir())
    assert left == [".predict-outputs", "previews"]  # no counts of the run before
