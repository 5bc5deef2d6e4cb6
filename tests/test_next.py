"""`imagine-assist next` on generated images, with a stand-in model whose answer for each
image is known: it picks the uncertain images over the confident ones, only one of several
near copies, writes the list, and asks cvat-sdk for a valid task (a stand-in client records
the request, as in test_loop)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import cvat_sdk.auto_annotation
import numpy as np
import pytest
import supervision as sv
from cvat_sdk import models
from cvat_sdk.api_client import ApiClient
from cvat_sdk.core.proxies.tasks import ResourceType
from PIL import Image

from imagine_assist.app import main as cli
from imagine_assist.cvat.sdk_function import SdkDetectionFunction
from imagine_assist.errors import UserError
from imagine_assist.families import get_family
from imagine_assist.functions.catalog import get_spec
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.models.detector import with_class_names
from imagine_assist.review.next_images import (
    box_uncertainty,
    choose,
    create_labelling_task,
    next_images,
    score_images,
)

FUNCTION = "fish-detector"
THRESHOLD = get_family("fish").detector.threshold
# near the served threshold: the annotator must decide each (two above it, two below)
UNSURE = [THRESHOLD + 0.01, THRESHOLD - 0.02, THRESHOLD + 0.05, THRESHOLD - 0.05]
SURE = [0.97, 0.95]


def digest(pixels: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(pixels).tobytes()).hexdigest()


class KnownConfidences:
    """A detector's interface (`models.detector.Detector`) answering each image, known by
    its pixels, with the confidences it was given; an unknown image gets no boxes."""

    class_names = ["fish"]
    input_size = 64

    def __init__(self) -> None:
        self.answers: dict[str, list[float]] = {}

    def __call__(self, image: np.ndarray, threshold: float) -> sv.Detections:
        kept = [c for c in self.answers.get(digest(image), []) if c >= threshold]
        if not kept:
            return with_class_names(sv.Detections.empty(), self.class_names)
        # apart from each other, so no merging of overlapping boxes (NMS) can drop one
        corners = [(16 * (i % 4), 16 * (i // 4)) for i in range(len(kept))]
        boxes = np.array([[x + 2, y + 2, x + 12, y + 12] for x, y in corners], np.float32)
        detections = sv.Detections(
            xyxy=boxes, confidence=np.array(kept, np.float32), class_id=np.zeros(len(kept), int)
        )
        return with_class_names(detections, self.class_names)


def scene(seed: int) -> np.ndarray:
    """A 64x64 scene of its own: a colour cast, stripes at some angle, a bright blob. Every
    pixel is above the letterbox level, so the detector sees the whole frame."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 20)
    stripes = 0.5 + 0.5 * np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    cx, cy = rng.uniform(10, 54, 2)
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / rng.uniform(40, 200))
    cast = rng.uniform(0.2, 1.0, 3)
    image = 40 + 200 * (0.6 * stripes[..., None] * cast + 0.4 * blob[..., None])
    return np.clip(image + rng.normal(0, 3, image.shape), 20, 255).astype(np.uint8)


def near_copy(image: np.ndarray, seed: int) -> np.ndarray:
    """The next frame, as it were: the same scene with a little sensor noise."""
    noise = np.random.default_rng(seed).integers(-2, 3, image.shape)
    return np.clip(image.astype(int) + noise, 20, 255).astype(np.uint8)


class Images:
    """Generated images written as PNG (lossless, so the stand-in knows them again)."""

    def __init__(self, folder: Path, detector: KnownConfidences) -> None:
        self.folder, self.detector = folder, detector
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, pixels: np.ndarray, confidences: list[float]) -> Path:
        path = self.folder / f"{name}.png"
        Image.fromarray(pixels).save(path)
        self.detector.answers[digest(pixels)] = confidences
        return path


@pytest.fixture
def detector() -> KnownConfidences:
    return KnownConfidences()


