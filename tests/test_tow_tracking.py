"""`imagine-assist track`: a tow video in, tracks, counts per minute and density out."""

import csv
import json
import types
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from imagine_assist.app.main import main
from imagine_assist.cvat.xml import VideoTrack
from imagine_assist.models.track import Track
from imagine_assist.models.track_eval import count_errors, track_rows, tracking_metrics
from imagine_assist.samples import counts_per_minute
from imagine_assist.tow import (
    COUNT_COLUMNS,
    Video,
    tracks_request,
    video_tracks,
    write_counts_per_minute,
    write_track_preview,
)

# tow_files: the test tow, rendered once per test run (conftest.py)


class RecordingCvat:
    """cvat-sdk's client as `track --upload-to-task` uses it, recording what it is sent."""

    def __init__(self):
        self.made, self.updates = [], []
        self.tasks = self

    def __call__(self, host, **auth):  # stands in for cvat_sdk.make_client
        self.made.append((host, auth))
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def retrieve(self, task_id):
        cvat = self

        class Task:
            def get_labels(self):
                return [types.SimpleNamespace(name="burrow", id=7)]

            def update_annotations(self, request, action):
                cvat.updates.append((task_id, request.to_dict(), action))

        return Task()


@pytest.fixture(scope="module")
def tracked(tow_files, tmp_path_factory):
    """`track` on the tow, its tracks added to CVAT task 42 (with a personal access token)."""
    tow, files = tow_files
    out = tmp_path_factory.mktemp("tracked")
    cvat = RecordingCvat()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cvat_sdk.make_client", cvat)
        patch.setenv("CVAT_HOST", "https://cvat.example")
        patch.setenv("CVAT_ACCESS_TOKEN", "pat")
        for name in ("CVAT_USER", "CVAT_PASSWORD"):
            patch.delenv(name, raising=False)
        code = main(
            [
                "track",
                str(files.video),
                "--out",
                str(out),
                "--fov-deg",
                "67.38",
                "--camera-height-m",
                "0.75",
                "--tow-length-m",
                f"{tow.tow_length_m:.3f}",
                "--upload-to-task",
                "42",
            ]
        )
    assert code == 0
    return out, cvat


