"""`imagine-assist samples`: write a synthetic dataset (YOLO + CVAT XML) or a tow video."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagine_assist.app.common import family_help, positive_int
from imagine_assist.errors import UserError


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "samples",
        help="write a synthetic dataset (YOLO + CVAT XML), or a tow video",
        parents=parents,
    )
    parser.add_argument(
        "family",
        help=family_help("a family with a synthetic generator")
        + "; tow: a synthetic UWTV tow video with its tracks",
    )
    parser.add_argument("--out", required=True, help="a folder for the dataset")
    parser.add_argument("-n", type=positive_int, default=20, help="number of images")
    parser.add_argument("--seconds", type=float, default=60.0, help="tow: length of the video")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from imagine_assist.samples import SAMPLE_FAMILIES, generate_tow, write_dataset, write_tow

    if args.family == "tow":
        if not 0 < args.seconds <= 3600:
            raise UserError("--seconds must lie in (0, 3600]")
        files = write_tow(generate_tow(args.seconds, seed=args.seed), args.out)
        print(
            f"tow video {files.video}, CVAT for video XML {files.annotations}, "
            f"true counts {files.counts}"
        )
        return 0
    from imagine_assist.families import get_family
    from imagine_assist.samples import family_samples

    family = get_family(args.family)
    held = [name for name in ("data.yaml", "annotations.xml", "images", "labels")
            if (Path(args.out) / name).exists()]  # fmt: skip
    if held:  # a smaller set written over a larger one would leave the larger one's images
        raise UserError(
            f"--out {args.out} already holds a dataset ({', '.join(held)}): name a new folder"
        )
    generated = family_samples(family, args.n, seed=args.seed)
    labels = family.labels or SAMPLE_FAMILIES[family.synthetic].labels
    samples = tqdm(generated, total=args.n, unit="image")
    files = write_dataset(args.out, samples, labels)
    print(f"{files.image_count} images: YOLO dataset {files.data_yaml}, CVAT XML {files.cvat_xml}")
    return 0
