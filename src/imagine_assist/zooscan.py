"""Batch separation of ZooScan vignettes into files EcoTaxa imports.

`imagine-assist separate <dir> --out <dir>` writes `<out>/ecotaxa/`, the folder EcoTaxa
imports as it is (zipped or not): one vignette per organism (the organism on white, cropped
to its box) and, beside them, one TSV in EcoTaxa's import layout for all objects, whose
`img_file_name` EcoTaxa resolves against the TSV's own folder. The ZooProcess
separation-line images go to `<out>/separations/`. Vignettes that share a name in different
sample folders get distinct object ids (`image_files.output_stems`), and the TSV names each
source by its path under the folder given. Names written (files and TSV cells) follow
`images.readable_name`: for a vignette whose name is not UTF-8, files and rows carry a
visible `\\xNN` escape instead, so the TSV still names the files beside it. A file that is
not a regular image file (a FIFO, a device, one over the size limit) is skipped.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import signal
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from imagine_assist.errors import UserError
from imagine_assist.functions.separator import SeparatorFunction
from imagine_assist.image_files import (
    OutputFiles,
    list_images,
    list_output,
    none_could_be_read,
    output_stems,
)
from imagine_assist.images import read_image, readable_name
from imagine_assist.models.separate import BoxMask, separation_lines

log = logging.getLogger(__name__)

# EcoTaxa's TSV: a header row, then a row of types ([t] text, [f] number), then objects.
ECOTAXA_COLUMNS = [
    ("img_file_name", "[t]"),
    ("object_id", "[t]"),
    ("object_area", "[f]"),
    ("object_x", "[f]"),
    ("object_y", "[f]"),
    ("object_bx", "[f]"),
    ("object_by", "[f]"),
    ("object_width", "[f]"),
    ("object_height", "[f]"),
    ("object_source_vignette", "[t]"),
    ("object_separation", "[t]"),
    # The classifier's P(multiple) for the source vignette (empty without a classifier):
    # sorted on in EcoTaxa, it puts the calls worth a second look next to each other.
    ("object_p_multiple", "[f]"),
]
MARGIN = 4  # pixels of background kept around each cut-out organism
# The cut-outs and the TSV share one folder: EcoTaxa looks for each `img_file_name` beside
# the TSV, so a TSV one folder up from its images imports no image at all.
ECOTAXA_FOLDER = "ecotaxa"
OUTPUT_FOLDERS = (ECOTAXA_FOLDER, "separations")  # what `separate` writes images into


@dataclass
class SeparationReport:
    out_dir: Path
    tsv: Path
    vignettes: int = 0
    multiples: int = 0
    objects: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    # read, but no organism found (a faint gelatinous one, or a blank vignette): not in the TSV
    no_organism: list[Path] = field(default_factory=list)


def cut_out(image: np.ndarray, mask: BoxMask) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The organism alone on white, cropped to its box plus a margin."""
    x1, y1, x2, y2 = mask.xyxy
    left, top = max(x1 - MARGIN, 0), max(y1 - MARGIN, 0)
    right, bottom = min(x2 + 1 + MARGIN, image.shape[1]), min(y2 + 1 + MARGIN, image.shape[0])
    alone = np.full_like(image[top:bottom, left:right], 255)
    inner = (slice(y1 - top, y2 + 1 - top), slice(x1 - left, x2 + 1 - left))
    alone[inner][mask.crop] = image[y1 : y2 + 1, x1 : x2 + 1][mask.crop]
    return alone, (left, top, right, bottom)


@dataclass(frozen=True)
class SeparatorSource:
    """How a worker process loads the separator: the same arguments as `load_function`."""

    weights: str | None = None
    models_dir: str | None = None
    scale_bar_rows: int | None = None

    def load(self, threads: int | None = None) -> SeparatorFunction:
        from imagine_assist.functions.catalog import get_spec, load_plankton_separator

        spec = get_spec("plankton-separator")
        function = load_plankton_separator(spec, self.weights, self.models_dir, threads)
        if self.scale_bar_rows is not None:
            function.scale_bar_rows = self.scale_bar_rows
        return function


@dataclass
class _Separated:
    path: Path
    rows: list[list] = field(default_factory=list)
    tag: str = ""
    error: str | None = None
    separation_lines: Path | None = None


@dataclass(frozen=True)
class _Job:
    path: Path
    stem: str  # unique within the run: object ids and file names start with it
    source_name: str  # the vignette as the TSV names it: its path under the folder given
    out: Path
    listing: Path  # OutputFiles' list: each file goes in before it is written


def _separate_one(function: SeparatorFunction, job: _Job) -> _Separated:
    path, out = job.path, job.out
    try:
        image = read_image(path, function.spec.max_image_pixels)
    except UserError as error:  # one bad file must not cost the others
        return _Separated(path, error=str(error))
    try:
        separation = function.split(image)  # refuses a vignette too small or too busy
    except UserError as error:
        return _Separated(path, error=f"{readable_name(path)}: {error}")
    masks = separation.masks
    lines = separation_lines(masks, image.shape[:2])
    stem = job.stem
    lines_file = out / "separations" / f"{stem}_sep.png"
    list_output(job.listing, out, lines_file)
    Image.fromarray(lines).save(lines_file)
    result = _Separated(path, tag=separation.tag, separation_lines=lines_file)
    for index, mask in enumerate(masks, start=1):
        object_id = f"{stem}_{index}"
        crop, _ = cut_out(image, mask)
        # the organism's own box, as ZooProcess gives it, not the cut-out's with its margin
        x1, y1, x2, y2 = mask.xyxy
        name = f"{object_id}.png"
        list_output(job.listing, out, out / ECOTAXA_FOLDER / name)
        Image.fromarray(crop).save(out / ECOTAXA_FOLDER / name)
        ys, xs = np.nonzero(mask.crop)
        result.rows.append(
            [
                name,
                object_id,
                mask.area,
                round(float((xs + mask.x).mean()), 2),
                round(float((ys + mask.y).mean()), 2),
                x1,
                y1,
                x2 - x1 + 1,
                y2 - y1 + 1,
                job.source_name,
                separation.tag,
                "" if separation.p_multiple is None else round(separation.p_multiple, 4),
            ]
        )
    return result


