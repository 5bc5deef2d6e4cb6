"""The registry's history (issue 15, finding 7): re-promoting the live version, rollbacks
through every earlier version or to a named one, repairing a damaged CURRENT, and the
leftovers of killed runs. Fast: stand-in weight files, no model runs.

A user family of its own in a temporary home, so that nothing here depends on the labels of
a built-in family."""

from __future__ import annotations

import json
import os
import time

import pytest

from imagine_assist.app.main import main
from imagine_assist.models.registry import Registry
from imagine_assist.models.store import resolve_model

from .onnx_files import onnx_tag, tiny_onnx

LABELS = ["grouper", "bream"]
REEF = "name: reef\ntitle: Reef fish\nlabels: [grouper, bream]\n"


@pytest.fixture
def home(home):
    (home / "families" / "reef.yaml").write_text(REEF)
    return home


@pytest.fixture
def models(home):
    """A models directory with reef's installed default model and versions v1..v4."""
    folder = home.parent / "models"
    (folder / "reef").mkdir(parents=True)
    tiny_onnx(folder / "reef" / "model.onnx", "installed", tuple(LABELS))
    registry = Registry(folder)
    for text in ("one", "two", "three", "four"):
        source = tiny_onnx(home.parent / f"src-{text}.onnx", text, tuple(LABELS))
        registry.add("reef", {"model.onnx": source}, {"classes": LABELS})
    return folder


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def live_text(models) -> str:
    return onnx_tag(resolve_model("reef", models))


def test_promoting_the_live_version_again_changes_nothing(models, capsys):
    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    registry.promote("reef", "v2", "better")
    pointer = models / "reef" / "CURRENT"
    before = (pointer.read_text(), registry.history("reef"), registry.get("reef", "v2").card)

    code, out, _ = cli(capsys, "models", "promote", "reef", "v2", "--models", str(models))
    assert code == 0 and "v2 is live already" in out and "nothing changed" in out
    registry.promote("reef", "v2", "again")  # the registry itself writes nothing either
    after = (pointer.read_text(), registry.history("reef"), registry.get("reef", "v2").card)
    assert after == before
    assert json.loads(pointer.read_text())["previous"] == "v1"  # never itself
    assert registry.rollback("reef").name == "v1"  # the real previous version is kept


def test_rollback_walks_back_one_step_per_call_down_to_the_default(models, capsys):
    for name in ("v1", "v2", "v3", "v4"):
        assert cli(capsys, "models", "promote", "reef", name, "--models", str(models))[0] == 0
    steps = []
    for _ in range(4):
        code, out, _ = cli(capsys, "models", "rollback", "reef", "--models", str(models))
        assert code == 0
        steps.append((out.strip(), live_text(models)))
    assert steps == [
        ("rolled reef back to v3", "three"),
        ("rolled reef back to v2", "two"),
        ("rolled reef back to v1", "one"),
        ("rolled reef back to its default model", "installed"),
    ]
    code, _, err = cli(capsys, "models", "rollback", "reef", "--models", str(models))
    assert code == 2 and "nothing to roll back" in err


def test_rollback_to_a_named_earlier_version(models, capsys):
    registry = Registry(models)
    for name in ("v1", "v2", "v3", "v4"):
        registry.promote("reef", name, "better")
    code, out, _ = cli(capsys, "models", "rollback", "reef", "--to", "v2", "--models", str(models))
    assert (code, out) == (0, "rolled reef back to v2\n") and live_text(models) == "two"
    assert registry.history("reef")[-1]["reason"] == "rollback from v4 to v2"
    assert registry.rollback("reef").name == "v1"  # v3 and v4 came after v2: not returned to
    assert registry.rollback("reef") is None

    registry.promote("reef", "v3", "again")
    code, _, err = cli(capsys, "models", "rollback", "reef", "--to", "v4", "--models", str(models))
    assert code == 2 and "v4 was not live before v3" in err
    code, _, err = cli(capsys, "models", "rollback", "reef", "--to", "v3", "--models", str(models))
    assert code == 2 and "v3 is live" in err
    assert live_text(models) == "three"  # refusals change nothing


