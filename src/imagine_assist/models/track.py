"""Whole-video tracking: detections on every k-th frame, linked by ByteTrack in seabed
coordinates, then grouped into burrow systems.

The camera moves over a static seabed, so every burrow moves with the camera. We estimate
that motion between frames (phase correlation on small grey frames) and track boxes in
seabed coordinates, where burrows stand still: association is then easy for ByteTrack even
at 25 px per frame, and openings can be grouped into systems by distance on the seabed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np
import supervision as sv
from tqdm.auto import tqdm

DetectFn = Callable[[np.ndarray], sv.Detections]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
MOTION_WIDTH = 160  # motion is estimated on frames this wide: plenty for a global shift


@dataclass
class Track:
    """One object over time: its box on each frame where it was detected or interpolated."""

    track_id: int
    label: str
    boxes: dict[int, Box] = field(default_factory=dict)
    group_id: int | None = None  # e.g. the burrow system an opening belongs to


def camera_shift(previous: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """How far the scene moved between two small grey frames, in their pixels (dx, dy)."""
    return _phase_shift(previous, current)[0]


def _phase_shift(previous: np.ndarray, current: np.ndarray) -> tuple[tuple[float, float], float]:
    """Phase correlation's shift and its peak (how sure it is)."""
    window = cv2.createHanningWindow(previous.shape[::-1], cv2.CV_32F)
    # copies: OpenCV's phaseCorrelate writes into the arrays it is given
    return cv2.phaseCorrelate(previous.copy(), current.copy(), window)


# Below this peak of the phase correlation two frames share nothing to follow (a lamp
# dropout, a sediment cloud): two black frames answer "half the frame" at 0.0, dark noise
# about 0.004, while consecutive tow frames give 0.87 or more, and blurred ones 0.27. A
# spread of grey levels would not do: a dark, low-contrast seabed has little and is followed.
MIN_SHIFT_RESPONSE = 0.05


def seabed_shift(previous: np.ndarray, current: np.ndarray) -> tuple[float, float] | None:
    """How far the scene moved, as `camera_shift`, or None when the two frames say nothing
    of it."""
    (dx, dy), response = _phase_shift(previous, current)
    if not (np.isfinite(dx) and np.isfinite(dy) and response >= MIN_SHIFT_RESPONSE):
        return None
    return dx, dy


