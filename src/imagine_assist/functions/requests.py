"""Reading the fields of a CVAT request body, each with an error a person can act on.

The body arrives here already a JSON object: turning the bytes Nuclio or the gateway
received into one is the serving edge's job (`imagine_assist.nuclio.protocol`). The
threshold is read by `FunctionSpec.check_threshold`, which knows what it means per kind.
"""

from __future__ import annotations

import numpy as np

from imagine_assist.errors import BadRequest
from imagine_assist.images import decode_base64, decode_image


def image_bytes(body: dict, field: str = "image") -> bytes:
    if field not in body:
        raise BadRequest(f"the request has no '{field}' field (base64 JPEG or PNG bytes)")
    return decode_base64(body[field], field)


def parse_image(body: dict, max_pixels: int, field: str = "image") -> np.ndarray:
    return decode_image(image_bytes(body, field), max_pixels=max_pixels)
