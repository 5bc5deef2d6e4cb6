"""Where imagine-assist keeps its state, and the settings that keep third-party tools offline.

Everything lives under one home directory: ``$IMAGINE_ASSIST_HOME``, or a per-user data
directory by default. Flags override single parts (``--models DIR``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.errors import UserError

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


@contextmanager
def work_folder_held(folder: str | Path, what: str) -> Iterator[Path]:
    """`folder`, held by this run for the length of the block. Trainings empty and refill
    their work folder: a second one started on the same folder would delete the first's
    dataset under it, and the first fail on a missing image or train on the other's data.
    The second is refused at once instead, naming the holder. The lock (`.<name>.lock`
    beside the folder, since the folder itself is emptied) is the kernel's, so a run that
    is killed holds nothing."""
    folder = Path(folder)
    with _held(folder.parent / f".{folder.name}.lock", folder, what, "--work"):
        yield folder


@contextmanager
def out_folder_held(folder: str | Path, what: str) -> Iterator[Path]:
    """An output folder (`--out`), held by this run for the length of the block: two runs
    writing one folder each removed the other's results and left the folder's listing of
    its outputs to whichever ended last. The lock is `.<name>.lock` beside the folder as
    it really is (`.`, a symbolic link and a full path are one folder, one lock); inside it
    only for a folder with no name (`/`) or whose parent cannot be written. A run that
    fails leaves neither the lock nor the folders it made for it."""
    folder = Path(folder)
    real = folder.resolve()
    lock = real.parent / f".{real.name}.lock"
    if not real.name or (real.is_dir() and not os.access(real.parent, os.W_OK)):
        lock = real / ".imagine-assist.lock"
    made = [p for p in [lock.parent, *lock.parent.parents] if not p.exists()]
    existed = lock.exists()
    try:
        with _held(lock, folder, what, "--out"):
            yield folder
    except BaseException:
        if not existed:
            lock.unlink(missing_ok=True)
        for path in made:  # deepest first: only folders this run made, and only if empty
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


@contextmanager
def _held(lock: Path, folder: Path, what: str, option: str) -> Iterator[None]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "pid unknown"
            raise UserError(
                f"{folder} is in use by another run ({holder}): wait for it to end, or "
                f"give this one another folder with {option}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{what}, pid {os.getpid()}")  # what the next one is told holds it
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