@pytest.mark.parametrize(
    "damage",
    ["v2 and some noise", '{"version": "v3", "previous": "v', '{"version": "v9"}\n', "\xff\xfe"],
    ids=["garbage", "truncated", "deleted-version", "binary"],
)
def test_a_damaged_current_is_repaired_from_the_history(models, capsys, tmp_path, damage):
    registry = Registry(models)
    for name in ("v1", "v2", "v3"):
        registry.promote("reef", name, "better")
    pointer = models / "reef" / "CURRENT"
    pointer.write_bytes(damage.encode("latin-1"))

    # list keeps working and says what to do; the others fail naming `models repair`
    code, out, err = cli(capsys, "models", "list", "reef", "--models", str(models))
    assert code == 0 and out.count("\n") == 4 and "*" not in out
    assert "models repair reef" in err
    code, out, _ = cli(capsys, "models", "show", "reef", "v1", "--models", str(models))
    assert code == 0 and json.loads(out)["version"] == "v1"
    for argv in (
        ["models", "rollback", "reef"],
        ["models", "show", "reef"],
        ["predict", str(tmp_path), "--function", "reef-detector", "--out", str(tmp_path / "o")],
    ):
        code, _, err = cli(capsys, *argv, "--models", str(models))
        assert code == 2 and "models repair reef" in err, argv

    code, out, _ = cli(capsys, "models", "repair", "reef", "--models", str(models))
    assert code == 0 and "reef serves v3" in out
    assert live_text(models) == "three"
    assert registry.history("reef")[-1]["action"] == "repair"
    assert registry.rollback("reef").name == "v2"  # the history before it is kept
    code, out, _ = cli(capsys, "models", "repair", "reef", "--models", str(models))
    assert code == 0 and "nothing to repair" in out


def test_repair_skips_deleted_versions_and_falls_back_to_the_default(models, capsys):
    registry = Registry(models)
    for name in ("v1", "v2", "v3"):
        registry.promote("reef", name, "better")
    (models / "reef" / "versions" / "v3" / "card.json").unlink()  # deleted by hand
    with (models / "reef" / "history.jsonl").open("a") as history:
        history.write('{"version": "v3", "action": "prom')  # a line cut short by a kill
    assert cli(capsys, "models", "repair", "reef", "--models", str(models))[0] == 0
    assert registry.current("reef").name == "v2" and live_text(models) == "two"

    (models / "reef" / "CURRENT").write_text("noise")
    (models / "reef" / "history.jsonl").write_text("more noise\n")
    code, out, _ = cli(capsys, "models", "repair", "reef", "--models", str(models))
    assert code == 0 and "its default model" in out
    assert registry.current("reef") is None and live_text(models) == "installed"


def test_promote_overwrites_a_damaged_current(models, capsys):
    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    registry.promote("reef", "v2", "better")
    (models / "reef" / "CURRENT").write_text('{"version": ')
    code, out, _ = cli(capsys, "models", "promote", "reef", "v3", "--models", str(models))
    assert code == 0 and "promoted reef v3" in out
    assert live_text(models) == "three"
    assert registry.rollback("reef").name == "v2"  # the last good entry of the history


def test_leftovers_of_a_killed_run_are_cleaned_up_at_the_next_start(models, capsys):
    versions = models / "reef" / "versions"
    old = time.time() - 24 * 3600  # untouched for a day: past any wait for its owner
    stale = [
        versions / ".staging-0123abcd",
        models / "reef" / ".CURRENT.0123abcd.partial",
        versions / "v1" / ".card.json.0123abcd.partial",
    ]
    stale[0].mkdir()
    (stale[0] / "model.onnx").write_text("half a copy")
    for path in stale[1:]:
        path.write_text("half a write")
    for path in [*stale, stale[0] / "model.onnx"]:
        os.utime(path, (old, old))
    fresh = versions / ".staging-4567ef01"  # another run may be writing this one now
    fresh.mkdir()
    (fresh / "model.onnx").write_text("being copied")
    os.utime(fresh, (old, old))  # the folder is old, but a file in it is being written

    assert cli(capsys, "models", "list", "reef", "--models", str(models))[0] == 0
    assert [path for path in stale if path.exists()] == []
    assert fresh.is_dir() and (fresh / "model.onnx").is_file()
    assert [v.name for v in Registry(models).versions("reef")] == ["v1", "v2", "v3", "v4"]


@pytest.mark.parametrize("damage", ["deleted", "cut short"])
def test_a_version_whose_model_is_gone_or_cut_short_is_never_promoted(models, capsys, damage):
    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    model = models / "reef" / "versions" / "v2" / "model.onnx"
    if damage == "deleted":
        model.unlink()
    else:
        model.write_bytes(model.read_bytes()[:40])
    code, _, err = cli(
        capsys, "models", "promote", "reef", "v2", "--force", "--models", str(models)
    )
    assert code == 2 and "reef v2 is damaged" in err and "cannot be promoted" in err
    assert registry.current("reef").name == "v1" and live_text(models) == "one"


