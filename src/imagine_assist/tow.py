"""Whole-tow tracking to files: tracks as CVAT XML, burrow systems per minute, density, and a
preview video of a stretch of the tow with the track ids drawn.

`imagine-assist track <video> --function burrow-detector --out <dir>` runs this: one pass
over the video instead of one CVAT request per frame.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from imagine_assist.cvat.xml import VideoTrack, write_cvat_video_xml
from imagine_assist.errors import UserError
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.models.track import (
    Box,
    TowTracks,
    Track,
    group_systems,
    track_video,
)

log = logging.getLogger(__name__)

# Openings of one burrow system lie within about 0.3 m of each other. Without the camera's
# geometry the frame is taken to span about 1 m of seabed, as UWTV frames roughly do, so the
# radius is 0.3 of the frame's width: 190 px at 640 px, and the same on HD footage of the
# same view, which a fixed pixel radius would split into more systems.
SYSTEM_RADIUS_M = 0.3
DEFAULT_SYSTEM_RADIUS_WIDTHS = 0.3
# counts_per_minute.csv (docs/tracking.md). Minutes are numbered as the tow's own timeline:
# minute 0 holds the frames of its first 60 s, as in the ground truth of a tow.
COUNT_COLUMNS = ("station", "counter", "minute", "count")
# Only burrow openings are grouped into systems (a label naming a burrow, in any case:
# `burrow`, `Burrow`, `nephrops_burrow`); any other tracked label counts its tracks.
GROUPED_LABEL = "burrow"
PREVIEW_SECONDS = 20.0
DEFAULT_PREVIEW = "track_preview.mp4"  # in the output folder
PREVIEW_MAX_SIDE = 640  # the preview is for checking ids, not for measuring
GIF_MAX_SECONDS = 120.0  # 1,200 frames of 640 px held at once: about 400 MB
GIF_MAX_FPS = 10.0  # GIF frames are kept at most this often (a GIF of every frame is huge)


@dataclass(frozen=True)
class Video:
    path: Path
    fps: float
    frame_count: int
    size: tuple[int, int]

    def frames(self) -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


# Frame rates a survey camera records at; a container reporting another (0 for a raw
# stream, 1000 for a patched header) would scale every minute, length and density.
FPS_RANGE = (1.0, 240.0)
MAX_FRAMES = 50_000_000  # a header's frame count past this is garbage: the frames are counted


def open_video(path: str | Path, fps: float | None = None) -> Video:
    """The video's frame rate (`fps`: the user's, over what its container says), frame
    count and size."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no video at {path}")
    if fps is not None and not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise UserError(f"--fps must lie in [{FPS_RANGE[0]:g}, {FPS_RANGE[1]:g}], got {fps:g}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UserError(f"{path} is not a video OpenCV can read (try MP4 with H.264 or MPEG-4)")
        reported = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        size = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        if not (math.isfinite(count) and 0 < count <= MAX_FRAMES):
            # a raw stream's header holds no count (OpenCV says -1.9e14): count by reading
            count = 0
            while capture.grab():
                count += 1
        count = int(count)
    finally:
        capture.release()
    if count <= 0 or size[0] <= 0:
        raise UserError(f"{path} has no readable frames")
    if fps is None:
        if not (math.isfinite(reported) and FPS_RANGE[0] <= reported <= FPS_RANGE[1]):
            raise UserError(
                f"{path} says it runs at {reported:g} frames/s, which no survey camera "
                "records at: give the rate it was filmed at with --fps (minutes, tow length "
                "and density are counted from it)"
            )
        fps = reported
    return Video(path, float(fps), count, size)


@dataclass(frozen=True)
class Survey:
    """The camera geometry needed to turn counts into density (all optional)."""

    fov_deg: float | None = None  # field of view across the tow (the frame's width)
    camera_height_m: float | None = None
    tow_length_m: float | None = None
    speed_m_s: float | None = None

    def check(self) -> None:
        """Refuse a value no camera or tow has, before the tracking: a negative length or
        speed would write a negative density, and NaN one that is not valid JSON."""
        if self.fov_deg is not None and not 0.1 <= self.fov_deg <= 179:
            raise UserError(f"--fov-deg must lie in [0.1, 179], got {self.fov_deg:g}")
        # far past any sledge, tow or ship, and short of numbers whose area overflows to
        # Infinity (not valid JSON) or whose density comes out at 1e300
        for option, value, most in (
            ("--camera-height-m", self.camera_height_m, 1000.0),
            ("--tow-length-m", self.tow_length_m, 1e6),
            ("--speed-m-s", self.speed_m_s, 100.0),
        ):
            if value is not None and not (math.isfinite(value) and 0 < value <= most):
                raise UserError(f"{option} must be a positive number up to {most:g}, got {value:g}")

    def missing_for_density(self) -> str | None:
        """What is missing for a density, in the options' words; None when nothing is or
        when no survey value was given at all (counts only, as asked)."""
        given = [self.fov_deg, self.camera_height_m, self.tow_length_m, self.speed_m_s]
        if all(value is None for value in given):
            return None
        missing = [
            option
            for option, value in (
                ("--fov-deg", self.fov_deg),
                ("--camera-height-m", self.camera_height_m),
            )
            if value is None
        ]
        if self.tow_length_m is None and self.speed_m_s is None:
            missing.append("--tow-length-m (or --speed-m-s)")
        return ", ".join(missing) or None

    def ground_width_m(self) -> float | None:
        if self.fov_deg is None or self.camera_height_m is None:
            return None
        self.check()
        return 2 * self.camera_height_m * math.tan(math.radians(self.fov_deg) / 2)

    def length_m(self, seconds: float) -> float | None:
        if self.tow_length_m is not None:
            return self.tow_length_m
        return self.speed_m_s * seconds if self.speed_m_s is not None else None


@dataclass
class TowReport:
    out_dir: Path
    cvat_xml: Path
    counts_csv: Path
    plot: Path
    tracks: TowTracks
    counts: list[tuple[int, int]]
    density: dict = field(default_factory=dict)
    preview: Path | None = None
    counted: str = "burrow systems"  # what the counts are of, for messages and titles


def plot_counts_per_minute(
    counts: list[tuple[int, int]], path: Path, title: str, counted: str = "burrow systems"
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5), dpi=120)
    bars = axis.bar([m for m, _ in counts], [c for _, c in counts], color="#a0522d")
    axis.bar_label(bars)
    axis.set_xlabel("minute of tow (from 0)")
    axis.set_ylabel(f"new {counted}")
    axis.set_xticks([m for m, _ in counts])
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_counts_per_minute(path: Path, station: str, counts: list[tuple[int, int]]) -> Path:
    """`COUNT_COLUMNS`, one row per minute of the tow, minutes from 0."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COUNT_COLUMNS)
        writer.writerows((station, "imagine-assist", minute, n) for minute, n in counts)
    return path


def track_to_files(
    video_path: str | Path,
    function: DetectorFunction,
    out_dir: str | Path,
    every: int = 1,
    survey: Survey = Survey(),
    system_radius_px: float | None = None,
    preview: str | Path | None = None,
    preview_from_s: float = 0.0,
    preview_seconds: float = PREVIEW_SECONDS,
    fps: float | None = None,
) -> TowReport:
    """`preview`: where the preview video goes (`.mp4` or `.gif`; default
    `<out>/track_preview.mp4`); `preview_seconds` 0 writes none. `fps`: the rate the tow
    was filmed at, over what the video's container says."""
    survey.check()
    if system_radius_px is not None and not (
        math.isfinite(system_radius_px) and system_radius_px > 0
    ):
        raise UserError(f"--system-radius-px must be a positive number, got {system_radius_px:g}")
    label = function.spec.label_names[0]
    grouped = GROUPED_LABEL in label.lower()
    if system_radius_px is not None and not grouped:
        raise UserError(
            f"--system-radius-px groups burrow openings into systems; {function.spec.name} "
            f"tracks '{label}', and each of its tracks counts on its own"
        )
    # the preview's settings are checked before the long tracking, not after it
    if not (math.isfinite(preview_from_s) and preview_from_s >= 0):
        raise UserError(f"--preview-from must be 0 or more seconds, got {preview_from_s:g}")
    if not preview_seconds >= 0:  # NaN too; inf is the rest of the tow
        raise UserError(f"--preview-seconds must be 0 or more, got {preview_seconds:g}")
    video = open_video(video_path, fps)
    out = Path(out_dir)
    preview_path = Path(preview) if preview else out / DEFAULT_PREVIEW
    check_preview_path(preview_path)
    if preview_seconds > 0 and _same_file(preview_path, Path(video_path)):
        # the preview is written in its place at the end: a tow's footage gone for good
        raise UserError(
            f"the preview {preview_path} is the tow video itself; give another --preview"
        )
    first_previewed = round(preview_from_s * video.fps)
    if preview_seconds > 0 and first_previewed >= video.frame_count:
        raise UserError(
            f"the preview starts at {preview_from_s:g} s, after the tow's end "
            f"({video.frame_count / video.fps:.1f} s)"
        )
    previewed = (
        video.frame_count - first_previewed
        if math.isinf(preview_seconds)
        else max(1, round(preview_seconds * video.fps))
    )
    if preview_seconds > 0 and preview_path.suffix.lower() == ".gif":
        shown = min(previewed, video.frame_count - first_previewed) / video.fps
        if shown > GIF_MAX_SECONDS:  # a GIF is made whole in memory, then written
            raise UserError(
                f"a .gif preview runs at most {GIF_MAX_SECONDS:g} s ({shown:.0f} s asked): "
                "give a shorter --preview-seconds, or an .mp4 preview for a longer stretch"
            )
    out.mkdir(parents=True, exist_ok=True)
    # An earlier run's results go as this one starts: a run stopped halfway must not leave
    # its CVAT XML beside another tow's counts, plot or preview (as predict does).
    for name in (*TOW_RESULTS, DEFAULT_PREVIEW):
        (out / name).unlink(missing_ok=True)
    for target in (out / DEFAULT_PREVIEW, preview_path):  # a preview cut short by a kill
        preview_partial(target).unlink(missing_ok=True)
    width_m = survey.ground_width_m()
    if system_radius_px is None:
        metres_per_px = width_m / video.size[0] if width_m else None
        system_radius_px = (
            SYSTEM_RADIUS_M / metres_per_px
            if metres_per_px
            else DEFAULT_SYSTEM_RADIUS_WIDTHS * video.size[0]
        )
    result = track_video(
        video.frames(),
        function.detect,
        video.fps,
        every=every,
        label=label,
        frame_count=video.frame_count,
    )
    if grouped:  # otherwise each track counts on its own, with no group (as tracked)
        group_systems(result, system_radius_px)
    warn_if_too_sparse(result, every)
    counts = result.counts_per_minute()
    report = TowReport(
        out,
        out / "annotations.xml",
        out / "counts_per_minute.csv",
        out / "counts_per_minute.png",
        result,
        counts,
        counted="burrow systems" if grouped else f"{label} tracks",
    )
    write_cvat_video_xml(
        report.cvat_xml,
        video_tracks(result.tracks),
        function.spec.label_names,
        result.frame_count,
        result.size,
    )
    station = video.path.stem
    write_counts_per_minute(report.counts_csv, station, counts)
    seconds = result.frame_count / result.fps
    length_m = survey.length_m(seconds)
    systems = sum(n for _, n in counts)
    title = f"{station}: {systems} {report.counted} in {seconds / 60:.1f} min"
    if width_m and length_m:
        area = width_m * length_m
        report.density = {
            report.counted.replace(" ", "_"): systems,
            "ground_width_m": round(width_m, 3),
            "tow_length_m": round(length_m, 2),
            "area_m2": round(area, 2),
            "density_per_m2": round(systems / area, 4),
        }
        (out / "density.json").write_text(json.dumps(report.density, indent=2))
        title += f", {systems / area:.3f} per m²"
    plot_counts_per_minute(counts, report.plot, title, report.counted)
    if preview_seconds > 0:
        report.preview = write_track_preview(
            video,
            result.tracks,
            preview_path,
            first_previewed,
            previewed,
        )
    return report


