"""Our functions as cvat-sdk functions, for `cvat-cli task auto-annotate` and CVAT's agents.

The protocol is cvat-sdk's: a `spec` and a `detect(context, image)` method (trackers: see
`sdk_tracking`). `sdk_function_for` picks the adapter for a loaded function.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import PIL.Image

from imagine_assist.cvat.sdk_tracking import SdkTrackingFunction
from imagine_assist.cvat.shapes import to_sdk_annotations
from imagine_assist.errors import BadRequest, UserError
from imagine_assist.functions.detector import MIN_TILE_SIZE, DetectorFunction
from imagine_assist.functions.separator import SeparatorFunction
from imagine_assist.functions.spec import LabelSpec
from imagine_assist.functions.tracker import TrackerFunction
from imagine_assist.images import upright_rgb8
from imagine_assist.usage.record import record_use

if TYPE_CHECKING:
    from imagine_assist.functions.reid import ReidFunction

log = logging.getLogger(__name__)


def sdk_label_spec(label: LabelSpec):
    import cvat_sdk.auto_annotation as cvataa

    attributes = [
        cvataa.text_attribute_spec(name, index) for index, name in enumerate(label.text_attributes)
    ]
    return cvataa.label_spec(label.name, label.id, type=label.type, attributes=attributes)


class SdkDetectionFunction:
    def __init__(self, function: DetectorFunction) -> None:
        import cvat_sdk.auto_annotation as cvataa

        self.function = function
        labels = function.spec.labels
        self.spec = cvataa.DetectionFunctionSpec(labels=[sdk_label_spec(label) for label in labels])
        self._label_ids = {label.name: label.id for label in labels}

    def detect(self, context, image: PIL.Image.Image) -> list:
        with one_frame_skipped_on_error(context):
            # conf_threshold is None when the user gave none: the spec's default applies.
            detections = self.function.detect(upright_rgb8(image), context.conf_threshold)
            record_use(self.function.spec.id)
            return self._annotations(context, detections)
        return []

    def _annotations(self, context, detections) -> list:
        return to_sdk_annotations(
            detections,
            self._label_ids,
            self.function.spec.label_types,
            conv_mask_to_poly=context.conv_mask_to_poly,
        )


class SdkSeparatorFunction(SdkDetectionFunction):
    """plankton-separator for cvat-cli: one mask per organism and the single/multiple tag,
    with P(multiple) in the tag's `p_multiple` text attribute when a classifier made it."""

    function: SeparatorFunction

    def __init__(self, function: SeparatorFunction, scale_bar_rows: int | None = None) -> None:
        super().__init__(function)
        self.scale_bar_rows = scale_bar_rows  # None: the function's own default

    def detect(self, context, image: PIL.Image.Image) -> list:
        with one_frame_skipped_on_error(context):
            return self._separated(context, image)
        return []

    def _separated(self, context, image: PIL.Image.Image) -> list:
        import cvat_sdk.auto_annotation as cvataa
        from cvat_sdk import models

        # --conf-threshold is the P(multiple) threshold, as the spec's threshold_on says
        separation = self.function.split(
            upright_rgb8(image), self.scale_bar_rows, context.conf_threshold
        )
        record_use(self.function.spec.id)
        annotations = to_sdk_annotations(
            separation.detections,
            self._label_ids,
            self.function.spec.label_types,
            conv_mask_to_poly=context.conv_mask_to_poly,
        )
        attributes = []
        if separation.p_multiple is not None:
            value = f"{separation.p_multiple:.4f}"
            attributes = [models.AttributeValRequest(spec_id=0, value=value)]
        if len(separation.detections):  # a blank vignette: no organism, no call to make
            annotations.append(cvataa.tag(self._label_ids[separation.tag], attributes=attributes))
        return annotations


@contextmanager
def one_frame_skipped_on_error(context) -> Iterator[None]:
    """A frame the function refuses (too small, too large, a scale-bar strip taller than
    the vignette) is skipped with a warning that names it. cvat-cli uploads a task's
    annotations only after its last frame, so one such frame raised would lose them all."""
    try:
        yield
    except BadRequest as error:
        log.warning("frame %s skipped: %s", getattr(context, "frame_name", "?"), error)