_worker_function: SeparatorFunction | None = None


def _start_worker(source: SeparatorSource) -> None:
    global _worker_function  # one model per worker process, loaded once
    # Ctrl-C is the parent's to handle: it ends the pool; a worker's own traceback is noise
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_function = source.load(threads=1)


def _separate_in_worker(job: _Job) -> _Separated:
    assert _worker_function is not None
    return _separate_one(_worker_function, job)


def separate_to_files(
    source: str | Path,
    out_dir: str | Path,
    separator: SeparatorFunction | SeparatorSource | None = None,
    workers: int = 1,
) -> SeparationReport:
    """Separate every vignette under `source` into `out_dir`. With `workers` > 1, vignettes
    are spread over that many processes, each with its own single-threaded model: on a
    small CPU that beats one process whose model uses every core (the separation's own
    steps are single-threaded)."""
    source, out = Path(source), Path(out_dir)
    paths = list_images(source, outputs=out, own_folders=OUTPUT_FOLDERS)
    base = source if source.is_dir() else source.parent
    stems = output_stems(paths, base)
    separator = separator or SeparatorSource()
    # Loaded here first, whatever the workers: weights that will not load are one error
    # before anything is written; in a worker's start-up they made the pool restart its
    # workers for ever.
    threads = 1 if workers > 1 else None
    function = separator.load(threads) if isinstance(separator, SeparatorSource) else separator
    (out / ECOTAXA_FOLDER).mkdir(parents=True, exist_ok=True)
    (out / "separations").mkdir(parents=True, exist_ok=True)
    report = SeparationReport(out, out / ECOTAXA_FOLDER / "ecotaxa_import.tsv")
    # An earlier run's TSV goes before this run rewrites cut-outs under the same names: a
    # run stopped halfway leaves no TSV whose rows describe other organisms' images
    report.tsv.unlink(missing_ok=True)
    written = OutputFiles(out, "separate", OUTPUT_FOLDERS)
    jobs = [
        _Job(
            path,
            stems[path],
            readable_name(path.relative_to(base).as_posix()),
            out,
            written.listing,
        )
        for path in paths
    ]
    progress = tqdm(total=len(paths), desc="separating", unit="vignette")
    if workers > 1:
        if not isinstance(separator, SeparatorSource):
            raise ValueError("worker processes need a SeparatorSource to load the model")
        del function  # each worker loads its own
        context = multiprocessing.get_context("spawn")  # no forked ONNX Runtime threads
        with context.Pool(workers, _start_worker, (separator,)) as pool:
            results = [
                _collect(r, report, progress, written)
                for r in pool.imap(_separate_in_worker, jobs, 4)
            ]
    else:
        results = [
            _collect(_separate_one(function, job), report, progress, written) for job in jobs
        ]
    progress.close()
    if report.vignettes == 0:
        raise none_could_be_read(source, report.skipped)
    written.finish()  # an earlier run's cut-outs the TSV no longer names
    rows = [row for result in results for row in result.rows]
    with report.tsv.open("w", newline="", encoding=_tsv_encoding(rows)) as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow([name for name, _ in ECOTAXA_COLUMNS])
        writer.writerow([kind for _, kind in ECOTAXA_COLUMNS])
        writer.writerows(rows)
    return report


def _tsv_encoding(rows: list[list]) -> str:
    """EcoTaxa reads a TSV as Latin-1 unless it starts with UTF-8's byte-order mark. So a
    TSV with a name beyond ASCII (`échantillon_1.png`) is written UTF-8 with the mark, or
    EcoTaxa would look for `Ã©chantillon_1.png`; an ASCII one, the same bytes either way,
    goes without it, as older EcoTaxa servers expect."""
    plain = all(str(cell).isascii() for row in rows for cell in row)
    return "utf-8" if plain else "utf-8-sig"


def _collect(
    result: _Separated, report: SeparationReport, progress, written: OutputFiles
) -> _Separated:
    progress.update(1)
    if result.error is not None:
        log.warning("skipped %s", result.error)
        report.skipped.append((result.path, result.error))
        return result
    if result.separation_lines is not None:  # listed by the worker before it wrote them
        written.wrote(result.separation_lines, listed=True)
    for row in result.rows:
        written.wrote(report.tsv.parent / row[0], listed=True)
    report.vignettes += 1
    report.multiples += result.tag == "multiple"
    report.objects += len(result.rows)
    if not result.rows:  # faint or blank: the TSV has no row for it, and the user is told
        log.warning("no organism found in %s: it has no row in the TSV", readable_name(result.path))
        report.no_organism.append(result.path)
    return result
