"""What crosses the wire at the serving edge: the request body as Nuclio or the gateway
receives it, and the one mapping from errors to HTTP statuses.

Both front doors (the Nuclio adapter and the gateway) answer through this module, so an
error reaches CVAT with the same status and the same message from either. The function
objects raise plain errors (`BadRequest`, `PayloadTooLarge`, anything else) and know
nothing of HTTP.
"""

from __future__ import annotations

import json
import math
from typing import Any

from imagine_assist.errors import BadRequest, PayloadTooLarge

CLIPPED = 200  # characters of a client's string that an answer or a log line may repeat
MAX_MESSAGE = 400  # characters of an error message that quotes a client's value
MAX_MAGNITUDE = 1e12  # no coordinate, threshold or id in a CVAT request comes near it


class HTTPError(Exception):
    """An answer the serving edge itself decides: busy, body too large, unknown function."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class ClientGone(Exception):
    """The client closed its connection before its answer: noted as 499, answered to nobody."""


CLIENT_GONE = 499  # nginx's code for it; never sent, only counted and logged


def clip(text: str, limit: int = CLIPPED) -> str:
    """`text` cut to `limit` characters, saying how long it was: what a client sent is
    repeated in answers and logs only this far."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


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
            # a client's mistake may quote its value: a 5,000-digit threshold is cut short
            return status, clip(str(error), MAX_MESSAGE)
    return 500, f"{who} failed on this request ({type(error).__name__}); see its log"


def error_body(status: int, message: str) -> dict:
    return {"message": message, "status": status}


def _integer(text: str) -> int:
    # the length first: int() of a 5,000-digit string is itself an error (and slow)
    if len(text) > 14 or abs(value := int(text)) > MAX_MAGNITUDE:
        raise BadRequest(
            f"the request holds the number {clip(text, 40)}; numbers are at most "
            f"{MAX_MAGNITUDE:g} in size"
        )
    return value


def _real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise BadRequest(
            f"the request holds the number {clip(text, 40)}; numbers are at most "
            f"{MAX_MAGNITUDE:g} in size"
        )
    return value


def _check_parsed_numbers(body: dict) -> None:
    """The bounds `_integer` and `_real` set while parsing, on a body parsed elsewhere.
    Walked with a list, not recursion: the body may be nested as deep as the parser let it."""
    pending: list = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, float) and (not math.isfinite(value) or abs(value) > MAX_MAGNITUDE):
            _real(repr(value))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
            _integer(str(value))


def _no_constant(name: str) -> float:
    raise BadRequest(f"the request holds {name}, which is not a JSON number")


# CVAT's requests are a few keys, an image in base64 (no commas or brackets in it) and at
# most some thousands of box corners or points. Each JSON value costs Python 30-70 bytes
# against 2-3 bytes of text: 11 million `{}` in a 32 MiB body took 860 MB once parsed. A
# body with more separators than this is refused before it is parsed, so a parsed body
# stays within about 100 MB whatever it holds.
MAX_JSON_VALUES = 1_000_000


def _check_json_values(raw: bytes | bytearray | str) -> None:
    marks = (",", "[", "{", ":") if isinstance(raw, str) else (b",", b"[", b"{", b":")
    values = sum(raw.count(mark) for mark in marks)
    if values > MAX_JSON_VALUES:
        raise BadRequest(
            f"the request body holds about {values:,} JSON values; a CVAT request holds an "
            f"image and at most {MAX_JSON_VALUES:,} values besides"
        )


def parse_body(raw: Any) -> dict:
    """The request as a JSON object. Nuclio hands over a dict when the request was sent as
    JSON, else bytes or str; the gateway reads bytes.

    Numbers are finite and at most `MAX_MAGNITUDE` in size (no NaN, Infinity or 1e308 that
    would overflow the arithmetic on boxes), and nesting as deep as the parser's recursion
    limit is a client's mistake, not a crash."""
    if isinstance(raw, bytes | bytearray | str):
        _check_json_values(raw)
        try:  # bytes are decoded as UTF-8 (or UTF-16/32 by their BOM)
            raw = json.loads(
                raw, parse_int=_integer, parse_float=_real, parse_constant=_no_constant
            )
        except UnicodeDecodeError:
            raise BadRequest("the request body is not UTF-8 JSON") from None
        except json.JSONDecodeError as error:
            raise BadRequest(f"the request body is not valid JSON: {error}") from None
        except RecursionError:
            raise BadRequest("the request body is JSON nested too deeply") from None
    elif isinstance(raw, dict):
        # Nuclio parsed it already, with a plain json.loads: NaN and 1e300 got through
        _check_parsed_numbers(raw)
    if not isinstance(raw, dict):
        raise BadRequest('the request body must be a JSON object such as {"image": "<base64>"}')
    return raw
