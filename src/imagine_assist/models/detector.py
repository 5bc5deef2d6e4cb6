"""Object detectors behind one call: ``detector(image_rgb, threshold) -> sv.Detections``.

Three runtimes load local weights and read class names from the weights' own metadata:
- `OnnxDetector` (ONNX Runtime): a YOLOv8 export by ultralytics, used for serving.
- `CenterNetOnnxDetector` (ONNX Runtime): a CenterNet export by `training.centernet`, whose
  metadata says `decoder: centernet`; used for serving. Neither ONNX runtime imports torch.
- `UltralyticsDetector` (``.pt``), for training-side checks; it imports ultralytics lazily.
Nothing is downloaded: a path that does not exist is an error, never a hub name.
"""

from __future__ import annotations

import ast
import logging
import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import supervision as sv

from imagine_assist.errors import ModelNotFound, UserError
from imagine_assist.models import colour

log = logging.getLogger(__name__)


class Detector(Protocol):
    class_names: list[str]
    input_size: int

    def __call__(self, image: np.ndarray, threshold: float) -> sv.Detections: ...


def with_class_names(detections: sv.Detections, class_names: list[str]) -> sv.Detections:
    class_ids = detections.class_id if detections.class_id is not None else []
    detections.data["class_name"] = np.array([class_names[int(c)] for c in class_ids], dtype=str)
    return detections


def letterbox(
    image: np.ndarray, size: int, normalisation: str = colour.NONE
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping the aspect ratio and pad to size x size, as ultralytics does (pad 114).
    `normalisation` (`models.colour`) runs on the resized picture, not the padding, and at
    the input's size, so its cost and memory do not grow with the frame."""
    height, width = image.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    resized = colour.normalise(resized, normalisation)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, scale, (pad_x, pad_y)


def in_image(xyxy: np.ndarray, scale: float, pad: tuple[int, int], shape) -> np.ndarray:
    """Boxes on a `letterbox` canvas back in the image's pixels, clipped to it."""
    pad_x, pad_y = pad
    xyxy = (np.asarray(xyxy) - [pad_x, pad_y, pad_x, pad_y]) / scale
    height, width = shape[:2]
    return np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)


def _metadata_value(text: str, path: Path):
    """ultralytics writes metadata as Python literals ("{0: 'cod'}", "[320, 320]").
    ast.literal_eval parses literals only and never runs code, so a crafted file cannot."""
    try:
        return ast.literal_eval(text)  # literals only: no code runs
    except (ValueError, SyntaxError):
        raise UserError(
            f"{path}: unreadable metadata {text[:60]!r}; export with ultralytics"
        ) from None


def open_onnx(path: str | Path, threads: int | None = None):
    """An ONNX Runtime session on the best local provider, with a clear error for a bad file."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(f"no ONNX model at {path}")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers = [
        p
        for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
        if p in ort.get_available_providers()
    ]
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own untyped errors
        raise UserError(f"{path} is not a readable ONNX model: {error}") from None


def ultralytics_metadata(session, path: Path) -> tuple[list[str], int]:
    """Class names and input size from the metadata ultralytics writes into an export."""
    return names_and_size(session.get_modelmeta().custom_metadata_map, path)


def names_and_size(meta: dict[str, str], path: Path) -> tuple[list[str], int]:
    """Class names and input size from an export's metadata map."""
    if "names" not in meta:
        raise UserError(f"{path} has no class names in its metadata; export it with ultralytics")
    names = _metadata_value(meta["names"], path)
    imgsz = _metadata_value(meta.get("imgsz", "[640, 640]"), path)
    size = int(imgsz[0] if isinstance(imgsz, list | tuple) else imgsz)
    return [names[i] for i in sorted(names)], size


class OnnxDetector:
    """A YOLOv8-style detection model exported by ultralytics to ONNX (no NMS in the graph)."""

    def __init__(
        self, path: str | Path, iou: float = 0.5, threads: int | None = None, session=None
    ) -> None:
        path = Path(path)
        self.session = session or open_onnx(path, threads)
        self.class_names, self.input_size = ultralytics_metadata(self.session, path)
        self.input_name = self.session.get_inputs()[0].name
        self.iou = iou
        self.path = path
        log.info("loaded %s with %s (%s)", path, self.session.get_providers()[0], self.class_names)

    def __call__(self, image: np.ndarray, threshold: float) -> sv.Detections:
        canvas, scale, (pad_x, pad_y) = letterbox(image, self.input_size)
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        output = self.session.run(None, {self.input_name: blob})[0][0].T  # (anchors, 4 + classes)
        scores = output[:, 4:]
        class_id = scores.argmax(axis=1)
        confidence = scores[np.arange(len(scores)), class_id]
        keep = confidence >= threshold
        if not keep.any():
            return with_class_names(sv.Detections.empty(), self.class_names)
        cx, cy, w, h = output[keep, :4].T
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        detections = sv.Detections(
            xyxy=in_image(xyxy, scale, (pad_x, pad_y), image.shape),
            confidence=confidence[keep].astype(np.float32),
            class_id=class_id[keep],
        ).with_nms(threshold=self.iou, class_agnostic=False)
        return with_class_names(detections, self.class_names)