def test_the_live_versions_lost_model_is_named_and_repaired_not_replaced(models, capsys, tmp_path):
    """With its model.onnx gone, the live version used to be served silently by the
    installed or bundled model, and `repair` called CURRENT sound."""
    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    registry.promote("reef", "v2", "better")
    (models / "reef" / "versions" / "v2" / "model.onnx").unlink()
    predict = [
        "predict",
        str(tmp_path),
        "--function",
        "reef-detector",
        "--out",
        str(tmp_path / "o"),
    ]
    code, _, err = cli(capsys, *predict, "--models", str(models))
    assert code == 2 and "model.onnx is gone" in err and "models repair reef" in err
    code, out, _ = cli(capsys, "models", "list", "reef", "--models", str(models))
    assert code == 0 and "v2  damaged: model.onnx is gone" in out and "v1  mAP50" in out
    code, out, _ = cli(capsys, "models", "repair", "reef", "--models", str(models))
    assert code == 0 and "reef serves v1" in out and live_text(models) == "one"


def test_a_live_model_cut_short_is_found_by_repair(models, capsys, tmp_path):
    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    registry.promote("reef", "v2", "better")
    model = models / "reef" / "versions" / "v2" / "model.onnx"
    model.write_bytes(model.read_bytes()[:40])
    # what serves it (predict, the gateway's 503, a Nuclio function) says the way back
    function = ["--function", "reef-detector", "--out", str(tmp_path / "o")]
    code, _, err = cli(capsys, "predict", str(tmp_path), *function, "--models", str(models))
    assert code == 2 and "not a readable ONNX model" in err
    assert "reef's live version v2: `imagine-assist models repair reef`" in err
    code, out, _ = cli(capsys, "models", "repair", "reef", "--models", str(models))
    assert code == 0 and "not a readable ONNX model" in out and "reef serves v1" in out


def test_a_live_model_replaced_by_another_file_is_found_not_served(models, capsys, tmp_path):
    """Another valid model copied over the live version's: `list` called it sound,
    `repair` had nothing to do, and the other weights served under v2's name and card."""
    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    registry.promote("reef", "v2", "better")
    v2 = models / "reef" / "versions" / "v2" / "model.onnx"
    v2.write_bytes((models / "reef" / "versions" / "v3" / "model.onnx").read_bytes())
    function = ["--function", "reef-detector", "--out", str(tmp_path / "o")]
    code, _, err = cli(capsys, "predict", str(tmp_path), *function, "--models", str(models))
    assert code == 2 and "model.onnx is not the file stored with it" in err
    assert "`imagine-assist models repair reef`" in err
    code, out, _ = cli(capsys, "models", "list", "reef", "--models", str(models))
    assert "v2  damaged: model.onnx is not the file stored with it" in out
    code, _, err = cli(capsys, "models", "show", "reef", "v2", "--models", str(models))
    assert code == 0 and "warning: reef v2 is damaged: model.onnx is not the file" in err
    code, out, _ = cli(capsys, "models", "repair", "reef", "--models", str(models))
    assert code == 0 and "reef serves v1" in out
    assert live_text(models) == "one"


@pytest.mark.parametrize("card", ['{"classes": ["gro', "[]", ""])
def test_a_damaged_card_is_a_clear_error_and_hides_no_other_version(models, capsys, card):
    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    registry.promote("reef", "v3", "better")
    (models / "reef" / "versions" / "v2" / "card.json").write_text(card)
    code, out, _ = cli(capsys, "models", "list", "reef", "--models", str(models))
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4 and "damaged" in lines[1] and lines[2].startswith("* v3")
    for action in ("show", "promote"):
        code, _, err = cli(capsys, "models", action, "reef", "v2", "--models", str(models))
        assert code == 2 and "reef v2 is damaged" in err and "Traceback" not in err
    # a rollback passes over it, to the version live before
    (models / "reef" / "versions" / "v1" / "card.json").write_text(card)
    registry.promote("reef", "v4", "best")
    code, out, _ = cli(capsys, "models", "rollback", "reef", "--models", str(models))
    assert code == 0 and out == "rolled reef back to v3\n"