# A burrow seen on fewer detections than this while it crosses the frame is often missed:
# a track needs two sightings at a sparse --every. On the synthetic 10-minute tow (132
# systems, 25 frames/s), --every 25 gives 2.3 sightings and counts 134; 40 gives 1.4 and
# counts 104; 50 gives 1.1 and 42; 75 gives 0.8 and none.
MIN_SIGHTINGS = 2


def sightings_per_crossing(result: TowTracks, every: int) -> float | None:
    """How many detections see a point of the seabed while it crosses the frame: the
    frame's extent along the tow over the median seabed motion between two detections
    (None: the camera hardly moved, or the tow is too short to tell)."""
    offsets = np.asarray(result.offsets, dtype=float)
    if every < 1 or len(offsets) <= every:
        return None
    steps = offsets[every:] - offsets[:-every]
    step = np.median(np.abs(steps), axis=0)  # (dx, dy) between two detections
    along = int(np.argmax(step))
    if step[along] < 1:
        return None
    return result.size[along] / float(step[along])


def warn_if_too_sparse(result: TowTracks, every: int) -> float | None:
    """A warning when `--every` detects too seldom for the camera's speed: the counts then
    fall towards 0 without a sign (75 on a 10-minute tow counted 0 of 132 systems)."""
    sightings = sightings_per_crossing(result, every)
    if sightings is not None and sightings < MIN_SIGHTINGS:
        largest = max(1, int(every * sightings / MIN_SIGHTINGS))
        log.warning(
            "at --every %d the seabed crosses the frame in %.1f detections: burrows are seen "
            "too seldom to be tracked, and the counts are too low. Detect more often "
            "(--every %d or less)",
            every,
            sightings,
            largest,
        )
    return sightings


