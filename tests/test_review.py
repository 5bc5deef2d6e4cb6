"""`imagine-assist review`: predictions beside corrected labels, evaluation, likely mistakes."""

import json

from imagine_assist.cli import main
from imagine_assist.samples import FISH_SPECIES, generate_fish, write_cvat_export
from imagine_assist.training.exports import fiftyone

SWAP = {"diplodus": "chromis", "chromis": "sarpa", "sarpa": "diplodus"}


def test_review_ranks_mislabelled_images_first_and_writes_plots(tmp_path, capsys):
    samples = [s for s in generate_fish(24, seed=95) if s.objects][:18]
    mislabelled = {s.name for s in samples[:3]}
    for sample in samples[:3]:  # an annotator picked the wrong species on three images
        for obj in sample.objects:
            obj.label = SWAP[obj.label]
    export = write_cvat_export(tmp_path / "task.zip", samples, FISH_SPECIES)
    out = tmp_path / "review"
    assert main(["review", str(export), "--function", "fish-detector", "--out", str(out)]) == 0
    assert "likely mistakes first" in capsys.readouterr().out

    summary = json.loads((out / "summary.json").read_text())
    boxes = sum(len(s.objects) for s in samples)
    assert summary["samples"] == len(samples)
    assert summary["tp"] + summary["fn"] == boxes  # every corrected box is matched or missed
    assert 0.0 <= summary["mAP50"] <= 1.0 and set(summary["per_class"]) == set(FISH_SPECIES)
    ranked = [entry["file"] for entry in summary["per_sample"]]
    assert set(ranked[:3]) == mislabelled
    for name in ("pr_curves.png", "confusion_matrix.png", "worst.png"):
        assert (out / name).stat().st_size > 5000

    fo = fiftyone()  # the dataset and its saved view stay for the App
    dataset = fo.load_dataset(summary["dataset"])
    first = dataset.load_saved_view("mistakes").first()
    assert first.filepath.endswith(ranked[0]) and first.predictions is not None
