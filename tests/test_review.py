"""`imagine-assist review`: predictions beside corrected labels, evaluation, likely mistakes."""

import json

import pytest

from imagine_assist.app.main import main
from imagine_assist.errors import UserError
from imagine_assist.samples import write_cvat_export
from imagine_assist.training.exports import fiftyone

from .fish_tasks import FISH_LABELS, fish_samples


def forget_boxes(samples, count: int) -> set[str]:
    """An annotator who left `count` images with several fish unlabelled: their names."""
    busy = sorted(samples, key=lambda s: -len(s.objects))[:count]
    for sample in busy:
        sample.objects.clear()
    return {s.name for s in busy}


@pytest.mark.slow  # a whole review: model, FiftyOne, plots
def test_review_ranks_mislabelled_images_first_and_writes_plots(tmp_path, capsys):
    samples = [s for s in fish_samples(24, 95) if s.objects][:18]
    mislabelled = forget_boxes(samples, 3)  # "mislabelled": left without their boxes
    export = write_cvat_export(tmp_path / "task.zip", samples, FISH_LABELS)
    out = tmp_path / "review"
    assert main(["review", str(export), "--function", "fish-detector", "--out", str(out)]) == 0
    assert "likely mistakes first" in capsys.readouterr().out

    summary = json.loads((out / "summary.json").read_text())
    boxes = sum(len(s.objects) for s in samples)
    assert summary["samples"] == len(samples)
    assert summary["mistakes_scored_by"].startswith("(FP + FN)")  # one class: no flips to score
    assert summary["tp"] + summary["fn"] == boxes  # every corrected box is matched or missed
    assert 0.0 <= summary["mAP50"] <= 1.0 and set(summary["per_class"]) == set(FISH_LABELS)
    ranked = [entry["file"] for entry in summary["per_sample"]]
    assert set(ranked[:3]) == mislabelled
    for name in ("pr_curves.png", "confusion_matrix.png", "worst.png"):
        assert (out / name).stat().st_size > 5000

    fo = fiftyone()  # the dataset and its saved view stay for the App
    dataset = fo.load_dataset(summary["dataset"])
    first = dataset.load_saved_view("mistakes").first()
    assert first.filepath.endswith(ranked[0]) and first.predictions is not None


class RecordingCvat:
    """A loopback HTTP server standing in for CVAT: it records every request, accepts the
    login, and refuses to create the task (so nothing further is attempted)."""

    def __init__(self):
        import http.server
        import threading

        self.requests = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if self.path.startswith("/api/auth/login"):
                    self.send_header("Set-Cookie", "csrftoken=abc; Path=/")
                self.end_headers()
                self.wfile.write(data)

            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append((self.command, self.path, dict(self.headers), body))

            def do_GET(self):  # noqa: N802 (http.server's names)
                self._record()
                if self.path.startswith("/api/server/about"):
                    return self._answer(200, {"version": "2.20.0"})
                return self._answer(200, {"count": 0, "results": [], "next": None})

            def do_POST(self):  # noqa: N802
                self._record()
                if self.path.startswith("/api/auth/login"):
                    return self._answer(200, {"key": "token"})
                return self._answer(500, {"detail": "recording server: stops here"})

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.slow  # seconds of work: the full tier
def test_send_to_cvat_logs_in_and_asks_for_a_task_of_the_flagged_samples(
    tmp_path, monkeypatch, capsys
):
    samples = [s for s in fish_samples(16, 98) if s.objects][:10]
    forget_boxes(samples, 2)
    export = write_cvat_export(tmp_path / "task.zip", samples, FISH_LABELS)
    cvat = RecordingCvat()
    monkeypatch.setenv("CVAT_USER", "reviewer")
    monkeypatch.setenv("CVAT_PASSWORD", "pw")
    argv = [
        "review",
        str(export),
        "--function",
        "fish-detector",
        "--out",
        str(tmp_path / "r"),
        "--send-to-cvat",
        cvat.url,
    ]
    assert main(argv) == 2  # the stand-in refuses the task: a clear error, not a traceback
    assert f"CVAT at {cvat.url} answered:" in capsys.readouterr().err
    login = cvat.requests[0]
    assert login[:2] == ("POST", "/api/auth/login")
    assert json.loads(login[3]) == {"username": "reviewer", "password": "pw"}
    creates = [r for r in cvat.requests if r[0] == "POST" and r[1].startswith("/api/tasks")]
    assert creates, [r[:2] for r in cvat.requests]
    task = json.loads(creates[0][3])
    assert "likely mistakes" in task["name"]
    assert sorted(label["name"] for label in task["labels"]) == FISH_LABELS
    assert all(r[2].get("X-CSRFToken") == "abc" for r in cvat.requests[1:])
    cvat.server.shutdown()