@dataclass(frozen=True)
class CvatCliParameters:
    function: str
    weights: str | None
    tile_size: int | None
    tile_overlap: int | None
    scale_bar_rows: int | None


# name: (cvat-cli type, what it is)
_PARAMETERS = {
    "function": ("str", "a function id, e.g. fish-detector"),
    "weights": ("str", "a model file instead of the family's installed one"),
    "tile_size": ("int", "window size in pixels for large frames"),
    "tile_overlap": ("int", "overlap of the windows in pixels"),
    "scale_bar_rows": ("int", "rows of scale bar cut off a vignette (plankton-separator)"),
}


def cvat_cli_parameters(given: dict) -> CvatCliParameters:
    """The module's `-p NAME=TYPE:VALUE` parameters, checked: an unknown name or a value of
    the wrong type is one line that lists what the module takes, not a traceback."""
    accepted = ", ".join(f"-p {name}={kind}:..." for name, (kind, _) in _PARAMETERS.items())
    for name, value in given.items():
        if name not in _PARAMETERS:
            raise UserError(f"the module takes no parameter {name!r}; it takes {accepted}")
        kind, meaning = _PARAMETERS[name]
        wanted = str if kind == "str" else int
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise UserError(f"-p {name} is {meaning}: give it as {name}={kind}:..., not {value!r}")
        if wanted is int and value < 0:
            raise UserError(f"-p {name} must be 0 or more, not {value}")
        if name == "tile_size" and value < MIN_TILE_SIZE:  # 0 became the family's 640
            raise UserError(f"-p tile_size must be at least {MIN_TILE_SIZE} pixels, not {value}")
    return CvatCliParameters(
        function=given.get("function", ""),  # none: the catalog's error lists the known ids
        weights=given.get("weights") or None,
        tile_size=given.get("tile_size") or None,
        tile_overlap=given.get("tile_overlap"),
        scale_bar_rows=given.get("scale_bar_rows"),
    )


def sdk_function_for(
    function: DetectorFunction | SeparatorFunction | TrackerFunction | ReidFunction,
    scale_bar_rows: int | None = None,
) -> SdkDetectionFunction | SdkTrackingFunction:
    """The cvat-sdk form of a loaded function. `scale_bar_rows` (the strip cropped off the
    bottom of a ZooScan vignette) applies to the plankton separator only."""
    if scale_bar_rows is not None and not isinstance(function, SeparatorFunction):
        raise UserError(f"scale_bar_rows applies to plankton-separator, not to {function.spec.id}")
    if isinstance(function, SeparatorFunction):
        return SdkSeparatorFunction(function, scale_bar_rows)
    if isinstance(function, TrackerFunction):
        if "auto-annotate" in sys.argv:  # cvat-cli's driver takes detectors only (an assert)
            raise UserError(
                f"{function.spec.id} is a tracking function, for CVAT's agents (cvat-cli "
                "function create-native, then function run-agent); `task auto-annotate` "
                "runs detectors, such as burrow-detector"
            )
        return SdkTrackingFunction(function)
    if isinstance(function, DetectorFunction):
        return SdkDetectionFunction(function)
    raise UserError(
        f"{function.spec.id} ({function.spec.kind}) has no cvat-sdk form; CVAT reaches it "
        "through its Nuclio function or `imagine-assist serve`"
    )


try:
    # cvat-cli prints its CriticalError as one line and exits 1; any other error from a
    # function module reaches the user as a traceback.
    from cvat_cli._internal.common import CriticalError as _CvatCliCriticalError
except ImportError:  # cvat-cli not installed, or a release that moved it: tracebacks, then
    _CvatCliCriticalError = Exception


class CvatCliUserError(UserError, _CvatCliCriticalError):
    """A `UserError` that cvat-cli shows as its message alone."""


@contextmanager
def shown_by_cvat_cli() -> Iterator[None]:
    """Turns a `UserError` raised while cvat-cli loads a function module into one it prints."""
    try:
        yield
    except UserError as error:
        if isinstance(error, CvatCliUserError):
            raise
        raise CvatCliUserError(str(error)) from error
