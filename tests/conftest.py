"""Test session setup: private state directories, no network, small trained models, the
test tow, and the rule for the slow tier.

State (imagine-assist home, ultralytics config, FiftyOne database, HOME itself) goes to a
temporary directory before anything imports ultralytics or FiftyOne.

`pytest -m "not slow"` (`make test-fast`) leaves out every test that trains a model or
renders and tracks video: each one that uses a fixture in SLOW_FIXTURES (directly or through
another fixture), and those marked `slow` in their own files. `make test` runs everything.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="imagine-assist-tests-"))
os.environ["IMAGINE_ASSIST_HOME"] = str(_SESSION_DIR / "home")
os.environ["HOME"] = str(_SESSION_DIR / "user")
os.environ["YOLO_CONFIG_DIR"] = str(_SESSION_DIR / "home" / "ultralytics")
os.environ["FIFTYONE_DATABASE_DIR"] = str(_SESSION_DIR / "fiftyone-db")
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Each session trains its own small models (about 400 MB with the FiftyOne database); leaving
# them behind filled the disk after a few runs. IMAGINE_ASSIST_KEEP_TEST_STATE=1 keeps them.
if not os.environ.get("IMAGINE_ASSIST_KEEP_TEST_STATE"):
    atexit.register(shutil.rmtree, _SESSION_DIR, ignore_errors=True)

from imagine_assist.home import Home, configure_offline  # noqa: E402

configure_offline(Home.resolve())

REPO = Path(__file__).resolve().parent.parent


class NetworkBlocked(OSError):
    pass


def _is_local(address) -> bool:
    if isinstance(address, tuple):
        host = address[0]
    else:  # AF_UNIX paths
        return True
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True, scope="session")
def no_network():
    """Any connection to a non-loopback address fails the test that makes it."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self, address):
        if not _is_local(address):
            raise NetworkBlocked(f"test tried to reach the network: {address!r}")
        return original_connect(self, address)

    def guarded_connect_ex(self, address):
        if not _is_local(address):
            raise NetworkBlocked(f"test tried to reach the network: {address!r}")
        return original_connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_local((host if isinstance(host, str) else host.decode(),)):
            raise NetworkBlocked(f"test tried to resolve {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo
    yield
    socket.socket.connect = original_connect
    socket.socket.connect_ex = original_connect_ex
    socket.getaddrinfo = original_getaddrinfo


def _train_tiny(family: str, root: Path, epochs: int, images: int, test_images: int):
    from imagine_assist.training.defaults import train_default
    from imagine_assist.training.recipes import RECIPES

    recipe = RECIPES[family].scaled(epochs=epochs, images=images, test_images=test_images)
    return train_default(family, root / "models" / family, root / "runs" / family, recipe)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty home of the test's own (IMAGINE_ASSIST_HOME), with its families folder; a
    module that needs a family in it overrides this fixture and writes the file."""
    monkeypatch.setenv("IMAGINE_ASSIST_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "families").mkdir(parents=True)
    return tmp_path / "home"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return _SESSION_DIR / "trained" / "models"


@pytest.fixture(scope="session")
def fish_model(models_dir):
    """A small fish model, trained once per test run. It is for plumbing, not accuracy."""
    return _train_tiny("fish", models_dir.parent, epochs=4, images=24, test_images=6)


@pytest.fixture(scope="session")
def litter_model(models_dir):
    return _train_tiny("litter", models_dir.parent, epochs=3, images=2, test_images=1)


TOW_SECONDS = 70.0  # crosses a minute boundary
TOW_SEED = 77  # used by no training run


@pytest.fixture(scope="session")
def tow_files():
    """The test tow, rendered once per test run into the session directory: the `Tow` and
    its `TowFiles` (MP4 video, CVAT video XML, ground-truth CSVs). Tests read its frames back
    from the video and its boxes from the CSV instead of rendering it again."""
    from imagine_assist.samples import generate_tow, write_tow

    tow = generate_tow(TOW_SECONDS, seed=TOW_SEED)
    return tow, write_tow(tow, _SESSION_DIR / "tow")


# Session and module fixtures that train a model or render the test tow. A test that uses one
# of them, directly or through another fixture, is slow; tests that train or render on their
# own carry `pytest.mark.slow` in their files.
SLOW_FIXTURES = frozenset(
    {
        "fish_model",  # trains (conftest)
        "litter_model",  # trains (conftest)
        "tiny_plankton",  # trains both plankton models (test_plankton_models)
        "loop_round",  # a loop round retrains a version (test_publish)
        "tow_files",  # renders the 70-s tow to video (conftest)
        "tow_export",  # renders a 40-s tow's frames into a video export (test_retrain)
    }
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
