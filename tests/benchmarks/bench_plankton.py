"""Speed of ZooScan separation: one scan's worth of vignettes through `imagine-assist separate`.

    .venv/bin/python tests/benchmarks/bench_plankton.py [-n 2000] [--seed 6060] \\
        [--real ../shared/data/real-train/plankton/zooscan-85457] [--write docs/benchmarks.md]

Generates `n` vignettes as JPEG files (not timed), or with `--real DIR` reads the real
vignettes in DIR (up to about 1,340 px), then times the whole batch route (read,
classify, separate, write the organism vignettes, separation images and EcoTaxa TSV) three
ways in the same run: the trained models in two worker processes (the default), the same in
one process, and the classical watershed in one process (the baseline). Not collected by
pytest: no timing assertions in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=6060)
    parser.add_argument("--real", type=Path, help="a folder of real vignettes to time instead")
    parser.add_argument("--write", help="also write the section into this Markdown file")
    args = parser.parse_args()

    from imagine_assist.functions.catalog import get_spec
    from imagine_assist.functions.separator import SeparatorFunction
    from imagine_assist.samples import generate_plankton
    from imagine_assist.zooscan import SeparatorSource, separate_to_files

    work = Path(tempfile.mkdtemp(prefix="bench-plankton-"))
    scan = work / "scan"
    if args.real:
        scan = args.real
        what = f"{len(list(scan.iterdir()))} real vignettes from {scan}"
    else:
        scan.mkdir()
        samples = generate_plankton(args.n, seed=args.seed)
        for sample in tqdm(samples, total=args.n, desc="writing vignettes", unit="vignette"):
            Image.fromarray(sample.image).save(scan / sample.name, quality=92)
        what = f"{args.n} generated vignettes (seed {args.seed})"

    routes = [
        ("trained models, 2 worker processes (default)", SeparatorSource(), 2),
        ("trained models, 1 process", SeparatorSource(), 1),
        ("watershed baseline, 1 process", SeparatorFunction(get_spec("plankton-separator")), 1),
    ]
    rows = []
    for name, separator, workers in routes:
        out = work / f"out-{len(rows)}"
        started = time.perf_counter()
        report = separate_to_files(scan, out, separator, workers=workers)
        seconds = time.perf_counter() - started
        rows.append((name, report.vignettes / seconds, seconds, report.objects))
        shutil.rmtree(out)
    shutil.rmtree(work)

    baseline = rows[-1][1]
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, onnxruntime on the CPU",
        "",
        f"{what}, read from their files and written out as organism vignettes, separation "
        "images and the EcoTaxa TSV:",
        "",
        "| route | vignettes/s | seconds for the scan | organisms | ratio to the watershed |",
        "|---|---|---|---|---|",
    ]
    for name, rate, seconds, objects in rows:
        lines.append(f"| {name} | {rate:.1f} | {seconds:.0f} | {objects} | {rate / baseline:.2f} |")
    goal = rows[0][1]
    lines += [
        "",
        f"Goal (issue 5): at least 15 vignettes per second on 2 cores: {goal:.1f}, "
        f"{'met' if goal >= 15 else 'not met'}. The old CPU route took up to 30 minutes for a "
        "few hundred vignettes (about 0.2 per second).",
    ]
    if args.real:
        lines[-1] = (
            f"Goal (issue 14): at least 30 real vignettes per second with 2 workers: "
            f"{goal:.1f}, {'met' if goal >= 30 else 'not met'}."
        )
    text = "\n".join(lines)
    print(text)
    if args.write:
        from report import write_report

        if args.real:
            write_report(args.write, "plankton-real", "ZooScan separation, real vignettes", text)
        else:
            write_report(args.write, "plankton", "ZooScan separation (issue 5)", text)


if __name__ == "__main__":
    main()
