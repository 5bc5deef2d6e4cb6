#!/usr/bin/env bash
# Build a serving-only bundle ashore, then install and use it with no network at all:
#   bash scripts/check_offline_bundle.sh [work dir]
# Prints the bundle's size, the offline install time, and the gateway's answer to a
# CVAT-shaped detector request made inside the network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$(mktemp -d)}"
rm -rf "$work/bundle" "$work/venv" "$work/home"
.venv/bin/imagine-assist bundle --out "$work/bundle" --functions fish-detector,litter-detector
.venv/bin/imagine-assist bundle verify "$work/bundle"
du -sh "$work/bundle" "$work/bundle/wheels"
command -v unshare >/dev/null && unshare -n true || { echo "needs root and unshare -n" >&2; exit 1; }
unshare -n bash -euo pipefail -c '
  ip link set lo up
  if python3 -c "import socket; socket.create_connection((\"pypi.org\", 443), 3)" 2>/dev/null; then
    echo "the namespace has a network: not an offline check" >&2; exit 1
  fi
  start=$(date +%s.%N)
  "$1/bundle/install.sh" "$1/venv" "$1/home"
  echo "offline install: $(echo "$(date +%s.%N) - $start" | bc) s"
  "$1/venv/bin/python" - "$1" <<PY
import base64, io, json, subprocess, sys, time, urllib.request
from pathlib import Path
work = Path(sys.argv[1])
env = {"IMAGINE_ASSIST_HOME": str(work / "home"), "PATH": "/usr/bin:/bin"}
server = subprocess.Popen([str(work / "venv/bin/imagine-assist"), "serve", "--port", "18070",
                           "--functions", "fish-detector"], env=env)
try:
    for _ in range(300):
        try:
            ready = json.load(urllib.request.urlopen("http://127.0.0.1:18070/api/healthz"))
            if ready["status"] == "ready":
                break
        except OSError:
            pass
        time.sleep(0.2)
    print("gateway:", json.dumps(ready["models"]))
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(1)
    image = Image.fromarray((rng.random((480, 640, 3)) * 255).astype("uint8"))
    buffer = io.BytesIO(); image.save(buffer, format="JPEG")
    body = json.dumps({"image": base64.b64encode(buffer.getvalue()).decode()}).encode()
    request = urllib.request.Request("http://127.0.0.1:18070/api/function_invocations", body,
        {"x-nuclio-function-name": "fish-detector", "Content-Type": "application/json"})
    answer = urllib.request.urlopen(request)
    print("detector request:", answer.status, "a JSON list of", len(json.load(answer)), "shapes")
    assert "torch" not in subprocess.run([str(work / "venv/bin/pip"), "list"], capture_output=True, text=True).stdout
    print("no torch in the venv")
finally:
    server.terminate()
PY
' bash "$work"
