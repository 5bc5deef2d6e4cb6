"""Retrain the plankton separator from organisms corrected in CVAT, gate it against the live
one, version it and promote it if it cuts better.

    imagine-assist train plankton --from task-7.zip [--from ...] [--val fixed.zip]

The exports are CVAT for images 1.1 zips of vignettes whose organisms were drawn or
corrected as masks or polygons (`training.mask_exports`): the same exports `imagine-assist
evaluate --function plankton-separator` scores. Real contacts, drawn by the people who know
the organisms, are what the composites of the bundled recipe only imitate
(docs/plankton.md), so this is where the separator learns them.

- Split by image content, as for the box families: a vignette keeps its split in every round.
  With `--val`, those exports are the held-out set whole and never train.
- Each vignette's scale-bar strip is found and cut as the served function cuts it, and its
  organisms become YOLO-seg outlines.
- Training fine-tunes the live separator: a version's `separator.pt`, or, for the bundled
  ONNX, weights recovered from it (`training.from_onnx`), at a small rate without warm-up.
- The gate compares the candidate and the live separator as served (the network, then the
  partition into the vignette's foreground) on the same held-out vignettes: object F1 at IoU
  0.5 (`models.separate.score_separation`). The candidate must beat the live F1 by more than
  `min_f1_gain`, with at least `min_heldout_organisms` drawn organisms held out, or nothing
  is promoted.

The classifier (the single/multiple tag) is not retrained here: a version holds
`separator.onnx` only, and the classifier stays the one installed or bundled.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml
from PIL import Image
from tqdm.auto import tqdm

from imagine_assist.checksums import file_sha256
from imagine_assist.errors import BadRequest, ModelNotFound, UserError
from imagine_assist.families import get_family
from imagine_assist.functions.catalog import get_spec
from imagine_assist.home import Home
from imagine_assist.images import read_image
from imagine_assist.models.registry import Registry
from imagine_assist.models.scale_bar import cut_scale_bar
from imagine_assist.models.separate import BoxMask, score_separation, summarise
from imagine_assist.models.store import live_model
from imagine_assist.samples.plankton import plankton_sample
from imagine_assist.training.exports import images_dir, training_split, unpacked
from imagine_assist.training.mask_exports import (
    CVAT_IMAGES,
    read_cvat_organisms,
    read_drawn_image,
)
from imagine_assist.training.plankton import write_outlines, write_separator_sample
from imagine_assist.training.retrain import (
    RetrainResult,
    code_version,
    empty_dataset_folder,
    export_record,
    promote_if_gated,
    undecided_gate,
)

log = logging.getLogger(__name__)

FAMILY = "plankton"
LABELS = ("organism",)  # the label of the dataset's one class


@dataclass(frozen=True)
class SeparatorRetrainRecipe:
    imgsz: int = 320  # the bundled separator's
    epochs: int = 10
    batch: int = 16
    lr0: float = 0.0005  # the real-organism fine-tune's (`training.plankton_separator_real`)
    val_share: float = 0.15
    test_share: float = 0.15
    min_f1_gain: float = 0.0  # a tie is no reason to change the live separator
    min_heldout_organisms: int = 30
    calibration_images: int = 64
    # Synthetic vignettes (`samples.plankton`, made here, offline) trained beside the
    # corrections, so that a round on a few hundred vignettes does not forget the rest.
    synthetic_replay: int = 0
    replay_seed: int = 7


@dataclass
class HeldOut:
    """The held-out vignettes, cut as served, with the organisms drawn on them."""

    images: list[Path] = field(default_factory=list)
    organisms: list[list[BoxMask]] = field(default_factory=list)

    @property
    def drawn(self) -> int:
        return sum(len(o) for o in self.organisms)


def build_dataset(
    exports: list[Path],
    val_exports: list[Path],
    out: Path,
    recipe: SeparatorRetrainRecipe,
    work_dir: Path,
    home: Home,
) -> tuple[dict, HeldOut, list[np.ndarray], dict]:
    """A YOLO-seg dataset in `out` (rebuilt) from the exports' vignettes; returns the count
    per split, the held-out vignettes, a few training images at the training size (for the
    batch-norm calibration of a separator recovered from ONNX) and the exports' lineage,
    each export kept in the home as the box families keep theirs.

    A vignette is named by its content, so one in several exports is written once, with the
    organisms of the last export given: a later export is a later correction. The `--val`
    exports are read first and hold their vignettes out of training wherever else they
    appear. A vignette with no organism drawn is left out (nobody corrected it)."""
    empty_dataset_folder(out)
    for split in ("train", "val", "test"):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
    splits: dict[str, str] = {}  # sha256 -> split
    held_out: dict[str, tuple[Path, list[BoxMask]]] = {}
    calibration: list[np.ndarray] = []
    left_out: list[str] = []
    fixed: set[str] = set()
    lineage: dict[str, list] = {"exports": [], "validation_exports": []}
    separator = get_spec("plankton-separator")
    drawn_for_validation = 0
    for export, is_fixed in [(p, True) for p in val_exports] + [(p, False) for p in exports]:
        with unpacked(export, work_dir / "exports") as info:
            _check_format(export, info.format)
            record = export_record(export, info.sha256, info.format, home)
            lineage["validation_exports" if is_fixed else "exports"].append(record)
            base = images_dir(info.root)
            vignettes = read_cvat_organisms(info.root / "annotations.xml", export)
            for vignette in tqdm(vignettes, desc=f"reading {export.name}", unit="vignette"):
                path = base / vignette.name
                if not path.is_file():
                    left_out.append(vignette.name)
                    continue
                digest = file_sha256(path)
                if is_fixed:
                    fixed.add(digest)  # held out, whatever becomes of it here
                elif digest in fixed:
                    continue  # a --val vignette never trains
                if not vignette.organisms:
                    continue
                try:
                    image = read_drawn_image(path, vignette)
                    # what the served function refuses (a 6x6 or 40x3 vignette) neither
                    # trains (ultralytics stopped on it) nor counts in the gate
                    separator.check_image_size(image.shape[1], image.shape[0], vignette.name)
                except BadRequest as error:
                    log.warning("left out: %s", error)
                    left_out.append(vignette.name)
                    continue
                drawn_for_validation += is_fixed
                split = (
                    "test"
                    if is_fixed
                    else training_split(
                        digest, recipe.val_share, recipe.test_share, bool(val_exports)
                    )
                )
                cut = cut_scale_bar(image)
                masks = [
                    organism.full(image.shape[:2])[: cut.shape[0]]
                    for organism in vignette.organisms
                ]
                # held out: lossless, so the gate scores the pixels the function is sent
                suffix = ".png" if split == "test" else ".jpg"
                target = out / "images" / split / f"{digest[:16]}{suffix}"
                Image.fromarray(cut).save(target, **({} if split == "test" else {"quality": 92}))
                write_outlines(out / "labels" / split / f"{digest[:16]}.txt", masks)
                splits[digest] = split
                if split == "test":
                    held_out[digest] = (target, [BoxMask.around(m) for m in masks if m.any()])
                elif split == "train" and len(calibration) < recipe.calibration_images:
                    calibration.append(_at_size(cut, recipe.imgsz))
    if val_exports and not drawn_for_validation:  # found after the training, before
        raise UserError(
            f"the --val export{'s' if len(val_exports) > 1 else ''} "
            f"{', '.join(p.name for p in val_exports)} hold no vignette with an organism drawn "
            "as a mask or polygon: export the corrected task with its masks"
        )
    for index in range(recipe.synthetic_replay):
        sample = plankton_sample(recipe.replay_seed, index, fractions=(1.0, 0.0, 0.0))
        write_separator_sample(sample, out)
    counts: dict = {s: sum(1 for v in splits.values() if v == s) for s in ("train", "val", "test")}
    counts["synthetic_replay"] = recipe.synthetic_replay
    counts["left_out"] = len(left_out)
    counts["left_out_names"] = left_out[:20]
    if counts["train"] == 0:
        raise UserError(
            "the exports hold too few vignettes with drawn organisms to train on (none fell "
            "in the train split); export more corrected vignettes"
        )
    config = {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val" if counts["val"] else "images/train",  # ultralytics needs one
        "names": {0: LABELS[0]},
    }
    (out / "data.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    pairs = list(held_out.values())
    return counts, HeldOut([p for p, _ in pairs], [o for _, o in pairs]), calibration, lineage


def _at_size(image: np.ndarray, size: int) -> np.ndarray:
    """The image with its longer side at most `size`: what calibration looks at, bounded."""
    scale = size / max(image.shape[:2])
    if scale >= 1:
        return image
    width, height = round(image.shape[1] * scale), round(image.shape[0] * scale)
    return cv2.resize(image, (max(1, width), max(1, height)), interpolation=cv2.INTER_AREA)


def _check_format(export: Path, found: str) -> None:
    if found != CVAT_IMAGES:
        raise UserError(
            f"{export} is a {found} export; the separator retrains from {CVAT_IMAGES} "
            "exports whose organisms are masks or polygons"
        )


def separation_f1(separator_onnx: Path, held_out: HeldOut) -> dict:
    """The separator as served (network, then partition into the foreground) on the
    held-out vignettes: object precision, recall and F1 at IoU 0.5, over- and under-split."""
    from imagine_assist.models.plankton import load_separator

    separator = load_separator(separator_onnx)
    scores = []
    pairs = zip(held_out.images, held_out.organisms, strict=True)
    for path, organisms in tqdm(
        pairs, total=len(held_out.images), desc=f"scoring {separator_onnx.name}", unit="vignette"
    ):
        image = read_image(path)
        truth = [o.full(image.shape[:2]) for o in organisms]
        scores.append(score_separation(separator(image), truth))
    return summarise(scores) | {"vignettes": len(scores), "organisms": held_out.drawn}


def check_gate(
    candidate: dict,
    live: dict | None,
    recipe: SeparatorRetrainRecipe,
    drawn: int,
    fixed_validation: bool = False,
) -> dict:
    if drawn < recipe.min_heldout_organisms:
        minimum = recipe.min_heldout_organisms
        return undecided_gate(drawn, minimum, "organisms", "vignettes", fixed_validation)
    if live is None:
        return {"passed": True, "decided": True, "reasons": ["no live separator to compare with"]}
    wanted = live["f1"] + recipe.min_f1_gain
    if candidate["f1"] <= wanted:
        return {
            "passed": False,
            "decided": True,
            "reasons": [
                f"F1 {candidate['f1']:.3f} does not beat {wanted:.3f} (live separator + gain)"
            ],
        }
    return {"passed": True, "decided": True, "reasons": ["passed every rule"]}


def _start_weights(
    models_dir: Path, out: Path, calibration: list[np.ndarray]
) -> tuple[Path, Path, str]:
    """What fine-tuning starts from, the live separator's ONNX, and which one it is."""
    from imagine_assist.training.from_onnx import write_checkpoint

    live = live_model(FAMILY, models_dir, name="separator")
    try:
        pt = live_model(FAMILY, models_dir, fmt="pt", name="separator")
    except ModelNotFound:  # the bundled separator ships as ONNX only
        pt = None
    if pt is not None and pt.source == live.source:
        return pt.path, live.path, live.source
    return write_checkpoint(live.path, out / "start.pt", calibration), live.path, live.source


