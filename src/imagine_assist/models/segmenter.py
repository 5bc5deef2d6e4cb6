"""Instance masks from a YOLOv8-style segmentation model exported by ultralytics to ONNX.

The graph gives, per anchor, a box, class scores and 32 mask coefficients, plus 32 prototype
masks at a quarter of the input size; an instance's mask is the sigmoid of its coefficients
times the prototypes, cut to its box. Masks stay at the prototypes' resolution until a caller
asks for one inside its box (`Instances.crop`), where they come back as logits at the image's
own size (resampled as logits, as ultralytics does, so the outlines match its own): a caller
can decide who owns a pixel two instances both claim, a pixel being in a mask where its
logit > 0. No frame-sized array is made per instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from imagine_assist.errors import UserError
from imagine_assist.models.detector import letterbox, open_onnx, ultralytics_metadata

# Most confident first, as ultralytics' max_det (300) does: a vignette holds a few organisms,
# and this bounds what a frame full of texture can cost.
MAX_INSTANCES = 100
OUTSIDE = np.float32(-100.0)  # the logit of a pixel outside an instance's box


@dataclass
class Instances:
    """The instances found in one image, most confident first. Each mask is kept at the
    prototypes' resolution (`low`) and reaches image pixels only inside its box."""

    confidence: np.ndarray  # float32 (K,)
    xyxy: np.ndarray  # float32 (K, 4) in image pixels
    boxes: np.ndarray  # int (K, 4) [x1, y1, x2, y2): the pixels each mask may claim
    low: np.ndarray  # float32 (K, h, w): mask logits at the prototypes' resolution
    region: tuple[float, float, float, float]  # the image inside the letterbox, in prototype px
    size: tuple[int, int]  # the image's (width, height)

    def __len__(self) -> int:
        return len(self.confidence)

    def crop(self, index: int) -> np.ndarray:
        """Instance `index`'s logits (float32) inside its box, shape (y2 - y1, x2 - x1)."""
        x1, y1, x2, y2 = (int(v) for v in self.boxes[index])
        if x2 <= x1 or y2 <= y1:
            return np.zeros((max(y2 - y1, 0), max(x2 - x1, 0)), np.float32)
        left, top, right, bottom = self.region
        width, height = self.size
        # an affine map from image pixel centres to prototype coordinates, bilinear, shifted
        # to the box's corner
        sx, sy = (right - left) / width, (bottom - top) / height
        matrix = np.array(
            [[sx, 0, left + 0.5 * sx - 0.5 + sx * x1], [0, sy, top + 0.5 * sy - 0.5 + sy * y1]]
        )
        return cv2.warpAffine(
            self.low[index],
            matrix,
            (x2 - x1, y2 - y1),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderValue=0.0,
        )

    @property
    def logits(self) -> np.ndarray:
        """Every mask on the whole frame (K, H, W), `OUTSIDE` beyond its box: K frames of
        float32, so for small images and tests only."""
        width, height = self.size
        frames = np.full((len(self), height, width), OUTSIDE, np.float32)
        for index, (x1, y1, x2, y2) in enumerate(self.boxes):
            frames[index, y1:y2, x1:x2] = self.crop(index)
        return frames


class OnnxSegmenter:
    def __init__(
        self,
        path: str | Path,
        iou: float = 0.7,
        threads: int | None = None,
        max_instances: int = MAX_INSTANCES,
    ) -> None:
        path = Path(path)
        self.session = open_onnx(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if len(self.session.get_outputs()) != 2 or meta.get("task", "segment") != "segment":
            raise UserError(f"{path} is not a segmentation model (expected boxes and prototypes)")
        self.class_names, self.input_size = ultralytics_metadata(self.session, path)
        self.input_name = self.session.get_inputs()[0].name
        self.iou, self.path, self.max_instances = iou, path, max_instances

    def __call__(self, image: np.ndarray, threshold: float) -> Instances:
        height, width = image.shape[:2]
        rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        canvas, scale, (pad_x, pad_y) = letterbox(rgb, self.input_size)
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        predictions, prototypes = self.session.run(None, {self.input_name: blob})
        predictions, prototypes = predictions[0].T, prototypes[0]  # (anchors, 4+nc+32), (32, h, w)
        proto_h, proto_w = prototypes.shape[1:]
        # the image's own area inside the letterbox, in prototype pixels
        ratio = proto_w / self.input_size
        top, left = pad_y * ratio, pad_x * ratio
        region = (left, top, left + width * scale * ratio, top + height * scale * ratio)
        classes = len(self.class_names)
        scores = predictions[:, 4 : 4 + classes].max(axis=1)
        keep = scores >= threshold
        if not keep.any():  # no instance: no masks
            return Instances(
                np.zeros(0, np.float32),
                np.zeros((0, 4), np.float32),
                np.zeros((0, 4), int),
                np.zeros((0, proto_h, proto_w), np.float32),
                region,
                (width, height),
            )
        cx, cy, w, h = predictions[keep, :4].T
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        kept = sv.box_non_max_suppression(
            np.column_stack([boxes, scores[keep]]), iou_threshold=self.iou
        )
        order = np.flatnonzero(kept)[np.argsort(-scores[keep][kept], kind="stable")]
        order = order[: self.max_instances]
        boxes, confidence = boxes[order], scores[keep][order]
        coefficients = predictions[keep][order][:, 4 + classes :]
        low = coefficients @ prototypes.reshape(len(prototypes), -1)
        low = low.reshape(-1, proto_h, proto_w).astype(np.float32)
        xyxy = (boxes - [pad_x, pad_y, pad_x, pad_y]) / scale
        xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
        # each mask is cut to its own box, as ultralytics does, so far-away blobs are not claimed
        return Instances(
            confidence.astype(np.float32),
            xyxy,
            np.round(xyxy).astype(int),
            low,
            region,
            (width, height),
        )