def test_track_writes_cvat_xml_counts_plot_and_density(tow_files, tracked):
    tracked, _ = tracked
    tow, _ = tow_files
    root = ET.parse(tracked / "annotations.xml").getroot()
    tracks = root.findall("track")
    assert tracks and all(t.get("label") == "burrow" and t.get("group_id") for t in tracks)
    assert int(root.find("meta/task/size").text) == tow.frame_count
    for track in tracks:  # every track ends with an outside box, as CVAT expects
        boxes = track.findall("box")
        assert boxes[-1].get("outside") == "1" or int(boxes[-1].get("frame")) == tow.frame_count - 1
    with (tracked / "counts_per_minute.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["minute"] for r in rows] == ["0", "1"]  # the tow's own minutes, as its truth
    assert tuple(rows[0]) == COUNT_COLUMNS
    counted = [(int(r["minute"]), int(r["count"])) for r in rows]
    errors = count_errors(counts_per_minute(tow), counted)
    assert abs(errors["total_relative_error"]) <= 0.2
    density = (tracked / "density.json").read_text()
    assert '"ground_width_m": 1.0' in density  # 2 * 0.75 m * tan(67.38 deg / 2)
    assert (tracked / "counts_per_minute.png").stat().st_size > 1000
    preview = cv2.VideoCapture(str(tracked / "track_preview.mp4"))  # the default 20 s
    assert preview.get(cv2.CAP_PROP_FRAME_COUNT) == round(20 * tow.geometry.fps)
    preview.release()


def test_tracks_follow_the_ground_truth(tow_files):
    """Quality guard on a short tow; the 2-minute held-out figures are in docs/benchmarks.md."""
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.models.track import group_systems, track_video
    from imagine_assist.tow import open_video

    tow, files = tow_files  # frames read back from the video, boxes from the CSV: no re-render
    corners = ("x1", "y1", "x2", "y2")
    with files.ground_truth.open() as handle:
        rows = list(csv.DictReader(handle))
    truth = [
        (int(r["frame"]), int(r["track_id"]), tuple(float(r[k]) for k in corners)) for r in rows
    ]
    function = load_function("burrow-detector")
    result = track_video(
        open_video(files.video).frames(), function.detect, tow.geometry.fps, every=2
    )
    group_systems(result, 190)
    metrics = tracking_metrics(truth, track_rows(result.tracks))
    assert metrics["IDF1"] >= 0.8 and metrics["MOTA"] >= 0.7


def test_tracks_reach_the_cvat_task_with_a_token(tracked):
    out, cvat = tracked
    # once to ask for the task and its label before tracking, once to upload
    assert cvat.made == [("https://cvat.example", {"access_token": "pat"})] * 2
    ((task_id, body, action),) = cvat.updates
    written = ET.parse(out / "annotations.xml").getroot().findall("track")
    assert task_id == 42 and action.value == "create"
    assert len(body["tracks"]) == len(written) > 0
    assert {track["label_id"] for track in body["tracks"]} == {7}


def test_a_task_without_the_label_is_refused_before_the_tow_is_tracked(tmp_path, monkeypatch):
    """Whether the task exists and has the label was found out only after the tracking."""
    import imagine_assist.tow as tow_module

    cvat = RecordingCvat()
    monkeypatch.setattr("cvat_sdk.make_client", cvat)
    monkeypatch.setenv("CVAT_ACCESS_TOKEN", "pat")
    monkeypatch.setattr(tow_module, "track_video", lambda *a, **k: pytest.fail("tracked"))
    video = grey_video(tmp_path / "tow.mp4")
    argv = ["track", str(video.path), "--out", str(tmp_path / "o"), "--upload-to-task", "42"]
    argv += ["--cvat", "https://cvat.example", "--function", "fish-detector"]
    assert main(argv) == 2  # the fake task has `burrow` only


def test_upload_request_body_is_what_cvat_expects():
    track = Track(3, "burrow", {10: (1, 2, 30, 40), 11: (2, 3, 31, 41)}, group_id=2)
    body = tracks_request([track], {"burrow": 7}, frame_count=100).to_dict()
    assert body["shapes"] == [] and body["tags"] == []
    (sent,) = body["tracks"]
    assert sent["label_id"] == 7 and sent["frame"] == 10 and sent["group"] == 2
    assert sent["source"] == "auto"
    frames = [(s["frame"], s["outside"], s["type"]) for s in sent["shapes"]]
    assert frames == [(10, False, "rectangle"), (11, False, "rectangle"), (12, True, "rectangle")]
    assert sent["shapes"][0]["points"] == [1.0, 2.0, 30.0, 40.0]


def test_an_uploaded_track_stops_across_its_gaps_and_never_past_the_task():
    """The upload drew the box across a gap (a burrow lost, then found again) where the
    CVAT XML stops it, and put an outside shape on a frame past the task's last."""
    box = (1, 2, 30, 40)
    track = Track(3, "burrow", {f: box for f in (0, 1, 2, 10, 11)})
    (sent,) = tracks_request([track], {"burrow": 7}, frame_count=12).to_dict()["tracks"]
    frames = [(s["frame"], s["outside"]) for s in sent["shapes"]]
    assert frames == [(0, False), (1, False), (2, False), (3, True), (10, False), (11, False)]


def test_tracks_become_cvat_video_tracks_unchanged():
    track = Track(3, "burrow", {10: (1, 2, 30, 40)}, group_id=2)
    (video,) = video_tracks([track])
    assert video == VideoTrack(3, "burrow", {10: (1, 2, 30, 40)}, group_id=2)
    video.boxes[11] = (0, 0, 1, 1)
    assert 11 not in track.boxes  # the XML side may edit its copy


def test_track_refuses_what_it_cannot_read(tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    assert main(["track", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "video" in capsys.readouterr().err
    assert main(["track", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert main(["track", str(broken), "--function", "burrow-reid", "--out", str(tmp_path)]) == 2


def test_samples_tow_command_writes_video_and_tracks(tmp_path):
    assert main(["samples", "tow", "--out", str(tmp_path), "--seconds", "2", "--seed", "5"]) == 0
    assert (tmp_path / "video.mp4").stat().st_size > 10_000
    root = ET.parse(tmp_path / "annotations.xml").getroot()
    assert int(root.find("meta/task/size").text) == 50
    assert main(["samples", "tow", "--out", str(tmp_path), "--seconds", "-1"]) == 2


def test_counts_per_minute_start_at_minute_0(tmp_path):
    path = write_counts_per_minute(tmp_path / "c.csv", "st7", [(0, 4), (1, 0), (2, 9)])
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COUNT_COLUMNS
    assert [(r["station"], r["minute"], r["count"]) for r in rows] == [
        ("st7", "0", "4"),
        ("st7", "1", "0"),
        ("st7", "2", "9"),
    ]


def grey_video(path, frames=30, size=(160, 120), fps=10.0) -> Video:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(frames):
        writer.write(np.full((size[1], size[0], 3), 60, np.uint8))
    writer.release()
    return Video(path, fps, frames, size)


def test_track_preview_draws_the_ids_over_a_stretch_of_the_tow(tmp_path):
    video = grey_video(tmp_path / "tow.mp4")
    early = Track(1, "burrow", {f: (10, 20, 60, 70) for f in range(0, 12)}, group_id=1)
    late = Track(2, "burrow", {f: (90, 30, 150, 90) for f in range(15, 30)}, group_id=2)
    mp4 = write_track_preview(video, [early, late], tmp_path / "p.mp4", first=10, count=10)
    capture = cv2.VideoCapture(str(mp4))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    capture.release()
    assert len(frames) == 10  # frames 10 to 19
    grey = np.full_like(frames[0], 60)

    def drawn(frame, x1, y1, x2, y2):  # pixels that are not the grey seabed, around a box
        return (np.abs(frame[y1:y2, x1:x2].astype(int) - grey[y1:y2, x1:x2]) > 40).any(2).sum()

    assert drawn(frames[0], 5, 0, 65, 75) > 100  # frame 10: track 1 only
    assert drawn(frames[0], 85, 0, 155, 95) == 0
    assert drawn(frames[9], 85, 0, 155, 95) > 100  # frame 19: track 2 only
    assert drawn(frames[9], 5, 0, 65, 75) == 0

    gif = write_track_preview(video, [early, late], tmp_path / "p.gif", first=0, count=30)
    from PIL import Image

    with Image.open(gif) as animation:
        assert animation.n_frames == 30  # 10 frames/s: every frame kept


def test_track_preview_refuses_what_it_cannot_write(tmp_path):
    from imagine_assist.errors import UserError

    video = grey_video(tmp_path / "tow.mp4", frames=3)
    with pytest.raises(UserError, match=".mp4 or a .gif"):
        write_track_preview(video, [], tmp_path / "p.avi", first=0, count=3)
    # a video shorter than its header says: no frame there, and no empty .mp4 called a preview
    for name in ("p.mp4", "p.gif"):
        with pytest.raises(UserError, match="has no frames from 0.5 s on"):
            write_track_preview(video, [], tmp_path / name, first=5, count=3)
        assert not (tmp_path / name).exists()


def seabed_video(path, frames=12, size=(640, 480), fps=10.0) -> Video:
    """Mud in the greens of a lit seabed, textured and drifting: most of a GIF's 256 colours
    go to it."""
    rng = np.random.default_rng(5)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(frames):
        noise = cv2.GaussianBlur(rng.normal(0, 1, size[::-1]).astype(np.float32), (0, 0), 3)
        light = (noise - noise.min()) / (noise.max() - noise.min())
        bgr = np.stack([20 + 60 * light, 50 + 150 * light, 40 + 110 * light], -1)
        writer.write(bgr.astype(np.uint8))
    writer.release()
    return Video(path, fps, frames, size)


def test_a_gif_preview_keeps_the_ids_white_whatever_the_tracks_colour(tmp_path):
    """Pillow's own palette once merged the few white pixels of an id with its bar's colour
    on a green seabed: the bar was there, the id was not."""
    from PIL import Image

    from imagine_assist.tow import _track_frame

    video = seabed_video(tmp_path / "tow.mp4")
    for track_id in (0, 7, 14):  # three of supervision's colours: purple, green, blue
        track = Track(track_id, "burrow", {f: (300, 200, 360, 260) for f in range(12)}, 1)
        gif = write_track_preview(video, [track], tmp_path / "p.gif", first=0, count=12)
        with Image.open(gif) as animation:
            for index, image in enumerate(video.frames()):
                drawn = _track_frame(image, [(track, track.boxes[index])], 1.0, video.size, 0)
                animation.seek(index)
                shown = np.asarray(animation.convert("RGB"))
                text = drawn.min(axis=2) >= 230  # the id and the time, white
                assert text.sum() > 30
                assert (shown[text].min(axis=1) >= 200).mean() > 0.9  # 0 before


class StoppedVideo(Video):
    """A tow whose reading is stopped (Ctrl-C) after a few frames."""

    def frames(self):
        for index, frame in enumerate(super().frames()):
            if index == 3:
                raise KeyboardInterrupt
            yield frame


@pytest.mark.parametrize("name", ["p.mp4", "p.gif"])
def test_a_preview_stopped_halfway_leaves_the_earlier_one_and_no_part(tmp_path, name):
    video = grey_video(tmp_path / "tow.mp4", frames=10)
    earlier = write_track_preview(video, [], tmp_path / name, first=0, count=10)
    stopped = StoppedVideo(video.path, video.fps, video.frame_count, video.size)
    with pytest.raises(KeyboardInterrupt):
        write_track_preview(stopped, [], tmp_path / name, first=0, count=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tow.mp4", name])
    if name.endswith(".gif"):
        from PIL import Image

        with Image.open(earlier) as animation:
            assert animation.n_frames == 10
    else:
        capture = cv2.VideoCapture(str(earlier))
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 10  # not cut at the 3rd
        capture.release()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--tow-length-m", "-200"], "--tow-length-m must be a positive number"),
        (["--tow-length-m", "nan"], "--tow-length-m must be a positive number"),
        (["--tow-length-m", "inf"], "--tow-length-m must be a positive number"),
        (["--speed-m-s", "-1"], "--speed-m-s must be a positive number"),
        (["--speed-m-s", "0"], "--speed-m-s must be a positive number"),
        (["--camera-height-m", "0"], "--camera-height-m must be a positive number"),
        (["--fov-deg", "180"], "--fov-deg must lie in [0.1, 179]"),
        (["--fov-deg", "1e-300"], "--fov-deg must lie in [0.1, 179]"),
        (["--camera-height-m", "1e300"], "--camera-height-m must be a positive number up to"),
        (["--tow-length-m", "1e300"], "--tow-length-m must be a positive number up to 1e+06"),
        (["--system-radius-px", "-5"], "--system-radius-px must be a positive number"),
        (["--preview-from", "nan"], "--preview-from must be 0 or more seconds"),
        (["--preview-from", "inf"], "--preview-from must be 0 or more seconds"),
        (["--preview-from", "-1"], "--preview-from must be 0 or more seconds"),
        (["--preview-seconds", "nan"], "--preview-seconds must be 0 or more"),
        (["--preview-seconds", "-3"], "--preview-seconds must be 0 or more"),
    ],
)
def test_a_survey_value_no_tow_has_is_refused_before_the_video_is_read(
    tmp_path, capsys, options, message
):
    """A negative length once wrote a negative density, and NaN a density.json that is not
    JSON. The video here does not exist: the values are refused first."""
    out = tmp_path / "o"
    assert main(["track", str(tmp_path / "none.mp4"), "--out", str(out), *options]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_missing_survey_values_are_named_when_no_density_can_be_given():
    from imagine_assist.tow import Survey

    assert Survey().missing_for_density() is None  # counts only, as asked
    assert Survey(67, 0.75).missing_for_density() == "--tow-length-m (or --speed-m-s)"
    assert Survey(67, 0.75, speed_m_s=0.4).missing_for_density() is None
    assert Survey(tow_length_m=200).missing_for_density() == "--fov-deg, --camera-height-m"


def test_burrow_systems_do_not_depend_on_the_videos_resolution(tow_files, tmp_path):
    """Without the camera's geometry, openings are grouped within a share of the frame's
    width: the same stretch of tow in HD counts the systems it counts at 640 px (a fixed
    190 px radius split HD footage into more systems)."""
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.tow import open_video, track_to_files

    tow, files = tow_files
    source = open_video(files.video)
    width, height = source.size
    clips = {}
    for scale in (1, 2):
        path = tmp_path / f"x{scale}.mp4"
        size = (width * scale, height * scale)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), source.fps, size)
        for _, frame in zip(range(round(30 * source.fps)), source.frames(), strict=False):
            writer.write(cv2.resize(frame[:, :, ::-1], size, interpolation=cv2.INTER_LINEAR))
        writer.release()
        clips[scale] = path
    function = load_function("burrow-detector")
    systems = {}
    for scale, path in clips.items():
        report = track_to_files(
            path, function, tmp_path / f"out{scale}", every=2, preview_seconds=0
        )
        systems[scale] = sorted({t.group_id for t in report.tracks.tracks})
        assert report.counts
    assert len(systems[2]) == len(systems[1]) > 0


@pytest.mark.parametrize(
    ("label", "counted", "count"),
    [
        ("burrow", "burrow systems", 1),
        ("Nephrops_Burrow", "burrow systems", 1),  # a family of one's own names it its way
        ("fish", "fish tracks", 2),
    ],
)
def test_only_burrow_openings_are_grouped_into_systems(tmp_path, label, counted, count):
    """Two objects 5 px apart on a still frame: two burrow openings are one system, two
    fish are two fish, and the counts, density and messages say what they count."""
    from types import SimpleNamespace

    import supervision as sv

    from imagine_assist.errors import UserError
    from imagine_assist.tow import Survey, track_to_files

    video = grey_video(tmp_path / "still.mp4")
    boxes = np.array([[20, 40, 50, 70], [55, 40, 85, 70]], dtype=np.float32)

    def detect(frame):
        return sv.Detections(xyxy=boxes, confidence=np.full(2, 0.9), class_id=np.zeros(2, int))

    function = SimpleNamespace(
        spec=SimpleNamespace(name=f"{label}-detector", label_names=[label]), detect=detect
    )
    survey = Survey(fov_deg=60, camera_height_m=1.0, tow_length_m=10.0)
    report = track_to_files(
        video.path, function, tmp_path / "out", survey=survey, preview_seconds=0
    )
    assert len(report.tracks.tracks) == 2
    assert report.counted == counted
    # the rest of the tow (inf), drawn whole: then a run without a preview leaves none of it
    report = track_to_files(
        video.path, function, tmp_path / "out", survey=survey, preview_seconds=float("inf")
    )
    capture = cv2.VideoCapture(str(report.preview))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == video.frame_count
    capture.release()
    report = track_to_files(
        video.path, function, tmp_path / "out", survey=survey, preview_seconds=0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "annotations.xml",
        "counts_per_minute.csv",
        "counts_per_minute.png",
        "density.json",
    ]
    assert sum(n for _, n in report.counts) == count
    density = json.loads((tmp_path / "out" / "density.json").read_text())
    assert density[counted.replace(" ", "_")] == count
    track_to_files(video.path, function, tmp_path / "out", preview_seconds=0)  # no survey
    assert not (tmp_path / "out" / "density.json").exists()  # not the run before's
    groups = {t.group_id for t in report.tracks.tracks}
    grouped = "burrow" in label.lower()
    assert groups == ({1} if grouped else {None})  # no CVAT group for fish
    if not grouped:
        with pytest.raises(UserError, match="--system-radius-px groups burrow openings"):
            track_to_files(video.path, function, tmp_path / "out2", system_radius_px=10)


def test_a_gif_preview_longer_than_its_cap_is_refused_before_tracking(tmp_path):
    """`--preview-seconds inf --preview tow.gif` on a long tow held every frame in memory."""
    from types import SimpleNamespace

    from imagine_assist.errors import UserError
    from imagine_assist.tow import track_to_files

    video = grey_video(tmp_path / "long.mp4", frames=1300)  # 130 s at 10 frames/s

    def never(frame):
        raise AssertionError("tracked before the preview was checked")

    function = SimpleNamespace(spec=SimpleNamespace(name="b", label_names=["burrow"]), detect=never)
    with pytest.raises(UserError, match=r"a .gif preview runs at most 120 s \(130 s asked\)"):
        track_to_files(
            video.path,
            function,
            tmp_path / "o",
            preview=tmp_path / "o" / "p.gif",
            preview_seconds=float("inf"),
        )


def test_an_every_too_sparse_for_the_camera_speed_is_warned_about(caplog):
    """--every 75 on a 10-minute tow counted 0 of 132 burrow systems, without a word."""
    from imagine_assist.models.track import TowTracks
    from imagine_assist.tow import sightings_per_crossing, warn_if_too_sparse

    # the seabed moves 12 px a frame down a 480 px frame: it crosses in 40 frames
    offsets = np.stack([np.zeros(300), -12.0 * np.arange(300)], axis=1)
    tow = TowTracks([], 300, (640, 480), 25.0, offsets)
    assert sightings_per_crossing(tow, 10) == pytest.approx(4.0)
    with caplog.at_level("WARNING", logger="imagine_assist"):
        assert warn_if_too_sparse(tow, 10) == pytest.approx(4.0)
        assert not caplog.records
        assert warn_if_too_sparse(tow, 30) == pytest.approx(480 / 360)
    assert "at --every 30 the seabed crosses the frame in 1.3 detections" in caplog.text
    assert "--every 20 or less" in caplog.text
    still = TowTracks([], 300, (640, 480), 25.0, np.zeros((300, 2)))
    assert sightings_per_crossing(still, 30) is None  # a camera at rest: nothing to say


def test_a_frame_rate_no_camera_records_at_is_refused_unless_given(tmp_path, capsys):
    """A header patched to 1000 frames/s made a 4 s tow 0.1 s long, and its density 40
    times too high; a rate of 0 silently became 25."""
    from imagine_assist.errors import UserError
    from imagine_assist.tow import open_video

    path = tmp_path / "tow.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 1000.0, (64, 48))
    for _ in range(20):
        writer.write(np.full((48, 64, 3), 60, np.uint8))
    writer.release()
    with pytest.raises(UserError, match="says it runs at 1000 frames/s.*give the rate .* --fps"):
        open_video(path)
    assert open_video(path, fps=25).fps == 25.0 and open_video(path, fps=25).frame_count == 20
    with pytest.raises(UserError, match=r"--fps must lie in \[1, 240\], got 0"):
        open_video(path, fps=0)
    argv = ["track", str(path), "--out", str(tmp_path / "o"), "--function", "burrow-detector"]
    assert main(argv) == 2 and "--fps" in capsys.readouterr().err
    assert main([*argv, "--fps", "25", "--preview-seconds", "0"]) == 0


def test_a_preview_naming_the_tow_video_is_refused_and_the_video_kept(tmp_path):
    """`--preview tow.mp4` for the tow.mp4 being tracked replaced the survey footage with a
    two-second preview."""
    import os
    from types import SimpleNamespace

    from imagine_assist.errors import UserError
    from imagine_assist.tow import track_to_files

    video = grey_video(tmp_path / "tow.mp4", frames=30)
    before = video.path.read_bytes()
    os.symlink(video.path, tmp_path / "link.mp4")

    def never(frame):
        raise AssertionError("tracked before the preview was checked")

    function = SimpleNamespace(spec=SimpleNamespace(name="b", label_names=["burrow"]), detect=never)
    for preview in (video.path, tmp_path / "link.mp4", tmp_path / "." / "tow.mp4"):
        with pytest.raises(UserError, match="is the tow video itself"):
            track_to_files(video.path, function, tmp_path / "o", preview=preview)
    assert video.path.read_bytes() == before


def test_a_rerun_stopped_halfway_leaves_no_earlier_tows_results(tow_files, tracked, tmp_path):
    """Killed as it wrote its CVAT XML, a rerun left that XML (empty, or another tow's
    tracks) beside the earlier tow's counts and plot; a cut-short preview stayed too."""
    import shutil

    from imagine_assist import tow as tow_module

    _, files = tow_files
    out = shutil.copytree(tracked[0], tmp_path / "out")
    (out / ".track_preview.partial.mp4").write_bytes(b"cut short")
    assert (out / "counts_per_minute.csv").is_file() and (out / "density.json").is_file()

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tow_module, "track_video", stopped)
        assert main(["track", str(files.video), "--out", str(out)]) != 0
    left = sorted(p.name for p in out.iterdir())
    assert not set(left) & {*tow_module.TOW_RESULTS, "track_preview.mp4"}, left
    assert ".track_preview.partial.mp4" not in left


def test_a_lamp_dropout_does_not_throw_the_seabed_coordinates(tow_files):
    """Phase correlation of two black frames answers half the frame: ten black frames threw
    the seabed position by thousands of pixels, and burrows found again after them became
    new tracks of a second system."""
    import supervision as sv

    from imagine_assist.models.track import track_video
    from imagine_assist.tow import open_video

    tow, files = tow_files
    frames = list(open_video(files.video).frames())[:120]
    dark = [np.zeros_like(f) if 60 <= i < 70 else f for i, f in enumerate(frames)]

    def offsets(video):
        return track_video(iter(video), lambda f: sv.Detections.empty(), tow.geometry.fps).offsets

    clear, dropped = offsets(frames), offsets(dark)
    steps = np.linalg.norm(np.diff(dropped, axis=0), axis=1)
    usual = np.linalg.norm(np.diff(clear, axis=0), axis=1)
    assert steps.max() < 3 * usual.max() + 1  # no jump across the dark frames
    assert np.linalg.norm(dropped[-1] - clear[-1]) < 0.1 * np.linalg.norm(clear[-1] - clear[0])


@pytest.mark.parametrize("every", [10, 25])
def test_a_sparse_every_still_counts_the_burrows(tow_files, every):
    """At --every 25 (one frame a second) each burrow is seen two or three times while it
    crosses the frame: the first sighting was dropped as unconfirmed and three were needed,
    so a whole tow counted 0 burrows."""
    from imagine_assist.functions.catalog import load_function
    from imagine_assist.models.track import track_video
    from imagine_assist.tow import open_video

    tow, files = tow_files
    function = load_function("burrow-detector")
    dense = track_video(open_video(files.video).frames(), function.detect, tow.geometry.fps)
    sparse = track_video(
        open_video(files.video).frames(), function.detect, tow.geometry.fps, every=every
    )
    assert len(dense.tracks) > 0
    assert len(sparse.tracks) >= 0.7 * len(dense.tracks)


def test_a_dark_low_contrast_seabed_is_still_followed():
    """A spread-of-grey rule for "too flat to follow" also stopped the motion on a dark,
    low-contrast seabed that phase correlation follows well."""
    import cv2

    from imagine_assist.models.track import seabed_shift

    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (200, 400)).astype(np.float32), (0, 0), 3)
    seabed = 20 + texture / texture.std() * 1.5  # dark, and a spread of 1.5 grey levels
    before, after = seabed[40:160, 100:260].copy(), seabed[40:160, 92:252].copy()
    shift = seabed_shift(before, after)
    assert shift is not None and shift[0] == pytest.approx(8, abs=1) and abs(shift[1]) < 1
    black = np.zeros_like(before)
    assert seabed_shift(black, black) is None


def test_one_sighting_starts_one_track():
    """Two openings side by side, both confirmed on the next frame: the closest-overlap
    back-fill gave both tracks the first sighting of one of them."""
    import supervision as sv

    from imagine_assist.models.track import track_video

    frames = [np.full((240, 320, 3), 90, np.uint8)] * 3
    first = [[100, 100, 140, 140], [120, 100, 160, 140]]  # overlapping, side by side
    later = [[100, 100, 140, 140], [108, 100, 148, 140]]
    calls = []

    def detect(frame):
        boxes = np.array(first if not calls else later, np.float32)
        calls.append(1)
        return sv.Detections(xyxy=boxes, confidence=np.full(2, 0.9, np.float32),
                             class_id=np.zeros(2, int))  # fmt: skip

    result = track_video(iter(frames), detect, fps=25.0, min_detections=2)
    starts = sorted(tuple(track.boxes[0]) for track in result.tracks if 0 in track.boxes)
    assert starts == [tuple(map(float, box)) for box in first]
