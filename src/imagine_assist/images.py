"""Decoding untrusted image bytes: base64, size limits and truncated files, with clear errors."""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from imagine_assist.errors import BadRequest, PayloadTooLarge

# 20 MP drone frames are the largest we expect; the default leaves room for 60 MP panoramas.
DEFAULT_MAX_PIXELS = 60_000_000


def decode_base64(text: object, field: str = "image") -> bytes:
    if not isinstance(text, str) or not text:
        raise BadRequest(f"'{field}' must be a non-empty base64 string of JPEG or PNG bytes")
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequest(f"'{field}' is not valid base64: {error}") from None


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Return an RGB uint8 array (H, W, 3). The pixel limit is checked before decoding."""
    return decode_image_reduced(data, max_pixels)[0]


def decode_image_reduced(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, reduce_to: int | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode, and the image's full (width, height).

    With `reduce_to`, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (in the DCT, which is
    much cheaper than decoding in full and resizing) as long as its longer side stays at
    least `reduce_to`: enough for a model whose input is that size.
    """
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below decides; PIL's bomb warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise PayloadTooLarge(f"image is too large to decode safely: {error}") from None
    except Exception:
        # Any failure to identify untrusted bytes is the sender's problem. Not only PIL's own
        # errors: importing ultralytics patches Image.open, which then raises ImportError
        # (missing pi_heif) for bytes PIL cannot identify.
        raise BadRequest(
            "the bytes are not an image that can be read (send JPEG or PNG bytes)"
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,}; downscale it or raise the function's max_image_pixels"
        )
    if reduce_to and image.format == "JPEG":
        scale = reduce_to / max(width, height)
        image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise BadRequest(f"the image could not be decoded, it may be truncated: {error}") from None
    return np.asarray(image.convert("RGB")), (width, height)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadRequest(f"cannot read {path}: {error.strerror}") from None
    try:
        return decode_image(data, max_pixels)
    except BadRequest as error:
        raise type(error)(f"{path}: {error}") from None


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
