"""The functions imagine-assist serves, and how to load one with its model."""

from __future__ import annotations

from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.functions.spec import MIB, FunctionSpec, labels_of
from imagine_assist.models.detector import load_detector
from imagine_assist.models.store import resolve_model
from imagine_assist.samples.fish import FISH_SPECIES
from imagine_assist.samples.litter import LITTER_CATEGORIES

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

FUNCTIONS: dict[str, FunctionSpec] = {spec.id: spec for spec in (FISH_DETECTOR, LITTER_DETECTOR)}


def get_spec(function_id: str) -> FunctionSpec:
    try:
        return FUNCTIONS[function_id]
    except KeyError:
        raise UserError(
            f"unknown function {function_id!r}; known functions: {', '.join(FUNCTIONS)}"
        ) from None


def load_function(
    function_id: str,
    weights: str | Path | None = None,
    models_dir: str | Path | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
) -> DetectorFunction:
    """The function with its model: `weights` if given, else the family's installed model,
    else the bundled default."""
    spec = get_spec(function_id)
    path = Path(weights) if weights else resolve_model(spec.family, models_dir)
    return DetectorFunction(spec, load_detector(path), tile_size, tile_overlap)
