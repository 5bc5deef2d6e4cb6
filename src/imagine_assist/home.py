"""Where imagine-assist keeps its state, and the settings that keep third-party tools offline.

Everything lives under one home directory: ``$IMAGINE_ASSIST_HOME``, or a per-user data
directory by default. Flags override single parts (``--models DIR``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "IMAGINE_ASSIST_HOME"


def default_home() -> Path:
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "imagine-assist"


@dataclass(frozen=True)
class Home:
    """The directories of one imagine-assist home. Nothing is created until asked for."""

    root: Path

    @classmethod
    def resolve(cls, root: str | Path | None = None) -> Home:
        return cls(Path(root).expanduser() if root else default_home())

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def families(self) -> Path:
        return self.root / "families"

    @property
    def exports(self) -> Path:
        """Every export that trained a version, stored by content (`<sha256>.zip`)."""
        return self.root / "exports"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def ultralytics_config(self) -> Path:
        return self.root / "ultralytics"

    @property
    def fiftyone_db(self) -> Path:
        return self.root / "fiftyone" / "db"


def configure_offline(home: Home) -> None:
    """Point ultralytics and FiftyOne at the home directory and stop them reaching the network.

    Must run before ``ultralytics`` or ``fiftyone`` is imported: both read these at import.
    """
    config_dir = home.ultralytics_config
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    # OpenVINO exports send telemetry unless CI is set.
    os.environ.setdefault("CI", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(home.fiftyone_db))
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    _provide_ultralytics_font(Path(os.environ["YOLO_CONFIG_DIR"]))


def _provide_ultralytics_font(config_dir: Path) -> None:
    # Every ultralytics training run calls check_font("Arial.ttf"), which downloads from GitHub
    # when the file is missing; any TTF under that name satisfies it.
    target = config_dir / "Ultralytics" / "Arial.ttf"
    if target.exists():
        return
    try:
        import matplotlib
    except ImportError:
        return
    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