def test_mistakes_are_ranked_by_disagreement_when_the_brain_names_none(monkeypatch):
    """On some sets fiftyone-brain scores every sample 0 or below: no likely mistake, and
    the review said labels and predictions agree though they do not. The documented
    (FP + FN) share ranks them instead."""
    from pathlib import Path

    import fiftyone.brain as fob

    from imagine_assist.review.review import EVAL_KEY, MISTAKENNESS, MISTAKES_VIEW, flag_mistakes

    fo = fiftyone()
    dataset = fo.Dataset()
    counts = {"agrees.jpg": (3, 0, 0), "some.jpg": (1, 2, 1), "missed.jpg": (0, 0, 4)}
    samples = []
    for name, values in counts.items():
        sample = fo.Sample(filepath=f"/nowhere/{name}")
        for key, value in zip(("tp", "fp", "fn"), values, strict=True):
            sample[f"{EVAL_KEY}_{key}"] = value
        samples.append(sample)
    dataset.add_samples(samples)

    def brain_naming_none(collection, *args, **kwargs):  # what the brain gave on a real set
        for index, sample in enumerate(collection.iter_samples(autosave=True)):
            sample[MISTAKENNESS] = -1.0 if index == 0 else 0.0

    monkeypatch.setattr(fob, "compute_mistakenness", brain_naming_none)
    try:
        method = flag_mistakes(dataset, ["fish", "shark"])
        assert method.startswith("(FP + FN)") and "named no likely mistake" in method
        ranked = [Path(s.filepath).name for s in dataset.load_saved_view(MISTAKES_VIEW)]
        assert ranked == ["missed.jpg", "some.jpg", "agrees.jpg"]
        assert dataset.load_saved_view(MISTAKES_VIEW).first()[MISTAKENNESS] > 0
    finally:
        dataset.delete()


def test_dense_images_are_ranked_without_mistakenness(monkeypatch):
    """fiftyone-brain's mistakenness grows with the square of a sample's boxes: a review of
    litter frames of 2,000 boxes ran past 13 minutes with no word."""
    from pathlib import Path

    import fiftyone.brain as fob

    from imagine_assist.review.review import (
        EVAL_KEY,
        GROUND_TRUTH,
        MISTAKENNESS_MAX_LABELS,
        MISTAKES_VIEW,
        flag_mistakes,
    )

    fo = fiftyone()
    dataset = fo.Dataset()
    boxes = [fo.Detection(label="bottle", bounding_box=[0.1, 0.1, 0.01, 0.01])]
    samples = []
    for name, count, fp in (("dense.jpg", MISTAKENNESS_MAX_LABELS + 1, 0), ("sparse.jpg", 2, 2)):
        sample = fo.Sample(filepath=f"/nowhere/{name}")
        sample[GROUND_TRUTH] = fo.Detections(detections=boxes * count)
        for key, value in (("tp", count), ("fp", fp), ("fn", 0)):
            sample[f"{EVAL_KEY}_{key}"] = value
        samples.append(sample)
    dataset.add_samples(samples)

    def never(*args, **kwargs):
        raise AssertionError("mistakenness was computed")

    monkeypatch.setattr(fob, "compute_mistakenness", never)
    try:
        method = flag_mistakes(dataset, ["bottle", "can"])
        assert method.startswith("(FP + FN)") and "holds 301 labels" in method
        ranked = [Path(s.filepath).name for s in dataset.load_saved_view(MISTAKES_VIEW)]
        assert ranked == ["sparse.jpg", "dense.jpg"]
    finally:
        dataset.delete()


def test_tied_mistakes_are_listed_in_one_order_everywhere():
    """Ties broken by path: the first few (the terminal, worst.png) and the whole list
    (summary.json) were ordered differently."""
    from pathlib import Path

    from imagine_assist.review.review import EVAL_KEY, MISTAKENNESS, MISTAKES_VIEW, flag_mistakes

    fo = fiftyone()
    dataset = fo.Dataset()
    names = [f"tie_{i:02d}.jpg" for i in (7, 3, 9, 1, 5, 0, 8, 2)]
    samples = []
    for name in names:  # one class: the (FP + FN) share ranks; every sample ties at 0.5
        sample = fo.Sample(filepath=f"/nowhere/{name}")
        for key, value in (("tp", 1), ("fp", 1), ("fn", 0)):
            sample[f"{EVAL_KEY}_{key}"] = value
        samples.append(sample)
    dataset.add_samples(samples)
    try:
        flag_mistakes(dataset, ["fish"])
        view = dataset.load_saved_view(MISTAKES_VIEW)
        whole = [Path(s.filepath).name for s in view]
        assert whole == sorted(names)
        assert [Path(s.filepath).name for s in view.limit(3)] == whole[:3]
        assert len({s[MISTAKENNESS] for s in view}) == 1
    finally:
        dataset.delete()


