"""Files that are not images, and file names that are not UTF-8, for `predict` and `separate`.

Each command runs in a subprocess under a timeout and an address-space limit: before the fix
a FIFO named `*.jpg` blocked the read for ever, and a `*.jpg` link to `/dev/zero` was read
until memory ran out. Linux file names are bytes, so `b"\\xff.jpg"` is a valid name that is
not UTF-8.
"""

from __future__ import annotations

import csv
import os
import resource
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagine_assist.functions.catalog import FUNCTIONS
from imagine_assist.images import max_file_bytes, readable_name
from imagine_assist.samples import generate_plankton

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bytes file names, /dev/zero")

CLI = str(Path(sys.executable).with_name("imagine-assist"))
NOT_UTF8 = b"\xff\xfe"  # never valid UTF-8


@dataclass
class Run:
    out: Path
    returncode: int | None  # None: killed at the timeout
    stderr: str


def _limit_memory() -> None:
    limit = 8 << 30  # /dev/zero read whole would pass this within seconds
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_cli(args: list[str], out: Path) -> Run:
    try:
        done = subprocess.run(
            [CLI, *args, "--out", str(out)],
            capture_output=True,
            timeout=30,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired as expired:
        stderr = (expired.stderr or b"").decode("utf-8", "replace")
        return Run(out, None, stderr)
    return Run(out, done.returncode, done.stderr.decode("utf-8"))  # strict: must be UTF-8


def add_non_images(folder: Path, suffix: str) -> None:
    os.mkfifo(folder / f"pipe{suffix}")  # no writer: opening it to read would block
    (folder / f"zero{suffix}").symlink_to("/dev/zero")


@pytest.fixture(scope="module")
def predicted(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("predict-inputs")
    source = root / "in"
    source.mkdir()
    image = np.full((64, 80, 3), 120, np.uint8)
    Image.fromarray(image).save(source / "ok.jpg")
    Image.fromarray(image).save(os.fsencode(source) + b"/" + NOT_UTF8 + b".jpg", format="JPEG")
    add_non_images(source, ".jpg")
    limit = max_file_bytes(FUNCTIONS["litter-detector"].max_image_pixels)
    with (source / "huge.jpg").open("wb") as handle:
        handle.truncate(limit + 1)  # sparse: no disk used, and must not be read
    return run_cli(["predict", str(source), "--function", "litter-detector"], root / "out")


@pytest.mark.slow  # a subprocess or seconds of work: the full tier
def test_predict_skips_a_fifo_without_hanging(predicted):
    assert predicted.returncode == 0, predicted.stderr
    assert "skipped: " in predicted.stderr and "pipe.jpg is a FIFO" in predicted.stderr


def test_predict_skips_a_link_to_dev_zero(predicted):
    assert predicted.returncode == 0, predicted.stderr
    assert "zero.jpg is a character device" in predicted.stderr


def test_predict_skips_an_over_size_file_unread(predicted):
    assert predicted.returncode == 0, predicted.stderr
    assert "huge.jpg is" in predicted.stderr and "bytes, over the limit" in predicted.stderr


def test_predict_writes_a_non_utf8_name_escaped_in_valid_xml_and_csv(predicted):
    assert predicted.returncode == 0, predicted.stderr
    escaped = "\\xff\\xfe.jpg"
    root = ET.parse(predicted.out / "annotations.xml").getroot()  # raises if invalid
    assert sorted(image.get("name") for image in root.iter("image")) == [escaped, "ok.jpg"]
    with (predicted.out / "counts.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["image"] for row in rows) == [escaped, "ok.jpg"]
    previews = sorted(path.name for path in (predicted.out / "previews").iterdir())
    assert previews == ["\\xff\\xfe.jpg", "ok.jpg"]
    # one line per skipped file, naming it
    assert sum(line.startswith("skipped: ") for line in predicted.stderr.splitlines()) == 3


@pytest.fixture(scope="module")
def separated(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("separate-inputs")
    source = root / "in"
    source.mkdir()
    first, second = generate_plankton(2, seed=72, multiple_share=1.0)
    Image.fromarray(first.image).save(source / "ok.png")
    odd_name = os.fsencode(source) + b"/" + NOT_UTF8 + b"\n.png"  # and a newline
    Image.fromarray(second.image).save(odd_name, format="PNG")
    add_non_images(source, ".png")
    return run_cli(["separate", str(source), "--workers", "1"], root / "out")


@pytest.mark.slow  # a subprocess or seconds of work: the full tier
def test_separate_skips_a_fifo_and_a_link_to_dev_zero(separated):
    assert separated.returncode == 0, separated.stderr
    assert "pipe.png is a FIFO" in separated.stderr
    assert "zero.png is a character device" in separated.stderr


def test_separate_names_a_non_utf8_vignette_escaped_in_tsv_and_files(separated):
    assert separated.returncode == 0, separated.stderr
    tsv = separated.out / "ecotaxa" / "ecotaxa_import.tsv"
    with tsv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))[1:]  # after the types row
    sources = {row["object_source_vignette"] for row in rows}
    assert sources == {"ok.png", "\\xff\\xfe\\x0a.png"}
    for row in rows:  # each row names a file written beside the TSV
        assert (tsv.parent / row["img_file_name"]).is_file()
    assert (separated.out / "separations" / "\\xff\\xfe\\x0a_sep.png").is_file()


def test_readable_name_keeps_utf8_and_escapes_the_rest():
    assert readable_name("Ålesund/ok.jpg") == "Ålesund/ok.jpg"
    assert readable_name(os.fsdecode(b"\xff.jpg")) == "\\xff.jpg"
    assert readable_name(b"a\x01\tb\x7f.jpg") == "a\\x01\\x09b\\x7f.jpg"
    element = ET.Element("image", name=readable_name(b"\xc3\x28\x00\x1b.jpg"))
    assert ET.fromstring(ET.tostring(element, encoding="utf-8")).get("name") == (
        "\\xc3(\\x00\\x1b.jpg"
    )
