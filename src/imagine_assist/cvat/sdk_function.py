"""Our functions as cvat-sdk functions, for `cvat-cli task auto-annotate` and CVAT's agents.

The protocol is cvat-sdk's: a `spec` and a `detect(context, image)` method (trackers: see
`sdk_tracking`). `sdk_function_for` picks the adapter for a loaded function.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import PIL.Image

from imagine_assist.cvat.sdk_tracking import SdkTrackingFunction
from imagine_assist.cvat.shapes import to_sdk_annotations
from imagine_assist.errors import UserError
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.functions.separator import SeparatorFunction
from imagine_assist.functions.spec import LabelSpec
from imagine_assist.functions.tracker import TrackerFunction
from imagine_assist.images import upright_rgb8
from imagine_assist.usage.record import record_use

if TYPE_CHECKING:
    from imagine_assist.functions.reid import ReidFunction


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
        # conf_threshold is None when the user gave none: the spec's default applies.
        detections = self.function.detect(upright_rgb8(image), context.conf_threshold)
        record_use(self.function.spec.id)
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
        annotations.append(cvataa.tag(self._label_ids[separation.tag], attributes=attributes))
        return annotations


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
