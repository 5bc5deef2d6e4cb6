"""Tracker states from the browser: valid ones round-trip, every other kind gets a 400."""

import copy
import json

import numpy as np
import pytest

from imagine_assist.errors import BadRequest
from imagine_assist.functions.tracker_state import (
    MAX_STATE_BYTES,
    STATE_VERSION,
    TrackState,
    decode_state,
    encode_state,
    state_key,
)

KEY = b"k" * 32


def state() -> dict:
    template = (np.arange(24 * 24) % 251).astype(np.uint8).reshape(24, 24)
    return encode_state(
        TrackState(np.array([10.0, 20, 50, 60]), np.array([0.5, 8.2]), template), KEY
    )


def test_a_state_survives_json():
    encoded = json.loads(json.dumps(state()))
    decoded = decode_state(encoded, KEY)
    assert decoded.box.tolist() == [10, 20, 50, 60]
    assert decoded.velocity.tolist() == pytest.approx([0.5, 8.2])
    assert decoded.template.shape == (24, 24)
    assert len(json.dumps(encoded)) < 1500


def tampered(change):
    bad = copy.deepcopy(state())
    change(bad)
    return bad


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (tampered(lambda s: s["box"].__setitem__(0, 11.0)), "altered"),
        (tampered(lambda s: s.__setitem__("velocity", [900.0, 0.0])), "altered"),
        (tampered(lambda s: s.__setitem__("sig", "0" * 64)), "altered"),
        (tampered(lambda s: s.pop("template")), "fields"),
        (tampered(lambda s: s.__setitem__("template", s["template"][:40])), "altered"),
        (tampered(lambda s: s.__setitem__("v", STATE_VERSION + 1)), "version"),
        (tampered(lambda s: s.pop("v")), "version"),
        (tampered(lambda s: s.__setitem__("extra", "x" * MAX_STATE_BYTES)), "over"),
        ("a string", "JSON object"),
        ([1, 2, 3], "JSON object"),
    ],
)
def test_bad_states_are_refused(bad, fragment):
    with pytest.raises(BadRequest, match=fragment):
        decode_state(bad, KEY)


def test_a_state_signed_elsewhere_is_refused():
    with pytest.raises(BadRequest, match="altered or signed by another"):
        decode_state(state(), b"another key" * 3)


def test_the_key_persists_in_the_home_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGINE_ASSIST_STATE_KEY", raising=False)
    first = state_key(tmp_path)
    assert len(first) == 32 and state_key(tmp_path) == first
    monkeypatch.setenv("IMAGINE_ASSIST_STATE_KEY", "from-env")
    assert state_key(tmp_path) == b"from-env"
