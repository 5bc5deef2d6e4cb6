"""Our functions as cvat-sdk detection functions, for `cvat-cli task auto-annotate`.

The protocol is cvat-sdk's: a `spec` and a `detect(context, image)` method.
"""

from __future__ import annotations

import numpy as np
import PIL.Image

from imagine_assist.cvat.shapes import to_sdk_annotations
from imagine_assist.functions.detector import DetectorFunction


class SdkDetectionFunction:
    def __init__(self, function: DetectorFunction) -> None:
        import cvat_sdk.auto_annotation as cvataa

        self.function = function
        labels = function.spec.labels
        self.spec = cvataa.DetectionFunctionSpec(
            labels=[cvataa.label_spec(label.name, label.id, type=label.type) for label in labels]
        )
        self._label_ids = {label.name: label.id for label in labels}

    def detect(self, context, image: PIL.Image.Image) -> list:
        # conf_threshold is None when the user gave none: the spec's default applies.
        detections = self.function.detect(np.asarray(image.convert("RGB")), context.conf_threshold)
        return to_sdk_annotations(
            detections,
            self._label_ids,
            self.function.spec.label_types,
            conv_mask_to_poly=context.conv_mask_to_poly,
        )
