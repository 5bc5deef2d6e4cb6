"""`imagine-assist loop` against a stand-in for cvat-sdk's client: no CVAT server runs here,
so the test checks the exact cvat-sdk calls and everything the loop does with their results."""

import shutil

import cvat_sdk.auto_annotation
import pytest

from imagine_assist.app import main as cli
from imagine_assist.cvat.sdk_function import SdkDetectionFunction
from imagine_assist.models.registry import Registry
from imagine_assist.samples import (
    generate_tow,
    write_cvat_export,
    write_cvat_video_export,
)

from .fish_tasks import FISH_LABELS, fish_samples


class RecordingTask:
    def __init__(self, client, task_id):
        self.client, self.id = client, task_id
        self.mode = client.modes.get(task_id, "annotation")  # CVAT's: "interpolation" = video

    def export_dataset(self, format_name, filename, **kwargs):
        self.client.calls.append(("export_dataset", self.id, format_name, kwargs))
        # what CVAT would send; cvat-sdk's download writes over no file (FileExistsError)
        with open(self.client.exports[self.id], "rb") as sent, open(filename, "xb") as kept:
            shutil.copyfileobj(sent, kept)
        return filename


class RecordingClient:
    """Answers the calls the loop makes, the way cvat-sdk's Client does, and records them."""

    def __init__(self, exports, modes=None):
        self.exports, self.calls = exports, []
        self.modes = modes or {}
        self.known = {8}  # a task with nothing to export yet: the next one to pre-annotate
        self.tasks = self

    def retrieve(self, task_id):
        from cvat_sdk.api_client.exceptions import NotFoundException

        self.calls.append(("tasks.retrieve", task_id))
        if task_id not in self.exports and task_id not in self.known:
            raise NotFoundException(status=404, reason="Not Found")
        return RecordingTask(self, task_id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def client(tmp_path, monkeypatch):
    exports = {7: write_cvat_export(tmp_path / "cvat-7.zip", fish_samples(24, 97), FISH_LABELS)}
    recording = RecordingClient(exports)
    made = []

    def make_client(host, **auth):
        made.append((host, auth))
        return recording

    monkeypatch.setattr("cvat_sdk.make_client", make_client)
    annotated = []

    def annotate_task(client, task_id, function, **kwargs):
        annotated.append((client, task_id, function, kwargs))

    monkeypatch.setattr(cvat_sdk.auto_annotation, "annotate_task", annotate_task)
    monkeypatch.setenv("CVAT_USER", "annotator")
    monkeypatch.setenv("CVAT_PASSWORD", "secret")
    monkeypatch.delenv("CVAT_ACCESS_TOKEN", raising=False)
    return recording, made, annotated


@pytest.mark.slow  # trains
def test_loop_exports_reviews_retrains_and_pre_annotates_the_next_task(tmp_path, client, capsys):
    recording, made, annotated = client
    models, work = tmp_path / "models", tmp_path / "work"
    argv = [
        "loop",
        "fish",
        "--cvat",
        "https://cvat.example",
        "--task",
        "7",
        "--next-task",
        "8",
        "--models",
        str(models),
        "--work",
        str(work),
        "--epochs",
        "1",
        "--force",
    ]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert made == [("https://cvat.example", {"credentials": ("annotator", "secret")})]
    assert recording.calls == [
        ("tasks.retrieve", 7),
        ("tasks.retrieve", 8),  # the next task is checked before anything is exported
        ("export_dataset", 7, "CVAT for images 1.1", {"include_images": True}),
    ]
    (used_client, task_id, function, kwargs) = annotated[0]
    assert used_client is recording and task_id == 8 and kwargs == {"allow_unmatched_labels": True}
    assert isinstance(function, SdkDetectionFunction)
    version = Registry(models).current("fish")
    assert version.name == "v1" and str(function.function.detector.path).startswith(
        str(version.path)
    )
    assert (work / "review-task-7" / "summary.json").is_file()
    out = capsys.readouterr().out
    assert "trained v1 from 1 export(s): promoted" in out and "pre-annotated task 8" in out


def test_loop_without_credentials_says_what_to_set(tmp_path, monkeypatch, capsys):
    for name in ("CVAT_USER", "CVAT_PASSWORD", "CVAT_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    argv = [
        "loop",
        "fish",
        "--cvat",
        "https://cvat.example",
        "--task",
        "7",
        "--models",
        str(tmp_path / "m"),
    ]
    assert cli.main(argv) == 2
    assert "CVAT_ACCESS_TOKEN" in capsys.readouterr().err


@pytest.mark.slow  # trains
def test_loop_on_a_video_task_exports_its_tracks_and_retrains_from_the_frames(
    tmp_path, monkeypatch, capsys
):
    tow_export = write_cvat_video_export(
        tmp_path / "tow.zip", generate_tow(40, seed=32, density_per_m2=1.2), frame_step=10
    )
    recording = RecordingClient({21: tow_export}, modes={21: "interpolation"})
    monkeypatch.setattr("cvat_sdk.make_client", lambda host, **auth: recording)
    monkeypatch.setenv("CVAT_ACCESS_TOKEN", "token")
    argv = ["loop", "burrow", "--cvat", "https://cvat.example", "--task", "21"]
    argv += ["--models", str(tmp_path / "models"), "--work", str(tmp_path / "work")]
    assert cli.main([*argv, "--epochs", "1", "--force"]) == 0, capsys.readouterr().err
    assert recording.calls[1] == (
        "export_dataset",
        21,
        "CVAT for video 1.1",
        {"include_images": True},
    )
    card = Registry(tmp_path / "models").current("burrow").card
    assert card["data"]["exports"][0]["format"] == "CVAT for video 1.1"
    assert sum(card["data"]["split"].values()) == 100  # every exported frame
    assert (tmp_path / "work" / "review-task-21" / "summary.json").is_file()


@pytest.mark.slow  # trains twice
def test_a_turn_run_again_and_a_bad_export_or_next_task_never_stop_later_turns(
    tmp_path, client, capsys
):
    """A second turn on one task crashed (cvat-sdk writes over no file); an export without
    boxes stayed among the exports and stopped every later turn; a wrong --next-task was
    found only after the retraining."""
    recording, _, annotated = client
    samples = fish_samples(8, 99)
    for sample in samples:
        sample.objects.clear()
    recording.exports[1] = write_cvat_export(tmp_path / "no-boxes.zip", samples, FISH_LABELS)
    work = tmp_path / "work"
    base = ["loop", "fish", "--cvat", "https://cvat.example", "--models", str(tmp_path / "m")]
    base += ["--work", str(work), "--epochs", "1", "--force"]
    assert cli.main([*base, "--task", "1"]) == 2
    assert "no boxes" in capsys.readouterr().err
    assert sorted(p.name for p in (work / "exports").glob("*.zip")) == []
    recording.calls.clear()
    assert cli.main([*base, "--task", "7", "--next-task", "555"]) == 2
    assert "CVAT has no task 555 (--next-task); nothing was exported" in capsys.readouterr().err
    assert [c for c in recording.calls if c[0] == "export_dataset"] == []
    for _ in range(2):  # the same task again, after more corrections
        assert cli.main([*base, "--task", "7"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (work / "exports").glob("*.zip")) == ["task-7.zip"]
    assert Registry(tmp_path / "m").current("fish").name == "v2"
    assert annotated == []