class UltralyticsDetector:
    """A local ultralytics ``.pt`` detection model."""

    def __init__(self, path: str | Path, iou: float = 0.5, device: str = "cpu") -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelNotFound(f"no model at {path}")
        from ultralytics import YOLO

        self.model = YOLO(str(path), task="detect")
        names = self.model.names
        self.class_names = [names[i] for i in sorted(names)]
        imgsz = (getattr(self.model.model, "args", None) or {}).get("imgsz", 640)
        self.input_size = int(imgsz[0] if isinstance(imgsz, list | tuple) else imgsz)
        self.iou, self.device, self.path = iou, device, path

    def __call__(self, image: np.ndarray, threshold: float) -> sv.Detections:
        result = self.model.predict(
            image[:, :, ::-1],  # ultralytics reads numpy frames as BGR
            conf=threshold,
            iou=self.iou,
            imgsz=self.input_size,
            device=self.device,
            verbose=False,
        )[0]
        detections = sv.Detections.from_ultralytics(result)
        return with_class_names(detections, self.class_names)


def centernet_peaks(
    heat: np.ndarray, ltrb: np.ndarray, threshold: float, stride: int, top_k: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (xyxy, input pixels), scores and class ids of one image's CenterNet outputs.

    heat: (classes, h, w) probabilities; ltrb: (4, h, w) distances from each cell's point
    (column * stride, row * stride) to the box's left, top, right and bottom edges. A box is
    a cell that is the maximum of its 3 x 3 neighbourhood in its class (CenterNet's own NMS),
    at or above `threshold`; the `top_k` best are kept.
    """
    classes, height, width = heat.shape
    peaks = np.stack([cv2.dilate(channel, np.ones((3, 3), np.uint8)) for channel in heat])
    score = np.where(heat >= peaks, heat, 0).reshape(-1)
    candidates = np.flatnonzero(score >= threshold)
    if len(candidates) > top_k:
        candidates = candidates[np.argpartition(-score[candidates], top_k)[:top_k]]
    candidates = candidates[np.argsort(-score[candidates], kind="stable")]
    class_id, cell = np.divmod(candidates, height * width)
    row, column = np.divmod(cell, width)
    left, top, right, bottom = ltrb.reshape(4, -1)[:, cell]
    x, y = column * stride, row * stride
    xyxy = np.stack([x - left, y - top, x + right, y + bottom], axis=1).astype(np.float32)
    return xyxy.reshape(-1, 4), score[candidates].astype(np.float32), class_id


class CenterNetOnnxDetector:
    """A CenterNet exported by `training.centernet`: RGB 0-255 in, a heatmap per class and
    box distances out, decoded here (`centernet_peaks`)."""

    def __init__(
        self, path: str | Path, iou: float = 0.5, threads: int | None = None, session=None
    ) -> None:
        path = Path(path)
        self.session = session or open_onnx(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.class_names, self.input_size = names_and_size(meta, path)
        self.stride = int(meta.get("stride", "4"))
        # exports from before normalisation existed saw frames as they are
        self.normalisation = colour.check(meta.get("normalisation", colour.NONE))
        self.input_name = self.session.get_inputs()[0].name
        self.iou, self.path = iou, path
        log.info("loaded %s with %s (%s)", path, self.session.get_providers()[0], self.class_names)

    def __call__(self, image: np.ndarray, threshold: float) -> sv.Detections:
        canvas, scale, (pad_x, pad_y) = letterbox(image, self.input_size, self.normalisation)
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32)
        heat, ltrb = self.session.run(None, {self.input_name: blob})
        xyxy, confidence, class_id = centernet_peaks(heat[0], ltrb[0], threshold, self.stride)
        if not len(xyxy):
            return with_class_names(sv.Detections.empty(), self.class_names)
        xyxy = in_image(xyxy, scale, (pad_x, pad_y), image.shape)
        detections = sv.Detections(xyxy=xyxy, confidence=confidence, class_id=class_id)
        return with_class_names(detections.with_nms(threshold=self.iou), self.class_names)


def load_detector(path: str | Path, threads: int | None = None) -> Detector:
    """Load local weights by extension: ``.onnx`` with ONNX Runtime, ``.pt`` with ultralytics."""
    path = Path(os.path.expanduser(str(path)))
    if not path.exists():
        raise ModelNotFound(
            f"no model at {path}. Train the default with `imagine-assist train <family>` "
            "or pass the path of local weights (.onnx or .pt)"
        )
    if path.suffix == ".onnx":
        session = open_onnx(path, threads)
        if session.get_modelmeta().custom_metadata_map.get("decoder") == "centernet":
            return CenterNetOnnxDetector(path, session=session)
        return OnnxDetector(path, session=session)
    if path.suffix == ".pt":
        return UltralyticsDetector(path)
    raise UserError(f"{path}: unknown weights format '{path.suffix}' (expected .onnx or .pt)")
