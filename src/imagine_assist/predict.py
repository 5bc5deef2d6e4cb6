"""Batch prediction to files: CVAT XML (each box with its score), a CSV of boxes, counts CSVs,
preview images and a counts plot."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import supervision as sv
from PIL import Image
from tqdm.auto import tqdm

from imagine_assist.cvat.xml import write_cvat_images_xml
from imagine_assist.errors import UserError
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.image_files import (
    OutputFiles,
    list_images,
    none_could_be_read,
    output_stems,
)
from imagine_assist.images import read_image, readable_name

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv"}
PLOT = "counts.png"  # the counts per label, a bar chart in the output folder
PREVIEW_MAX_SIDE = 2048
# boxes.csv: one row per box, corners in the image's own pixels, score in [0, 1]
BOX_COLUMNS = ("image", "label", "score", "x1", "y1", "x2", "y2")


@dataclass
class PredictReport:
    out_dir: Path
    cvat_xml: Path
    boxes_csv: Path
    counts_csv: Path
    totals_csv: Path
    plot: Path
    previews: list[Path] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def draw_preview(image: np.ndarray, detections: sv.Detections) -> np.ndarray:
    scale = min(1.0, PREVIEW_MAX_SIDE / max(image.shape[:2]))
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        detections = detections[:]  # a copy: the caller's boxes stay in full resolution
        detections.xyxy = detections.xyxy * scale
    labels = [
        f"{name} {conf:.2f}"
        for name, conf in zip(
            detections.data.get("class_name", []), detections.confidence, strict=False
        )
    ]
    return draw_labelled_boxes(image, detections, labels)


def draw_labelled_boxes(
    image: np.ndarray, detections: sv.Detections, labels: list[str], **colours
) -> np.ndarray:
    """Boxes with their labels on a copy of `image`. A label whose place above its box lies
    outside the image is moved inside it (supervision's smart position), so boxes at the top
    edge keep a readable label. `colours`: supervision's `color` and `color_lookup`."""
    thickness = max(1, round(max(image.shape[:2]) / 600))
    frame = sv.BoxAnnotator(thickness=thickness, **colours).annotate(image.copy(), detections)
    return sv.LabelAnnotator(
        text_scale=0.3 + 0.1 * thickness,
        text_thickness=1,
        text_padding=3,
        smart_position=True,
        **colours,
    ).annotate(frame, detections, labels=labels)


def plot_counts(totals: dict[str, int], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # wider with more labels, names turned past five, room above the tallest bar's number:
    # eight litter categories ran into each other, and a family may have 14 species
    many = len(totals) > 5
    figure, axis = plt.subplots(figsize=(max(6.0, 0.6 * len(totals) + 2), 3.8), dpi=120)
    bars = axis.bar(list(totals), list(totals.values()), color="#2a7fb8")
    axis.bar_label(bars)
    axis.set_ylabel("count")
    axis.set_title(title)
    axis.set_ylim(0, max(1, max(totals.values(), default=0)) * 1.15)
    if many:
        axis.tick_params(axis="x", labelrotation=35)
        for label in axis.get_xticklabels():
            label.set_horizontalalignment("right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_boxes_csv(path: Path, results: list[tuple[str, int, int, sv.Detections]]) -> Path:
    """One row per box (`BOX_COLUMNS`), most confident first within each image, so that a
    spreadsheet sorted by score is the triage list."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(BOX_COLUMNS)
        for name, _, _, detections in results:
            names = detections.data.get("class_name", [])
            for index in np.argsort(-detections.confidence, kind="stable"):
                x1, y1, x2, y2 = (f"{v:.1f}" for v in detections.xyxy[index])
                score = f"{detections.confidence[index]:.4f}"
                writer.writerow([name, str(names[index]), score, x1, y1, x2, y2])
    return path


def predict_to_files(
    function: DetectorFunction,
    source: str | Path,
    out_dir: str | Path,
    threshold: float | None = None,
    previews: bool = True,
) -> PredictReport:
    """Detect on every image under `source`. A file that cannot be read as an image (a FIFO,
    a device, one over the size limit, one that does not decode) is skipped with its reason
    in `report.skipped`. Names in every output follow `readable_name`."""
    source = Path(source)
    out_dir = Path(out_dir)
    if source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES:
        raise UserError(
            f"{source} is a video; predict reads images. `imagine-assist track {source} "
            f"--function {function.spec.id}` follows objects through a video"
        )
    paths = list_images(source, outputs=out_dir, own_folders=("previews",))
    base = source if source.is_dir() else source.parent
    stems = output_stems(paths, base, with_folders=True)  # a.jpg, a.png: two previews
    labels = function.spec.label_names
    preview_dir = out_dir / "previews"
    preview_dir.mkdir(parents=True, exist_ok=True)
    written = OutputFiles(out_dir, "predict", ("previews",), files=(PLOT,))
    report = PredictReport(
        out_dir,
        out_dir / "annotations.xml",
        out_dir / "boxes.csv",
        out_dir / "counts.csv",
        out_dir / "counts_total.csv",
        out_dir / PLOT,
    )
    # An earlier run's results go before this one's first preview comes: a run stopped
    # halfway leaves previews and no counts, never the earlier counts beside this run's
    # previews; and a run that can read no image at all leaves the earlier results be
    results_before = (report.cvat_xml, report.boxes_csv, report.counts_csv, report.totals_csv)
    results: list[tuple[str, int, int, sv.Detections]] = []
    for path in tqdm(paths, desc=f"{function.spec.id}", unit="image"):
        try:
            image = read_image(path, max_pixels=function.spec.max_image_pixels)
            function.spec.check_image_size(image.shape[1], image.shape[0], readable_name(path))
        except UserError as error:  # one bad file must not cost the others
            log.warning("skipped %s", error)
            report.skipped.append((path, str(error)))
            continue
        if not results:
            for result in (*results_before, report.plot):
                result.unlink(missing_ok=True)
        detections = function.detect(image, threshold)
        name = readable_name(path.relative_to(base).as_posix())  # valid in CSV and XML
        height, width = image.shape[:2]
        results.append((name, width, height, detections))
        if previews:
            preview = preview_dir / f"{stems[path]}.jpg"
            written.wrote(preview)
            Image.fromarray(draw_preview(image, detections)).save(preview, quality=85)
            report.previews.append(preview)

    if not results:
        raise none_could_be_read(source, report.skipped)
    written.wrote(report.plot)  # listed before it is written: never read as a photo
    written.finish()  # an earlier run's previews of images not in this one
    write_cvat_images_xml(report.cvat_xml, results, labels, label_type="rectangle", scores=True)
    write_boxes_csv(report.boxes_csv, results)
    totals: Counter[str] = Counter({label: 0 for label in labels})
    with report.counts_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "width", "height", *labels, "total"])
        for name, width, height, detections in results:
            counts = Counter(str(n) for n in detections.data.get("class_name", []))
            totals.update(counts)
            writer.writerow(
                [name, width, height, *(counts[label] for label in labels), len(detections)]
            )
    with report.totals_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "count"])
        writer.writerows((label, totals[label]) for label in labels)
    report.totals = {label: totals[label] for label in labels}
    plot_counts(
        report.totals,
        report.plot,
        f"{function.spec.name}: {len(results)} image{'' if len(results) == 1 else 's'}, "
        f"{sum(totals.values())} objects",
    )
    return report
