"""The model registry: versions, promotion, rollback, and atomic writes under kill -9."""

import os
import signal
import subprocess
import sys

import pytest

from imagine_assist.errors import UserError
from imagine_assist.models.registry import Registry
from imagine_assist.models.store import BUNDLED_DIR, resolve_model

from .onnx_files import onnx_tag, tiny_onnx

FISH = {"classes": ["fish"]}  # the built-in fish family's label


def weights(tmp_path, name="model.onnx", text="weights", names=("fish",)):
    return tiny_onnx(tmp_path / f"src-{text}" / name, text, names)


def test_versions_promote_and_roll_back(tmp_path):
    registry = Registry(tmp_path / "models")
    assert registry.current("fish") is None
    assert resolve_model("fish", tmp_path / "models") == BUNDLED_DIR / "fish" / "model.onnx"
    v1 = registry.add("fish", {"model.onnx": weights(tmp_path, text="one")}, {**FISH, "metrics": 1})
    v2 = registry.add("fish", {"model.onnx": weights(tmp_path, text="two")}, {**FISH, "metrics": 2})
    assert [v.name for v in registry.versions("fish")] == ["v1", "v2"]
    assert v2.card["metrics"] == 2 and v2.card["version"] == "v2"
    assert registry.current("fish") is None  # added is not promoted

    registry.promote("fish", "v1", "first")
    registry.promote("fish", "v2", "better")
    assert resolve_model("fish", tmp_path / "models") == v2.file()
    assert registry.rollback("fish").name == "v1"
    assert onnx_tag(resolve_model("fish", tmp_path / "models")) == "one"
    assert [r["action"] for r in registry.history("fish")] == ["promote", "promote", "rollback"]
    assert [p["reason"] for p in v1.card["promotions"]] == ["first", "rollback from v2"]
    with pytest.raises(UserError, match="no version 'v9'"):
        registry.promote("fish", "v9", "typo")


def test_rollback_from_the_first_version_returns_to_the_bundled_model(tmp_path):
    registry = Registry(tmp_path)
    with pytest.raises(UserError, match="serves its default model"):
        registry.rollback("fish")
    registry.add("fish", {"model.onnx": weights(tmp_path)}, FISH)
    registry.promote("fish", "v1", "only one")
    assert registry.rollback("fish") is None
    assert registry.current("fish") is None
    assert resolve_model("fish", tmp_path) == BUNDLED_DIR / "fish" / "model.onnx"
    assert registry.history("fish")[-1]["action"] == "rollback"
    with pytest.raises(UserError, match="serves its default model"):
        registry.rollback("fish")
    # a family with no default of its own has nothing before its first version
    registry.promote("fish", "v1", "again")
    with pytest.raises(UserError, match="first model"):
        registry.rollback("fish", has_default=False)


def test_rollbacks_walk_back_through_every_earlier_version(tmp_path):
    registry = Registry(tmp_path)
    for text in ("one", "two", "three"):
        registry.add("fish", {"model.onnx": weights(tmp_path, text=text)}, FISH)
    for name in ("v1", "v2", "v3"):
        registry.promote("fish", name, "better")
    assert registry.rollback("fish").name == "v2"
    assert registry.rollback("fish").name == "v1"  # not back to v3: no toggling
    assert registry.rollback("fish") is None  # the bundled model
    assert resolve_model("fish", tmp_path) == BUNDLED_DIR / "fish" / "model.onnx"
    # a bad version forced live over v1 is not brought back by a second rollback
    registry.promote("fish", "v1", "again")
    registry.promote("fish", "v3", "forced", forced=True)
    assert registry.rollback("fish").name == "v1"
    assert registry.rollback("fish") is None


def test_a_version_with_other_classes_is_never_promoted(tmp_path):
    registry = Registry(tmp_path)
    registry.add("fish", {"model.onnx": weights(tmp_path, text="good")}, FISH)
    registry.promote("fish", "v1", "good")
    registry.add(
        "fish",
        {"model.onnx": weights(tmp_path, text="bad", names=("diplodus", "chromis"))},
        {"classes": ["diplodus", "chromis"]},
    )
    for forced in (False, True):
        with pytest.raises(UserError, match="never promoted"):
            registry.promote("fish", "v2", "by hand", forced=forced)
    # a version whose classes nobody can tell is refused too
    registry.add("fish", {"model.onnx": weights(tmp_path, text="unknown", names=None)}, {})
    with pytest.raises(UserError, match="cannot tell which classes"):
        registry.promote("fish", "v3", "by hand", forced=True)
    assert registry.current("fish").name == "v1"
    assert onnx_tag(resolve_model("fish", tmp_path)) == "good"