@pytest.fixture
def function(detector) -> DetectorFunction:
    return DetectorFunction(get_spec(FUNCTION), detector)


def mixed_folder(folder: Path, detector: KnownConfidences) -> tuple[set[str], set[str]]:
    """5 uncertain scenes, 12 confident ones and 3 with nothing found; the names of each."""
    images = Images(folder, detector)
    unsure = {images.add(f"unsure-{i}", scene(i), UNSURE).name for i in range(5)}
    sure = {images.add(f"sure-{i}", scene(100 + i), SURE).name for i in range(12)}
    for i in range(3):
        images.add(f"empty-{i}", scene(200 + i), [])
    return unsure, sure


def test_a_box_at_the_threshold_counts_most_and_certain_boxes_not_at_all():
    confidence = np.array([0.05, 0.2, 0.35, 0.5, 0.9, 1.0])
    uncertainty = box_uncertainty(confidence, threshold=0.35, floor=0.05)
    assert uncertainty[2] == pytest.approx(1.0)  # exactly at the threshold: one bit
    assert uncertainty[0] == pytest.approx(0.0) and uncertainty[-1] == pytest.approx(0.0)
    assert uncertainty[1] > uncertainty[0] and uncertainty[3] > uncertainty[4]
    assert np.all((0 <= uncertainty) & (uncertainty <= 1))


def test_next_picks_the_uncertain_images_over_the_confident_ones(tmp_path, function, detector):
    unsure, sure = mixed_folder(tmp_path / "images", detector)
    report = next_images(function, tmp_path / "images", 5, tmp_path / "out")
    assert {pick.path.name for pick in report.picks} == unsure
    assert report.scored == 20 and not report.skipped
    top = report.picks[0]
    assert top.candidates == 2 and top.boxes == 2  # two below the threshold, two above
    # the confident images follow, far behind
    scored = score_images(function, sorted((tmp_path / "images").iterdir()))
    scores = {score.path.name: score for score in scored}
    assert min(scores[name].uncertainty for name in unsure) > 3 * max(
        scores[name].uncertainty for name in sure
    )


def test_of_several_near_copies_only_one_is_picked(tmp_path, function, detector):
    images = Images(tmp_path / "images", detector)
    burst = scene(1)
    copies = {images.add(f"burst-{i}", near_copy(burst, i), UNSURE * 2).name for i in range(6)}
    others = {images.add(f"other-{i}", scene(10 + i), UNSURE).name for i in range(3)}
    for i in range(8):
        images.add(f"sure-{i}", scene(100 + i), SURE)
    picks = choose(score_images(function, sorted((tmp_path / "images").iterdir())), 4)
    names = [pick.path.name for pick in picks]
    assert names[0] in copies  # the most uncertain of all goes first
    assert set(names[1:]) == others  # then new scenes, not the burst's other frames
    assert picks[1].novelty == pytest.approx(1.0)
    # a near copy keeps almost none of its uncertainty: it comes after the confident
    # images of new scenes, even though it is the most uncertain image of all
    every = choose(score_images(function, sorted((tmp_path / "images").iterdir())), 17)
    assert {pick.path.name for pick in every[-5:]} == copies - {names[0]}
    assert all(pick.novelty < 0.05 for pick in every[-5:])