# what `track_tow` writes into its folder, besides the preview
TOW_RESULTS = ("annotations.xml", "counts_per_minute.csv", "counts_per_minute.png", "density.json")


def preview_partial(target: Path) -> Path:
    """Where a preview is written before it is moved to `target` whole."""
    return target.with_name(f".{target.stem}.partial{target.suffix}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_preview_path(path: Path) -> None:
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise UserError(f"the track preview is an .mp4 or a .gif, not {path.name}")


def write_track_preview(
    video: Video, tracks: Sequence[Track], target: Path, first: int, count: int
) -> Path:
    """Frames `first` to `first + count - 1` of the video with each track's box and id drawn
    (`#id` and its burrow system, `s<group>`), and the time on the tow in the corner: what a
    surveyor looks at to check the tracker without CVAT. `.mp4` (OpenCV, mp4v) or `.gif`."""
    check_preview_path(target)
    suffix = target.suffix.lower()
    by_frame: dict[int, list[tuple[Track, Box]]] = {}
    for track in tracks:
        for frame, box in track.boxes.items():
            if first <= frame < first + count:
                by_frame.setdefault(frame, []).append((track, box))
    scale = min(1.0, PREVIEW_MAX_SIDE / max(video.size))
    size = (round(video.size[0] * scale), round(video.size[1] * scale))
    step = max(1, round(video.fps / GIF_MAX_FPS)) if suffix == ".gif" else 1
    target.parent.mkdir(parents=True, exist_ok=True)
    # written beside the target, then put in its place: a run stopped while writing leaves
    # no cut-short preview under the preview's name
    partial = preview_partial(target)
    drawn = (
        _track_frame(image, by_frame.get(index, []), scale, size, index / video.fps)
        for index, image in islice(enumerate(video.frames()), first, first + count, step)
    )
    if suffix == ".gif":
        pictures = [gif_picture(frame) for frame in drawn]
        if not pictures:
            raise UserError(f"{video.path} has no frames from {first / video.fps:.1f} s on")
        try:
            pictures[0].save(
                partial,
                format="GIF",
                save_all=True,
                append_images=pictures[1:],
                duration=round(1000 * step / video.fps),
                loop=0,
            )
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return partial.replace(target)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), video.fps, size)
    if not writer.isOpened():
        raise UserError(f"OpenCV cannot write {target} with the mp4v codec; try a .gif")
    written, complete = 0, False
    try:
        for frame in drawn:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            written += 1
        complete = written > 0  # none: a video shorter than its header says
    finally:
        writer.release()
        if not complete:
            partial.unlink(missing_ok=True)
    if not written:
        raise UserError(f"{video.path} has no frames from {first / video.fps:.1f} s on")
    return partial.replace(target)