def test_a_tampered_current_pointer_is_a_clear_error(tmp_path):
    registry = Registry(tmp_path)
    (tmp_path / "fish").mkdir()
    (tmp_path / "fish" / "CURRENT").write_text('{"version": "../../etc"}\n')
    with pytest.raises(UserError, match="not a complete version"):
        registry.current("fish")
    (tmp_path / "fish" / "CURRENT").write_text("v1 and some noise")
    with pytest.raises(UserError, match="not a promotion record"):
        registry.current("fish")
    (tmp_path / "fish" / "CURRENT").write_text("{}")  # JSON naming nothing: a KeyError once
    with pytest.raises(UserError, match="not a promotion record"):
        registry.current("fish")
    (tmp_path / "fish" / "CURRENT").write_text("[" * 5000)  # a RecursionError traceback once
    with pytest.raises(UserError, match="not a promotion record"):
        registry.current("fish")
    (tmp_path / "fish" / "CURRENT").unlink()
    (tmp_path / "fish" / "CURRENT").mkdir()  # called missing, and repair then crashed
    with pytest.raises(UserError, match="CURRENT is not a file; remove it"):
        registry.current("fish")
    with pytest.raises(UserError, match="cannot write .*CURRENT"):
        registry.repair("fish")
    assert not list((tmp_path / "fish").glob(".CURRENT.*.partial"))
    (tmp_path / "fish" / "CURRENT").rmdir()
    (tmp_path / "fish" / "CURRENT").write_text("[" * 5000)
    (tmp_path / "fish" / "history.jsonl").write_text("[" * 5000 + "\n{}\n")
    assert registry.history("fish") == [{}] and registry.needs_repair("fish")
    assert registry.repair("fish") is None  # nothing good in history: the default model


def test_a_current_gone_while_a_version_was_live_is_damage_not_the_default(tmp_path):
    """CURRENT deleted by hand: the bundled model served in its place, and healthz,
    `models list` and the gateway all called that normal."""
    registry = Registry(tmp_path / "models")
    registry.add("fish", {"model.onnx": weights(tmp_path)}, FISH)
    registry.promote("fish", "v1", "first")
    (tmp_path / "models" / "fish" / "CURRENT").unlink()
    with pytest.raises(UserError, match="CURRENT is missing, but history.jsonl records v1"):
        resolve_model("fish", tmp_path / "models")
    assert registry.repair("fish").name == "v1"
    registry.rollback("fish")  # to the default: then a missing CURRENT is the default
    (tmp_path / "models" / "fish" / "CURRENT").unlink()
    assert resolve_model("fish", tmp_path / "models") == BUNDLED_DIR / "fish" / "model.onnx"


def test_a_rollback_to_a_damaged_version_named_is_refused_not_passed(tmp_path):
    registry = Registry(tmp_path / "models")
    for text in ("one", "two", "three"):
        version = registry.add("fish", {"model.onnx": weights(tmp_path, text=text)}, FISH)
        registry.promote("fish", version.name, "better")
    model = tmp_path / "models" / "fish" / "versions" / "v2" / "model.onnx"
    model.write_bytes(model.read_bytes()[:40])
    with pytest.raises(UserError, match="v2/model.onnx is not a readable ONNX model"):
        registry.rollback("fish", to="v2")
    assert registry.current("fish").name == "v3"  # nothing switched


# A child process that adds and promotes a version, sleeping inside the step we kill it in.
CHILD = """
import os, shutil, sys, time
from pathlib import Path
from imagine_assist.models.registry import Registry
root, step, source = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
copy, replace = shutil.copyfile, os.replace
def slow_copy(a, b, *args, **kwargs):
    if step == "add":
        print("copying", flush=True); time.sleep(60)
    return copy(a, b, *args, **kwargs)
def slow_replace(a, b):
    if step == "promote" and Path(b).name == "CURRENT":
        print("switching", flush=True); time.sleep(60)
    return replace(a, b)
shutil.copyfile, os.replace = slow_copy, slow_replace
registry = Registry(root)
card = {"classes": ["fish"], "metrics": "new"}
version = registry.add("fish", {"model.onnx": source}, card)
registry.promote("fish", version.name, "new")
"""


