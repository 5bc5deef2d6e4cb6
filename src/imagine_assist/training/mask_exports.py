"""Organisms drawn or corrected in CVAT as masks or polygons, read from a CVAT for images 1.1
export: what `imagine-assist evaluate` scores the separator against and what
`imagine-assist train plankton --from` fine-tunes it on.

Every mask or polygon in the export is an organism, whatever its label: a plankton task has
one organism label, and a tag for the call. Boxes, points and lines are ignored. The XML is
read as a stream, one image at a time (`exports.cvat_images`), and each image's size and
mask cost are bounded before anything is drawn.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imagine_assist.errors import BadRequest, UserError
from imagine_assist.functions.separator import MULTIPLE, SINGLE
from imagine_assist.images import DEFAULT_MAX_PIXELS, read_image
from imagine_assist.models.separate import BoxMask
from imagine_assist.training.exports import cvat_image_name, cvat_images

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
    """A CVAT XML <mask>: runs over its box, row by row, the first run background. The runs
    are checked before anything is drawn (a run of 1e12 took memory past any vignette's, or
    stopped with a traceback), and a box past the image is cut to it: CVAT keeps masks one
    row taller than their image (cvat-ai/cvat#9316)."""
    left, top = int(shape.get("left", "0")), int(shape.get("top", "0"))
    box_width, box_height = int(shape.get("width", "0")), int(shape.get("height", "0"))
    if box_width < 1 or box_height < 1:
        raise ValueError(f"its box is {box_width}x{box_height}")
    if box_width * box_height > (width + 2) * (height + 2):
        raise ValueError(f"its box {box_width}x{box_height} is larger than the image")
    try:
        runs = [int(run) for run in shape.get("rle", "").split(",") if run.strip()]
    except ValueError:
        raise ValueError("its runs are not whole numbers") from None
    area = box_width * box_height
    # Python's integers, checked one by one: runs of 2**62 summed in int64 wrap round to
    # the box's area, and numpy then crashed the process
    if not runs or any(not 0 <= run <= area for run in runs) or sum(runs) != area:
        covered = sum(runs) if runs else 0
        raise ValueError(
            f"its runs cover {covered} pixels, not its {box_width}x{box_height} box (or one "
            "is negative or larger than the box)"
        )
    filled = np.arange(len(runs)) % 2 == 1  # background first
    crop = np.repeat(filled, np.array(runs, np.int64)).reshape(box_height, box_width)
    x1, y1 = max(left, 0), max(top, 0)
    x2, y2 = min(left + box_width, width), min(top + box_height, height)
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"its box at ({left}, {top}) lies outside the {width}x{height} image")
    mask = np.zeros((y2 - y1, x2 - x1), bool)
    mask[:] = crop[y1 - top : y2 - top, x1 - left : x2 - left]
    inside = BoxMask.around(mask)
    return BoxMask(inside.crop, inside.x + x1, inside.y + y1)


def _polygon_mask(shape: ET.Element, width: int, height: int) -> BoxMask:
    """A CVAT XML <polygon>, filled. At least 3 finite points within reach of the image:
    NaN drew an organism in the corner, 1e12 overflowed to nothing."""
    points = [float(v) for pair in shape.get("points", "").split(";") for v in pair.split(",")]
    outline = np.array(points, np.float64).reshape(-1, 2)
    if len(outline) < 3:
        raise ValueError(f"it has {len(outline)} points; a polygon has at least 3")
    reach = 2 * max(width, height)
    if not np.isfinite(outline).all() or (np.abs(outline) > reach).any():
        raise ValueError("its points are not numbers within reach of the image")
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [np.round(outline).astype(np.int32)], 1)
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


def read_drawn_image(path: Path, vignette: DrawnVignette) -> np.ndarray:
    """The vignette's image, refused (`BadRequest`) when it cannot be read or is not the
    size its organisms were drawn on."""
    image = read_image(path)
    if image.shape[:2] != (vignette.height, vignette.width):
        raise BadRequest(
            f"{vignette.name} is {image.shape[1]}x{image.shape[0]}, the export says "
            f"{vignette.width}x{vignette.height}"
        )
    return image