def test_the_cli_writes_the_ranked_list(tmp_path, monkeypatch, detector, capsys):
    unsure, _ = mixed_folder(tmp_path / "images", detector)
    # the live model, as predict and review load it, is the stand-in
    monkeypatch.setattr(
        "imagine_assist.functions.catalog.resolve_model", lambda *a: tmp_path / "model.onnx"
    )
    monkeypatch.setattr("imagine_assist.functions.catalog.load_detector", lambda *a: detector)
    argv = ["next", "--function", FUNCTION, "--from", str(tmp_path / "images"), "-n", "3"]
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    with (tmp_path / "out" / "next.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["rank"] for row in rows] == ["1", "2", "3"]
    assert {Path(row["image"]).name for row in rows} <= unsure
    assert all(Path(row["image"]).is_file() for row in rows)
    uncertainty = [float(row["uncertainty"]) for row in rows]
    assert uncertainty == sorted(uncertainty, reverse=True) and uncertainty[-1] > 0
    assert "picked 3 of 20 images" in capsys.readouterr().out


class RecordingTasks:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def create_from_data(self, spec, resources, **kwargs):
        self.calls.append({"spec": spec, "resources": list(resources), **kwargs})
        return type("Task", (), {"id": 41, "name": spec.name})()


class RecordingClient:
    """Answers the call `next --cvat` makes, as cvat-sdk's Client does, and records it."""

    def __init__(self) -> None:
        self.tasks = RecordingTasks()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def cvat(monkeypatch, tmp_path, detector):
    recording, made, annotated = RecordingClient(), [], []

    def make_client(host, **auth):
        made.append((host, auth))
        return recording

    monkeypatch.setattr("cvat_sdk.make_client", make_client)
    monkeypatch.setattr(
        cvat_sdk.auto_annotation,
        "annotate_task",
        lambda client, task_id, function, **kwargs: annotated.append((task_id, function, kwargs)),
    )
    monkeypatch.setenv("CVAT_ACCESS_TOKEN", "token")
    monkeypatch.setattr(
        "imagine_assist.functions.catalog.resolve_model", lambda *a: tmp_path / "model.onnx"
    )
    monkeypatch.setattr("imagine_assist.functions.catalog.load_detector", lambda *a: detector)
    return recording, made, annotated


def test_the_cvat_task_holds_the_picks_in_rank_order_with_the_function_labels(
    tmp_path, cvat, detector, capsys
):
    recording, made, annotated = cvat
    unsure, _ = mixed_folder(tmp_path / "images", detector)
    argv = ["next", "--function", FUNCTION, "--from", str(tmp_path / "images"), "-n", "4"]
    argv += ["--out", str(tmp_path / "out"), "--cvat", "https://cvat.example"]
    assert cli.main([*argv, "--task-name", "round 2", "--pre-annotate"]) == 0
    assert made == [("https://cvat.example", {"access_token": "token"})]
    (call,) = recording.tasks.calls
    # the request body cvat-sdk would send for the task
    assert isinstance(call["spec"], models.TaskWriteRequest)
    assert ApiClient.sanitize_for_serialization(call["spec"]) == {
        "name": "round 2",
        "labels": [{"name": "fish"}],
    }
    with (tmp_path / "out" / "next.csv").open(newline="") as handle:
        ranked = [Path(row["image"]) for row in csv.DictReader(handle)]
    assert [Path(p).resolve() for p in call["resources"]] == ranked
    assert {p.name for p in ranked} <= unsure
    assert call["resource_type"] is ResourceType.LOCAL
    # "predefined" keeps the upload order (cvat-sdk then sends upload_file_order)
    assert call["data_params"] == {"image_quality": 95, "sorting_method": "predefined"}
    assert models.DataRequest(**call["data_params"])  # fields CVAT's data request has
    (task_id, function, kwargs) = annotated[0]
    assert task_id == 41 and isinstance(function, SdkDetectionFunction)
    assert kwargs == {"allow_unmatched_labels": True}
    assert "created CVAT task 41 'round 2' with 4 images" in capsys.readouterr().out


def test_a_task_in_a_project_takes_the_project_labels(tmp_path, function, detector):
    images = Images(tmp_path / "images", detector)
    images.add("a", scene(1), UNSURE)
    picks = choose(score_images(function, [tmp_path / "images" / "a.png"]), 1)
    client = RecordingClient()
    task = create_labelling_task(client, picks, "in a project", ["fish"], project_id=5)
    assert task.id == 41
    (call,) = client.tasks.calls
    assert call["spec"].to_dict() == {"name": "in a project", "project_id": 5}


def test_picks_with_one_file_name_in_two_folders_are_refused_before_cvat(
    tmp_path, function, detector
):
    for folder, seed in (("a", 1), ("b", 2)):
        Images(tmp_path / folder, detector).add("frame", scene(seed), UNSURE)
    paths = [tmp_path / "a" / "frame.png", tmp_path / "b" / "frame.png"]
    picks = choose(score_images(function, paths), 2)
    client = RecordingClient()
    with pytest.raises(UserError, match="by file name"):
        create_labelling_task(client, picks, "clash", ["fish"])
    assert client.tasks.calls == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-n", "0"], "-n must be at least 1"),
        (["--function", "no-such-function"], "unknown function 'no-such-function'"),
        (["--from", "{empty}"], "no images"),
        (["--project", "3"], "need --cvat"),
    ],
    ids=["n-below-1", "unknown-function", "empty-folder", "project-without-cvat"],
)
def test_errors_are_one_line(tmp_path, monkeypatch, detector, capsys, extra, message):
    mixed_folder(tmp_path / "images", detector)
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(
        "imagine_assist.functions.catalog.resolve_model", lambda *a: tmp_path / "model.onnx"
    )
    monkeypatch.setattr("imagine_assist.functions.catalog.load_detector", lambda *a: detector)
    argv = ["next", "--function", FUNCTION, "--from", str(tmp_path / "images")]
    argv += ["--out", str(tmp_path / "out")]
    argv += [arg.format(empty=tmp_path / "empty") for arg in extra]  # later options win
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_cvat_login_missing_is_said_before_the_folder_is_scored(
    tmp_path, monkeypatch, detector, capsys
):
    mixed_folder(tmp_path / "images", detector)
    for name in ("CVAT_ACCESS_TOKEN", "CVAT_USER", "CVAT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    scored = []
    monkeypatch.setattr(
        "imagine_assist.review.next_images.next_images", lambda *a, **k: scored.append(a)
    )
    argv = ["next", "--function", FUNCTION, "--from", str(tmp_path / "images")]
    assert cli.main([*argv, "--cvat", "https://cvat.example", "--out", str(tmp_path / "o")]) == 2
    assert "CVAT_ACCESS_TOKEN" in capsys.readouterr().err and scored == []


def test_a_cvat_job_that_fails_on_cvats_side_is_one_line(tmp_path, cvat, detector, capsys):
    """cvat-sdk raises BackgroundRequestException when CVAT's own job (the task's data)
    fails: it was a traceback."""
    from cvat_sdk.core.exceptions import BackgroundRequestException

    recording, _, _ = cvat

    def failing(spec, resources, **kwargs):
        raise BackgroundRequestException("Request failed: disk full on the server")

    recording.tasks.create_from_data = failing
    mixed_folder(tmp_path / "images", detector)
    argv = ["next", "--function", FUNCTION, "--from", str(tmp_path / "images"), "-n", "2"]
    argv += ["--cvat", "https://cvat.example", "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "CVAT at https://cvat.example could not finish its job: Request failed" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("burst_size", [12, 120])
def test_a_burst_that_is_most_of_the_folder_gives_one_pick_then_new_scenes(
    tmp_path, function, detector, burst_size
):
    """Near copies and 3 other scenes: most pairs were copies, the median (and, for a burst
    of 100, the mean) distance about 0, and the 4 picks were 4 frames of the burst."""
    images = Images(tmp_path / "images", detector)
    burst = scene(1)
    copies = {
        images.add(f"burst-{i}", near_copy(burst, i), UNSURE * 2).name for i in range(burst_size)
    }
    others = {images.add(f"other-{i}", scene(10 + i), UNSURE).name for i in range(3)}
    picks = choose(score_images(function, sorted((tmp_path / "images").iterdir())), 4)
    names = [pick.path.name for pick in picks]
    assert names[0] in copies and set(names[1:]) == others
