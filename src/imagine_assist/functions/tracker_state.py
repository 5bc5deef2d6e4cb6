"""Tracker states: small, versioned, signed JSON that survives a trip through the browser.

CVAT hands each state to the UI and back on the next frame. A state is a plain dict:
version, last box, velocity, a 24x24 grey template (base64), and an HMAC over all of it,
so a state that was edited, cut short, made huge or written by another version is
refused with a 400 instead of steering the tracker. Never pickle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imagine_assist.errors import BadRequest
from imagine_assist.functions.appearance import TEMPLATE_SIZE

STATE_VERSION = 1
MAX_STATE_BYTES = 4096  # a real state is about 1.1 kB
KEY_ENV = "IMAGINE_ASSIST_STATE_KEY"
_FIELDS = {"v", "box", "velocity", "template", "sig"}


@dataclass
class TrackState:
    box: np.ndarray  # x1, y1, x2, y2
    velocity: np.ndarray  # dx, dy per frame
    template: np.ndarray  # TEMPLATE_SIZE x TEMPLATE_SIZE uint8


def state_key(home: Path | None = None) -> bytes:
    """The signing key: from the environment, else one kept in the home directory, so
    states stay valid across restarts of the same installation."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    from imagine_assist.home import Home

    path = (home or Home.resolve().root) / "tracker-state.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(secrets.token_bytes(32))
        partial.replace(path)
    return path.read_bytes()


def _payload(state: dict) -> bytes:
    return json.dumps(
        {k: state[k] for k in sorted(state) if k != "sig"}, separators=(",", ":")
    ).encode()


def encode_state(state: TrackState, key: bytes) -> dict:
    encoded = {
        "v": STATE_VERSION,
        "box": [round(float(v), 2) for v in state.box],
        "velocity": [round(float(v), 3) for v in state.velocity],
        "template": base64.b64encode(state.template.astype(np.uint8).tobytes()).decode(),
    }
    encoded["sig"] = hmac.new(key, _payload(encoded), hashlib.sha256).hexdigest()
    return encoded


def _numbers(value, count: int, name: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != count:
        raise BadRequest(f"tracker state: '{name}' must be a list of {count} numbers")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise BadRequest(f"tracker state: '{name}' must hold finite numbers")
    return np.array(value, dtype=np.float64)


def decode_state(state: object, key: bytes) -> TrackState:
    if not isinstance(state, dict):
        raise BadRequest("a tracker state must be a JSON object; send null to start a new track")
    if len(json.dumps(state)) > MAX_STATE_BYTES:
        raise BadRequest(
            f"tracker state is over {MAX_STATE_BYTES} bytes; it did not come from this function"
        )
    if state.get("v") != STATE_VERSION:
        raise BadRequest(
            f"tracker state version {state.get('v')!r} is not {STATE_VERSION}; "
            "restart tracking of this object (send null)"
        )
    if set(state) != _FIELDS:
        raise BadRequest(f"tracker state has fields {sorted(state)}, expected {sorted(_FIELDS)}")
    signature = state["sig"]
    expected = hmac.new(key, _payload(state), hashlib.sha256).hexdigest()
    if not isinstance(signature, str) or not hmac.compare_digest(signature, expected):
        raise BadRequest(
            "tracker state was altered or signed by another installation; "
            "restart tracking of this object (send null)"
        )
    box = _numbers(state["box"], 4, "box")
    if not (box[0] < box[2] and box[1] < box[3]):
        raise BadRequest("tracker state: 'box' must be x1 < x2, y1 < y2")
    try:
        raw = base64.b64decode(state["template"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise BadRequest("tracker state: 'template' is not base64") from None
    if len(raw) != TEMPLATE_SIZE * TEMPLATE_SIZE:
        raise BadRequest("tracker state: 'template' has the wrong size")
    template = np.frombuffer(raw, dtype=np.uint8).reshape(TEMPLATE_SIZE, TEMPLATE_SIZE)
    return TrackState(box, _numbers(state["velocity"], 2, "velocity"), template.copy())
