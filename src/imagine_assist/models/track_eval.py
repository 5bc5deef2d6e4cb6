"""Tracking quality against ground truth: CLEAR (MOTA), Identity (IDF1) and HOTA from the
`trackers` package (TrackEval-compatible), plus the error in counts per minute."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from imagine_assist.models.track import Box, Track


def write_mot(rows: Iterable[tuple[int, int, Box]], path: Path) -> Path:
    """MOT Challenge text: frame (1-based), id, left, top, width, height, then "consider",
    class and visibility, all 1: MOT17's evaluation keeps only class-1 rows of the ground
    truth, so both files use the same."""
    with path.open("w") as handle:
        for frame, track_id, (x1, y1, x2, y2) in sorted(rows, key=lambda r: (r[0], r[1])):
            box = f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}"
            handle.write(f"{frame + 1},{track_id},{box},1,1,1\n")
    return path


def track_rows(tracks: Iterable[Track]) -> list[tuple[int, int, Box]]:
    return [(frame, track.track_id, box) for track in tracks for frame, box in track.boxes.items()]


def tracking_metrics(
    truth: list[tuple[int, int, Box]], predicted: list[tuple[int, int, Box]]
) -> dict[str, float]:
    from trackers.eval import evaluate_mot_sequence

    with tempfile.TemporaryDirectory() as folder:
        gt = write_mot(truth, Path(folder) / "gt.txt")
        if not predicted:  # an empty tracker file is refused by the loader
            return {"MOTA": 0.0, "IDF1": 0.0, "HOTA": 0.0, "IDSW": 0}
        tracked = write_mot(predicted, Path(folder) / "tracker.txt")
        result = evaluate_mot_sequence(gt, tracked, metrics=["CLEAR", "HOTA", "Identity"])
    return {
        "MOTA": float(result.CLEAR.MOTA),
        "IDF1": float(result.Identity.IDF1),
        "HOTA": float(result.HOTA.HOTA),
        "IDSW": int(result.CLEAR.IDSW),
        "recall": float(result.CLEAR.CLR_Re),
        "precision": float(result.CLEAR.CLR_Pr),
    }


def count_errors(truth: list[tuple[int, int]], counted: list[tuple[int, int]]) -> dict:
    """Per-minute errors of counted burrow systems, and the mean relative error."""
    true = dict(truth)
    found = dict(counted)
    minutes = sorted(set(true) | set(found))
    rows = [(m, true.get(m, 0), found.get(m, 0)) for m in minutes]
    relative = [(f - t) / t for _, t, f in rows if t > 0]
    total_true, total_found = sum(true.values()), sum(found.values())
    return {
        "per_minute": [{"minute": m, "true": t, "counted": f} for m, t, f in rows],
        "mean_relative_error": sum(relative) / len(relative) if relative else 0.0,
        "mean_absolute_relative_error": sum(abs(r) for r in relative) / len(relative)
        if relative
        else 0.0,
        "total_relative_error": (total_found - total_true) / total_true if total_true else 0.0,
    }
