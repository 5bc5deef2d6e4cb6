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

# 2: the signature covers the numbers as whole hundredths (box) and thousandths
# (velocity), so a state whose JSON a browser rewrote (640.0 -> 640) still verifies.
STATE_VERSION = 2
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


# Box corners are kept to a hundredth of a pixel, velocities to a thousandth.
_BOX_STEPS, _VELOCITY_STEPS = 100, 1000


def _payload(box: list[int], velocity: list[int], template: object) -> bytes:
    """What is signed. The numbers go in as whole steps, not as JSON text: JavaScript
    writes 640.0 as 640 and -0.0 as 0, so text signed in Python would not survive the
    browser's JSON.parse and JSON.stringify, while the values do."""
    return json.dumps(
        {"box": box, "template": template, "v": STATE_VERSION, "velocity": velocity},
        separators=(",", ":"),
    ).encode()


def _steps(values: np.ndarray, steps: int) -> list[int]:
    return [round(float(v) * steps) for v in values]


def encode_state(state: TrackState, key: bytes) -> dict:
    box, velocity = _steps(state.box, _BOX_STEPS), _steps(state.velocity, _VELOCITY_STEPS)
    template = base64.b64encode(state.template.astype(np.uint8).tobytes()).decode()
    return {
        "v": STATE_VERSION,
        "box": [v / _BOX_STEPS for v in box],
        "velocity": [v / _VELOCITY_STEPS for v in velocity],
        "template": template,
        "sig": hmac.new(key, _payload(box, velocity, template), hashlib.sha256).hexdigest(),
    }


def _numbers(value, count: int, name: str) -> np.ndarray:
    if not isinstance(value, list) or len(value) != count:
        raise BadRequest(f"tracker state: '{name}' must be a list of {count} numbers")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 1e9
        for v in value
    ):
        raise BadRequest(f"tracker state: '{name}' must hold finite numbers under 1e9")
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
            "track this object again (a client sends null for its state)"
        )
    if set(state) != _FIELDS:
        raise BadRequest(f"tracker state has fields {sorted(state)}, expected {sorted(_FIELDS)}")
    box = _steps(_numbers(state["box"], 4, "box"), _BOX_STEPS)
    velocity = _steps(_numbers(state["velocity"], 2, "velocity"), _VELOCITY_STEPS)
    signature = state["sig"]
    expected = hmac.new(key, _payload(box, velocity, state["template"]), hashlib.sha256)
    if not isinstance(signature, str) or not hmac.compare_digest(signature, expected.hexdigest()):
        raise BadRequest(
            "tracker state was altered or signed by another installation; "
            "restart tracking of this object (send null)"
        )
    # the tracker goes on from exactly what was signed
    box = np.array(box, dtype=np.float64) / _BOX_STEPS
    if not (box[0] < box[2] and box[1] < box[3]):
        raise BadRequest("tracker state: 'box' must be x1 < x2, y1 < y2")
    try:
        raw = base64.b64decode(state["template"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise BadRequest("tracker state: 'template' is not base64") from None
    if len(raw) != TEMPLATE_SIZE * TEMPLATE_SIZE:
        raise BadRequest("tracker state: 'template' has the wrong size")
    template = np.frombuffer(raw, dtype=np.uint8).reshape(TEMPLATE_SIZE, TEMPLATE_SIZE)
    return TrackState(box, np.array(velocity, dtype=np.float64) / _VELOCITY_STEPS, template.copy())