def gif_picture(frame: np.ndarray):
    """An RGB frame in a GIF's 256 colours, with the drawing's own colours kept exact: the
    white of the ids, black, and every track colour. Left to Pillow's adaptive palette, a
    few hundred white text pixels on a seabed of greens were merged with the label's bar
    colour, and the ids vanished from the bar."""
    import supervision as sv
    from PIL import Image

    drawing = [(255, 255, 255), (0, 0, 0)]
    drawing += [colour.as_rgb() for colour in sv.ColorPalette.DEFAULT.colors]
    picture = Image.fromarray(frame)
    free = 256 - len(drawing)
    adaptive = picture.quantize(free, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette = (adaptive.getpalette() or [])[: 3 * free]
    palette += [0] * (3 * free - len(palette))  # a frame of few colours fills fewer entries
    palette += [channel for colour in drawing for channel in colour]
    holder = Image.new("P", (1, 1))
    holder.putpalette(palette)
    return picture.quantize(palette=holder, dither=Image.Dither.NONE)


def _track_frame(
    image: np.ndarray,
    present: list[tuple[Track, Box]],
    scale: float,
    size: tuple[int, int],
    seconds: float,
) -> np.ndarray:
    import supervision as sv

    from imagine_assist.predict import draw_labelled_boxes

    if scale < 1.0:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if present:
        detections = sv.Detections(
            xyxy=np.array([box for _, box in present], dtype=np.float32) * scale,
            class_id=np.zeros(len(present), dtype=int),
            tracker_id=np.array([track.track_id for track, _ in present]),
        )
        labels = [
            f"#{t.track_id}" + (f" s{t.group_id}" if t.group_id is not None else "")
            for t, _ in present
        ]
        image = draw_labelled_boxes(image, detections, labels, color_lookup=sv.ColorLookup.TRACK)
    else:
        image = image.copy()
    minute, second = divmod(seconds, 60)
    cv2.putText(
        image,
        f"minute {int(minute)}  {int(minute):02d}:{second:04.1f}",
        (6, size[1] - 8),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return image


def video_tracks(tracks: Iterable[Track]) -> list[VideoTrack]:
    """The tracker's tracks as CVAT for video 1.1 writes them."""
    return [VideoTrack(t.track_id, t.label, dict(t.boxes), t.group_id) for t in tracks]


def tracks_request(tracks: Sequence[Track], label_ids: dict[str, int], frame_count: int):
    """The body of CVAT's PATCH /api/tasks/<id>/annotations?action=create for these tracks:
    as the CVAT XML has them (`cvat.xml`), an `outside` shape on the frame after each run of
    frames ends, so CVAT does not draw the box across a gap (a burrow lost and found again),
    and none past the task's last frame."""
    from cvat_sdk import models

    def shape(frame: int, box, outside: bool):
        return models.TrackedShapeRequest(
            type=models.ShapeType("rectangle"),
            frame=frame,
            points=[float(v) for v in box],
            outside=outside,
            occluded=False,
            keyframe=True,
            attributes=[],
        )

    requests = []
    for track in tracks:
        frames = sorted(track.boxes)
        shapes = []
        for frame in frames:
            shapes.append(shape(frame, track.boxes[frame], False))
            if frame + 1 not in track.boxes and frame + 1 < frame_count:
                shapes.append(shape(frame + 1, track.boxes[frame], True))
        requests.append(
            models.LabeledTrackRequest(
                frame=frames[0],
                label_id=label_ids[track.label],
                group=track.group_id or 0,
                source="auto",
                shapes=shapes,
                attributes=[],
            )
        )
    return models.PatchedLabeledDataRequest(tracks=requests, shapes=[], tags=[])


def task_label_ids(client, task_id: int, labels) -> tuple[object, dict[str, int]]:
    """A CVAT task (cvat-sdk client, logged in) and its label ids, refused if it lacks one
    of `labels`. `track --upload-to-task` asks before tracking too: a server out of reach,
    a task that is not there or lacks the label was found only after an hour's tow."""
    task = client.tasks.retrieve(task_id)
    label_ids = {label.name: label.id for label in task.get_labels()}
    missing = sorted(set(labels) - set(label_ids))
    if missing:
        raise UserError(f"task {task_id} has no label {missing}; add it in CVAT first")
    return task, label_ids


def upload_tracks(client, task_id: int, tracks: Sequence[Track], frame_count: int) -> None:
    """Add the tracks to a CVAT task's annotations (cvat-sdk client, already logged in);
    `frame_count`: the tow's frames, the task's."""
    task, label_ids = task_label_ids(client, task_id, {t.label for t in tracks})
    from cvat_sdk.core.proxies.annotations import AnnotationUpdateAction

    # the task's own frame count where CVAT gives it: it may count frames OpenCV did not decode
    size = getattr(task, "size", None)
    frames = size if isinstance(size, int) and size > 0 else frame_count
    task.update_annotations(
        tracks_request(tracks, label_ids, frames), action=AnnotationUpdateAction.CREATE
    )
