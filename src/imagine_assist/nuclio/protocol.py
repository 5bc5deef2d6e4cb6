"""What crosses the wire at the serving edge: the request body as Nuclio or the gateway
receives it, and the one mapping from errors to HTTP statuses.

Both front doors (the Nuclio adapter and the gateway) answer through this module, so an
error reaches CVAT with the same status and the same message from either. The function
objects raise plain errors (`BadRequest`, `PayloadTooLarge`, anything else) and know
nothing of HTTP.
"""

from __future__ import annotations

import json
from typing import Any

from imagine_assist.errors import BadRequest, PayloadTooLarge


class HTTPError(Exception):
    """An answer the serving edge itself decides: busy, body too large, unknown function."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Unavailable(Exception):
    """The function has no model to answer with yet, or its model failed to load."""


# Most specific first: a PayloadTooLarge is also a BadRequest.
_STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (PayloadTooLarge, 413),
    (BadRequest, 400),
    (Unavailable, 503),
)
# The errors answered with their own message; any other is a 500.
ERRORS_WITH_A_STATUS = (HTTPError, *(kind for kind, _ in _STATUS_BY_ERROR))


def status_for(error: BaseException, who: str = "the function") -> tuple[int, str]:
    """The HTTP status and the message a client gets for `error`.

    A client's mistake or a known state says what went wrong in its own words. Anything
    else is a 500 that names only the error's type: a traceback or an internal path does
    not belong in CVAT's UI, and the log has them."""
    if isinstance(error, HTTPError):
        return error.status, str(error)
    for kind, status in _STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status, str(error)
    return 500, f"{who} failed on this request ({type(error).__name__}); see its log"


def error_body(status: int, message: str) -> dict:
    return {"message": message, "status": status}


def parse_body(raw: Any) -> dict:
    """The request as a JSON object. Nuclio hands over a dict when the request was sent as
    JSON, else bytes or str; the gateway reads bytes."""
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
