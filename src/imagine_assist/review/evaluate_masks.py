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

The export is unpacked with the checks every export gets (`training.exports.unpacked`) and
its organisms read by `training.mask_exports`, one image at a time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm.auto import tqdm

from imagine_assist.errors import BadRequest, UserError
from imagine_assist.functions.separator import MULTIPLE, SINGLE
from imagine_assist.models.separate import score_separation, summarise
from imagine_assist.review.evaluate import GALLERY_SIZE, EvaluationSummary, gallery
from imagine_assist.review.evaluate_tags import relative_boxes
from imagine_assist.training.exports import images_dir, unpacked
from imagine_assist.training.mask_exports import (
    CVAT_IMAGES,
    DrawnVignette,
    read_cvat_organisms,
    read_drawn_image,
)
from imagine_assist.training.plankton_real import tag_scores

log = logging.getLogger(__name__)


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
        undrawn: list[str] = []
        for vignette in tqdm(vignettes, desc="separating vignettes", unit="vignette"):
            if not vignette.organisms:  # nobody drew it: no truth to score against
                undrawn.append(vignette.name)
                continue
            call = _call(function, base / vignette.name, vignette)
            if call is None:
                unreadable.append(vignette.name)
            else:
                calls.append(call)
        if not calls and undrawn and not unreadable:
            raise UserError(
                f"{source} has no organism drawn as a mask or polygon on any of its "
                f"{len(undrawn)} vignettes: draw them in CVAT, or evaluate the tag alone on "
                "vignettes sorted into single/ and multiple/ folders"
            )
        if not calls:
            raise UserError(f"no vignette of {source} could be read")
        facts = separation_facts(calls, function)
        facts |= {"source": str(source), "format": info.format, "unreadable": unreadable}
        facts["undrawn"] = undrawn
        facts["calls"] = [asdict(call) for call in calls]
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "summary.json"
        path.write_text(json.dumps(facts, indent=2))
        plots = _plots(calls, base, out_dir)
    return EvaluationSummary(path, facts, plots)


def _call(function, path: Path, vignette: DrawnVignette) -> SeparationCall | None:
    try:
        image = read_drawn_image(path, vignette)
        separation = function.split(image)
    except BadRequest as error:
        message = str(error)
        where = message if vignette.name in message else f"{vignette.name}: {message}"
        log.warning("left out: %s", where)
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
