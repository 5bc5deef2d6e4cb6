"""Small, faint fish pasted into training frames.

On cameras the fish model never saw, most of the fish it misses are small and faint: five in
six of the held-out habitat whose fish are under a tenth of the picture, in haze between
mangrove roots, are not boxed at any score (docs/models.md, "Where the held-out misses
are"). The training cameras show few such fish. Copy-paste augmentation (Kisantal et al.
2019, "Augmentation for small object detection"; Ghiasi et al. 2021) makes more of them from
the fish the training frames already have: each labelled fish large enough to be clear is cut
out once, and at a training step some are shrunk, veiled and laid into another frame, with
their boxes added to its labels.

Boxes are all the labels hold, so a cut-out is its box; it is laid through a feathered
ellipse, which keeps the body (fish fill the middle of their boxes) and fades the box's
corners out. What is laid in is the fish's difference from its own water, so the frame
keeps its water; a veil lowers that difference, as turbid water does.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from imagine_assist.errors import UserError

# the pasted fish's longer side, as a share of the picture's longer side: habitat 7398's
# missed fish are under 0.1; below 0.02 (7 px at 360) a fish is hardly there to label
SMALLEST, LARGEST = 0.02, 0.1
# a cut-out must be this many pixels on its shorter side to show a fish's shape
MIN_SOURCE_SIDE = 12
# a pasted fish's shorter side, in the frame's pixels: a thinner one can lose its box to the
# sample's smallest zoom (`centernet._inside` drops boxes of 2 px or less) and stay visible,
# which would teach that a fish is water
MIN_PASTED_SIDE = 6
# opacity of a pasted fish: 1 as clear as its source, lower as if through turbid water
FAINTEST = 0.5
PLACEMENT_TRIES = 10


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class FishCutouts:
    """The fish of a set of training frames, each cut out at its box (RGB)."""

    crops: tuple[np.ndarray, ...]
    class_ids: tuple[int, ...]
    # each crop's water: the mean colour of its box's rim at full size (shrunk, a fish's
    # rim would be mostly fish)
    waters: tuple[np.ndarray, ...]

    @classmethod
    def from_frames(cls, frames, read_rgb, limit: int = 2000, seed: int = 0) -> FishCutouts:
        """Up to `limit` fish from `frames` (`centernet.Frame`s): each box at least
        `MIN_SOURCE_SIDE` pixels across, the frames taken in a random order (by a random
        draw over all boxes, so frames with more fish come earlier) and each read once."""
        boxes = [
            (index, row) for index, frame in enumerate(frames) for row in range(len(frame.cxcywh))
        ]
        rng = np.random.default_rng(seed)
        wanted: dict[int, list[int]] = {}
        for choice in rng.permutation(len(boxes)):
            index, row = boxes[int(choice)]
            wanted.setdefault(index, []).append(row)
        crops, class_ids, waters = [], [], []
        for index, rows in wanted.items():
            if len(crops) >= limit:
                break
            frame = frames[index]
            image = read_rgb(frame.image)
            height, width = image.shape[:2]
            for row in rows:
                cx, cy, bw, bh = frame.cxcywh[row] * [width, height, width, height]
                x0, y0 = round(cx - bw / 2), round(cy - bh / 2)
                x1, y1 = round(cx + bw / 2), round(cy + bh / 2)
                # a fish cut by the frame's edge would be pasted as half a fish
                inside = x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height
                if not inside or min(x1 - x0, y1 - y0) < MIN_SOURCE_SIDE or len(crops) >= limit:
                    continue
                crop = np.ascontiguousarray(image[y0:y1, x0:x1])
                crops.append(crop)
                class_ids.append(int(frame.class_id[row]))
                waters.append(_rim_mean(crop))
        if not crops:
            raise UserError(
                f"no fish of at least {MIN_SOURCE_SIDE} px in the training frames to paste"
            )
        return cls(tuple(crops), tuple(class_ids), tuple(waters))

    def __len__(self) -> int:
        return len(self.crops)

    def paste(
        self,
        image: np.ndarray,
        cxcywh: np.ndarray,
        class_id: np.ndarray,
        rng: np.random.Generator,
        most: int = 3,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A copy of `image` (RGB) with up to `most` fish laid in where no labelled box is
        (fewer when there is no room), and copies of its labels (normalised cxcywh, class
        ids) with theirs appended."""
        canvas = image.astype(np.float32)
        height, width = image.shape[:2]
        taken = _pixel_boxes(cxcywh, width, height)
        new_boxes, new_classes = [], []
        for _ in range(int(rng.integers(1, most + 1))):
            pick = int(rng.integers(len(self.crops)))
            crop = self.crops[pick]
            longer = max(height, width) * np.exp(rng.uniform(np.log(SMALLEST), np.log(LARGEST)))
            scale = longer / max(crop.shape[:2])
            w, h = max(3, round(crop.shape[1] * scale)), max(3, round(crop.shape[0] * scale))
            if min(w, h) < MIN_PASTED_SIDE or w >= width or h >= height:
                continue
            spot = _free_spot(taken, w, h, width, height, rng)
            if spot is None:
                continue
            x, y = spot
            fish = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
            if rng.random() < 0.5:
                fish = fish[:, ::-1]
            under = canvas[y : y + h, x : x + w]
            # what is laid in is how the fish differs from its own water, so the frame keeps
            # its water and a pasted fish brings no patch of another camera's; the veil
            # lowers that difference, as turbid water does
            alpha = _feathered_ellipse(w, h) * rng.uniform(FAINTEST, 1.0)
            canvas[y : y + h, x : x + w] = under + alpha * (fish - self.waters[pick])
            taken.append((x, y, x + w, y + h))
            new_boxes.append([(x + w / 2) / width, (y + h / 2) / height, w / width, h / height])
            new_classes.append(self.class_ids[pick])
        pasted = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
        if not new_boxes:
            return pasted, cxcywh.copy(), class_id.copy()
        return (
            pasted,
            np.concatenate([cxcywh, np.array(new_boxes, np.float32)]).astype(np.float32),
            np.concatenate([class_id, np.array(new_classes, np.int64)]),
        )


