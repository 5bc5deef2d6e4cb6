"""State stays in the chosen home directory, and the README's main job runs end to end."""

import json
import os
import subprocess
import sys

import pytest

from imagine_assist.app.main import main


@pytest.mark.slow  # imports ultralytics and FiftyOne afresh
def test_ultralytics_state_goes_to_the_home_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "FIFTYONE_"))}
    env["IMAGINE_ASSIST_HOME"] = str(tmp_path / "home")
    script = (
        "from imagine_assist.home import Home, configure_offline\n"
        "configure_offline(Home.resolve())\n"
        "from ultralytics.utils import SETTINGS\n"
        "import fiftyone.core.config as c, os\n"
        "print(SETTINGS.file)\n"
        "print(os.environ['FIFTYONE_DATABASE_DIR'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    settings_file, db_dir = result.stdout.split()[-2:]
    home = tmp_path / "home"
    assert settings_file.startswith(str(home / "ultralytics"))
    assert db_dir == str(home / "fiftyone" / "db")
    # training's font check finds this instead of downloading Arial.ttf
    assert (home / "ultralytics" / "Ultralytics" / "Arial.ttf").stat().st_size > 100_000


@pytest.mark.slow  # trains
def test_demo_writes_every_output_for_both_functions(tmp_path, capsys, monkeypatch):
    out, models = tmp_path / "demo", tmp_path / "models"
    monkeypatch.chdir(tmp_path)  # relative paths, as the README's `make demo` gives them
    # its own home: the demo starts a user family there, which no other test should see
    monkeypatch.setenv("IMAGINE_ASSIST_HOME", str(tmp_path / "home"))
    assert main(["demo", "--out", "demo", "--models", "models"]) == 0
    for function, family in (("fish-detector", "fish"), ("litter-detector", "litter")):
        folder = out / function
        for name in ("annotations.xml", "counts.csv", "counts_total.csv", "counts.png"):
            assert (folder / name).stat().st_size > 0, name
        images = list((out / "data" / family / "images").iterdir())
        assert len(list((folder / "previews").iterdir())) == len(images) > 0
        metrics = json.loads((models / family / "metrics.json").read_text())
        assert 0.0 < metrics["test"]["mAP50"] <= 1.0
    # the figures say what data they come from: real held-out habitats for fish
    fish = json.loads((models / "fish" / "metrics.json").read_text())
    assert "real frames" in fish["test_set"] and any("DeepFish" in c for c in fish["credits"])
    printed = capsys.readouterr().out
    assert "fish-detector:" in printed and "litter-detector:" in printed
    # one turn of the loop: pre-annotations, the corrected export, the review, a version
    loop = out / "loop"
    assert (loop / "pre-annotations" / "annotations.xml").stat().st_size > 0
    assert (loop / "corrected-task.zip").is_file()
    assert json.loads((loop / "review" / "summary.json").read_text())["samples"] == 40
    dataset_card = (loop / "publish" / "dataset-card.md").read_text()
    assert "## Training dataset" in dataset_card and "Missing: fill `contact`" in dataset_card
    assert (loop / "publish" / "zenodo-deposit.json").is_file()
    assert "zenodo would refuse the deposit: creators" in printed  # what the list cannot name
    card = json.loads((models / "fish" / "versions" / "v1" / "card.json").read_text())
    assert card["data"]["exports"][0]["format"] == "CVAT for images 1.1"
    assert ("promoted v1" in printed) == card["gate"]["passed"]
    assert "fish-detector: ready, model " in printed
    # bring your own labels: the same task with one label, `fish`, became a served family
    assert (tmp_path / "home" / "families" / "reef.yaml").is_file()
    assert "reef-detector: ready, model v1" in printed
    assert printed.rstrip().endswith(
        "the functions appear under AI Tools and Automatic annotation."
    )
    assert 'CVAT_NUCLIO_INVOKE_METHOD: "dashboard"' in printed