def test_the_models_own_classes_decide_not_a_card_edited_by_hand(models, capsys, home):
    source = tiny_onnx(home.parent / "other.onnx", "other", ("Dentex dentex", "鱼"))
    registry = Registry(models)
    registry.add("reef", {"model.onnx": source}, {"classes": LABELS})  # the card lies
    code, _, err = cli(
        capsys, "models", "promote", "reef", "v5", "--force", "--models", str(models)
    )
    assert code == 2 and "detects ['Dentex dentex', '鱼']" in err


def test_rollback_and_repair_pass_over_a_version_whose_model_no_longer_loads(models, capsys):
    registry = Registry(models)
    for name in ("v1", "v2", "v3"):
        registry.promote("reef", name, "better")
    model = models / "reef" / "versions" / "v2" / "model.onnx"
    model.write_bytes(model.read_bytes()[:40])  # cut short: there, but it does not load
    code, out, _ = cli(capsys, "models", "list", "reef", "--models", str(models))
    assert "v2  damaged:" in out and "not a readable ONNX model" in out
    code, out, _ = cli(capsys, "models", "rollback", "reef", "--models", str(models))
    assert (code, out) == (0, "rolled reef back to v1\n") and live_text(models) == "one"


def test_a_version_whose_card_is_gone_is_listed_as_damaged(models, capsys):
    Registry(models).promote("reef", "v1", "first")
    (models / "reef" / "versions" / "v3" / "card.json").unlink()
    code, out, _ = cli(capsys, "models", "list", "reef", "--models", str(models))
    assert code == 0 and "v3  damaged: its card.json is gone" in out and "* v1" in out


def test_models_list_marks_the_default_model_live_when_no_version_is(models, capsys):
    """README: `models list` shows which one is live (*). With the installed model serving,
    after a rollback past every version, no line had the mark."""
    code, out, _ = cli(capsys, "models", "list", "reef", "--models", str(models))
    assert code == 0
    marked = [line for line in out.splitlines() if line.startswith("*")]
    installed = models / "reef" / "model.onnx"
    assert marked == [f"* default  the model installed by hand ({installed}), no version promoted"]
    Registry(models).promote("reef", "v2", "better")
    out = cli(capsys, "models", "list", "reef", "--models", str(models))[1]
    assert [line.split()[1] for line in out.splitlines() if line.startswith("*")] == ["v2"]


def test_a_training_never_promotes_over_a_rollback_made_while_it_ran(models):
    """train gated its candidate against v3; meanwhile the operator rolled back to v2. The
    candidate replaced v2 without ever being compared with it, undoing the rollback."""
    from imagine_assist.training.retrain import promote_if_gated

    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    registry.promote("reef", "v3", "better")
    candidate = registry.get("reef", "v4")  # trained from v3 and gated against it
    registry.rollback("reef", "the operator's rollback")  # to v1, while it trained
    gate = {"passed": True, "decided": True, "reasons": ["beats v3"]}
    assert not promote_if_gated(registry, candidate, gate, LABELS, gated_against="v3")
    assert registry.current("reef").name == "v1"
    assert "v3 was live when v4 was trained and gated; v1 is live now" in gate["live_changed"]
    assert "`imagine-assist models promote reef v4` if" in gate["live_changed"]
    # a forced run's candidate: the command given must be one that works
    forced = {"passed": False, "decided": False, "reasons": ["too few images"]}
    assert not promote_if_gated(registry, candidate, forced, LABELS, True, gated_against="v3")
    assert "`imagine-assist models promote reef v4 --force` if" in forced["live_changed"]
    gate = {"passed": True, "decided": True, "reasons": ["beats v1"]}
    assert promote_if_gated(registry, candidate, gate, LABELS, gated_against="v1")
    assert registry.current("reef").name == "v4"


def test_a_current_damaged_while_a_training_ran_stops_its_promotion_with_the_reason(models):
    from imagine_assist.training.retrain import promote_if_gated

    registry = Registry(models)
    registry.promote("reef", "v1", "first")
    (models / "reef" / "CURRENT").write_text("{ garbage")
    gate = {"passed": True, "decided": True, "reasons": ["beats v1"]}
    assert not promote_if_gated(
        registry, registry.get("reef", "v2"), gate, LABELS, True, False, "v1"
    )
    assert "CURRENT was damaged while v2 trained" in gate["live_changed"]
    assert "models repair reef" in gate["live_changed"]
