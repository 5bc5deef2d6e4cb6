"""Nothing reaches the network: the guard is on, and a real run works with no network at all."""

import shutil
import socket
import subprocess
import sys

import pytest
from PIL import Image

from imagine_assist.samples import generate_fish

from .conftest import REPO, NetworkBlocked


def test_the_session_blocks_non_loopback_connections():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("github.com", 443)


def _can_isolate() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    )


@pytest.mark.skipif(not _can_isolate(), reason="needs root and unshare for a network namespace")
def test_predict_runs_in_a_namespace_without_network(fish_model, tmp_path):
    for sample in generate_fish(2, seed=31):
        Image.fromarray(sample.image).save(tmp_path / sample.name)
    script = (
        "import socket, sys\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "except OSError:\n    pass\nelse:\n    sys.exit('network is reachable')\n"
        "from imagine_assist.app.main import main\n"
        f"sys.exit(main(['predict', {str(tmp_path)!r}, '--function', 'fish-detector', "
        f"'--out', {str(tmp_path / 'out')!r}, '--weights', {str(fish_model.onnx)!r}]))\n"
    )
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "annotations.xml").is_file()


def test_serving_imports_neither_torch_nor_ultralytics(fish_model):
    script = (
        "import sys, numpy as np\n"
        "from imagine_assist.functions.catalog import load_function\n"
        f"function = load_function('fish-detector', {str(fish_model.onnx)!r})\n"
        "function.detect(np.zeros((240, 320, 3), np.uint8))\n"
        "heavy = sorted(m for m in ('torch', 'ultralytics', 'fiftyone') if m in sys.modules)\n"
        "sys.exit(f'imported {heavy}' if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + result.stdout
