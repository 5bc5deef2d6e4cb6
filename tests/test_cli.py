"""The command-line conventions: --version, --home on either side of the command, defaults in
every help, families checked when the command runs, one way to reach CVAT and one line when
it cannot be reached, and the estimate before a long synthetic training. No model is
trained here."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import types

import pytest
import yaml
from PIL import Image

import imagine_assist
from imagine_assist.app import train as train_command
from imagine_assist.app.common import HelpFormatter, checked_threshold
from imagine_assist.app.main import build_parser, main
from imagine_assist.errors import UserError
from imagine_assist.home import HOME_ENV
from imagine_assist.models.registry import Registry

from .onnx_files import tiny_onnx


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home with one family of the user's own, `reef` (label `fish`). main() sets the
    home variable from --home; monkeypatch puts it back afterwards."""
    root = tmp_path / "home"
    (root / "families").mkdir(parents=True)
    (root / "families" / "reef.yaml").write_text(
        yaml.safe_dump({"name": "reef", "labels": ["fish"]})
    )
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "elsewhere"))
    return root


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"imagine-assist {imagine_assist.__version__}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["--home", "{home}", "models", "list", "reef"],
        ["models", "list", "reef", "--home", "{home}"],
        ["--home", "{other}", "models", "list", "reef", "--home", "{home}"],  # the later wins
        ["models", "-v", "list", "reef", "--home", "{home}"],
    ],
    ids=["before", "after", "both", "with-verbose"],
)
def test_home_works_before_and_after_the_command(home, tmp_path, capsys, argv):
    argv = [arg.format(home=home, other=tmp_path / "other") for arg in argv]
    assert main(argv) == 0, capsys.readouterr().err
    assert f"no reef versions in {home / 'models'}" in capsys.readouterr().out


