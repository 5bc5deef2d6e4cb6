"""`imagine-assist bundle`: layout, checksums and verify. Building the wheelhouse needs the
package index, so here the wheels come from a local folder (`--wheelhouse`); the real
offline install is `scripts/check_offline_bundle.sh` (docs/vessel.md records its figures)."""

from imagine_assist.app.main import main
from imagine_assist.models.registry import Registry

from .onnx_files import onnx_tag, tiny_onnx


def test_bundle_holds_wheels_live_models_functions_and_checksums(tmp_path, capsys):
    wheels = tmp_path / "wheelhouse"
    wheels.mkdir()
    (wheels / "imagine_assist-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    (wheels / "onnxruntime-1.20.0-cp311-cp311-manylinux_x86_64.whl").write_bytes(b"wheel")
    models = tmp_path / "models"
    promoted = tiny_onnx(tmp_path / "promoted.onnx", "the promoted fish model")
    registry = Registry(models)
    registry.add(
        "fish",
        {"model.onnx": promoted},
        {"classes": ["fish"], "metrics": "v1"},
    )
    registry.promote("fish", "v1", "test")
    out = tmp_path / "bundle"
    argv = [
        "bundle",
        "--out",
        str(out),
        "--wheelhouse",
        str(wheels),
        "--models",
        str(models),
        "--functions",
        "fish-detector,plankton-separator",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert onnx_tag(out / "models" / "fish" / "model.onnx") == "the promoted fish model"
    assert (out / "models" / "fish" / "card.json").is_file()
    assert {p.name for p in (out / "models" / "plankton").iterdir()} >= {
        "separator.onnx",
        "classifier.onnx",
    }
    assert (out / "serverless" / "fish-detector" / "function.yaml").is_file()
    assert (out / "compose" / "docker-compose.imagine-assist.yml").is_file()
    install = (out / "install.sh").read_text()
    assert "--no-index" in install and "http" not in install
    assert main(["bundle", "verify", str(out)]) == 0
    assert "intact" in capsys.readouterr().out

    (out / "models" / "fish" / "model.onnx").write_bytes(b"tampered")
    (out / "wheels" / "extra.whl").write_bytes(b"slipped in")
    (out / "install.sh").unlink()
    assert main(["bundle", "verify", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "changed: models/fish/model.onnx" in printed
    assert "not listed: wheels/extra.whl" in printed and "missing: install.sh" in printed


def test_bundle_refuses_a_folder_in_use_and_verify_a_non_bundle(tmp_path, capsys):
    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("x")
    assert main(["bundle", "--out", str(used), "--wheelhouse", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["bundle", "verify", str(used)]) == 2
    assert "has no MANIFEST.sha256" in capsys.readouterr().err


def test_a_bundle_that_did_not_finish_is_named_as_one(tmp_path, capsys):
    """Interrupted while it gathered wheels: the rerun said only "not empty"."""
    partial = tmp_path / "bundle"
    (partial / "wheels").mkdir(parents=True)
    (partial / "wheels" / "numpy.whl").write_bytes(b"half")
    assert main(["bundle", "--out", str(partial), "--wheelhouse", str(tmp_path)]) == 2
    assert "a bundle that did not finish (no MANIFEST.sha256)" in capsys.readouterr().err


def test_a_bundle_built_with_no_network_says_so(tmp_path):
    """Offline, pip retried for two minutes and the error blamed platform tags."""
    import sys

    import pytest

    from imagine_assist.bundle import _run_pip
    from imagine_assist.errors import UserError

    pip = [sys.executable, "-m", "pip", "--isolated", "download", "--quiet", "--no-deps"]
    unreachable = ["--retries", "1", "--timeout", "2", "--index-url", "http://127.0.0.1:9/simple"]
    with pytest.raises(UserError, match="pip could not reach the package index"):
        _run_pip([*pip, *unreachable, "-d", str(tmp_path), "requests"])
    empty_index = tmp_path / "index"
    empty_index.mkdir()
    with pytest.raises(UserError, match="pip found no wheel for some dependency"):
        _run_pip([*pip, "--no-index", "--find-links", str(empty_index), "-d", str(tmp_path), "x"])
    own = [sys.executable, "-m", "pip", "--isolated", "wheel", "--no-deps", "--no-index"]
    with pytest.raises(UserError, match="could not build imagine-assist's own wheel"):
        _run_pip(
            [*own, "-w", str(tmp_path), str(tmp_path / "no project here")],
            failed="pip could not build imagine-assist's own wheel",
        )


def test_a_wheelhouse_that_cannot_install_is_refused_before_anything_is_written(tmp_path, capsys):
    """An empty wheelhouse made a bundle with 0 wheels, exit 0 and a manifest that
    verified, for an install.sh that failed at sea; a missing one, a traceback."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for wheels, says in (
        (empty, "lacks wheels for imagine_assist"),
        (tmp_path / "no", "no wheelhouse"),
    ):
        out = tmp_path / f"bundle-{wheels.name}"
        assert main(["bundle", "--out", str(out), "--wheelhouse", str(wheels)]) == 2
        assert says in capsys.readouterr().err and not out.exists()
    from imagine_assist.bundle import REPO

    inside = REPO / "compose" / "inner"
    assert main(["bundle", "--out", str(inside), "--wheelhouse", str(empty)]) == 2
    assert "which the bundle copies" in capsys.readouterr().err and not inside.exists()


def test_install_sh_keeps_one_headless_opencv_and_needs_no_models_folder(tmp_path):
    """ultralytics pulls OpenCV's GUI build, whose libGL a headless laptop lacks; a bundle
    of burrow-reid alone has no models/ and install.sh stopped at `cp`. Run with a python3
    whose venv's pip records what it is asked (installing needs the real wheels)."""
    import os
    import subprocess

    from imagine_assist.bundle import INSTALL_SH

    bundle, fake = tmp_path / "bundle", tmp_path / "bin"
    (bundle / "wheels").mkdir(parents=True)
    fake.mkdir()
    log = tmp_path / "pip.log"
    pip = f'#!/bin/sh\necho "$@" >> {log}\n'  # `pip show opencv-python` succeeds: installed
    (fake / "python3").write_text(
        '#!/bin/sh\n[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 1\n'
        f'mkdir -p "$3/bin" && printf %s \'{pip}\' > "$3/bin/pip" && chmod +x "$3/bin/pip"\n'
    )
    (fake / "python3").chmod(0o755)
    (bundle / "install.sh").write_text(INSTALL_SH % {"extras": ""})
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(bundle / "install.sh"), str(tmp_path / "venv"), str(tmp_path / "home")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[2] == "uninstall --quiet -y opencv-python opencv-python-headless"
    assert calls[3].endswith("--no-deps --quiet opencv-python-headless<5")
    assert (tmp_path / "home" / "models").is_dir()