@pytest.mark.slow  # two whole reviews: the full tier
def test_a_rerun_keeps_the_reviewers_tags_and_views_and_a_failed_one_loses_nothing(
    tmp_path, home, monkeypatch
):
    """A rerun deleted the tags and views a reviewer made in the App; a rerun stopped
    halfway removed the images behind the earlier, complete review; a failed first review
    left a copy of the export behind."""
    from pathlib import Path

    from imagine_assist.review import review as review_module
    from imagine_assist.review.review import review_export

    samples = [s for s in fish_samples(10, 96) if s.objects][:6]
    export = write_cvat_export(tmp_path / "task.zip", samples, FISH_LABELS)
    work = home / "runs" / "review"
    dataset, _ = review_export(export, "fish-detector", tmp_path / "r1", work)
    first = dataset.first()
    first.tags.append("checked")
    first.ground_truth.detections[0].tags = ["wrong"]
    first.save()
    dataset.save_view("mine", dataset.match_tags("checked"))
    dataset.save_view("picked", dataset.select(first.id))  # samples picked by hand
    name, images = dataset.name, [Path(p) for p in dataset.values("filepath")]

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(review_module, "flag_mistakes", stopped)
    with pytest.raises(KeyboardInterrupt):
        review_export(export, "fish-detector", tmp_path / "r2", work)
    monkeypatch.undo()
    fo = fiftyone()
    assert [n for n in fo.list_datasets() if "building" in n] == []
    earlier = fo.load_dataset(name)
    assert all(path.is_file() for path in images)  # its images are still there
    assert len(earlier.match_tags("checked")) == 1

    again, _ = review_export(export, "fish-detector", tmp_path / "r3", work)
    assert again.name == name and len(again) == len(samples)
    assert again.match_tags("checked").first().filepath == first.filepath
    assert again.count_label_tags() == {"wrong": 1}
    assert len(again.load_saved_view("mine")) == 1 and "mistakes" in again.list_saved_views()
    assert again.load_saved_view("picked").values("filepath") == [first.filepath]

    other = write_cvat_export(tmp_path / "other.zip", samples[:3], FISH_LABELS)
    before = sorted(p.name for p in work.iterdir())
    renamed = {label: label.title() for label in FISH_LABELS}  # labels the family lacks
    with pytest.raises(UserError, match="does not know"):
        review_export(other, "fish-detector", tmp_path / "r4", work, label_map=renamed)
    assert sorted(p.name for p in work.iterdir()) == before  # no copy of it left behind


@pytest.mark.slow  # FiftyOne's import: the full tier
def test_reviewing_the_plankton_separator_points_to_evaluate(tmp_path, capsys):
    export = write_cvat_export(tmp_path / "task.zip", fish_samples(2, 97), FISH_LABELS)
    argv = ["review", str(export), "--function", "plankton-separator", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "evaluate TASK.zip --function plankton-separator" in capsys.readouterr().err


@pytest.mark.slow  # FiftyOne: the full tier
def test_tags_on_identical_boxes_are_carried_over_one_for_one(caplog):
    from imagine_assist.review.review import GROUND_TRUTH, carry_over_review_work

    fo = fiftyone()

    def review(tagged: bool):
        dataset = fo.Dataset()
        boxes = [fo.Detection(label="fish", bounding_box=[0.1, 0.1, 0.2, 0.2]) for _ in range(2)]
        if tagged:
            boxes[0].tags = ["wrong"]
        sample = fo.Sample(filepath="/nowhere/a.jpg")
        sample[GROUND_TRUTH] = fo.Detections(detections=boxes)
        dataset.add_sample(sample)
        return dataset

    earlier, new = review(True), review(False)
    box_id = earlier.first()[GROUND_TRUTH].detections[0].id
    earlier.save_view("boxes", earlier.select_labels(ids=[box_id]))  # boxes picked by hand
    earlier.save_view("tagged", earlier.select_labels(tags="wrong"))
    try:
        with caplog.at_level("WARNING"):
            carry_over_review_work(earlier, new)
        assert new.count_label_tags() == {"wrong": 1}
        assert "1 tag(s)" in caplog.text
        assert "not kept" in caplog.text and "boxes (it picks boxes by id" in caplog.text
        assert new.list_saved_views() == ["tagged"]
        assert new.load_saved_view("tagged").count(f"{GROUND_TRUTH}.detections") == 1
    finally:
        earlier.delete()
        new.delete()