def test_a_family_exists_only_in_the_home_that_has_it(home, tmp_path, capsys):
    assert main(["models", "list", "reef", "--home", str(tmp_path / "other")]) == 2
    assert "unknown family 'reef'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["models", "list", "shark"],
        ["train", "shark", "--from", "task.zip"],
        ["train", "shark"],
        ["loop", "shark", "--cvat", "http://127.0.0.1:9", "--task", "1"],
        ["samples", "shark", "--out", "out"],
        ["publish", "card", "shark", "--out", "cards"],
    ],
    ids=lambda argv: argv[0] + ("-from" if "--from" in argv else ""),
)
def test_an_unknown_family_is_one_error_that_lists_the_families(home, capsys, argv):
    assert main([*argv, "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown family 'shark'; families: burrow, fish")
    assert "reef" in err and "families create" in err and len(err.splitlines()) == 1


def test_every_option_shows_its_default_once():
    formatter = HelpFormatter("imagine-assist")
    for name, parser in subcommands().items():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0 or action.required:
                continue  # positionals, flags (off unless given), required options
            text = formatter._expand_help(action)
            where = f"{name} {'/'.join(action.option_strings)}: {text!r}"
            assert text.count("(default") == 1, where
    serve_help = subcommands()["serve"].format_help()
    assert "(default: 8070)" in serve_help and "(default: <home>/models)" in serve_help
    assert "(default: cpu)" in subcommands()["train"].format_help()


def test_family_choices_are_not_fixed_by_argparse():
    for name in ("train", "models", "loop", "samples"):
        (family,) = [a for a in subcommands()[name]._actions if a.dest == "family"]
        assert family.choices is None, name  # checked when the command runs, with its home
        assert "fish" in family.help and "<home>/families/" in family.help


def test_the_families_command_is_plugged_in(home, capsys):
    assert main(["families", "list", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "fish-detector" in out and "reef-detector" in out


@pytest.mark.slow  # a subprocess: the full tier
def test_unreachable_cvat_is_one_line_without_a_traceback(tmp_path):
    env = {
        **os.environ,
        "CVAT_ACCESS_TOKEN": "token",
        HOME_ENV: str(tmp_path / "home"),
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("CVAT_HOST", None)
    command = [sys.executable, "-m", "imagine_assist.app.main", "loop", "fish"]
    command += ["--cvat", "http://127.0.0.1:9", "--task", "1"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Retrying" not in result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: cannot reach CVAT at http://127.0.0.1:9: ")
    assert "Connection refused" in error


def test_cvat_refusing_the_login_is_one_line(monkeypatch, capsys):
    from cvat_sdk.api_client.exceptions import UnauthorizedException

    def refuse(host, **login):
        raise UnauthorizedException(status=401, reason="Unauthorized")

    monkeypatch.setattr("cvat_sdk.make_client", refuse)
    monkeypatch.setenv("CVAT_HOST", "https://cvat.example")
    monkeypatch.setenv("CVAT_ACCESS_TOKEN", "expired")
    assert main(["loop", "fish", "--task", "1"]) == 2  # the server from CVAT_HOST
    err = capsys.readouterr().err
    assert err.startswith("error: CVAT at https://cvat.example refused the login (401")
    assert len(err.splitlines()) == 1


def test_cvat_server_and_login_are_asked_for_by_name(monkeypatch, capsys):
    for name in ("CVAT_HOST", "CVAT_ACCESS_TOKEN", "CVAT_USER", "CVAT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert main(["loop", "fish", "--task", "1"]) == 2
    assert "--cvat URL (or CVAT_HOST)" in capsys.readouterr().err
    # FiftyOne's CVAT backend takes a user and password: said before the review starts
    monkeypatch.setenv("CVAT_ACCESS_TOKEN", "token")
    argv = ["review", "no-such-export.zip", "--function", "fish-detector"]
    assert main([*argv, "--send-to-cvat", "--cvat", "https://cvat.example"]) == 2
    err = capsys.readouterr().err
    assert "CVAT_USER and CVAT_PASSWORD" in err and "no-such-export" not in err
    # without a server either: the advice is the backend's login, not "a token, or..."
    assert main([*argv, "--send-to-cvat"]) == 2
    err = capsys.readouterr().err
    assert "--cvat URL" in err and "takes no token" in err and "CVAT_ACCESS_TOKEN" not in err


def test_review_sets_fiftyones_cvat_login_from_ours(monkeypatch):
    from imagine_assist.app.common import fiftyone_cvat_login

    for name in ("FIFTYONE_CVAT_URL", "FIFTYONE_CVAT_USERNAME", "FIFTYONE_CVAT_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CVAT_USER", "reviewer")
    monkeypatch.setenv("CVAT_PASSWORD", "pw")
    fiftyone_cvat_login("https://cvat.example")
    assert os.environ["FIFTYONE_CVAT_URL"] == "https://cvat.example"
    assert os.environ["FIFTYONE_CVAT_USERNAME"] == "reviewer"
    assert os.environ["FIFTYONE_CVAT_PASSWORD"] == "pw"


def test_thresholds_follow_the_functions_rule(tmp_path):
    from imagine_assist.functions.catalog import get_spec

    argv = ["predict", str(tmp_path), "--function", "fish-detector", "--out", "o"]
    with pytest.raises(SystemExit):  # outside every function's range: argparse refuses
        main([*argv, "--threshold", "1.5"])
    spec = get_spec("fish-detector")
    assert checked_threshold(spec, None) is None  # the function's default applies
    assert checked_threshold(spec, 0.25) == 0.25
    older = types.SimpleNamespace(id="old-detector")  # a spec without its own rule: [0, 1]
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        checked_threshold(older, 1.5)


def test_rollback_past_the_first_version_returns_to_the_default_model(tmp_path, capsys):
    models = tmp_path / "models"
    registry = Registry(models)
    weights = tiny_onnx(tmp_path / "model.onnx", "stand-in weights", tuple(FISH_LABELS))
    version = registry.add("fish", {"model.onnx": weights}, {"classes": FISH_LABELS})
    registry.promote("fish", version.name, "by hand")
    assert main(["models", "rollback", "fish", "--models", str(models)]) == 0
    assert capsys.readouterr().out == "rolled fish back to its default model\n"
    assert registry.current("fish") is None


def test_promote_help_says_force_never_overrides_the_classes():
    help_text = HelpFormatter("x")._get_help_string(
        next(a for a in subcommands()["models"]._actions if a.dest == "force")
    )
    assert "never overrides a class mismatch" in help_text


FISH_LABELS = ["fish"]


def test_the_training_estimate_comes_from_the_recipe():
    fish = train_command.training_estimate("fish")
    assert fish.what == "fish: 400 images x 80 epochs"
    assert 30 * 60 < fish.seconds < 60 * 60  # about 45 minutes on 2 cores
    assert "minutes on 2 CPU cores" in fish.message()
    short = train_command.training_estimate("fish", epochs=2, images=40)
    assert short.seconds == pytest.approx(fish.seconds * (2 * 40) / (80 * 400))
    litter = train_command.training_estimate("litter")
    assert "windows each" in litter.what  # 12 MP frames train as tiles
    gpu = train_command.training_estimate("fish", device="0")
    assert gpu.seconds < fish.seconds / 10
    plankton = train_command.training_estimate("plankton", hours=0.5, only="separator")
    assert plankton.seconds == pytest.approx(1800)


def test_a_family_without_synthetic_training_is_told_to_use_exports(home, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(home))
    with pytest.raises(UserError, match="train reef --from"):
        train_command.training_estimate("reef")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_long_synthetic_training_says_how_long_and_asks_at_a_terminal(monkeypatch, capsys):
    trained = []

    def train_default(family, target, work, recipe, device):
        trained.append((family, recipe.epochs, recipe.images))
        metrics = {"test": {"mAP50": 0.5, "mAP50-95": 0.3, "precision": 0.6, "recall": 0.4}}
        return types.SimpleNamespace(metrics=metrics, onnx="m.onnx", pt="m.pt")

    monkeypatch.setattr("imagine_assist.training.defaults.train_default", train_default)

    def no_question(prompt=""):
        raise AssertionError("asked with stdin not a terminal")

    # a script or a test: told, not asked
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.setattr("builtins.input", no_question)
    assert main(["train", "fish"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("training fish: 400 images x 80 epochs takes about ")
    assert trained == [("fish", 80, 400)]

    # at a terminal: asked, and "no" starts nothing
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    assert main(["train", "fish"]) == 1
    assert "not started" in capsys.readouterr().out and len(trained) == 1

    # --yes does not ask
    monkeypatch.setattr("builtins.input", no_question)
    assert main(["train", "fish", "--yes"]) == 0
    assert len(trained) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "in.jpg", "--function", "fish-detector"],
        ["separate", "scan"],
        ["track", "tow.mp4"],
        ["evaluate", "task.zip", "--function", "fish-detector"],
        ["publish", "card", "fish"],
        ["deploy", "fish-detector"],
        ["functions", "render", "--builtin"],
        ["bundle", "--functions", "fish-detector"],
        ["demo"],
    ],
    ids=lambda argv: argv[0],
)
def test_an_out_that_cannot_be_a_folder_is_one_line_before_any_work(tmp_path, capsys, argv):
    """--out names a file, or sits under one: refused at once, one line, no traceback
    (the input need not even exist: nothing is read first)."""
    taken = tmp_path / "taken"
    taken.write_text("a user's file")
    assert main([*argv, "--out", str(taken)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main([*argv, "--out", str(taken / "results")]) == 2
    assert "cannot be made" in capsys.readouterr().err
    assert taken.read_text() == "a user's file"


@pytest.mark.parametrize(
    "options, message",
    [
        (["--tile-size", "0"], "--tile-size must be at least 64 pixels, got 0"),
        (["--tile-size", "-5"], "--tile-size must be at least 64 pixels, got -5"),
        # the user set only the size: the overlap they never chose is named as the family's
        (["--tile-size", "96"], "litter-detector's tile overlap 160 must lie in [0, 48]"),
        (["--tile-size", "320", "--tile-overlap", "400"], "--tile-overlap 400 must lie in"),
        # a 1 px stride: millions of windows, a run that looked hung
        (["--tile-size", "64", "--tile-overlap", "63"], "--tile-overlap 63 must lie in [0, 32]"),
    ],
)
def test_tile_settings_are_refused_in_the_users_words(tmp_path, capsys, options, message):
    argv = ["predict", str(tmp_path), "--function", "litter-detector", "--out", str(tmp_path)]
    assert main([*argv, *options]) == 2
    assert message in capsys.readouterr().err


def test_a_second_training_on_the_same_work_folder_is_refused_at_once(tmp_path, capsys):
    """Two trainings of one family would empty each other's dataset; the second is refused,
    naming the first, and the folder is free again once the first ends or is killed."""
    from imagine_assist.home import work_folder_held

    work = tmp_path / "fish-retrain"
    argv = ["train", "fish", "--from", str(tmp_path / "task.zip"), "--work", str(work)]
    with work_folder_held(work, "training of fish"):
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert f"in use by another run (training of fish, pid {os.getpid()})" in error
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from imagine_assist.home import work_folder_held\n"
            "with work_folder_held(sys.argv[1], 'training'):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(work),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(argv) == 2
        assert f"pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    # killed, it holds nothing: the run goes on to read its export (absent here)
    assert main(argv) == 2
    assert "in use" not in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-3", "two"])
@pytest.mark.parametrize(
    "argv",
    [["train", "fish", "--from", "t.zip"], ["families", "create", "reef", "--from", "t.zip"]],
)
def test_epochs_below_one_are_refused_before_any_work(capsys, argv, value):
    """0 once meant the recipe's 15 epochs, and -3 failed after the data was prepared."""
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--epochs", value])
    assert stopped.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_output_piped_into_a_reader_that_stops_early_is_no_error(tmp_path):
    """`imagine-assist functions list | head -1`: the reader closes the pipe; the command
    ends quietly, not with "cannot reach a server: Broken pipe"."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before a line is written
    done = subprocess.run(
        [sys.executable, "-m", "imagine_assist.app.main", "functions", "list"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr and "Broken pipe" not in done.stderr


def test_a_reload_on_a_gateway_that_does_not_serve_the_family_says_so(tmp_path, capsys):
    """A gateway started before the family existed answers 404: the version is promoted,
    but the user is told nothing reloaded there, instead of silence."""
    from imagine_assist.app.common import reload_gateway
    from imagine_assist.nuclio.gateway import Gateway
    from imagine_assist.nuclio.serve import background_server, build_hosts

    gateway = Gateway(build_hosts(["burrow-reid"], tmp_path / "models"), port=0)
    with background_server(gateway) as url:
        reload_gateway(url, "fish")
    captured = capsys.readouterr()
    assert "reloaded" not in captured.out
    assert f"{url} does not serve fish-detector: nothing reloaded there" in captured.err


def test_a_family_of_ones_own_without_a_model_is_told_to_train_from_an_export(home, capsys):
    """`train reef` alone refuses (no synthetic scenes for it): the advice names --from."""
    images = home.parent / "photos"
    images.mkdir()
    Image.new("RGB", (64, 48)).save(images / "a.png")
    argv = ["predict", str(images), "--function", "reef-detector", "--out", str(home.parent / "o")]
    assert main([*argv, "--home", str(home)]) == 2
    assert "imagine-assist train reef --from export.zip" in capsys.readouterr().err


def test_a_gpu_this_machine_lacks_is_one_line_before_any_data_is_made(capsys, monkeypatch):
    """`train fish --device 0` on a CPU machine made the data, then died in ultralytics
    with a traceback."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "fish", "--device", "0", "--yes"]) == 2
    assert "asks for a GPU this machine lacks (no CUDA GPU); use --device cpu" in (
        capsys.readouterr().err
    )
    assert main(["train", "fish", "--device", "gpu", "--yes"]) == 2
    assert "--device is cpu or a CUDA device number" in capsys.readouterr().err
