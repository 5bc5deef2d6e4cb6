"""Instance masks from a YOLOv8-style segmentation model exported by ultralytics to ONNX.

The graph gives, per anchor, a box, class scores and 32 mask coefficients, plus 32 prototype
masks at a quarter of the input size; an instance's mask is the sigmoid of its coefficients
times the prototypes, cut to its box. Masks come back as logits at the image's own size
(resampled as logits, as ultralytics does, so the outlines match its own), so a caller can
decide who owns a pixel two instances both claim: a pixel is in a mask where its logit > 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

from imagine_assist.errors import UserError
from imagine_assist.models.detector import letterbox, open_onnx, ultralytics_metadata


@dataclass
class Instances:
    logits: np.ndarray  # float32 (K, H, W): the mask is where > 0
    confidence: np.ndarray  # float32 (K,)
    xyxy: np.ndarray  # float32 (K, 4) in image pixels

    def __len__(self) -> int:
        return len(self.confidence)


class OnnxSegmenter:
    def __init__(self, path: str | Path, iou: float = 0.7, threads: int | None = None) -> None:
        path = Path(path)
        self.session = open_onnx(path, threads)
        if len(self.session.get_outputs()) != 2:
            raise UserError(f"{path} is not a segmentation model (expected boxes and prototypes)")
        self.class_names, self.input_size = ultralytics_metadata(self.session, path)
        self.input_name = self.session.get_inputs()[0].name
        self.iou, self.path = iou, path

    def __call__(self, image: np.ndarray, threshold: float) -> Instances:
        height, width = image.shape[:2]
        rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        canvas, scale, (pad_x, pad_y) = letterbox(rgb, self.input_size)
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        predictions, prototypes = self.session.run(None, {self.input_name: blob})
        predictions, prototypes = predictions[0].T, prototypes[0]  # (anchors, 4+nc+32), (32, h, w)
        classes = len(self.class_names)
        scores = predictions[:, 4 : 4 + classes].max(axis=1)
        keep = scores >= threshold
        if not keep.any():
            empty = np.zeros((0, height, width), np.float32)  # no instance: no logits
            return Instances(empty, np.zeros(0, np.float32), np.zeros((0, 4), np.float32))
        cx, cy, w, h = predictions[keep, :4].T
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        kept = sv.box_non_max_suppression(
            np.column_stack([boxes, scores[keep]]), iou_threshold=self.iou
        )
        order = np.flatnonzero(kept)[np.argsort(-scores[keep][kept], kind="stable")]
        boxes, confidence = boxes[order], scores[keep][order]
        coefficients = predictions[keep][order][:, 4 + classes :]
        proto_h, proto_w = prototypes.shape[1:]
        low = coefficients @ prototypes.reshape(len(prototypes), -1)
        low = low.reshape(-1, proto_h, proto_w).astype(np.float32)
        # the image's own area inside the letterbox, in prototype pixels
        ratio = proto_w / self.input_size
        top, left = pad_y * ratio, pad_x * ratio
        bottom, right = top + height * scale * ratio, left + width * scale * ratio
        logits = np.stack(
            [self._to_image(mask, (left, top, right, bottom), (width, height)) for mask in low]
        )
        xyxy = (boxes - [pad_x, pad_y, pad_x, pad_y]) / scale
        xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
        # cut each mask to its own box, as ultralytics does, so far-away blobs are not claimed
        outside = np.float32(-100.0)
        for mask, (x1, y1, x2, y2) in zip(logits, np.round(xyxy).astype(int), strict=True):
            mask[:y1] = outside
            mask[y2:] = outside
            mask[:, :x1] = outside
            mask[:, x2:] = outside
        return Instances(logits, confidence.astype(np.float32), xyxy)

    @staticmethod
    def _to_image(mask: np.ndarray, region: tuple, size: tuple[int, int]) -> np.ndarray:
        """Resample the letterboxed image area of a prototype-resolution mask to `size`."""
        left, top, right, bottom = region
        width, height = size
        # an affine map from image pixel centres to prototype coordinates, bilinear
        sx, sy = (right - left) / width, (bottom - top) / height
        matrix = np.array([[sx, 0, left + 0.5 * sx - 0.5], [0, sy, top + 0.5 * sy - 0.5]])
        return cv2.warpAffine(
            mask,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderValue=0.0,
        )
