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


def javascript_json(value):
    """What a browser's JSON.parse then JSON.stringify makes of Python's JSON: whole
    floats lose their '.0', and -0.0 becomes 0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [javascript_json(v) for v in value]
    if isinstance(value, dict):
        return {k: javascript_json(v) for k, v in value.items()}
    return value


def test_a_state_survives_the_browsers_json():
    # a new track: no motion yet, and a box on the frame's edge
    template = np.zeros((24, 24), np.uint8)
    fresh = encode_state(
        TrackState(np.array([0.0, 0.0, 640.0, 22.5]), np.array([-0.0, 0.0]), template), KEY
    )
    rewritten = json.loads(json.dumps(javascript_json(fresh)))
    assert rewritten["box"][:3] == [0, 0, 640] and rewritten["velocity"] == [0, 0]
    decoded = decode_state(rewritten, KEY)
    assert decoded.box.tolist() == [0, 0, 640, 22.5]
    assert decoded.velocity.tolist() == [0, 0]


def test_a_state_with_a_number_past_any_frame_is_refused():
    bad = state()
    bad["box"][2] = 1e308
    with pytest.raises(BadRequest, match="finite numbers under"):
        decode_state(bad, KEY)
