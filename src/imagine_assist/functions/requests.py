"""Reading the fields of a CVAT request body, each with an error a person can act on."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from imagine_assist.errors import BadRequest
from imagine_assist.images import decode_base64, decode_image


def parse_body(raw: Any) -> dict:
    """Nuclio hands over a dict when the request was JSON, else bytes or str."""
    if isinstance(raw, bytes | bytearray | str):
        try:
            raw = json.loads(raw)  # bytes are decoded as UTF-8 (or UTF-16/32 by their BOM)
        except UnicodeDecodeError:
            raise BadRequest("the request body is not UTF-8 JSON") from None
        except json.JSONDecodeError as error:
            raise BadRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise BadRequest('the request body must be a JSON object such as {"image": "<base64>"}')
    return raw


def parse_threshold(body: dict, default: float) -> float:
    """CVAT sends `threshold` only when the user set one; absent or null means the default."""
    value = body.get("threshold")
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BadRequest(f"'threshold' must be a number in [0, 1], got {value!r}")
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"'threshold' must be a number in [0, 1], got {value!r}") from None
    if math.isnan(threshold) or not 0.0 <= threshold <= 1.0:
        raise BadRequest(f"'threshold' must lie in [0, 1], got {value!r}")
    return threshold


def image_bytes(body: dict, field: str = "image") -> bytes:
    if field not in body:
        raise BadRequest(f"the request has no '{field}' field (base64 JPEG or PNG bytes)")
    return decode_base64(body[field], field)


def parse_image(body: dict, max_pixels: int, field: str = "image") -> np.ndarray:
    return decode_image(image_bytes(body, field), max_pixels=max_pixels)
