"""The FiftyOne App that `review --app` opens, loaded in headless Chromium."""

import os
import shutil
import socket
import subprocess

import pytest

from imagine_assist.review.app import serve_app
from imagine_assist.review.review import MISTAKES_VIEW, review_export
from imagine_assist.samples import write_cvat_export

from .fish_tasks import FISH_LABELS, fish_samples

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run) and sets this, so there the test cannot be skipped.
REQUIRED = os.environ.get("IMAGINE_ASSIST_REQUIRE_BROWSER") == "1"


def chromium(url: str, *args: str, profile) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",  # no calls home: the sandbox has no network
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,900",
        "--virtual-time-budget=20000",  # let the App's scripts and queries finish
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args, url], capture_output=True, text=True, timeout=180
    )


@pytest.mark.slow  # starts the FiftyOne App and a browser: about 15 s
@pytest.mark.skipif(not CHROMIUM and not REQUIRED, reason="Chromium is not installed")
def test_review_app_shows_the_dataset_with_its_labels(tmp_path):
    assert CHROMIUM, "IMAGINE_ASSIST_REQUIRE_BROWSER=1 but no chromium on PATH"
    export = write_cvat_export(tmp_path / "task.zip", fish_samples(8, 96), FISH_LABELS)
    dataset, _ = review_export(export, "fish-detector", tmp_path / "review", tmp_path / "work")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = serve_app(dataset, MISTAKES_VIEW, port, wait=False)
    try:
        url = f"http://127.0.0.1:{port}/datasets/{dataset.name}"
        page = chromium(url, "--dump-dom", profile=tmp_path / "profile-1").stdout
        assert dataset.name in page  # the dataset page, not an error page
        for field in ("ground_truth", "predictions", "mistakenness"):
            assert field in page  # both label fields and the sort the review saved
        shot = tmp_path / "app.png"
        chromium(url, f"--screenshot={shot}", profile=tmp_path / "profile-2")
        assert shot.stat().st_size > 50_000  # a rendered grid of images, not a blank page
    finally:
        session.close()
