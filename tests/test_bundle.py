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