def small_grey(frame: np.ndarray) -> np.ndarray:
    scale = MOTION_WIDTH / frame.shape[1]
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    size = (MOTION_WIDTH, max(1, round(frame.shape[0] * scale)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


@dataclass
class TowTracks:
    tracks: list[Track]
    frame_count: int
    size: tuple[int, int]  # width, height
    fps: float
    offsets: np.ndarray  # (frames, 2): where each frame sits on the seabed, in frame pixels
    systems: dict[int, int] = field(default_factory=dict)  # track id -> system id

    def system_first_frames(self) -> dict[int, int]:
        first: dict[int, int] = {}
        for track in self.tracks:
            system = self.systems.get(track.track_id, track.track_id)
            start = min(track.boxes)
            first[system] = min(first.get(system, start), start)
        return first

    def counts_per_minute(self) -> list[tuple[int, int]]:
        """(minute, new systems first seen in it) for every minute of the video."""
        minutes = max(1, int(np.ceil(self.frame_count / (60 * self.fps))))
        counts = [0] * minutes
        for frame in self.system_first_frames().values():
            counts[min(int(frame / (60 * self.fps)), minutes - 1)] += 1
        return list(enumerate(counts))


def _interpolate(boxes: dict[int, np.ndarray], every: int, last_frame: int) -> dict[int, Box]:
    """Fill the frames between detections linearly (the camera moves smoothly)."""
    frames = sorted(boxes)
    filled: dict[int, Box] = {}
    for start, end in zip(frames, frames[1:] + [None], strict=True):
        filled[start] = tuple(float(v) for v in boxes[start])
        if end is None or end - start > every:
            continue  # a real gap (missed detections): leave it, CVAT shows it as outside
        for frame in range(start + 1, min(end, last_frame + 1)):
            t = (frame - start) / (end - start)
            filled[frame] = tuple(float(v) for v in (1 - t) * boxes[start] + t * boxes[end])
    return filled


def track_video(
    frames: Iterable[np.ndarray],
    detect: DetectFn,
    fps: float,
    every: int = 1,
    label: str = "burrow",
    min_detections: int = 3,
    frame_count: int | None = None,
) -> TowTracks:
    """Detect on every `every`-th frame, track in seabed coordinates, interpolate between."""
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker(
        frame_rate=fps / every,
        lost_track_buffer=max(1, int(fps / every)),  # 0 would end a track at one miss
        # weak detections still extend tracks; new tracks need a confident start
        track_activation_threshold=0.4,
        high_conf_det_threshold=0.5,
        minimum_consecutive_frames=2,
        minimum_iou_threshold=0.2,
    )
    offsets: list[tuple[float, float]] = []
    seen: dict[int, dict[int, np.ndarray]] = {}
    # the last processed frame's unconfirmed boxes (seabed coordinates, frame, frame box):
    # a track confirmed now began there, and that first box places it in its minute
    waiting: list[tuple[np.ndarray, int, np.ndarray]] = []
    previous, position, size, index = None, np.zeros(2), (0, 0), -1
    motion = np.zeros(2)  # the last shift measured, held through frames too flat to measure
    for index, frame in enumerate(tqdm(frames, total=frame_count, desc="tracking", unit="frame")):
        grey = small_grey(frame)
        if previous is not None:
            measured = seabed_shift(previous, grey)
            if measured is not None:
                motion = np.array(measured)
            position = position - motion * (frame.shape[1] / MOTION_WIDTH)
        previous = grey
        offsets.append((float(position[0]), float(position[1])))
        size = (frame.shape[1], frame.shape[0])
        if index % every:
            continue
        detections = detect(frame)
        shift = np.array([*position, *position], dtype=np.float32)
        on_seabed = detections[:]
        on_seabed.xyxy = detections.xyxy + shift  # boxes in seabed coordinates
        tracked = tracker.update(on_seabed)
        pending, confirmed = [], []
        for box, track_id in zip(tracked.xyxy, tracked.tracker_id, strict=True):
            if track_id < 0:
                pending.append((box, index, box - shift))  # not yet confirmed
                continue
            if int(track_id) not in seen:
                confirmed.append((int(track_id), box))
            seen.setdefault(int(track_id), {})[index] = box - shift
        for track_id, (_, start, first_box) in _started_at(confirmed, waiting).items():
            seen[track_id][start] = first_box
        waiting = pending
    frame_total = index + 1
    # A track needs `min_detections` boxes; a sparse `every` sees a burrow only a few times
    # while it crosses the frame (about 2 s at survey speed), so then two are enough.
    needed = min_detections if fps / every >= min_detections else min(2, min_detections)
    tracks = [
        Track(track_id, label, _interpolate(boxes, every, frame_total - 1))
        for track_id, boxes in sorted(seen.items())
        if len(boxes) >= needed
    ]
    return TowTracks(tracks, frame_total, size, fps, np.array(offsets).reshape(-1, 2))


def _started_at(confirmed: list, waiting: list) -> dict[int, tuple]:
    """The unconfirmed sighting of the frame before that each newly confirmed track grew
    from, by one-to-one assignment on their overlap on the seabed, as the tracker itself
    matches (IoU at least `BACKFILL_IOU`): one sighting starts one track."""
    from scipy.optimize import linear_sum_assignment

    if not confirmed or not waiting:
        return {}
    new = np.array([box for _, box in confirmed], dtype=np.float64)
    old = np.array([item[0] for item in waiting], dtype=np.float64)
    iou = sv.box_iou_batch(new, old)
    rows, cols = linear_sum_assignment(-iou)
    return {
        confirmed[r][0]: waiting[c]
        for r, c in zip(rows, cols, strict=True)
        if iou[r, c] >= BACKFILL_IOU
    }


# the tracker's own minimum_iou_threshold: a sighting it could have matched
BACKFILL_IOU = 0.2


def group_systems(result: TowTracks, radius_px: float) -> dict[int, int]:
    """Openings closer than `radius_px` on the seabed (single linkage) form one system."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if not result.tracks:
        return {}
    centres = []
    for track in result.tracks:
        points = [
            ((x1 + x2) / 2 + result.offsets[f][0], (y1 + y2) / 2 + result.offsets[f][1])
            for f, (x1, y1, x2, y2) in track.boxes.items()
        ]
        centres.append(np.mean(points, axis=0))
    if len(centres) == 1:
        labels = np.array([1])
    else:
        labels = fcluster(linkage(np.array(centres), method="single"), radius_px, "distance")
    systems = {
        track.track_id: int(label) for track, label in zip(result.tracks, labels, strict=True)
    }
    for track in result.tracks:
        track.group_id = systems[track.track_id]
    result.systems = systems
    return systems
