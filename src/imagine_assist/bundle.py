"""`imagine-assist bundle`: everything a vessel laptop needs, prepared ashore.

    <bundle>/
      wheels/            imagine-assist and its dependencies for the target Python/platform
      models/<family>/   each family's live model (promoted, else installed, else bundled)
      families/          the family files of a user's own families among them
      serverless/<id>/   the rendered Nuclio folders
      compose/           the compose overlay
      install.sh         a venv from wheels/ with `pip install --no-index`, the models copied in
      MANIFEST.sha256    a checksum per file; `imagine-assist bundle verify <bundle>` checks them

Building needs the package index (ashore); installing needs nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.checksums import write_manifest
from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import get_spec
from imagine_assist.functions.render import family_files, rendered_files
from imagine_assist.models.store import resolve_model
from imagine_assist.wheelhouse import check_wheelhouse

REPO = Path(__file__).resolve().parents[2]
# OpenCV 5 breaks FiftyOne and is untested here; the development stack runs 4.x headless.
CONSTRAINTS = ["opencv-python<5", "opencv-python-headless<5"]

INSTALL_SH = """#!/usr/bin/env bash
# Install this imagine-assist bundle with no network: ./install.sh [venv dir] [home dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$HOME/imagine-assist-venv}"
home="${2:-$HOME/.local/share/imagine-assist}"
python3 -m venv "$venv"
"$venv/bin/pip" install --no-index --find-links "$here/wheels" --quiet "imagine-assist%(extras)s"
if "$venv/bin/pip" show --quiet opencv-python >/dev/null 2>&1; then
  # ultralytics pulls OpenCV's GUI build, which needs libGL and X libraries a headless
  # laptop lacks; both write cv2/, so keep exactly one: the headless build
  "$venv/bin/pip" uninstall --quiet -y opencv-python opencv-python-headless
  "$venv/bin/pip" install --no-index --find-links "$here/wheels" --no-deps --quiet \
    "opencv-python-headless<5"
fi
mkdir -p "$home/models"
if [ -d "$here/models" ]; then  # none for a bundle of functions without models (reid)
  cp -r "$here/models/." "$home/models/"
fi
if [ -d "$here/families" ]; then
  mkdir -p "$home/families" && cp -r "$here/families/." "$home/families/"