def retrain_separator(
    exports: list[str | Path],
    registry: Registry,
    work_dir: Path,
    recipe: SeparatorRetrainRecipe | None = None,
    device: str = "cpu",
    force: bool = False,
    epochs: int | None = None,
    val_exports: list[str | Path] | None = None,
) -> RetrainResult:
    """Fine-tune the live separator on the exports' organisms, gate it, store it as a new
    plankton version, and promote it if the gate lets it (or `force`)."""
    from imagine_assist.training.detector import export_onnx, fit
    from imagine_assist.training.from_onnx import separator_fine_tune_args

    if not exports:
        raise UserError("give at least one export with --from")
    recipe = recipe or SeparatorRetrainRecipe()
    classes = get_family(FAMILY).labels  # what a version must serve to be promoted
    home = Home.resolve()
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    exports = [Path(p) for p in exports]
    val_exports = [Path(p) for p in val_exports or []]
    counts, held_out, calibration, lineage = build_dataset(
        exports, val_exports, work_dir / "dataset", recipe, work_dir, home
    )
    start, live_onnx, live_name = _start_weights(registry.root, work_dir, calibration)
    best = fit(
        str(start),
        "segment",
        str(work_dir / "dataset" / "data.yaml"),
        work_dir,
        "separator",
        epochs or recipe.epochs,
        device,
        "fine-tuning the separator on corrected organisms",
        imgsz=recipe.imgsz,
        batch=recipe.batch,
        **separator_fine_tune_args(recipe.lr0, device),
    )
    onnx = export_onnx(best, recipe.imgsz, "segment")
    candidate = separation_f1(onnx, held_out) if held_out.images else {}
    live = separation_f1(live_onnx, held_out) if held_out.images else None
    gate = check_gate(candidate, live, recipe, held_out.drawn, bool(val_exports))
    card = {
        "classes": list(classes),
        "architecture": "yolov8n-seg",
        "model": "separator",
        "metrics": {"candidate": candidate, "deployed": live, "deployed_version": live_name},
        "evaluated_on": {
            "split": "test",
            "vignettes": len(held_out.images),
            "organisms": held_out.drawn,
            "fixed_validation": bool(val_exports),
        },
        "data": lineage | {"split": counts},
        "recipe": asdict(recipe) | {"epochs": epochs or recipe.epochs},
        "started_from": live_name,
        "code_version": code_version(),
        "device": device,
        "gate": gate,
    }
    version = registry.add(FAMILY, {"separator.onnx": onnx, "separator.pt": best}, card)
    promoted = promote_if_gated(registry, version, gate, classes, force, gated_against=live_name)
    log.info("%s %s: gate %s", FAMILY, version.name, json.dumps(gate))
    return RetrainResult(version, promoted, gate, card)
