"""`imagine-assist loop`: one turn of the annotation loop against a CVAT server, through
cvat-sdk. Export the corrected task, review it, retrain from every export so far, promote
if the gate agrees, reload the gateway, and pre-annotate the next task with the live model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import FUNCTIONS, load_function
from imagine_assist.models.registry import Registry
from imagine_assist.models.store import family_dir

log = logging.getLogger(__name__)
IMAGE_EXPORT = "CVAT for images 1.1"
# A video task keeps its tracks, and its frames are split by stretches of video rather than
# one by one: neighbouring frames are near copies, and must not straddle train and test.
VIDEO_EXPORT = "CVAT for video 1.1"


def export_format(task) -> str:
    """CVAT's own task mode: "interpolation" for a video task, "annotation" for images."""
    return VIDEO_EXPORT if getattr(task, "mode", "") == "interpolation" else IMAGE_EXPORT


@dataclass
class LoopReport:
    export: Path
    exports_used: list[Path]
    review_summary: Path
    version: str
    promoted: bool
    gate_reasons: list[str]
    annotated_task: int | None


def detector_of(family: str) -> str:
    for spec in FUNCTIONS.values():
        if spec.family == family and spec.kind == "detector":
            return spec.id
    raise UserError(f"no detector function for the family {family!r}")


def _task(client, task_id: int, option: str):
    """The CVAT task, or one line naming it when CVAT has none by that id, or none this
    login may see (CVAT answers 403 for a task of another organisation)."""
    from cvat_sdk.api_client.exceptions import ForbiddenException, NotFoundException

    try:
        return client.tasks.retrieve(task_id)
    except NotFoundException:
        raise UserError(
            f"CVAT has no task {task_id} ({option}); nothing was exported or trained"
        ) from None
    except ForbiddenException:
        raise UserError(
            f"CVAT does not let this login see task {task_id} ({option}): another "
            "organisation's, or not shared with you; nothing was exported or trained"
        ) from None


def _record_export_path(dataset, summary_path: Path, export: Path) -> None:
    """The review read the download before it joined the exports: it names the export
    where it now lies, in the dataset and in summary.json."""
    import json

    where = str(export.absolute())
    dataset.info["export"] = {**(dataset.info.get("export") or {}), "path": where}
    dataset.save()
    summary = json.loads(summary_path.read_text())
    if isinstance(summary.get("export"), dict):
        summary["export"]["path"] = where
        summary_path.write_text(json.dumps(summary, indent=2))


def run_loop(
    client,
    family: str,
    task_id: int,
    next_task_id: int | None,
    work_dir: Path,
    models_dir: str | Path | None = None,
    device: str = "cpu",
    epochs: int | None = None,
    force: bool = False,
    reload=None,
) -> LoopReport:
    """`client` is a logged-in `cvat_sdk.Client`; `reload` is called after a promotion."""
    from cvat_sdk.auto_annotation import annotate_task

    from imagine_assist.cvat.sdk_function import SdkDetectionFunction
    from imagine_assist.review.review import review_export
    from imagine_assist.training.retrain import retrain

    function_id = detector_of(family)
    exports_dir = work_dir / "exports"
    exports_dir.mkdir(parents=True, exist_ok=True)
    export = exports_dir / f"task-{task_id}.zip"
    task = _task(client, task_id, "--task")
    if next_task_id is not None:  # before the export and the training, not after them
        _task(client, next_task_id, "--next-task")
    # Downloaded beside the exports, and among them only once it has been read: an export
    # CVAT cut short or made without boxes would stop every later turn, and cvat-sdk
    # writes over no file (a task exported again replaces its earlier export here).
    incoming = exports_dir / ".incoming" / export.name
    incoming.parent.mkdir(exist_ok=True)
    incoming.unlink(missing_ok=True)
    log.info("exporting task %s (%s)", task_id, export_format(task))
    task.export_dataset(export_format(task), incoming, include_images=True)
    try:
        dataset, summary = review_export(
            incoming,
            function_id,
            work_dir / f"review-task-{task_id}",
            work_dir / "unpacked",
            models_dir,
        )
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    incoming.replace(export)
    _record_export_path(dataset, summary.summary, export)
    # every corrected task so far: a later export of the same task replaces its earlier one
    exports = sorted(exports_dir.glob("task-*.zip"))
    registry = Registry(family_dir(family, models_dir).parent)
    result = retrain(
        family,
        exports,
        registry,
        work_dir / f"train-task-{task_id}",
        device=device,
        force=force,
        epochs=epochs,
    )
    if result.promoted and reload is not None:
        reload(family)

    if next_task_id is not None:
        live = SdkDetectionFunction(load_function(function_id, models_dir=models_dir))
        try:
            annotate_task(client, next_task_id, live, allow_unmatched_labels=True)
        except BaseException:
            # what the turn did to the model is said before its last step's error
            log.warning(
                "%s %s was %s; pre-annotating task %s failed:",
                family,
                result.version.name,
                "promoted" if result.promoted else "kept, not promoted",
                next_task_id,
            )
            raise
    return LoopReport(
        export,
        exports,
        summary.summary,
        result.version.name,
        result.promoted,
        result.gate["reasons"],
        next_task_id,
    )
