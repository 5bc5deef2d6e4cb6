"""`imagine-assist deploy`: the build folder and the nuctl command (no Nuclio runs here)."""

import shlex

import pytest
import yaml

from imagine_assist.app.main import main


def wheelhouse(tmp_path, gpu=False):
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    names = [
        "imagine_assist-0.1.0-py3-none-any.whl",
        "onnxruntime-1.23.0-cp311-manylinux.whl",
        "numpy-2.4.6-cp311-manylinux.whl",
    ]
    if gpu:
        names.append("onnxruntime_gpu-1.23.0-cp312-manylinux.whl")
    for name in names:
        (folder / name).write_bytes(b"wheel")
    return folder


def run_steps(config):
    directives = config["spec"]["build"]["directives"]
    return [
        s["value"]
        for stage in ("preCopy", "postCopy")
        for s in directives[stage]
        if s["kind"] == "RUN"
    ]


@pytest.mark.parametrize("gpu", [False, True])
def test_offline_build_references_only_local_files(tmp_path, capsys, gpu):
    models, out = tmp_path / "models", tmp_path / "build"
    models.mkdir()
    argv = [
        "deploy",
        "fish-detector",
        "--wheelhouse",
        str(wheelhouse(tmp_path, gpu)),
        "--models",
        str(models),
        "--out",
        str(out),
        "--print-only",
    ]
    assert main(argv + (["--gpu"] if gpu else [])) == 0
    config = yaml.safe_load((out / ("function-gpu.yaml" if gpu else "function.yaml")).read_text())
    for step in run_steps(config):
        assert "http" not in step and "apt-get" not in step, step
        if "pip install" in step:
            assert "--no-index" in step and "--find-links /opt/nuclio/wheels" in step
    assert sorted(p.name for p in (out / "wheels").iterdir())[0].startswith("imagine_assist")
    volume = config["spec"]["volumes"][0]
    assert volume["volume"]["hostPath"]["path"] == str(models.resolve())  # mounted, not baked
    assert volume["volumeMount"]["readOnly"] is True
    assert not list(out.rglob("*.onnx"))
    printed = capsys.readouterr().out
    command = shlex.split(printed.split("run: ", 1)[1].splitlines()[0])
    assert command[:3] == ["nuctl", "deploy", "fish-detector"]
    assert command[command.index("--path") + 1] == str(out.resolve())
    assert (out / "main.py").read_text().count('NuclioFunction("fish-detector")') == 1


def test_a_wheelhouse_without_the_package_is_refused(tmp_path, capsys):
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    (folder / "numpy-2.4.6-cp311-manylinux.whl").write_bytes(b"wheel")
    argv = ["deploy", "fish-detector", "--wheelhouse", str(folder), "--out", str(tmp_path / "b")]
    argv += ["--models", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "lacks wheels for imagine_assist, onnxruntime" in err
    assert "imagine-assist bundle --out DIR" in err
    # wheels for the wrong Python: found only when pip ran in the image (3.12 on GPU)
    for name in ("imagine_assist-0.1.0-py3-none-any.whl", "onnxruntime-1.20.0-cp311-cp311-x.whl"):
        (folder / name).write_bytes(b"wheel")
    (folder / "onnxruntime_gpu-1.23.0-cp311-cp311-manylinux_x86_64.whl").write_bytes(b"wheel")
    assert main([*argv, "--gpu", "--print-only"]) == 2
    assert "built for another Python than 3.12" in capsys.readouterr().err


def test_deploy_refuses_what_would_fail_or_serve_the_wrong_thing(tmp_path, capsys, monkeypatch):
    """A registry placeholder given to nuctl, a build started with no imagine-assist wheel
    (the index's package of that name installed); a models folder that is not there is an
    empty mount, the wheel's own models served: said, not silent."""
    calls = []
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/nuctl")
    monkeypatch.setattr("subprocess.run", lambda command, check: calls.append(command))
    base = ["deploy", "fish-detector", "--out", str(tmp_path / "b")]
    assert main([*base, "--models", str(tmp_path / "none"), "--print-only"]) == 0
    assert "no models folder at" in capsys.readouterr().out  # the defaults serve: said so
    models = tmp_path / "models"
    models.mkdir()
    base += ["--models", str(models)]
    assert main([*base, "--kube"]) == 2
    assert "give --registry" in capsys.readouterr().err
    assert main(base) == 2 and "holds no imagine-assist wheel" in capsys.readouterr().err
    assert calls == []
    assert (
        main(
            [
                *base,
                "--wheelhouse",
                str(wheelhouse(tmp_path, False)),
                "--kube",
                "--registry",
                "registry.local:5000",
            ]
        )
        == 0
    )
    assert calls[0][calls[0].index("--registry") + 1] == "registry.local:5000"


def test_without_a_wheelhouse_the_build_says_it_needs_a_network(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    argv = [
        "deploy",
        "plankton-separator",
        "--out",
        str(tmp_path / "b"),
        "--print-only",
        "--models",
        str(tmp_path / "m"),
    ]
    assert main(argv) == 0
    assert "needs a network" in capsys.readouterr().out
    config = yaml.safe_load((tmp_path / "b" / "function.yaml").read_text())
    env = {e["name"]: e["value"] for e in config["spec"]["env"]}
    assert env["IMAGINE_ASSIST_MODELS"] == "/opt/nuclio/models"  # the registry: the live model
