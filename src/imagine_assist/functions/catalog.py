"""The functions imagine-assist serves, and how to load one with its model."""

from __future__ import annotations

import logging
from pathlib import Path

from imagine_assist.errors import ModelNotFound, UserError
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.functions.reid import ReidFunction
from imagine_assist.functions.separator import SeparatorFunction
from imagine_assist.functions.spec import MIB, FunctionSpec, LabelSpec, labels_of
from imagine_assist.functions.tracker import TrackerFunction
from imagine_assist.functions.tracker_state import state_key
from imagine_assist.models.detector import load_detector
from imagine_assist.models.store import resolve_model
from imagine_assist.samples.burrows import BURROW_LABELS
from imagine_assist.samples.fish import FISH_SPECIES
from imagine_assist.samples.litter import LITTER_CATEGORIES
from imagine_assist.samples.plankton import SCALE_BAR_ROWS

log = logging.getLogger(__name__)

FISH_DETECTOR = FunctionSpec(
    id="fish-detector",
    name="Fish detector (imagine-assist)",
    kind="detector",
    family="fish",
    description="Fish boxes by species in observatory images (YOLOv8n, ONNX Runtime)",
    labels=labels_of(FISH_SPECIES),
    default_threshold=0.35,
    event_timeout_s=30,
)

LITTER_DETECTOR = FunctionSpec(
    id="litter-detector",
    name="Litter detector (imagine-assist)",
    kind="detector",
    family="litter",
    description="Litter boxes in 12-20 MP drone frames, tiled inference (YOLOv8n, ONNX Runtime)",
    labels=labels_of(LITTER_CATEGORIES),
    default_threshold=0.35,
    # A 20 MP frame is about 50 windows: allow minutes on a slow CPU, and big bodies.
    event_timeout_s=180,
    max_body_bytes=64 * MIB,
    tile_size=640,
    tile_overlap=160,
)

BURROW_DETECTOR = FunctionSpec(
    id="burrow-detector",
    name="Nephrops burrow detector (imagine-assist)",
    kind="detector",
    family="burrow",
    description="Nephrops burrow openings in UWTV survey frames (YOLOv8n, ONNX Runtime)",
    labels=labels_of(BURROW_LABELS),
    default_threshold=0.35,
    event_timeout_s=30,
)

BURROW_TRACKER = FunctionSpec(
    id="burrow-tracker",
    name="Nephrops burrow tracker (imagine-assist)",
    kind="tracker",
    family="burrow",
    description="Follows a burrow box frame by frame: detector near the prediction, "
    "template matching as a fallback; signed JSON states",
    labels=(),
    default_threshold=0.25,
    event_timeout_s=30,
)

BURROW_REID = FunctionSpec(
    id="burrow-reid",
    name="Nephrops burrow re-identification (imagine-assist)",
    kind="reid",
    family="burrow",
    description="Matches burrow boxes between two frames by camera motion and appearance, "
    "so CVAT's automatic annotation links detections into tracks",
    labels=(),
    default_threshold=0.5,  # appearance distance, 1 - correlation, in [0, 2]
    event_timeout_s=30,
)

PLANKTON_SEPARATOR = FunctionSpec(
    id="plankton-separator",
    name="ZooScan plankton separator (imagine-assist)",
    kind="detector",
    family="plankton",
    description="One mask per organism in a ZooScan vignette (YOLOv8n-seg refined to the "
    "vignette's foreground) and a single/multiple tag with P(multiple) (YOLOv8n-cls)",
    labels=(
        LabelSpec(0, "organism", "mask"),
        LabelSpec(1, "single", "tag", text_attributes=("p_multiple",)),
        LabelSpec(2, "multiple", "tag", text_attributes=("p_multiple",)),
    ),
    default_threshold=0.5,
    event_timeout_s=30,
    model_file="separator.onnx",  # classifier.onnx beside it
)

FUNCTIONS: dict[str, FunctionSpec] = {
    spec.id: spec
    for spec in (
        FISH_DETECTOR,
        LITTER_DETECTOR,
        BURROW_DETECTOR,
        BURROW_TRACKER,
        BURROW_REID,
        PLANKTON_SEPARATOR,
    )
}


def get_spec(function_id: str) -> FunctionSpec:
    try:
        return FUNCTIONS[function_id]
    except KeyError:
        raise UserError(
            f"unknown function {function_id!r}; known functions: {', '.join(FUNCTIONS)}"
        ) from None


def load_plankton_separator(
    spec: FunctionSpec,
    weights: str | Path | None = None,
    models_dir: str | Path | None = None,
    threads: int | None = None,
) -> SeparatorFunction:
    """The trained separator and classifier (`weights` names the separator's ONNX file; the
    classifier is looked up beside it, then in the models directory). With no separator
    model at all, the watershed baseline serves, and the tag comes from its count."""
    from imagine_assist.models.plankton import load_classifier, load_separator

    if weights:  # asked for by name: a missing or broken file is an error, not a fallback
        separator = load_separator(weights, threads=threads)
        beside = Path(weights).with_name("classifier.onnx")
        classifier_path = beside if beside.is_file() else None
    else:
        try:
            separator = load_separator(None, models_dir, threads)
        except ModelNotFound as error:
            log.warning("%s: serving the watershed baseline instead", error)
            return SeparatorFunction(spec, SCALE_BAR_ROWS)
        classifier_path = None
    try:
        classifier = load_classifier(classifier_path, models_dir, threads)
    except ModelNotFound as error:
        log.warning("%s: the single/multiple tag comes from the number of organisms", error)
        classifier = None
    return SeparatorFunction(spec, SCALE_BAR_ROWS, separator, classifier)


def load_function(
    function_id: str,
    weights: str | Path | None = None,
    models_dir: str | Path | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
) -> DetectorFunction | TrackerFunction | ReidFunction | SeparatorFunction:
    """The function with its model: `weights` if given, else the family's installed model,
    else the bundled default. Each answers CVAT requests with `handle(body)`."""
    spec = get_spec(function_id)
    if spec.id == PLANKTON_SEPARATOR.id:
        return load_plankton_separator(spec, weights, models_dir)
    if spec.kind == "reid":
        return ReidFunction(spec)  # motion and appearance only: no model to load
    path = Path(weights) if weights else resolve_model(spec.family, models_dir)
    if spec.kind == "tracker":
        return TrackerFunction(spec, load_detector(path), state_key())
    return DetectorFunction(spec, load_detector(path), tile_size, tile_overlap)
