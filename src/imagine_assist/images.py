"""Decoding untrusted image bytes: base64, size limits and truncated files, with clear errors."""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from imagine_assist.errors import BadRequest, PayloadTooLarge

# 20 MP drone frames are the largest we expect; the default leaves room for 60 MP panoramas.
DEFAULT_MAX_PIXELS = 60_000_000
# A file may hold at most this many bytes per allowed pixel, plus a header allowance: enough
# for an uncompressed 16-bit RGBA TIFF or BMP, the largest encoding of an allowed image.
MAX_BYTES_PER_PIXEL = 8
HEADER_BYTES = 1 << 20
# Characters XML 1.0 forbids (C0 controls but tab, newline and carriage return; U+FFFE,
# U+FFFF), plus those three and DEL, which would break a CSV row or a one-line message.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f\ufffe\uffff]")


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
    """Decode, upright, and the image's full (width, height) upright.

    Upright means turned as its EXIF orientation says, as CVAT shows and sizes it.

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
        raise BadRequest("not an image that can be read (JPEG, PNG, TIFF, BMP or WebP)") from None
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
    rgb = upright_rgb8(image)
    if _turned_on_its_side(image):
        width, height = height, width
    return rgb, (width, height)


def upright_size(path: Path) -> tuple[int, int] | None:
    """An image file's (width, height) upright, as CVAT sizes it, from its header alone;
    None when it cannot be read as an image."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if _turned_on_its_side(image):
                width, height = height, width
    except Exception:
        return None
    return width, height


def upright_rgb8(image: Image.Image) -> np.ndarray:
    """A decoded image as every function takes it: RGB, one byte a sample (`_rgb8`), turned
    upright by its EXIF orientation. For images another library opened, such as the frames
    cvat-sdk hands its functions, so they see what the gateway sees."""
    transpose = _ORIENTATIONS.get(_exif_orientation(image))
    rgb = _rgb8(image)
    if transpose is not None:
        rgb = np.asarray(Image.fromarray(rgb).transpose(transpose))
    return rgb


def rewrite_wide_samples(path: Path) -> bool:
    """Rewrite in place, as the 8-bit RGB frame the served functions decode from it
    (upright, `_rgb8`), an image whose samples do not fit a byte. The trainers read files
    with OpenCV, which divides 16-bit samples by 256 where serving fills 0-255 with the
    frame's own range: a 12-bit camera's frames would train near black and be served bright.
    Any other image is left as it is (OpenCV and serving read it alike). Returns whether it
    rewrote the file."""
    try:
        with Image.open(path) as image:
            if image.mode not in _WIDE_MODES:
                return False
            kind, pixels = image.format or "PNG", image.width * image.height
        frame = decode_image(path.read_bytes(), max_pixels=pixels)
    except Exception:  # not one PIL reads: the trainer's reader says what it makes of it
        return False
    partial = path.with_name(f".{path.name}.partial")
    Image.fromarray(frame).save(partial, format=kind)
    os.replace(partial, path)
    return True


# EXIF orientation (tag 0x0112) to the transpose that shows the picture upright. CVAT sizes
# and draws every frame upright (its media readers apply this tag), and OpenCV's imread,
# which the training readers use, applies it too: a phone or drone photo taken on its side
# must reach the model, and its boxes come back, in the same upright frame.
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = {
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
}


def _turned_on_its_side(image: Image.Image) -> bool:
    """Whether showing the image upright swaps its width and height."""
    return _ORIENTATIONS.get(_exif_orientation(image)) in _SWAPS_SIDES


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation, 1 (as stored) when absent or unreadable: a damaged EXIF block
    is metadata, not pixels, and no reason to refuse a frame that decodes."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:
        return 1


# Modes whose samples do not fit a byte: 16-bit grey (scientific and machine-vision
# cameras, scanners), 32-bit integer and float. PIL's own convert("RGB") clips them at 255,
# which turns a 16-bit frame white.
_WIDE_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}


_STRIP_ROWS = 256  # rows of a wide-sample frame turned into bytes at once