def _rim_mean(crop: np.ndarray) -> np.ndarray:
    rim = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    return rim.astype(np.float32).mean(axis=0)


def _pixel_boxes(cxcywh: np.ndarray, width: int, height: int) -> list[tuple[int, ...]]:
    """The labelled boxes in whole pixels, rounded outwards: every pixel a box touches is
    taken, so nothing is pasted over any part of a labelled fish."""
    boxes = []
    for cx, cy, bw, bh in np.asarray(cxcywh, np.float64).reshape(-1, 4):
        boxes.append(
            (
                int((cx - bw / 2) * width),
                int((cy - bh / 2) * height),
                int(np.ceil((cx + bw / 2) * width)),
                int(np.ceil((cy + bh / 2) * height)),
            )
        )
    return boxes


def _free_spot(taken, w: int, h: int, width: int, height: int, rng) -> tuple[int, int] | None:
    """A top-left corner for a w×h fish that overlaps no box in `taken` (a pasted fish over
    a labelled one would hide it and leave its label wrong), or None after a few tries."""
    for _ in range(PLACEMENT_TRIES):
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        if all(x >= x1 or x + w <= x0 or y >= y1 or y + h <= y0 for x0, y0, x1, y1 in taken):
            return x, y
    return None


def _feathered_ellipse(w: int, h: int) -> np.ndarray:
    """(h, w, 1) weights over the box: 1 out to 0.88 of the ellipse the box inscribes,
    falling to 0 at 1.1 of it. Past the box's sides, so that a fish's snout and tail, which
    touch the box there, stay whole; the box's corners, mostly water, fade out."""
    rows, columns = np.mgrid[0:h, 0:w].astype(np.float32)
    distance = np.sqrt(((columns + 0.5) / w * 2 - 1) ** 2 + ((rows + 0.5) / h * 2 - 1) ** 2)
    return np.clip((1.1 - distance) / 0.22, 0.0, 1.0)[:, :, None]
