"""The TensorFlow.js graph reader and the CenterNet that fine-tunes on it, on tiny graphs
written here (the real pretrained graph is fetched for training only; tests never need it).

Hand-checked cases: TensorFlow's SAME padding puts the odd pixel bottom-right, its legacy
bilinear resize has no half-pixel offset, and CenterNet's box decoding and targets."""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest
import torch

from imagine_assist.errors import UserError
from imagine_assist.models import colour
from imagine_assist.models.detector import CenterNetOnnxDetector, centernet_peaks, load_detector
from imagine_assist.training import centernet
from imagine_assist.training.tfjs_graph import load_graph


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _conv(name, source, kernel, bias=None, stride=1, padding="SAME", fused=("BiasAdd",), op=None):
    node = {
        "name": name,
        "op": op or ("_FusedConv2D" if bias else "Conv2D"),
        "input": [source, kernel] + ([bias] if bias else []),
        "attr": {
            "strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}},
            "padding": {"s": _b64(padding)},
        },
    }
    if bias:
        node["attr"]["fused_ops"] = {"list": {"s": [_b64(f) for f in fused]}}
    return node


def write_graph(folder, nodes, weights: dict[str, np.ndarray], size=(1, 8, 8, 3)):
    """A graph-model folder: model.json and one shard, float weights stored as float16 as the
    TensorFlow.js converter's --quantize_float16 does."""
    folder.mkdir(parents=True, exist_ok=True)
    specs, blobs = [], []
    for name, value in weights.items():
        spec = {"name": name, "shape": list(value.shape), "dtype": str(value.dtype)}
        if value.dtype == np.float32:
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blobs.append(value.astype(np.float16).tobytes())
        else:
            blobs.append(value.astype(np.int32).tobytes())
        specs.append(spec)
    (folder / "group1-shard1of1.bin").write_bytes(b"".join(blobs))
    placeholder = {
        "name": "images",
        "op": "Placeholder",
        "attr": {"shape": {"shape": {"dim": [{"size": str(s)} for s in size]}}},
    }
    consts = [{"name": name, "op": "Const"} for name in weights]
    model = {
        "format": "graph-model",
        "modelTopology": {"node": [placeholder, *consts, *nodes]},
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": specs}],
    }
    (folder / "model.json").write_text(json.dumps(model))
    return folder / "model.json"


def test_same_padding_puts_the_odd_pixel_bottom_right(tmp_path):
    # 4x4 ones, 3x3 ones kernel, stride 2: TensorFlow pads one row and column at the end only,
    # so the first output sums a whole 3x3 window (9) and the last a 2x2 corner (4)
    kernel = np.ones((3, 3, 1, 1), np.float32)
    nodes = [_conv("out", "images", "k", stride=2)]
    path = write_graph(tmp_path, nodes, {"k": kernel}, (1, 4, 4, 1))
    graph = load_graph(path, ["out"])
    out = graph(torch.ones(1, 1, 4, 4))["out"][0, 0]
    assert out.tolist() == [[9.0, 6.0], [6.0, 4.0]]


def test_legacy_bilinear_resize_has_no_half_pixel_offset(tmp_path):
    nodes = [
        {"name": "up", "op": "ResizeBilinear", "input": ["images", "size"], "attr": {}},
    ]
    path = write_graph(tmp_path, nodes, {"size": np.array([2, 4], np.int32)}, (1, 1, 2, 1))
    graph = load_graph(path, ["up"])
    row = graph(torch.tensor([[[[0.0, 1.0]]]]))["up"][0, 0, 0]
    assert row.tolist() == [0.0, 0.5, 1.0, 1.0]  # tf.image.resize_bilinear, align_corners=False


