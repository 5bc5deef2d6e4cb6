"""A served detector: its spec plus a model, on arrays or on an encoded frame."""

from __future__ import annotations

import numpy as np
import supervision as sv

from imagine_assist.errors import UserError
from imagine_assist.functions.spec import FunctionSpec
from imagine_assist.images import decode_image_reduced
from imagine_assist.models.borders import picture_box
from imagine_assist.models.detector import Detector
from imagine_assist.models.tiling import detect_tiled, surest

# Boxes of different labels overlapping more than this are one object named twice (the
# models' own NMS, within a label, uses the same IoU).
CROSS_LABEL_NMS_IOU = 0.5
# Smaller windows cost thousands of model runs per drone frame and hold no whole object.
MIN_TILE_SIZE = 64
# The most boxes a frame answers, most confident first: a litter frame holds hundreds, and
# at threshold 0 (CVAT allows it) a 20 MP frame gave 5,511 after a 14 s, 2.2 GB NMS, whose
# IoU matrix grows with the square of the boxes. Tiles keep 4 times as many to merge.
MAX_BOXES = 2000


class DetectorFunction:
    """`detect` works on arrays; `detect_encoded` on a frame's JPEG or PNG bytes.
    `class_agnostic_nms`: one box per object whatever its label (the catalog sets it from
    the family's recipe)."""

    def __init__(
        self,
        spec: FunctionSpec,
        detector: Detector,
        tile_size: int | None = None,
        tile_overlap: int | None = None,
        class_agnostic_nms: bool = False,
    ) -> None:
        unknown = sorted(set(detector.class_names) - set(spec.label_names))
        if unknown:
            raise UserError(
                f"the model's classes {unknown} are not labels of {spec.id} "
                f"({spec.label_names}); load a model trained for this function"
            )
        self.spec = spec
        self.detector = detector
        self.tile_size = tile_size if tile_size is not None else spec.tile_size
        self.tile_overlap = tile_overlap if tile_overlap is not None else spec.tile_overlap
        if self.tile_size is not None and self.tile_size < MIN_TILE_SIZE:
            raise UserError(
                f"--tile-size must be at least {MIN_TILE_SIZE} pixels, got {self.tile_size}"
            )
        # At most half a window: each pixel then goes through the model at most 4 times. A
        # 63 px overlap on 64 px windows made 19 million windows of a 20 MP frame, a run that
        # looked hung.
        if self.tile_size is not None and not 0 <= self.tile_overlap <= self.tile_size // 2:
            # Named as the user set it: an overlap they never chose is the family's default.
            who = "--tile-overlap" if tile_overlap is not None else f"{spec.id}'s tile overlap"
            raise UserError(
                f"{who} {self.tile_overlap} must lie in [0, {self.tile_size // 2}] for tiles "
                f"of {self.tile_size} px (at most half a tile); give a smaller --tile-overlap "
                "(cvat-cli: -p tile_overlap=int:N)"
            )
        self.class_agnostic_nms = class_agnostic_nms

    def detect(self, image: np.ndarray, threshold: float | None = None) -> sv.Detections:
        """Detections in the frame's coordinates. Letterbox bars are cut away first: models
        read a bar's edge as an object (`models.borders`)."""
        threshold = self.spec.check_threshold(threshold)
        self.spec.check_image_size(image.shape[1], image.shape[0])  # a 1x1 frame: no inventions
        return self._detect_checked(image, threshold)

    def _detect_checked(self, image: np.ndarray, threshold: float) -> sv.Detections:
        x0, y0, x1, y1 = picture_box(image)
        picture = image[y0:y1, x0:x1]
        height, width = picture.shape[:2]
        if self.tile_size and max(height, width) > self.tile_size:
            detections = detect_tiled(
                picture,
                lambda window: self.detector(window, threshold),
                tile=self.tile_size,
                overlap=self.tile_overlap,
                max_boxes=4 * MAX_BOXES,
            )
        else:
            detections = self.detector(picture, threshold)
        if len(detections) > MAX_BOXES:
            detections = detections[surest(detections, MAX_BOXES)]
        if self.class_agnostic_nms and len(detections) > 1:
            detections = detections.with_nms(threshold=CROSS_LABEL_NMS_IOU, class_agnostic=True)
        if x0 or y0:
            detections.xyxy = (detections.xyxy + np.array([x0, y0, x0, y0])).astype(np.float32)
        return detections

    def detect_encoded(
        self, data: bytes, threshold: float | None = None
    ) -> tuple[sv.Detections, tuple[int, int]]:
        """Detections on a frame's JPEG or PNG bytes, in the frame's own coordinates, and
        its (width, height). The frame may have at most `spec.max_image_pixels`."""
        # Without tiling the model sees the frame at its input size, so a JPEG can be decoded
        # at reduced scale; boxes are scaled back to the full frame.
        threshold = self.spec.check_threshold(threshold)
        image, (width, height) = decode_image_reduced(
            data,
            self.spec.max_image_pixels,
            reduce_to=None if self.tile_size else self.detector.input_size,
        )
        # The frame's own size decides, not the reduced decode's, and before the model runs.
        self.spec.check_image_size(width, height)
        detections = self._detect_checked(image, threshold)
        if image.shape[1] != width or image.shape[0] != height:
            scale = np.array([width / image.shape[1], height / image.shape[0]] * 2)
            detections.xyxy = (detections.xyxy * scale).astype(np.float32)
        return detections, (width, height)