fi
echo "installed: $venv/bin/imagine-assist (models in $home/models)"
echo "serve: IMAGINE_ASSIST_HOME=$home $venv/bin/imagine-assist serve --port 8070"
"""


@dataclass
class BundleReport:
    folder: Path
    wheels: int
    models: list[str]
    size_bytes: int


def _family_files(family: str, models_dir: str | Path | None) -> dict[str, Path]:
    names = ("separator", "classifier") if family == "plankton" else ("model",)
    files = {}
    for name in names:
        onnx = resolve_model(family, models_dir, "onnx", name)
        files[f"{name}.onnx"] = onnx
        card = onnx.parent / (
            "card.json" if (onnx.parent / "card.json").is_file() else "metrics.json"
        )
        if card.is_file():
            files[card.name] = card
    return files


# what pip prints when it cannot reach the package index at all
_NO_NETWORK = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Read timed out",
    "ProxyError",
    "407 Proxy Authentication Required",
    "SSLError",
    "CERTIFICATE_VERIFY_FAILED",
)


def _run_pip(command: list[str], failed: str | None = None) -> None:
    """Run pip; its errors are shown, and a failure says whether the index was out of reach
    (a bundle needs the network, ashore), else `failed`, else that a wheel was missing for
    the target."""
    done = subprocess.run(command, stderr=subprocess.PIPE, text=True, errors="replace")
    if done.returncode == 0:
        return
    sys.stderr.write(done.stderr)
    if any(sign in done.stderr for sign in _NO_NETWORK):
        raise UserError(
            "pip could not reach the package index (see above): a bundle is built ashore, "
            "on a machine with the network, and then carried to the vessel"
        )
    if failed is not None:
        raise UserError(failed)
    raise UserError(
        "pip found no wheel for some dependency on that Python and platform (see above). "
        "Give every platform tag the target accepts, e.g. --platform manylinux_2_28_x86_64 "
        "--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
    )


def download_wheels(target: Path, extras: str, python: str, platforms: list[str]) -> None:
    """The project's wheel, and every dependency's for the target, from the package index."""
    if not (REPO / "pyproject.toml").is_file():
        raise UserError(
            "build bundles from a checkout of imagine-assist (pyproject.toml not found)"
        )
    target.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    _run_pip(
        [*pip, "wheel", "--no-deps", "--quiet", "-w", str(target), str(REPO)],
        failed=f"pip could not build imagine-assist's own wheel from {REPO} (see above)",
    )
    constraints = target.parent / ".constraints.txt"
    constraints.write_text("\n".join(CONSTRAINTS) + "\n")
    command = [
        *pip,
        "download",
        "--quiet",
        "-d",
        str(target),
        "-c",
        str(constraints),
        "--only-binary=:all:",
        "--python-version",
        python,
        f"{REPO}{extras}",
    ]
    for platform in platforms:  # pip matches tags exactly: give every one the target accepts
        command += ["--platform", platform]
    try:
        # pip retries an unreachable index for minutes by default: a bundle is built ashore,
        # where a failed connection is worth saying at once
        _run_pip([*command[:3], "--retries", "1", "--timeout", "20", *command[3:]])
    finally:
        constraints.unlink(missing_ok=True)
    for own in target.glob("imagine_assist-*.tar.gz"):  # pip download keeps an sdist of ours
        own.unlink()


def build_bundle(
    out: Path,
    function_ids: list[str],
    models_dir: str | Path | None = None,
    with_training: bool = False,
    with_review: bool = False,
    python: str = f"{sys.version_info.major}.{sys.version_info.minor}",
    platforms: list[str] | None = None,
    wheelhouse: Path | None = None,
) -> BundleReport:
    if out.exists() and any(out.iterdir()):
        if (out / "wheels").is_dir() and not (out / "MANIFEST.sha256").exists():
            # the manifest is written last: without it, a bundle that never finished
            raise UserError(
                f"{out} holds a bundle that did not finish (no MANIFEST.sha256): delete the "
                "folder and run again, or give a new one"
            )
        raise UserError(f"{out} is not empty; give a new folder for the bundle")
    compose = (REPO / "compose").resolve()
    if out.resolve().is_relative_to(compose):  # copied into itself, round and round
        raise UserError(f"{out} is inside {compose}, which the bundle copies: give another --out")
    if wheelhouse is not None:  # checked before anything is written: found at sea, too late
        check_wheelhouse(wheelhouse, python=python)
    specs = [get_spec(function_id) for function_id in function_ids]
    extras = [
        name for name, wanted in (("train", with_training), ("review", with_review)) if wanted
    ]
    extras_text = f"[{','.join(extras)}]" if extras else ""
    out.mkdir(parents=True, exist_ok=True)
    if wheelhouse is not None:  # an existing wheelhouse, e.g. built for another platform
        shutil.copytree(wheelhouse, out / "wheels")
    else:
        download_wheels(out / "wheels", extras_text, python, platforms or [])
    families = sorted({spec.family for spec in specs if spec.kind != "reid"})
    for family in families:
        for name, source in _family_files(family, models_dir).items():
            (out / "models" / family).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / "models" / family / name)
    for spec in specs:
        for name, text in rendered_files(spec).items():
            path = out / "serverless" / spec.id / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for spec in specs:  # a user's family goes with its model; built-ins are in the wheel
        for name, text in family_files(spec).items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if (REPO / "compose").is_dir():
        shutil.copytree(REPO / "compose", out / "compose")
    install = out / "install.sh"
    install.write_text(INSTALL_SH % {"extras": extras_text})
    install.chmod(0o755)
    write_manifest(out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return BundleReport(out, len(list((out / "wheels").glob("*.whl"))), families, size)
