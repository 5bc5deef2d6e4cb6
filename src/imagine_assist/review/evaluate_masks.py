"""`imagine-assist evaluate --function plankton-separator` on a CVAT for images 1.1 export
whose organisms are masks or polygons: the organisms the function sends against the ones a
person drew or corrected in CVAT, before anyone trusts its cuts.

Each vignette goes through the function as CVAT's requests do (`SeparatorFunction.split`),
and its organisms are matched to the export's one to one at IoU 0.5
(`models.separate.score_separation`): object precision, recall and F1, and the two ways a
separator goes wrong, an organism cut in several (over-split) and several organisms left
as one (under-split); for all vignettes, and for singles and multiples apart (a vignette
with two drawn organisms or more is a multiple, or its `single`/`multiple` tag says). The
tag's figures come with them, as for sorted folders (`review.evaluate_tags`).

Every mask or polygon in the export is an organism, whatever its label: a plankton task has
one organism label, and a tag for the call. Boxes, points and lines are ignored. The export
is read as a stream, one image at a time, and unpacked with the checks every export gets
(`training.exports.unpacked`).
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from imagine_assist.errors import BadRequest, UserError
from imagine_assist.functions.separator import MULTIPLE, SINGLE
from imagine_assist.images import DEFAULT_MAX_PIXELS, read_image
from imagine_assist.models.separate import BoxMask, score_separation, summarise
from imagine_assist.review.evaluate import GALLERY_SIZE, EvaluationSummary, gallery
from imagine_assist.review.evaluate_tags import relative_boxes
from imagine_assist.training.exports import cvat_image_name, cvat_images, images_dir, unpacked
from imagine_assist.training.plankton_real import tag_scores

log = logging.getLogger(__name__)

CVAT_IMAGES = "CVAT for images 1.1"
# What one vignette's drawn organisms may cost, as mask pixels (one byte each): kept as crops
# while read, and as whole-vignette masks while matched. A ZooScan vignette with a few
# organisms costs a few million; an export past this was made by hand or to harm.
MAX_MASK_PIXELS = 2**28


@dataclass(frozen=True)
class DrawnVignette:
    """One <image> of the export: its file, size, drawn organisms and tag (if any)."""

    name: str  # as the export names it (subset/name)
    width: int
    height: int
    organisms: list[BoxMask]
    tag: str | None


def _rle_mask(shape: ET.Element, width: int, height: int) -> BoxMask:
    """A CVAT XML <mask>: runs over its box, row by row, the first run background."""
    from cvat_sdk.masks import decode_mask  # cvat_sdk takes 0.3 s to import

    left, top = int(shape.get("left", "0")), int(shape.get("top", "0"))
    box_width, box_height = int(shape.get("width", "0")), int(shape.get("height", "0"))
    runs = [int(float(run)) for run in shape.get("rle", "").split(",") if run.strip()]
    encoded = [*runs, left, top, left + box_width - 1, top + box_height - 1]
    return BoxMask.around(decode_mask(encoded, image_width=width, image_height=height))


def _polygon_mask(shape: ET.Element, width: int, height: int) -> BoxMask:
    points = [float(v) for pair in shape.get("points", "").split(";") for v in pair.split(",")]
    outline = np.round(np.array(points, np.float64).reshape(-1, 2)).astype(np.int32)
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [outline], 1)
    return BoxMask.around(canvas.astype(bool))


def read_cvat_organisms(xml_path: Path, export: Path) -> Iterator[DrawnVignette]:
    """Each <image> of a CVAT for images 1.1 XML with its organisms, read as a stream."""
    for element in cvat_images(xml_path, export):
        name = cvat_image_name(element)
        width, height = _size(element, export, name)
        organisms, tag, cost = [], None, 0
        for shape in element:
            try:
                if shape.tag == "mask":
                    organisms.append(_rle_mask(shape, width, height))
                elif shape.tag == "polygon":
                    organisms.append(_polygon_mask(shape, width, height))
            except ValueError as error:  # runs that do not fit the box, odd points
                raise UserError(
                    f"{export}: a {shape.tag} of {name} cannot be read: {error}"
                ) from None
            if shape.tag == "tag" and shape.get("label") in (SINGLE, MULTIPLE):
                tag = shape.get("label")
            if shape.tag in ("mask", "polygon"):
                cost += width * height  # each is matched as a whole-vignette mask
                if cost > MAX_MASK_PIXELS:
                    raise UserError(
                        f"{export}: {name} holds more organisms than its "
                        f"{width}x{height} pixels can be matched for ({MAX_MASK_PIXELS:,} "
                        "mask pixels at most)"
                    )
        drawn = [o for o in organisms if o.area]
        yield DrawnVignette(name, width, height, drawn, tag)


def _size(element: ET.Element, export: Path, name: str) -> tuple[int, int]:
    """An <image>'s width and height, refused before any mask of that size is drawn when
    they are not whole numbers or exceed what any function takes."""
    try:
        width, height = int(element.get("width", "")), int(element.get("height", ""))
    except ValueError:
        raise UserError(f"{export}: {name} has no whole width and height") from None
    if width <= 0 or height <= 0 or width * height > DEFAULT_MAX_PIXELS:
        raise UserError(
            f"{export}: {name} says it is {width}x{height} pixels; an image has at least one "
            f"and at most {DEFAULT_MAX_PIXELS:,}"
        )
    return width, height


@dataclass(frozen=True)
class SeparationCall:
    """One vignette: what was drawn, what the function answered, and how they match."""

    vignette: str
    truth: str  # single / multiple
    drawn: int
    tag: str
    p_multiple: float | None
    organisms: int
    score: dict  # score_separation's counts
    boxes: list[list[float]]  # the function's organisms, relative x, y, w, h


def evaluate_separation(
    source: str | Path,
    function,
    out_dir: Path,
    work_dir: Path,
    threshold: float | None = None,
) -> EvaluationSummary:
    """Evaluate `plankton-separator` on a CVAT for images 1.1 export (zip) of vignettes with
    their organisms drawn as masks or polygons."""
    if threshold is not None:
        function.multiple_threshold = threshold
    calls: list[SeparationCall] = []
    unreadable: list[str] = []
    with unpacked(source, work_dir) as info:
        if info.format != CVAT_IMAGES:
            raise UserError(
                f"{source} is a {info.format} export; plankton-separator is evaluated on "
                f"{CVAT_IMAGES} (organisms as masks or polygons), or on a folder of vignettes "
                "sorted into single/ and multiple/"
            )
        base = images_dir(info.root)
        vignettes = read_cvat_organisms(info.root / "annotations.xml", Path(source))
        for vignette in tqdm(vignettes, desc="separating vignettes", unit="vignette"):
            call = _call(function, base / vignette.name, vignette)
            if call is None:
                unreadable.append(vignette.name)
            else:
                calls.append(call)
        if not calls:
            raise UserError(f"no vignette of {source} could be read")
        facts = separation_facts(calls, function)
        facts |= {"source": str(source), "format": info.format, "unreadable": unreadable}
        facts["calls"] = [asdict(call) for call in calls]
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "summary.json"
        path.write_text(json.dumps(facts, indent=2))
        plots = _plots(calls, base, out_dir)
    return EvaluationSummary(path, facts, plots)


def _call(function, path: Path, vignette: DrawnVignette) -> SeparationCall | None:
    try:
        image = read_image(path)
        if image.shape[:2] != (vignette.height, vignette.width):
            raise BadRequest(
                f"{vignette.name} is {image.shape[1]}x{image.shape[0]}, the export says "
                f"{vignette.width}x{vignette.height}"
            )
        separation = function.split(image)
    except BadRequest as error:
        log.warning("left out: %s", error)
        return None
    shape = (vignette.height, vignette.width)
    truth = [organism.full(shape) for organism in vignette.organisms]
    score = score_separation(separation.masks, truth)
    drawn = len(vignette.organisms)
    boxes = relative_boxes(separation.detections.xyxy, vignette.width, vignette.height)
    return SeparationCall(
        vignette.name,
        vignette.tag or (MULTIPLE if drawn >= 2 else SINGLE),
        drawn,
        separation.tag,
        separation.p_multiple,
        len(separation.detections),
        score,
        boxes,
    )


def separation_facts(calls: list[SeparationCall], function) -> dict:
    by_class = {
        part: summarise([c.score for c in calls if part == "all" or c.truth == part])
        for part in ("all", SINGLE, MULTIPLE)
    }
    tags = tag_scores(
        {c.vignette: (c.tag, c.organisms) for c in calls}, {c.vignette: c.truth for c in calls}
    )
    return {
        "function": function.spec.id,
        "threshold": function.multiple_threshold if function.classifier is not None else None,
        "iou": 0.5,
        "drawn_organisms": sum(c.drawn for c in calls),
        "organisms_sent": sum(c.organisms for c in calls),
        "separation": by_class,
        **tags,
    }


def _mistakes(call: SeparationCall) -> int:
    return call.score["fp"] + call.score["fn"]


def _plots(calls: list[SeparationCall], base: Path, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = out_dir / "worst_separations.png"
    worst = sorted((c for c in calls if _mistakes(c)), key=_mistakes, reverse=True)
    tiles = [
        (
            str(base / c.vignette),
            None,
            f"drawn {c.drawn}, sent {c.organisms} ({c.tag}); "
            f"{c.score['over_split']} cut, {c.score['under_split']} merged",
            c.boxes,
        )
        for c in worst[:GALLERY_SIZE]
    ]
    gallery(tiles, "red", "vignettes with the most unmatched organisms (sent: red)", path, plt)
    return [path]
