"""Our functions as cvat-sdk detection functions, for `cvat-cli task auto-annotate`.

The protocol is cvat-sdk's: a `spec` and a `detect(context, image)` method.
"""

from __future__ import annotations

import numpy as np
import PIL.Image

from imagine_assist.cvat.shapes import to_sdk_annotations
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.functions.separator import SeparatorFunction
from imagine_assist.functions.spec import LabelSpec
from imagine_assist.usage.record import record_use


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
        detections = self.function.detect(np.asarray(image.convert("RGB")), context.conf_threshold)
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

    def detect(self, context, image: PIL.Image.Image) -> list:
        from cvat_sdk import models

        separation = self.function.split(np.asarray(image.convert("RGB")))
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
        import cvat_sdk.auto_annotation as cvataa

        annotations.append(cvataa.tag(self._label_ids[separation.tag], attributes=attributes))
        return annotations
