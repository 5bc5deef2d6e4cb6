"""Where each family's model lives.

- Installed: ``<models dir>/<family>/model.{onnx,pt}`` plus ``metrics.json``; the models
  directory defaults to ``$IMAGINE_ASSIST_HOME/models``. `imagine-assist train` writes here.
- Bundled: the default models shipped inside the package (ONNX, .pt, metrics.json), trained by
  `imagine-assist train <family>` on the sample data; used when nothing is installed.
  The plankton family holds two models, ``separator.*`` and ``classifier.*``.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.errors import ModelNotFound
from imagine_assist.home import Home

log = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


def family_dir(family: str, models_dir: str | Path | None = None) -> Path:
    root = Path(models_dir).expanduser() if models_dir else Home.resolve().models
    return root / family


def model_path(
    family: str, models_dir: str | Path | None = None, fmt: str = "onnx", name: str = "model"
) -> Path:
    return family_dir(family, models_dir) / f"{name}.{fmt}"


@dataclass(frozen=True)
class LiveModel:
    path: Path
    source: str  # the registry version ("v3"), "installed" or "bundled"


def live_model(
    family: str, models_dir: str | Path | None = None, fmt: str = "onnx", name: str = "model"
) -> LiveModel:
    """The one rule for which weights serve a family: the promoted registry version, else the
    model installed directly in its directory, else the bundled default. Serving, retraining
    (which fine-tunes and gates against the live model) and publishing all ask here. `name`
    picks one model of a family that has several (plankton: "separator" and "classifier")."""
    from imagine_assist.models.registry import Registry

    root = family_dir(family, models_dir).parent
    promoted = Registry(root).current(family)
    if promoted is not None and promoted.file(f"{name}.{fmt}").is_file():
        altered = promoted.altered(f"{name}.{fmt}")
        if altered is not None and promoted.unloadable(f"{name}.{fmt}") is None:
            # another model under the live version's name and card; a file cut short is
            # left to the loader, whose error says so
            raise ModelNotFound(altered)
        return LiveModel(promoted.file(f"{name}.{fmt}"), promoted.name)
    if promoted is not None and promoted.missing_file(f"{name}.{fmt}"):
        # a retraining would start from other weights than the live ones it is gated against
        raise ModelNotFound(
            f"{family} {promoted.name}, the live version, no longer holds {name}.{fmt} "
            f"({promoted.path}): restore it, or promote a version that has it"
        )
    installed = model_path(family, models_dir, fmt, name)
    if installed.is_file():
        return LiveModel(installed, "installed")
    bundled = BUNDLED_DIR / family / f"{name}.{fmt}"
    if bundled.is_file():
        log.info("no %s model in %s: using the bundled default", family, installed.parent)
        return LiveModel(bundled, "bundled")
    raise ModelNotFound(
        f"no {family} model in {installed.parent}. Train one from a CVAT export with "
        f"`imagine-assist train {family} --from export.zip` (a built-in family also on "
        f"synthetic scenes: `imagine-assist train {family}`), or pass --weights"
    )


def resolve_model(
    family: str, models_dir: str | Path | None = None, fmt: str = "onnx", name: str = "model"
) -> Path:
    """The path of the live model (see `live_model`)."""
    return live_model(family, models_dir, fmt, name).path


def live_model_stamp(family: str, models_dir: str | Path | None = None) -> tuple:
    """What changes when another process changes the weights that serve the family: the
    registry's CURRENT (rewritten by promote, rollback and repair), the live version's model
    files (restored by hand after a damage), and the models installed directly in the
    family's directory; each by name, inode, size and time. A gateway asks this every few
    seconds to notice a change that did not tell it: stats and one small read."""
    from imagine_assist.models.registry import CURRENT, live_version_name

    folder = family_dir(family, models_dir)
    paths = [folder / CURRENT, *sorted(folder.glob("*.onnx"))]
    live = live_version_name(folder / CURRENT)
    if live is not None:
        paths += sorted((folder / "versions" / live).glob("*.onnx"))
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:  # not there (yet), or gone between the listing and the stat
            continue
        stamps.append((str(path.relative_to(folder)), stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(stamps)


def has_default_model(family: str, models_dir: str | Path | None = None) -> bool:
    """Whether something serves the family without a promoted version (what a rollback past
    the first version returns to)."""
    return (family_dir(family, models_dir) / "model.onnx").is_file() or (
        BUNDLED_DIR / family
    ).is_dir()


def bundled_metrics(family: str) -> dict:
    """The bundled model's `metrics.json` ({} without one): its figures, `credits` (the
    datasets it learned from, with their licences) and `data_note` (what its data lacks)."""
    try:
        return json.loads((BUNDLED_DIR / family / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def install_bundled(family: str, models_dir: str | Path | None = None) -> Path:
    """Copy the bundled default into the models directory unless a model is installed there."""
    target = family_dir(family, models_dir)
    if (target / "model.onnx").is_file():
        return target / "model.onnx"
    source = BUNDLED_DIR / family
    if not (source / "model.onnx").is_file():
        raise ModelNotFound(f"this installation has no bundled {family} model")
    target.mkdir(parents=True, exist_ok=True)
    # model.onnx last: its presence is what marks the directory as holding a model
    for name in ("metrics.json", "model.pt", "model.onnx"):
        partial = target / f".{name}.partial"
        shutil.copyfile(source / name, partial)
        partial.replace(target / name)
    return target / "model.onnx"
