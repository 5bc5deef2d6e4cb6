"""Whole-tow tracking to files: tracks as CVAT XML, burrow systems per minute, density.

`imagine-assist track <video> --function burrow-detector --out <dir>` runs this: one pass
over the video instead of one CVAT request per frame.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from imagine_assist.cvat.xml import VideoTrack, write_cvat_video_xml
from imagine_assist.errors import UserError
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.models.track import TowTracks, Track, group_systems, track_video

DEFAULT_SYSTEM_RADIUS_PX = 190.0


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


def open_video(path: str | Path) -> Video:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no video at {path}")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UserError(f"{path} is not a video OpenCV can read (try MP4 with H.264 or MPEG-4)")
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        size = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()
    if count <= 0 or size[0] <= 0:
        raise UserError(f"{path} has no readable frames")
    return Video(path, fps, count, size)


@dataclass(frozen=True)
class Survey:
    """The camera geometry needed to turn counts into density (all optional)."""

    fov_deg: float | None = None  # horizontal field of view
    camera_height_m: float | None = None
    tow_length_m: float | None = None
    speed_m_s: float | None = None

    def ground_width_m(self) -> float | None:
        if self.fov_deg is None or self.camera_height_m is None:
            return None
        if not 0 < self.fov_deg < 180 or self.camera_height_m <= 0:
            raise UserError("--fov-deg must lie in (0, 180) and --camera-height-m be positive")
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


def plot_counts_per_minute(counts: list[tuple[int, int]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.5), dpi=120)
    bars = axis.bar([m + 1 for m, _ in counts], [c for _, c in counts], color="#a0522d")
    axis.bar_label(bars)
    axis.set_xlabel("minute of tow")
    axis.set_ylabel("new burrow systems")
    axis.set_xticks([m + 1 for m, _ in counts])
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def track_to_files(
    video_path: str | Path,
    function: DetectorFunction,
    out_dir: str | Path,
    every: int = 1,
    survey: Survey = Survey(),
    system_radius_px: float | None = None,
) -> TowReport:
    video = open_video(video_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width_m = survey.ground_width_m()
    if system_radius_px is None:
        # 0.3 m: openings of one system lie closer than that, distinct systems farther
        system_radius_px = 0.3 / (width_m / video.size[0]) if width_m else DEFAULT_SYSTEM_RADIUS_PX
    label = function.spec.label_names[0]
    result = track_video(
        video.frames(),
        function.detect,
        video.fps,
        every=every,
        label=label,
        frame_count=video.frame_count,
    )
    group_systems(result, system_radius_px)
    counts = result.counts_per_minute()
    report = TowReport(
        out,
        out / "annotations.xml",
        out / "counts_per_minute.csv",
        out / "counts_per_minute.png",
        result,
        counts,
    )
    write_cvat_video_xml(
        report.cvat_xml,
        video_tracks(result.tracks),
        function.spec.label_names,
        result.frame_count,
        result.size,
    )
    station = video.path.stem
    with report.counts_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["station", "counter", "minute", "count"])
        writer.writerows((station, "imagine-assist", minute + 1, n) for minute, n in counts)
    seconds = result.frame_count / result.fps
    length_m = survey.length_m(seconds)
    systems = sum(n for _, n in counts)
    title = f"{station}: {systems} burrow systems in {seconds / 60:.1f} min"
    if width_m and length_m:
        area = width_m * length_m
        report.density = {
            "burrow_systems": systems,
            "ground_width_m": round(width_m, 3),
            "tow_length_m": round(length_m, 2),
            "area_m2": round(area, 2),
            "density_per_m2": round(systems / area, 4),
        }
        (out / "density.json").write_text(json.dumps(report.density, indent=2))
        title += f", {systems / area:.3f} per m²"
    plot_counts_per_minute(counts, report.plot, title)
    return report


def video_tracks(tracks: Iterable[Track]) -> list[VideoTrack]:
    """The tracker's tracks as CVAT for video 1.1 writes them."""
    return [VideoTrack(t.track_id, t.label, dict(t.boxes), t.group_id) for t in tracks]


def tracks_request(tracks: Sequence[Track], label_ids: dict[str, int]):
    """The body of CVAT's PATCH /api/tasks/<id>/annotations?action=create for these tracks."""
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
        shapes = [shape(f, track.boxes[f], False) for f in frames]
        shapes.append(shape(frames[-1] + 1, track.boxes[frames[-1]], True))
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


def upload_tracks(client, task_id: int, tracks: Sequence[Track]) -> None:
    """Add the tracks to a CVAT task's annotations (cvat-sdk client, already logged in)."""
    task = client.tasks.retrieve(task_id)
    label_ids = {label.name: label.id for label in task.get_labels()}
    missing = sorted({t.label for t in tracks} - set(label_ids))
    if missing:
        raise UserError(f"task {task_id} has no label {missing}; add it in CVAT first")
    from cvat_sdk.core.proxies.annotations import AnnotationUpdateAction

    task.update_annotations(tracks_request(tracks, label_ids), action=AnnotationUpdateAction.CREATE)
