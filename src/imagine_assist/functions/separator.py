"""`plankton-separator`: one mask per organism in a ZooScan vignette, plus a single or
multiple tag. CVAT reaches it as a detector (contract §2.1); the serving edge
(`imagine_assist.nuclio.cvat_requests`) turns a `Separation` into CVAT's masks and tag.

The separator behind it is any callable from an image to masks: the trained model
(`models.plankton.ModelSeparator`) by default, the classical watershed baseline
(`models.separate.separate_touching`) where no model is installed. With a
single/multiple classifier, both must agree. Below the classifier's P(multiple) threshold
the vignette is a single, one object, its whole organism: on real vignettes the separator
cut 14 of 197 singles apart, and letting its count overrule the classifier made most of
the false "multiple" tags. Above it the vignette is cut, and it is a multiple only if the
cut gives two organisms or more: of the 23 real vignettes (of 616 hand-labelled) that the
classifier called multiple and the separator left whole, 21 were singles
(docs/plankton.md). Without a classifier the tag is the separator's count. The scale-bar
strip is found in each vignette (`models.scale_bar`) unless a row count is given.

The organisms' masks stay cut to their boxes (`BoxMask`, in `data[BOX_MASKS]` of the
`Detections`, whose `mask` is None) until CVAT's answer is written: a frame-sized mask per
organism is what once took a 7000x7000 frame to 24 GB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import supervision as sv

from imagine_assist.errors import BadRequest
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.models.plankton import MULTIPLE_THRESHOLD
from imagine_assist.models.scale_bar import cut_scale_bar
from imagine_assist.models.separate import (
    BOX_MASKS,
    BoxMask,
    organism_box_mask,
    separate_touching,
)

Separator = Callable[[np.ndarray], list[BoxMask]]
ORGANISM, SINGLE, MULTIPLE = "organism", "single", "multiple"


class VignetteClassifier(Protocol):
    def p_multiple(self, image: np.ndarray) -> float: ...


@dataclass(frozen=True)
class Separation:
    """One vignette's answer: the organisms, and the single/multiple call with P(multiple)
    (None when no classifier made the call)."""

    detections: sv.Detections
    tag: str
    p_multiple: float | None

    @property
    def masks(self) -> list[BoxMask]:
        """The organisms' masks, each in its box, in the order of `detections`."""
        return list(self.detections.data.get(BOX_MASKS, []))


def as_detections(masks: list[BoxMask] | list[np.ndarray]) -> sv.Detections:
    """Organism masks as `Detections` of class "organism", each mask kept in its box (a
    separator that answers with whole-frame masks has them cut to their boxes)."""
    masks = [mask if isinstance(mask, BoxMask) else BoxMask.around(mask) for mask in masks]
    if not masks:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array([mask.xyxy for mask in masks], dtype=np.float32),
        class_id=np.zeros(len(masks), dtype=int),
        confidence=np.ones(len(masks), dtype=np.float32),
        data={"class_name": np.array([ORGANISM] * len(masks)), BOX_MASKS: list(masks)},
    )


class SeparatorFunction:
    def __init__(
        self,
        spec: FunctionSpec,
        scale_bar_rows: int | None = None,
        separate: Separator = separate_touching,
        classifier: VignetteClassifier | None = None,
        multiple_threshold: float = MULTIPLE_THRESHOLD,
    ) -> None:
        self.spec = spec
        self.scale_bar_rows = scale_bar_rows  # None: found in each vignette
        self.separate = separate
        self.classifier = classifier
        self.multiple_threshold = multiple_threshold

    def split(
        self,
        image: np.ndarray,
        scale_bar_rows: int | None = None,
        multiple_threshold: float | None = None,
    ) -> Separation:
        """The vignette's organisms and tag. `multiple_threshold` (None: the function's own)
        is the P(multiple) at or above which the vignette is cut."""
        self.spec.check_image_size(image.shape[1], image.shape[0])
        threshold = self.multiple_threshold if multiple_threshold is None else multiple_threshold
        rows = self.scale_bar_rows if scale_bar_rows is None else scale_bar_rows
        if rows is not None and image.shape[0] - rows < self.spec.min_image_side:
            # kept whole, the vignette's scale bar would go to EcoTaxa as an organism; a
            # sliver left above it is under what any function answers for
            raise BadRequest(
                f"the scale-bar strip of {rows} rows leaves {max(image.shape[0] - rows, 0)} "
                f"of the vignette's {image.shape[0]} rows, under the "
                f"{self.spec.min_image_side} needed to separate anything"
            )
        cropped = cut_scale_bar(image, rows)  # rows None: the strip is found in the vignette
        if self.classifier is None:
            detections = as_detections(self.separate(cropped))
            return Separation(detections, MULTIPLE if len(detections) >= 2 else SINGLE, None)
        p_multiple = self.classifier.p_multiple(cropped)
        if p_multiple < threshold:
            # A single stays one object: the separator's cut of a single (an appendage, a
            # gut) would go to EcoTaxa as organisms that do not exist.
            whole = organism_box_mask(cropped)
            return Separation(as_detections([whole] if whole else []), SINGLE, p_multiple)
        detections = as_detections(self.separate(cropped))
        # a vignette the separator leaves whole is one organism, whatever P(multiple) says
        tag = MULTIPLE if len(detections) >= 2 else SINGLE
        return Separation(detections, tag, p_multiple)