@pytest.mark.parametrize("step", ["add", "promote"])
def test_killing_an_add_or_a_promotion_leaves_the_registry_as_it_was(tmp_path, step):
    registry = Registry(tmp_path / "models")
    registry.add(
        "fish", {"model.onnx": weights(tmp_path, text="good")}, {**FISH, "metrics": "good"}
    )
    registry.promote("fish", "v1", "the last good model")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "models").rglob("*"))
    history = registry.history("fish")

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "models"), step, str(weights(tmp_path))],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout.readline().strip() in ("copying", "switching")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    assert registry.current("fish").name == "v1"
    assert onnx_tag(resolve_model("fish", tmp_path / "models")) == "good"
    assert registry.history("fish") == history
    after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "models").rglob("*"))
    new = [str(p) for p in after if p not in before]
    if step == "add":  # nothing new is visible: only a hidden staging folder is left
        assert [v.name for v in registry.versions("fish")] == ["v1"]
        assert all(".staging-" in p for p in new)
    else:  # the new version is stored, complete, and not live
        assert [v.name for v in registry.versions("fish")] == ["v1", "v2"]
        assert "promotions" not in registry.get("fish", "v2").card
        assert all("versions/v2" in p or p.endswith(".partial") for p in new)


def test_old_promotion_records_and_promoting_the_live_version_again(tmp_path):
    registry = Registry(tmp_path)
    for text in ("one", "two", "three"):
        registry.add("fish", {"model.onnx": weights(tmp_path, text=text)}, FISH)
    registry.promote("fish", "v2", "better")
    registry.promote("fish", "v2", "again")  # no step for the next rollback to undo
    assert registry.rollback("fish") is None  # straight back to the bundled model
    # a CURRENT written before rollbacks kept their list: a rollback record names the
    # version it left, which must not be gone back to
    (tmp_path / "fish" / "CURRENT").write_text(
        '{"version": "v2", "previous": "v3", "action": "rollback"}\n'
    )
    assert registry.rollback("fish") is None
    (tmp_path / "fish" / "CURRENT").write_text('{"version": "v2", "previous": 3}\n')
    assert registry.rollback("fish") is None  # a damaged entry is not followed


def test_a_live_version_without_its_checkpoint_serves_but_is_not_retrained_from(tmp_path):
    """Its .pt deleted to save disk: the ONNX still serves; a retraining, which starts from
    the live .pt, is told so rather than quietly starting from the bundled weights."""
    from imagine_assist.errors import ModelNotFound

    registry = Registry(tmp_path)
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"a checkpoint")
    registry.add(
        "fish", {"model.onnx": weights(tmp_path, text="one"), "model.pt": checkpoint}, FISH
    )
    registry.promote("fish", "v1", "first")
    (tmp_path / "fish" / "versions" / "v1" / "model.pt").unlink()
    assert onnx_tag(resolve_model("fish", tmp_path)) == "one"
    with pytest.raises(ModelNotFound, match="v1, the live version, no longer holds model.pt"):
        resolve_model("fish", tmp_path, fmt="pt")


def test_a_retraining_never_starts_afresh_over_a_live_model_it_cannot_read(tmp_path):
    """With CURRENT deleted, a retraining found no live model, trained from the bare
    architecture, passed the gate with nothing to beat and replaced the live model."""
    from imagine_assist.errors import ModelNotFound
    from imagine_assist.training.retrain import deployed_weights

    registry = Registry(tmp_path)
    assert deployed_weights(registry, "reef") == (None, "none")  # a new family
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"a checkpoint")
    files = {"model.onnx": weights(tmp_path, text="one"), "model.pt": checkpoint}
    registry.add("fish", files, FISH)
    registry.promote("fish", "v1", "first")
    assert deployed_weights(registry, "fish")[1] == "v1"
    current = tmp_path / "fish" / "CURRENT"
    kept = current.read_bytes()
    current.unlink()
    with pytest.raises(UserError, match="CURRENT is missing"):
        deployed_weights(registry, "fish")
    current.write_bytes(kept)
    (tmp_path / "fish" / "versions" / "v1" / "model.pt").unlink()
    with pytest.raises(ModelNotFound, match="no longer holds model.pt"):
        deployed_weights(registry, "fish")
