"""`imagine-assist evaluate --function plankton-separator`: the single/multiple tag on
vignettes a person sorted into single/ and multiple/ folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from imagine_assist.app.main import main
from imagine_assist.review.evaluate_tags import average_precision, roc_auc
from imagine_assist.samples import generate_plankton


def test_ranking_figures_match_a_hand_count():
    scores, multiple = [0.9, 0.8, 0.7, 0.6], [True, False, True, False]
    # positives over negatives: 0.9 beats both, 0.7 beats 0.6 only -> 3 of 4 pairs
    assert roc_auc(scores, multiple) == pytest.approx(0.75)
    # a multiple at rank 1 (precision 1) and rank 3 (precision 2/3), each half the recall
    assert average_precision(scores, multiple) == pytest.approx((1 + 2 / 3) / 2)
    # ties count half, and tied scores enter the curve together
    assert roc_auc([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    assert average_precision([0.5] * 4, [True, False, False, False]) == pytest.approx(0.25)
    assert roc_auc([0.3, 0.4], [True, True]) is None
    assert average_precision([0.3, 0.4], [False, False]) is None


@pytest.fixture(scope="module")
def sorted_folder(tmp_path_factory):
    """Six singles and six multiples from the generator, sorted as a person would, plus an
    unclear vignette and a broken file."""
    root = tmp_path_factory.mktemp("sorted")
    counts = {"single": 0, "multiple": 0}
    for sample in generate_plankton(40, seed=17, multiple_share=0.5, max_size=420):
        tag = "multiple" if sample.multiple else "single"
        if counts[tag] == 6:
            continue
        counts[tag] += 1
        (root / tag).mkdir(exist_ok=True)
        Image.fromarray(sample.image).save(root / tag / f"{sample.name}.png")
        if counts == {"single": 6, "multiple": 6}:
            break
    (root / "unclear").mkdir()
    Image.fromarray(sample.image).save(root / "unclear" / "hard.png")
    (root / "single" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def evaluate(folder, out, *extra):
    return main(
        ["evaluate", str(folder), "--function", "plankton-separator", "--out", str(out), *extra]
    )


@pytest.mark.slow  # the bundled models on 12 vignettes: the full tier, as evaluate's others
def test_the_tag_is_scored_against_the_sorted_folders(sorted_folder, tmp_path, capsys):
    assert evaluate(sorted_folder, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    facts = json.loads((tmp_path / "out" / "summary.json").read_text())

    # what was judged, what was left out and why
    assert (facts["vignettes"], facts["singles"], facts["multiples"]) == (12, 6, 6)
    assert facts["left_out"] == {"unclear": 1}
    assert facts["unreadable"] == ["single/broken.png"]
    assert facts["score"] == "P(multiple)" and 0 < facts["threshold"] < 1

    # every figure follows from the per-vignette answers it reports
    calls = facts["calls"]
    assert len(calls) == 12
    tp = sum(c["tag"] == "multiple" and c["truth"] == "multiple" for c in calls)
    tagged = sum(c["tag"] == "multiple" for c in calls)
    assert facts["tagged_multiple"] == tagged
    assert facts["recall_multiple"] == pytest.approx(tp / 6)
    assert facts["precision_multiple"] == (pytest.approx(tp / tagged) if tagged else None)
    for call in calls:
        assert (call["tag"] == "multiple") == (call["p_multiple"] >= facts["threshold"])
        if call["tag"] == "single":
            assert call["organisms"] <= 1  # a single goes to EcoTaxa as one object
    false = sorted(
        c["vignette"].split("/")[-1]
        for c in calls
        if c["truth"] == "single" and c["tag"] == "multiple"
    )
    assert sorted(n.split("/")[-1] for n in facts["false_multiples"]) == false
    scores = np.array([c["p_multiple"] for c in calls])
    truth = np.array([c["truth"] == "multiple" for c in calls])
    assert facts["roc_auc"] == pytest.approx(roc_auc(scores, truth))

    assert "12 vignettes (6 multiple, 6 single)" in printed and "unclear/ 1" in printed
    for plot in ("pr_curve.png", "false_multiples.png", "misses.png"):
        assert (tmp_path / "out" / plot).stat().st_size > 1000


@pytest.mark.slow
def test_a_stricter_threshold_tags_fewer_multiples(sorted_folder, tmp_path):
    tagged, ranking = [], []
    for threshold in ("0.02", "0.98"):
        out = tmp_path / threshold
        assert evaluate(sorted_folder, out, "--threshold", threshold) == 0
        facts = json.loads((out / "summary.json").read_text())
        assert facts["threshold"] == float(threshold)
        tagged.append(facts["tagged_multiple"])
        ranking.append(facts["roc_auc"])
    assert tagged[0] >= tagged[1]
    assert ranking[0] == pytest.approx(ranking[1])  # the threshold moves the tag, not P


@pytest.mark.parametrize(
    ("extra", "says"),
    [(["--class-agnostic"], "for detectors"), (["--threshold", "1"], "lies in (0, 1)")],
)
def test_options_that_do_not_apply_are_refused(sorted_folder, tmp_path, capsys, extra, says):
    assert evaluate(sorted_folder, tmp_path / "o", *extra) == 2
    assert says in capsys.readouterr().err


@pytest.mark.slow  # the bundled models on 6 vignettes: the full tier
def test_undefined_figures_are_none_not_zero(sorted_folder, tmp_path, capsys):
    """Singles only: no multiple to find, so recall is not 0 but undefined."""
    import shutil

    folder = tmp_path / "singles-only"
    shutil.copytree(sorted_folder / "single", folder / "single")
    (folder / "single" / "broken.png").unlink()
    assert evaluate(folder, tmp_path / "out") == 0
    facts = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert facts["multiples"] == 0 and facts["recall_multiple"] is None
    assert "recall n/a" in capsys.readouterr().out
