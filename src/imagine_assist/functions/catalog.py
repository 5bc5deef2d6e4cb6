"""The functions imagine-assist serves, built from the family files, and how to load one
with its model."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from imagine_assist.errors import ModelNotFound, UserError
from imagine_assist.families import (
    Family,
    FunctionDef,
    all_families,
    builtin_families,
    get_family,
)
from imagine_assist.functions.detector import DetectorFunction
from imagine_assist.functions.reid import ReidFunction
from imagine_assist.functions.separator import SeparatorFunction
from imagine_assist.functions.spec import (
    MIB,
    SEPARATOR_MAX_PIXELS,
    FunctionSpec,
    LabelSpec,
    labels_of,
)
from imagine_assist.functions.tracker import TrackerFunction
from imagine_assist.functions.tracker_state import state_key
from imagine_assist.models.detector import load_detector
from imagine_assist.models.store import LiveModel, live_model, resolve_model

log = logging.getLogger(__name__)


def family_labels(family: Family, models_dir: str | Path | None = None) -> tuple[str, ...]:
    """The family's labels; for a family that takes them from its model, the live model's
    class names (none when it has no model yet)."""
    if family.labels is not None:
        return family.labels
    try:
        return tuple(load_detector(resolve_model(family.name, models_dir)).class_names)
    except UserError as error:
        log.warning("%s takes its labels from its model, and has none: %s", family.name, error)
        return ()


def spec_of(
    family: Family,
    function: FunctionDef,
    models_dir: str | Path | None = None,
    model_classes: tuple[str, ...] | None = None,
) -> FunctionSpec:
    """The CVAT-facing spec of one function of a family. `model_classes`: the classes of
    the model it will serve, for a family that takes its labels from its model."""
    try:
        if function.labels is not None:
            labels = tuple(
                LabelSpec(index, label.name, label.type, label.text_attributes)
                for index, label in enumerate(function.labels)
            )
        elif function.kind == "detector":
            if family.labels is None and model_classes is not None:
                labels = labels_of(model_classes)
            else:
                labels = labels_of(family_labels(family, models_dir))
        else:  # trackers and re-identification follow the shapes they are given
            labels = ()
        return _spec(family, function, labels)
    except ValueError as error:  # a value the family file allowed but CVAT's spec does not
        # (a label type CVAT has no name for): this family is left out, the others served
        raise UserError(f"{family.source or family.name}: {error}") from None


def _spec(family: Family, function: FunctionDef, labels: tuple[LabelSpec, ...]) -> FunctionSpec:
    return FunctionSpec(
        id=function.id,
        name=function.name,
        kind=function.kind,
        family=family.name,
        description=function.description,
        labels=labels,
        default_threshold=function.threshold,
        event_timeout_s=function.timeout_s,
        max_body_bytes=function.max_body_mib * MIB,
        tile_size=function.tile_size,
        tile_overlap=function.tile_overlap,
        model_file=function.model,
        **(
            {"max_image_pixels": SEPARATOR_MAX_PIXELS, "threshold_on": "p_multiple"}
            if function.runtime == "separator"
            else {}
        ),
    )


def all_specs(models_dir: str | Path | None = None) -> dict[str, FunctionSpec]:
    """Every function of every family (built-in first, then the home's own), by id. A user's
    family whose functions cannot be served (a value CVAT would refuse, an id another
    family serves) is left out with a warning, as a broken family file is: the other
    families keep working."""
    specs: dict[str, FunctionSpec] = {}
    for family in all_families().values():
        try:
            found = {}
            for function in family.functions:
                if function.id in specs or function.id in found:
                    owner = specs[function.id].family if function.id in specs else family.name
                    raise UserError(
                        f"function id {function.id!r} of family {family.name} is already "
                        f"served by {owner}; give it another id in {family.source}"
                    )
                found[function.id] = spec_of(family, function, models_dir)
        except UserError as error:
            if family.builtin:
                raise
            log.warning("left out the family %s: %s", family.name, error)
            continue
        specs.update(found)
    return specs


def builtin_specs() -> dict[str, FunctionSpec]:
    """The functions of the built-in families only: what the repository's serverless/
    holds, whatever families a home adds."""
    return {
        function.id: spec_of(family, function)
        for family in builtin_families().values()
        for function in family.functions
    }


class _FunctionCatalog(Mapping):
    """`FUNCTIONS`: the served functions, read from the family files at each use, so a
    family added to the home is served without touching code."""

    def __getitem__(self, function_id: str) -> FunctionSpec:
        return all_specs()[function_id]

    def __iter__(self) -> Iterator[str]:
        return iter(all_specs())

    def __len__(self) -> int:
        return len(all_specs())


FUNCTIONS: Mapping[str, FunctionSpec] = _FunctionCatalog()


def get_spec(function_id: str, models_dir: str | Path | None = None) -> FunctionSpec:
    specs = all_specs(models_dir)
    if function_id in specs:
        return specs[function_id]
    for family in all_families().values():  # a function left out: say why
        for function in family.functions:
            if function.id == function_id:
                spec_of(family, function, models_dir)  # raises when a value is refused
                raise UserError(
                    f"{function_id} of family {family.name} is not served: another family "
                    f"serves that id; give it another in {family.source}"
                )
    raise UserError(f"unknown function {function_id!r}; known functions: {', '.join(specs)}")


def family_of_function(function_id: str) -> tuple[Family, FunctionDef]:
    for family in all_families().values():
        for function in family.functions:
            if function.id == function_id:
                return family, function
    get_spec(function_id)  # raises with the list of known ids
    raise AssertionError("unreachable")


def functions_of_family(family: str) -> list[FunctionSpec]:
    return [spec_of(get_family(family), function) for function in get_family(family).functions]


def load_plankton_separator(
    spec: FunctionSpec,
    weights: str | Path | None = None,
    models_dir: str | Path | None = None,
    threads: int | None = None,
) -> SeparatorFunction:
    """The trained separator and classifier (`weights` names the separator's ONNX file; the
    classifier is looked up beside it, then in the models directory). With no separator
    model at all, the watershed baseline serves, and the tag comes from its count."""
    from imagine_assist.models.plankton import MULTIPLE_THRESHOLD, load_classifier, load_separator

    if weights:  # asked for by name: a missing or broken file is an error, not a fallback
        separator = load_separator(weights, threads=threads)
        beside = Path(weights).with_name("classifier.onnx")
        classifier_path = beside if beside.is_file() else None
    else:
        try:
            separator = load_separator(None, models_dir, threads)
        except ModelNotFound as error:
            log.warning("%s: serving the watershed baseline instead", error)
            return SeparatorFunction(spec)
        except UserError as error:
            live = live_model(spec.family, models_dir, name="separator")
            raise with_repair_advice(error, spec.family, live) from None
        classifier_path = None
    try:
        classifier = load_classifier(classifier_path, models_dir, threads)
    except ModelNotFound as error:
        log.warning("%s: the single/multiple tag comes from the number of organisms", error)
        classifier = None
    except UserError as error:
        if classifier_path is not None:
            raise
        live = live_model(spec.family, models_dir, name="classifier")
        raise with_repair_advice(error, spec.family, live) from None
    # A classifier carries the threshold it was validated with (models.vignette_classifier).
    threshold = MULTIPLE_THRESHOLD if classifier is None else classifier.multiple_threshold
    return SeparatorFunction(spec, None, separator, classifier, threshold)


def load_function(
    function_id: str,
    weights: str | Path | None = None,
    models_dir: str | Path | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
) -> DetectorFunction | TrackerFunction | ReidFunction | SeparatorFunction:
    """The function with its model: `weights` if given, else the family's live model (see
    `models.store.live_model`). CVAT's requests reach it through
    `nuclio.cvat_requests.answer`."""
    family, function = family_of_function(function_id)
    detector = None
    if weights and family.labels is None and function.runtime in ("detector", "tracker"):
        # a family whose labels are its model's: those of the model given, not the live one
        # (which a new family does not have yet)
        detector = load_detector(Path(weights))
        spec = spec_of(family, function, models_dir, tuple(detector.class_names))
    else:
        spec = spec_of(family, function, models_dir)
    if function.runtime == "separator":
        return load_plankton_separator(spec, weights, models_dir)
    if function.runtime == "reid":
        return ReidFunction(spec)  # motion and appearance only: no model to load
    live = None if weights else live_model(spec.family, models_dir)
    path = Path(weights) if weights else live.path
    try:
        detector = detector or load_detector(path)
    except UserError as error:
        raise with_repair_advice(error, spec.family, live) from None
    if function.runtime == "tracker":
        return TrackerFunction(spec, detector, state_key())
    merge_labels = family.training is not None and family.training.class_agnostic_nms
    return DetectorFunction(spec, detector, tile_size, tile_overlap, merge_labels)


def with_repair_advice(error: UserError, family: str, live: LiveModel | None) -> UserError:
    """A live registry version that does not load (cut short, overwritten) says how to get
    back to one that does; a model asked for by name, installed or bundled is left as it is."""
    if live is None or live.source in ("installed", "bundled"):
        return error
    return type(error)(
        f"{error}. It is {family}'s live version {live.source}: `imagine-assist models repair "
        f"{family}` goes back to the last version that loads"
    )
