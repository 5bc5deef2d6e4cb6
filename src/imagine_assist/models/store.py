"""Where each family's current model lives: ``<models dir>/<family>/model.{pt,onnx}``.

The models directory defaults to ``$IMAGINE_ASSIST_HOME/models``.
"""

from __future__ import annotations

from pathlib import Path

from imagine_assist.home import Home


def family_dir(family: str, models_dir: str | Path | None = None) -> Path:
    root = Path(models_dir).expanduser() if models_dir else Home.resolve().models
    return root / family


def model_path(family: str, models_dir: str | Path | None = None, fmt: str = "onnx") -> Path:
    return family_dir(family, models_dir) / f"model.{fmt}"