def test_yolov5s_ops_pad_max_pool_and_nearest_resize(tmp_path):
    # the ops YOLOv5's export adds: an explicit Pad before its stride-2 convolutions, SPPF's
    # 5x5 max pools (SAME: the border sees only the pixels inside), and 2x nearest upsampling
    nodes = [
        {"name": "pad", "op": "Pad", "input": ["images", "pads"], "attr": {}},
        {
            "name": "pool",
            "op": "MaxPool",
            "input": ["images"],
            "attr": {
                "ksize": {"list": {"i": ["1", "3", "3", "1"]}},
                "strides": {"list": {"i": ["1", "1", "1", "1"]}},
                "padding": {"s": _b64("SAME")},
            },
        },
        {"name": "up", "op": "ResizeNearestNeighbor", "input": ["images", "size"], "attr": {}},
    ]
    pads = np.array([[0, 0], [1, 0], [0, 2], [0, 0]], np.int32)  # NHWC: 1 row on top, 2 right
    weights = {"pads": pads, "size": np.array([4, 6], np.int32)}
    graph = load_graph(write_graph(tmp_path, nodes, weights, (1, 2, 3, 1)), ["pad", "pool", "up"])
    image = -torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]])  # negative: a zero pad shows
    out = graph(image)
    assert out["pad"][0, 0].tolist() == [[0, 0, 0, 0, 0], [-1, -2, -3, 0, 0], [-4, -5, -6, 0, 0]]
    assert out["pool"][0, 0].tolist() == [[-1, -1, -2], [-1, -1, -2]]
    assert out["up"].shape == (1, 1, 4, 6)
    assert out["up"][0, 0, 1].tolist() == [-1, -1, -2, -2, -3, -3]
    assert out["up"][0, 0, 2].tolist() == [-4, -4, -5, -5, -6, -6]


def test_weights_are_dequantised_into_torch_layouts_and_learn(tmp_path):
    kernel = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4) / 10  # HWIO
    bias = np.array([0.5, -0.5, 1.0, 0.0], np.float32)
    nodes = [_conv("out", "images", "k", "b", fused=("BiasAdd", "Relu"))]
    graph = load_graph(write_graph(tmp_path, nodes, {"k": kernel, "b": bias}), ["out"])
    torch_kernel = graph.parameter("k")
    assert torch_kernel.shape == (4, 3, 2, 2) and torch_kernel.requires_grad
    assert torch_kernel[1, 2, 0, 1].item() == pytest.approx(kernel[0, 1, 2, 1], rel=1e-3)
    image = torch.rand(1, 3, 8, 8)
    reference = torch.relu(
        torch.nn.functional.conv2d(
            torch.nn.functional.pad(image, (0, 1, 0, 1)), torch_kernel, graph.parameter("b")
        )
    )
    assert torch.allclose(graph(image)["out"], reference)


