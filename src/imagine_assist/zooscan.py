"""Batch separation of ZooScan vignettes into files EcoTaxa imports.

`imagine-assist separate <dir> --out <dir>` writes, for each vignette: one vignette per
organism (the organism on white, cropped to its box), the ZooProcess separation-line
image, and one TSV in EcoTaxa's import layout for all objects.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from imagine_assist.errors import UserError
from imagine_assist.functions.separator import SeparatorFunction
from imagine_assist.images import read_image
from imagine_assist.models.separate import separation_lines
from imagine_assist.predict import list_images

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
]
MARGIN = 4  # pixels of background kept around each cut-out organism


@dataclass
class SeparationReport:
    out_dir: Path
    tsv: Path
    vignettes: int = 0
    multiples: int = 0
    objects: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def cut_out(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The organism alone on white, cropped to its box plus a margin."""
    ys, xs = np.nonzero(mask)
    x1, y1 = max(int(xs.min()) - MARGIN, 0), max(int(ys.min()) - MARGIN, 0)
    x2 = min(int(xs.max()) + 1 + MARGIN, image.shape[1])
    y2 = min(int(ys.max()) + 1 + MARGIN, image.shape[0])
    alone = np.full_like(image, 255)
    alone[mask] = image[mask]
    return alone[y1:y2, x1:x2], (x1, y1, x2, y2)


def separate_to_files(
    function: SeparatorFunction, source: str | Path, out_dir: str | Path
) -> SeparationReport:
    source, out = Path(source), Path(out_dir)
    paths = list_images(source)
    (out / "vignettes").mkdir(parents=True, exist_ok=True)
    (out / "separations").mkdir(parents=True, exist_ok=True)
    report = SeparationReport(out, out / "ecotaxa_import.tsv")
    rows = []
    for path in tqdm(paths, desc="separating", unit="vignette"):
        try:
            image = read_image(path, function.spec.max_image_pixels)
        except UserError as error:  # one bad file must not cost the others
            log.warning("skipped %s", error)
            report.skipped.append((path, str(error)))
            continue
        detections = function.split(image)
        masks = list(detections.mask) if detections.mask is not None else []
        kind = function.tag(detections)
        report.vignettes += 1
        report.multiples += kind == "multiple"
        lines = separation_lines(masks, image.shape[:2])
        Image.fromarray(lines).save(out / "separations" / f"{path.stem}_sep.png")
        for index, mask in enumerate(masks, start=1):
            object_id = f"{path.stem}_{index}"
            crop, (x1, y1, x2, y2) = cut_out(image, mask)
            name = f"{object_id}.png"
            Image.fromarray(crop).save(out / "vignettes" / name)
            ys, xs = np.nonzero(mask)
            rows.append(
                [
                    name,
                    object_id,
                    int(mask.sum()),
                    round(float(xs.mean()), 2),
                    round(float(ys.mean()), 2),
                    x1,
                    y1,
                    x2 - x1,
                    y2 - y1,
                    path.name,
                    kind,
                ]
            )
            report.objects += 1
    if report.vignettes == 0:
        raise UserError(f"none of the {len(paths)} images under {source} could be read")
    with report.tsv.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow([name for name, _ in ECOTAXA_COLUMNS])
        writer.writerow([kind for _, kind in ECOTAXA_COLUMNS])
        writer.writerows(rows)
    return report
