"""Whole-tow tracking quality and speed on a held-out synthetic tow.

    .venv/bin/python tests/benchmarks/eval_tow.py [--minutes 2] [--seed 4242] [--every 1]

The tow is generated from a seed no development or training run used, written as an
MP4, and tracked with `imagine-assist track`'s pipeline (the bundled burrow detector
unless --models says otherwise). It reports MOTA, IDF1 and HOTA from the `trackers`
package (TrackEval-compatible), the burrow-system count per minute against the ground
truth, and frames per second of the tracking pass. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--models")
    parser.add_argument("--json", help="write the figures to this file too")
    parser.add_argument("--write", help="write a Markdown report to this file")
    args = parser.parse_args()

    from imagine_assist.functions.catalog import load_function
    from imagine_assist.models.track_eval import count_errors, track_rows, tracking_metrics
    from imagine_assist.samples import counts_per_minute, generate_tow, write_tow
    from imagine_assist.tow import Survey, track_to_files

    tow = generate_tow(args.minutes * 60, seed=args.seed)
    work = Path(tempfile.mkdtemp(prefix="eval-tow-"))
    files = write_tow(tow, work / "tow")
    truth = [(f.index, o.track_id, o.xyxy) for f in tow.frames() for o in f.objects]
    function = load_function("burrow-detector", models_dir=args.models)
    geometry = tow.geometry
    # the survey geometry a user would give: 1 m seen across at 0.75 m height
    fov = 2 * __import__("math").degrees(__import__("math").atan(geometry.ground_width_m / 1.5))
    survey = Survey(fov_deg=fov, camera_height_m=0.75, tow_length_m=tow.tow_length_m)
    started = time.perf_counter()
    report = track_to_files(files.video, function, work / "out", args.every, survey)
    seconds = time.perf_counter() - started
    metrics = tracking_metrics(truth, track_rows(report.tracks.tracks))
    errors = count_errors(counts_per_minute(tow), report.counts)
    true_density = len(tow.systems) / (geometry.ground_width_m * tow.tow_length_m)
    figures = {
        "tow": {
            "minutes": args.minutes,
            "seed": args.seed,
            "frames": tow.frame_count,
            "size": [geometry.width, geometry.height],
            "every": args.every,
        },
        "tracking": metrics,
        "counts": errors,
        "density": {"true": round(true_density, 4), **report.density},
        "speed": {
            "seconds": round(seconds, 1),
            "fps": round(tow.frame_count / seconds, 1),
            "realtime_factor": round(tow.frame_count / geometry.fps / seconds, 2),
        },
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    if args.write:
        Path(args.write).write_text(markdown(figures, " ".join(sys.argv[1:])))


def markdown(figures: dict, arguments: str) -> str:
    tracking, counts, speed = figures["tracking"], figures["counts"], figures["speed"]
    tow = figures["tow"]
    lines = [
        "# Whole-tow tracking quality",
        "",
        f"Produced by `python tests/benchmarks/eval_tow.py {arguments}` on "
        f"{time.strftime('%Y-%m-%d')}: a held-out synthetic tow of {tow['minutes']:g} minutes "
        f"({tow['frames']} frames, {tow['size'][0]}x{tow['size'][1]}, seed {tow['seed']}, "
        "used by no development or training run), written as MP4 and tracked by "
        f"`imagine-assist track` with the bundled burrow detector (detection on every "
        f"{tow['every']}. frame). Metrics from the `trackers` package (TrackEval-compatible).",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| IDF1 | {tracking['IDF1']:.3f} | >= 0.8 |",
        f"| MOTA | {tracking['MOTA']:.3f} | |",
        f"| HOTA | {tracking['HOTA']:.3f} | |",
        f"| ID switches | {tracking['IDSW']} | |",
        f"| mean error of burrow systems per minute | {counts['mean_relative_error']:+.1%} "
        "| within +-10 % |",
        f"| mean absolute error per minute | {counts['mean_absolute_relative_error']:.1%} | |",
        f"| error of the whole tow's count | {counts['total_relative_error']:+.1%} | |",
        f"| tracking speed on 2 cores | {speed['fps']} frames/s, "
        f"{speed['realtime_factor']}x real time | >= 1x |",
        "",
        "| minute (from 0) | true systems | counted |",
        "|---|---|---|",
    ]
    lines += [f"| {r['minute']} | {r['true']} | {r['counted']} |" for r in counts["per_minute"]]
    density = figures["density"]
    if "density_per_m2" in density:
        lines += [
            "",
            f"Density: {density['density_per_m2']} burrow systems per m² counted over "
            f"{density['area_m2']} m², against {density['true']} in the ground truth.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
