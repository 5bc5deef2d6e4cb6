"""`imagine-assist track`: burrows tracked over a whole tow video; counts per minute,
density, CVAT XML, a preview video with the track ids, and the tracks added to a CVAT task."""

from __future__ import annotations

import argparse

from imagine_assist.app.common import (
    MODELS_HELP,
    add_cvat_option,
    box_detector,
    cvat_client,
    cvat_login,
    cvat_url,
)
from imagine_assist.errors import UserError


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "track",
        help="track burrows over a whole video; counts per minute, density, CVAT XML",
        parents=parents,
    )
    parser.add_argument("video", help="the tow video")
    parser.add_argument(
        "--function", default="burrow-detector", help="the box detector whose boxes are tracked"
    )
    parser.add_argument("--out", required=True, help="folder for the results")
    parser.add_argument("--weights", help=".onnx or .pt (default: the family's live model)")
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument("--every", type=int, default=1, help="detect on every k-th frame")
    parser.add_argument(
        "--fps",
        type=float,
        help="the rate the tow was filmed at, frames/s (default: what the video says; "
        "needed when it says none, or a rate no camera records at)",
    )
    parser.add_argument(
        "--fov-deg",
        type=float,
        help="the camera's field of view across the tow, along the frame's width "
        "(default: unknown: no density)",
    )
    parser.add_argument(
        "--camera-height-m",
        type=float,
        help="camera height above the seabed (default: unknown: no density)",
    )
    parser.add_argument(
        "--tow-length-m",
        type=float,
        help="distance covered by the tow (default: from --speed-m-s)",
    )
    parser.add_argument("--speed-m-s", type=float, help="tow speed, if the length is not known")
    parser.add_argument(
        "--system-radius-px",
        type=float,
        help="openings closer than this form one system (default: 0.3 m from the FOV and "
        "height, else 0.3 of the frame's width)",
    )
    parser.add_argument(
        "--preview",
        metavar="FILE",
        help="the preview of the tracks, .mp4 or .gif (default: <out>/track_preview.mp4)",
    )
    parser.add_argument(
        "--preview-from",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="where on the tow the preview starts (default: 0)",
    )
    parser.add_argument(
        "--preview-seconds",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long the preview runs; 0: no preview, inf: to the tow's end (default: 20)",
    )
    parser.add_argument(
        "--upload-to-task",
        type=int,
        metavar="ID",
        help="add the tracks to this CVAT task, on the server of --cvat",
    )
    add_cvat_option(parser, "for --upload-to-task")
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.home import out_folder_held
    from imagine_assist.tow import Survey, task_label_ids, track_to_files, upload_tracks

    if args.every < 1:
        raise UserError("--every must be 1 or more")
    url = None
    if args.upload_to_task is not None:  # checked before the long tracking, not after it
        url = cvat_url(args.cvat)
        cvat_login()
    function = box_detector(args.function, args.weights, args.models)
    if url is not None:  # the server, the task and its label, before the long tracking
        with cvat_client(url) as client:
            task_label_ids(client, args.upload_to_task, function.spec.label_names[:1])
    survey = Survey(args.fov_deg, args.camera_height_m, args.tow_length_m, args.speed_m_s)
    with out_folder_held(args.out, "track"):
        report = track_to_files(
            args.video,
            function,
            args.out,
            args.every,
            survey,
            args.system_radius_px,
            preview=args.preview,
            preview_from_s=args.preview_from,
            preview_seconds=args.preview_seconds,
            fps=args.fps,
        )
    systems = sum(n for _, n in report.counts)
    print(
        f"{len(report.tracks.tracks)} tracks, {systems} {report.counted} over "
        f"{len(report.counts)} min -> {report.out_dir}"
    )
    if report.density:
        print(
            f"density {report.density['density_per_m2']} {report.counted} per m² "
            f"over {report.density['area_m2']} m²"
        )
    elif (missing := survey.missing_for_density()) is not None:
        print(f"no density: it needs {missing} as well")
    if report.preview is not None:
        print(f"tracks drawn on the tow: {report.preview}")
    if url is not None:
        with cvat_client(url) as client:
            upload_tracks(
                client, args.upload_to_task, report.tracks.tracks, report.tracks.frame_count
            )
        print(f"uploaded {len(report.tracks.tracks)} tracks to task {args.upload_to_task}")
    return 0