def test_unknown_ops_and_broken_files_are_clear_errors(tmp_path):
    nodes = [{"name": "odd", "op": "Cumsum", "input": ["images"], "attr": {}}]
    graph = load_graph(write_graph(tmp_path / "a", nodes, {}), ["odd"])
    with pytest.raises(UserError, match="Cumsum"):
        graph(torch.zeros(1, 3, 8, 8))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.json").write_text("{not json")
    with pytest.raises(UserError, match="not a readable"):
        load_graph(tmp_path / "b" / "model.json", ["x"])
    kernel = {"k": np.ones((3, 3, 3, 2), np.float32)}
    path = write_graph(tmp_path / "c", [_conv("out", "images", "k")], kernel)
    (tmp_path / "c" / "group1-shard1of1.bin").write_bytes(b"\0" * 10)  # truncated shard
    with pytest.raises(UserError, match="shards end"):
        load_graph(path, ["out"])


def tiny_centernet(folder, coco_classes=3, stem_kernel="stem_k"):
    """A CenterNet-shaped graph with the real one's node names: a stride-4 convolution, then
    the class head (COCO's classes) and the box head (distances times 16)."""
    rng = np.random.default_rng(0)
    weights = {
        stem_kernel: rng.normal(0, 0.02, (4, 4, 3, 8)).astype(np.float32),
        "stem_b": np.zeros(8, np.float32),
        centernet.CLASS_KERNEL: rng.normal(0, 0.1, (1, 1, 8, coco_classes)).astype(np.float32),
        centernet.CLASS_BIAS: np.full(coco_classes, -2.0, np.float32),
        "wh_k": rng.normal(0, 0.1, (1, 1, 8, 4)).astype(np.float32),
        "wh_b": np.ones(4, np.float32),
        "sixteen": np.array(16.0, np.float32),
    }
    nodes = [
        _conv("stem", "images", stem_kernel, "stem_b", stride=4, fused=("BiasAdd", "Relu")),
        _conv(centernet.HEAT_LOGITS, "stem", centernet.CLASS_KERNEL, centernet.CLASS_BIAS),
        _conv("wh", "stem", "wh_k", "wh_b"),
        {"name": centernet.BOX_DISTANCES, "op": "Mul", "input": ["wh", "sixteen"], "attr": {}},
    ]
    return write_graph(folder, nodes, weights, (1, 64, 64, 3))


def test_cells_left_out_of_the_focal_loss_cost_nothing():
    # a confident "fish" far from the one labelled fish: background loss, unless nobody is
    # sure whether that cell is a fish (left out through `counted`)
    heat = np.zeros((1, 1, 8, 8), np.float32)
    heat[0, 0, 2, 2] = 1.0
    logits = torch.full((1, 1, 8, 8), -6.0)
    logits[0, 0, 2, 2] = 3.0
    calm = centernet.focal_loss(logits, torch.from_numpy(heat))
    logits[0, 0, 6, 6] = 3.0
    alarmed = centernet.focal_loss(logits, torch.from_numpy(heat))
    counted = np.ones_like(heat)
    counted[0, 0, 5:8, 5:8] = 0
    spared = centernet.focal_loss(logits, torch.from_numpy(heat), torch.from_numpy(counted))
    assert alarmed > calm + 1.0
    assert spared == pytest.approx(calm.item(), abs=1e-4)


def test_targets_peak_at_the_centre_and_decoding_inverts_them():
    xyxy = np.array([[40.0, 20.0, 80.0, 44.0]], np.float32)
    heat, boxes, weight = centernet.targets(xyxy, np.array([1]), classes=2, size=128)
    assert heat.shape == (2, 32, 32) and heat[0].max() == 0  # class 0 has no box
    row, column = np.unravel_index(heat[1].argmax(), heat[1].shape)
    assert (row, column) == (8, 15) and heat[1, row, column] == 1.0  # centre (60, 32) / 4
    assert weight[row, column] > 0 and boxes[:, row, column].tolist() == [40, 20, 80, 44]
    # the served decoding: a cell's point is (column * 4, row * 4); distances to the edges
    ltrb = np.zeros((4, 32, 32), np.float32)
    ltrb[:, row, column] = [60 - 40, 32 - 20, 80 - 60, 44 - 32]
    found, score, class_id = centernet_peaks(heat, ltrb, 0.5, stride=4)
    assert found.tolist() == [[40, 20, 80, 44]] and class_id.tolist() == [1]


def test_centernet_peaks_keep_local_maxima_only():
    heat = np.zeros((1, 8, 8), np.float32)
    heat[0, 2, 2], heat[0, 2, 3] = 0.9, 0.8  # one object's two cells: one box
    heat[0, 6, 6] = 0.4
    _, score, _ = centernet_peaks(heat, np.ones((4, 8, 8), np.float32), 0.3, stride=4)
    assert score.tolist() == pytest.approx([0.9, 0.4])


def _squares(folder, count, rng, water=30, square=230):
    """Frames with bright squares on dark water and their YOLO labels."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir(parents=True)
    for index in range(count):
        image = np.full((64, 64, 3), water, np.uint8)
        x, y, side = rng.integers(4, 36), rng.integers(4, 36), rng.integers(14, 24)
        image[y : y + side, x : x + side] = square
        cv2.imwrite(str(folder / "images" / f"{index}.png"), image)
        cx, cy = (x + side / 2) / 64, (y + side / 2) / 64
        (folder / "labels" / f"{index}.txt").write_text(f"0 {cx} {cy} {side / 64} {side / 64}\n")
    return centernet.read_yolo_images(folder / "images")


def test_every_box_of_a_mosaic_sits_on_a_bright_square(tmp_path):
    # four frames of one white square each on black water: wherever the window falls, each
    # box it keeps must lie on a square, and the squares it shows must all be boxed. Colour
    # jitter keeps black black and white above 127; the padding is grey (114).
    frames = _squares(tmp_path, 4, np.random.default_rng(0), water=0, square=255)
    rng = np.random.default_rng(1)
    boxes_seen = 0
    for _ in range(20):
        window, xyxy, class_id = centernet.mosaic(frames, 64, rng)
        assert window.shape == (64, 64, 3) and len(class_id) == len(xyxy)
        grey = window.astype(np.float32).mean(axis=2)
        covered = np.zeros(grey.shape, bool)
        for x0, y0, x1, y1 in np.round(xyxy).astype(int):
            assert grey[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].min() > 120
            covered[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2] = True
        # bright pixels outside every box: a square cut to a sliver (< 40 % kept) at most
        assert (grey[~covered] > 120).sum() < 0.4 * 24 * 24
        boxes_seen += len(xyxy)
    assert boxes_seen >= 20  # about one square and a half per window, not none
    with pytest.raises(ValueError, match="4 frames"):
        centernet.mosaic(frames[:3], 64, rng)


def test_camera_effects_at_each_step_veil_the_frame_but_keep_its_box(tmp_path):
    # one bright square with dark water all round it, so the ring around its box is water
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    image = np.full((64, 64, 3), 30, np.uint8)
    image[20:44, 20:44] = 230
    cv2.imwrite(str(tmp_path / "images" / "0.png"), image)
    (tmp_path / "labels" / "0.txt").write_text("0 0.5 0.5 0.375 0.375\n")
    frame = centernet.read_yolo_images(tmp_path / "images")[0]
    rng = np.random.default_rng(4)

    def contrasts(chance: float) -> list[float]:
        found = []
        for _ in range(12):
            canvas, xyxy, _ = centernet.augmented(frame, 64, rng, camera_effects=chance)
            if len(xyxy) != 1 or xyxy.min() < 4 or xyxy.max() > 60:
                continue  # the square zoomed or moved to the edge
            x0, y0, x1, y1 = np.round(xyxy[0]).astype(int)
            grey = canvas.astype(np.float32).mean(axis=2)
            inside = grey[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].mean()
            ring = np.concatenate(
                [grey[y0 - 3 : y0 - 1, x0:x1].ravel(), grey[y1 + 1 : y1 + 3, x0:x1].ravel()]
            ).mean()
            assert inside > ring  # the box still sits on the square
            found.append(inside - ring)
        assert len(found) >= 5
        return found

    clear, veiled = contrasts(0.0), contrasts(1.0)
    # every effect on (turbidity, low light, blur...): the square stands out far less
    assert np.mean(veiled) < 0.8 * np.mean(clear)
    # and no two steps see it through the same camera
    assert len({round(c, 3) for c in veiled}) == len(veiled)


@pytest.mark.slow  # trains (about 10 s)
def test_fine_tune_checkpoint_and_onnx_export_serve_the_same_boxes(tmp_path):
    graph = tiny_centernet(tmp_path / "graph")
    rng = np.random.default_rng(1)
    train, val = _squares(tmp_path / "train", 24, rng), _squares(tmp_path / "val", 8, rng)
    start = centernet.best_start_class(graph, train, 64)
    model = centernet.pretrained(graph, ["square"], 64, start)
    assert model(torch.zeros(1, 3, 64, 64))[0].shape == (1, 1, 16, 16)
    before = centernet.evaluate(model, val)["mAP50"]
    lines = []
    result = centernet.fit(
        model, train, val, tmp_path / "run", 10, 8, 3e-4, progress=lines.append, passes=30
    )
    assert result.best.is_file() and sum("validation AP50" in line for line in lines) == 30
    assert before < 0.05 and result.best_val > 0.15  # it learns squares from scratch (0.40)

    loaded = centernet.load_checkpoint(result.best)
    assert loaded.names == ["square"] and centernet.is_checkpoint(result.best)
    onnx = centernet.export_onnx(loaded, tmp_path / "model.onnx")
    detector = load_detector(onnx)
    assert isinstance(detector, CenterNetOnnxDetector)
    assert detector.class_names == ["square"] and detector.input_size == 64
    image = cv2.imread(str(val[0].image))[:, :, ::-1]
    served = detector(np.ascontiguousarray(image), 0.0)
    frame = centernet.predict(loaded, val[:1], threshold=0.0)[0]
    # the same model: ONNX Runtime's boxes are torch's (both in the 64 px input here)
    assert len(served) and served.xyxy[0] == pytest.approx(np.clip(frame[2][0], 0, 64), abs=0.05)


@pytest.mark.slow  # trains (two short fits)
def test_a_frozen_backbone_keeps_its_pretrained_weights_while_the_heads_learn(tmp_path):
    # the stem named as the real graph names MobileNetV3's blocks
    graph = tiny_centernet(tmp_path / "graph", stem_kernel="MobilenetV3/Conv/weights")
    train = _squares(tmp_path / "train", 16, np.random.default_rng(2))
    model = centernet.pretrained(graph, ["square"], 64, 0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    def moved(name: str) -> bool:
        return not torch.equal(before[name], dict(model.named_parameters())[name])

    backbone = [name for name in before if "MobilenetV3" in name]
    assert len(backbone) == 1 and len(before) > 1
    for scale in (0.0, 0.25):
        centernet.fit(
            model,
            train,
            train[:4],
            tmp_path / f"scale-{scale}",
            10,
            8,
            1e-3,
            progress=lambda _: None,
            passes=2,
            backbone_lr_scale=scale,
            camera_effects=0.3,
            keep_passes=True,
        )
        run = tmp_path / f"scale-{scale}"
        kept = [centernet.load_checkpoint(run / f"pass-{n}.pt") for n in (1, 2)]
        assert [m.names for m in kept] == [["square"], ["square"]]  # every pass, to compare
        if scale == 0.0:  # frozen: the backbone as pretrained, every other weight learnt
            assert not moved(backbone[0]) and all(moved(n) for n in before if n not in backbone)
    assert moved(backbone[0])  # at a quarter of the rate it learns too


def test_a_tampered_or_foreign_checkpoint_is_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable CenterNet checkpoint"):
        centernet.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a CenterNet checkpoint"):
        centernet.load_checkpoint(tmp_path / "other.pt")
    assert not centernet.is_checkpoint(tmp_path / "junk.pt")


@pytest.fixture
def tiny_fish(tmp_path):
    """A tiny CenterNet checkpoint with one class, `fish`."""
    model = centernet.pretrained(tiny_centernet(tmp_path / "graph"), ["fish"], 64, 0)
    return centernet.save_checkpoint(model, tmp_path / "fish.pt")


def test_a_species_family_starts_each_species_as_a_fish(tiny_fish):
    fish = centernet.load_checkpoint(tiny_fish)
    species = centernet.with_classes(centernet.load_checkpoint(tiny_fish), ["cod", "fish", "ling"])
    image = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        (fish_heat, fish_boxes), (heat, boxes) = fish(image), species(image)
    assert species.names == ["cod", "fish", "ling"] and heat.shape[1] == 3
    for channel in range(3):
        assert torch.equal(heat[:, channel], fish_heat[:, 0])
    assert torch.equal(boxes, fish_boxes)


@pytest.mark.slow  # trains
def test_retraining_a_centernet_from_a_cvat_export_keeps_it_a_centernet(tiny_fish, tmp_path, home):
    from imagine_assist.models.registry import Registry
    from imagine_assist.samples import write_cvat_export
    from imagine_assist.training.retrain import load_recipe, retrain

    from .fish_tasks import FISH_LABELS, fish_samples

    export = write_cvat_export(tmp_path / "task-1.zip", fish_samples(24, 90), FISH_LABELS)
    registry = Registry(tmp_path / "models")
    result = retrain(
        "fish",
        [export],
        registry,
        tmp_path / "work",
        load_recipe("fish"),
        epochs=2,
        start_weights=tiny_fish,
        always_promote=True,
    )
    version = registry.current("fish")
    assert result.promoted and version.name == "v1"
    assert centernet.is_checkpoint(version.file("model.pt"))
    detector = load_detector(version.file("model.onnx"))
    assert isinstance(detector, CenterNetOnnxDetector) and detector.class_names == ["fish"]
    card = version.card
    assert card["recipe"]["epochs"] == 2 and card["started_from"] == str(tiny_fish)
    assert card["architecture"] == "centernet-mobilenetv3"
    candidate = card["metrics"]["candidate"]
    assert 0 <= candidate["mAP50"] <= 1 and set(candidate["per_class"]) <= {"fish"}


def test_a_colour_normalised_model_is_served_with_its_normalisation(tmp_path):
    # trained to see frames through grey world + CLAHE: the checkpoint and the ONNX export
    # both say so, and the served detector gives what the training code's predict gives
    graph = tiny_centernet(tmp_path / "graph")
    model = centernet.pretrained(graph, ["fish"], 64, 0)
    model.normalisation = colour.GREYWORLD_CLAHE
    loaded = centernet.load_checkpoint(centernet.save_checkpoint(model, tmp_path / "fish.pt"))
    assert loaded.normalisation == colour.GREYWORLD_CLAHE
    detector = load_detector(centernet.export_onnx(loaded, tmp_path / "fish.onnx"))
    assert detector.normalisation == colour.GREYWORLD_CLAHE

    rng = np.random.default_rng(3)
    frames = _squares(tmp_path / "frames", 1, rng, water=90, square=160)
    blue = cv2.imread(str(frames[0].image)).astype(np.float32) * [1.3, 1.0, 0.5]  # BGR cast
    cv2.imwrite(str(frames[0].image), np.clip(blue, 0, 255).astype(np.uint8))
    image = np.ascontiguousarray(cv2.imread(str(frames[0].image))[:, :, ::-1])
    served = detector(image, 0.0)
    expected = centernet.predict(loaded, frames, threshold=0.0)[0]
    assert len(served) and served.confidence[0] == pytest.approx(expected[3][0], abs=1e-3)

    # the same weights served without it see another frame: the test can tell
    plain = centernet.load_checkpoint(tmp_path / "fish.pt")
    plain.normalisation = colour.NONE
    unnormalised = load_detector(centernet.export_onnx(plain, tmp_path / "plain.onnx"))
    assert unnormalised(image, 0.0).confidence[0] != pytest.approx(served.confidence[0], abs=1e-3)


def test_a_checkpoint_with_a_tampered_normalisation_is_refused(tmp_path):
    model = centernet.pretrained(tiny_centernet(tmp_path / "graph"), ["fish"], 64, 0)
    path = centernet.save_checkpoint(model, tmp_path / "fish.pt")
    saved = torch.load(path, weights_only=True)
    assert saved["normalisation"] == colour.NONE
    for value, message in (("sepia", "unknown colour normalisation"), (3, "not a name")):
        torch.save({**saved, "normalisation": value}, path)
        with pytest.raises(UserError, match=message):
            centernet.load_checkpoint(path)
    del saved["normalisation"]  # a checkpoint from before normalisation existed
    torch.save(saved, path)
    assert centernet.load_checkpoint(path).normalisation == colour.NONE


def test_a_tiff_turned_by_its_exif_orientation_is_read_upright(tmp_path):
    """OpenCV's imread gave nothing for such a file, so a retraining from an export of
    drone TIFFs stopped at it; it is read upright, as CVAT shows it."""
    from PIL import Image

    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:, :30] = 255  # white on the left as stored: on top once turned upright
    path = tmp_path / "on its side.tif"
    Image.fromarray(stored).save(path, tiffinfo={0x0112: 6})
    upright = centernet._read_rgb(path)
    assert upright.shape == (60, 40, 3)
    assert upright[:30].mean() > 250 and upright[30:].mean() < 5
    empty = tmp_path / "empty.png"
    empty.touch()
    with pytest.raises(UserError, match="not a readable image"):
        centernet._read_rgb(empty)
