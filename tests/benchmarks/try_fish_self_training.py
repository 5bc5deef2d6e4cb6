"""Self-training on an unseen camera's own frames, without their labels: tried, not built.

    python tests/benchmarks/try_fish_self_training.py DATASET CHECKPOINT [--steps 100]

DATASET is a `real_fish_centernet` run's `dataset` folder. The checkpoint labels the held-out
habitats' frames itself: its boxes at or above `--sure` (the served 0.4) become labels, those
between `--unsure` and `--sure` are left out of the loss (neither fish nor background), and
everything else counts as background. It then fine-tunes on batches of half such frames and
half its own training frames (so it keeps what it knew), at half the recipe's rate, and the
held-out habitats are scored with their real labels, which nothing above read. The question
is whether a fixed camera's unlabelled video can teach the model that camera before anyone
corrects a box.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image


def pseudo_labelled(centernet, model, frames, sure: float, unsure: float):
    """Each frame with its sure boxes as labels, and its unsure boxes (both normalised cxcywh
    in the frame itself, as YOLO labels are)."""
    size = model.imgsz
    labelled = []
    for frame, (_, _, xyxy, score, _) in zip(
        frames, centernet.predict(model, frames, threshold=unsure), strict=True
    ):
        with Image.open(frame.image) as opened:  # its size only
            width, height = opened.size
        scale = size / max(height, width)
        new_w, new_h = round(width * scale), round(height * scale)
        x0, y0 = (size - new_w) // 2, (size - new_h) // 2
        box = xyxy.copy()
        box[:, [0, 2]] = (box[:, [0, 2]] - x0) / new_w
        box[:, [1, 3]] = (box[:, [1, 3]] - y0) / new_h
        box = np.clip(box, 0, 1)
        cxcywh = np.stack(
            [
                (box[:, 0] + box[:, 2]) / 2,
                (box[:, 1] + box[:, 3]) / 2,
                box[:, 2] - box[:, 0],
                box[:, 3] - box[:, 1],
            ],
            1,
        ).astype(np.float32)
        is_sure = score >= sure
        labels = replace(frame, cxcywh=cxcywh[is_sure], class_id=np.zeros(is_sure.sum(), np.int64))
        labelled.append((labels, cxcywh[~is_sure]))
    return labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--sure", type=float, default=0.4)
    parser.add_argument("--unsure", type=float, default=0.15)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    import torch
    from torch import nn

    from imagine_assist.training import centernet

    started = time.monotonic()
    unseen = centernet.read_yolo_images(args.dataset / "test-deepfish" / "images")
    known = centernet.read_yolo_images(args.dataset / "train" / "images")
    model = centernet.load_checkpoint(args.checkpoint)
    size, grid = model.imgsz, model.imgsz // centernet.STRIDE
    frames = pseudo_labelled(centernet, model, unseen, args.sure, args.unsure)
    print(
        f"{len(frames)} unseen frames: {sum(len(f.cxcywh) for f, _ in frames)} sure boxes, "
        f"{sum(len(u) for _, u in frames)} unsure ones left out of the loss",
        flush=True,
    )
    rng = np.random.default_rng(0)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=centernet.FINE_TUNE_LR / 2, weight_decay=1e-4
    )
    model.train()
    for step in range(args.steps):
        batch = []  # (image, label boxes xyxy, their classes, unsure boxes xyxy)
        for index in rng.choice(len(frames), 8, replace=False):
            labels, unsure = frames[index]
            # the unsure boxes ride along as class 1, so they are flipped and zoomed with it
            both = replace(
                labels,
                cxcywh=np.concatenate([labels.cxcywh, unsure]).astype(np.float32),
                class_id=np.concatenate([labels.class_id, np.ones(len(unsure), np.int64)]),
            )
            image, xyxy, ids = centernet.augmented(both, size, rng)
            batch.append(
                (image, xyxy[ids == 0], np.zeros((ids == 0).sum(), np.int64), xyxy[ids == 1])
            )
        for index in rng.choice(len(known), 8, replace=False):
            image, xyxy, ids = centernet.augmented(known[index], size, rng)
            batch.append((image, xyxy, ids, np.zeros((0, 4), np.float32)))
        counted = np.ones((len(batch), 1, grid, grid), np.float32)
        for k, (_, _, _, unsure) in enumerate(batch):
            for x0, y0, x1, y1 in unsure / centernet.STRIDE:
                counted[k, 0, int(y0) : int(np.ceil(y1)) + 1, int(x0) : int(np.ceil(x1)) + 1] = 0
        heat_loss, box_loss = centernet.batch_loss(model, [b[:3] for b in batch], counted)
        optimizer.zero_grad()
        (heat_loss + centernet.BOX_LOSS_WEIGHT * box_loss).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        if step % 10 == 0:
            print(
                f"step {step}: heat loss {heat_loss.item():.3f}, box loss {box_loss.item():.3f}",
                flush=True,
            )
    habitats: dict[str, list] = {}
    for frame in unseen:
        habitats.setdefault(frame.image.name.split("_")[0], []).append(frame)
    scores = centernet.evaluate(model, unseen)
    print(f"held-out AP50 {scores['mAP50']:.3f}, AP50-95 {scores['mAP50-95']:.3f}", flush=True)
    print(
        " ".join(
            f"{h}: {centernet.evaluate(model, f)['mAP50']:.3f}" for h, f in sorted(habitats.items())
        )
    )
    val = centernet.read_yolo_images(args.dataset / "val" / "images")
    print(f"validation AP50 {centernet.evaluate(model, val)['mAP50']:.3f}")
    print(f"{(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