def _rgb8(image: Image.Image) -> np.ndarray:
    """RGB, one byte a sample. Wide grey samples are scaled so that the frame's own range
    fills 0-255 (its brightest pixel 255; a negative minimum 0), as CVAT scales 32-bit
    frames; integer samples that already fit a byte are kept. Float samples are always
    scaled, since their unit (0-1, or a physical one) says nothing about bytes."""
    if image.mode not in _WIDE_MODES:
        return np.asarray(image.convert("RGB"))
    grey = np.asarray(image)  # one copy, in its own sample type
    # Strip by strip: whole-frame float temporaries took a 60 MP float TIFF (348 KB on
    # disk) to 1.4 GB, past the gateway's bound.
    strips = [grey[top : top + _STRIP_ROWS] for top in range(0, grey.shape[0], _STRIP_ROWS)]
    low, high = math.inf, -math.inf  # over the finite samples
    for strip in strips:
        values = strip[np.isfinite(strip)] if strip.dtype.kind == "f" else strip
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    low, high = (min(low, 0.0), high) if high >= low else (0.0, 0.0)
    scaled = low < 0 or high > 255 or image.mode == "F"
    span = high - low
    rgb = np.empty((*grey.shape[:2], 3), np.uint8)
    for top, strip in zip(range(0, grey.shape[0], _STRIP_ROWS), strips, strict=True):
        values = strip.astype(np.float32)
        if scaled:
            values = (values - low) * (255.0 / span) if span > 0 else np.zeros_like(values)
        values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
        rgb[top : top + len(strip)] = np.clip(np.rint(values), 0, 255).astype(np.uint8)[..., None]
    return rgb


def readable_name(name: str | os.PathLike) -> str:
    """A file name as it appears in every output (CSV, TSV, CVAT XML, messages).

    File names are bytes on Linux and need not be UTF-8. Bytes that are not UTF-8 (which
    Python carries as surrogate escapes) become a visible `\\xNN` escape, as do control
    characters, so the name is valid UTF-8 and valid XML 1.0 and stays on one line:
    `b"\\xff.jpg"` is written `\\xff.jpg`. A valid UTF-8 name without control characters is
    unchanged."""
    text = os.fsdecode(name)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def max_file_bytes(max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """The largest image file read for a pixel limit: `MAX_BYTES_PER_PIXEL` bytes per pixel
    plus `HEADER_BYTES` (481 MB for the default 60 MP, 34.6 MB for 2048x2048)."""
    return max_pixels * MAX_BYTES_PER_PIXEL + HEADER_BYTES


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file, checking what the file is before reading it.

    Only regular files are read, and symbolic links only when they lead to one: a FIFO, a
    device or a socket is refused (`BadRequest`) without being read, so neither a FIFO with
    no writer (which would block) nor `/dev/zero` (which never ends) can stall the caller.
    A file over `max_file_bytes(max_pixels)` is refused (`PayloadTooLarge`) before reading.
    The type and size are checked again on the open file, and at most the limit is read, so
    a file swapped or grown after the first check changes nothing."""
    path = Path(path)
    name = readable_name(path)
    limit = max_file_bytes(max_pixels)
    try:
        _check_file(os.stat(path), name, limit)  # before open: opening a device can act
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            _check_file(os.fstat(handle.fileno()), name, limit)
            data = handle.read(limit + 1)
    except OSError as error:
        raise BadRequest(f"cannot read {name}: {error.strerror}") from None
    if len(data) > limit:
        raise PayloadTooLarge(f"{name} grew over the limit of {limit:,} bytes while read")
    try:
        return decode_image(data, max_pixels)
    except BadRequest as error:
        raise type(error)(f"{name}: {error}") from None


def _check_file(status: os.stat_result, name: str, limit: int) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise BadRequest(f"{name} is {_kind(status.st_mode)}, not an image file")
    if status.st_size > limit:
        raise PayloadTooLarge(
            f"{name} is {status.st_size:,} bytes, over the limit of {limit:,} for an image "
            "of at most the function's max_image_pixels"
        )


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
