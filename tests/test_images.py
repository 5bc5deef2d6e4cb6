import base64
import io

import numpy as np
import pytest
from PIL import Image

from imagine_assist.errors import BadRequest, PayloadTooLarge
from imagine_assist.images import decode_base64, decode_image, encode_jpeg
from imagine_assist.nuclio.cvat_requests import parse_image


def jpeg_bytes(width=64, height=48) -> bytes:
    rng = np.random.default_rng(0)
    return encode_jpeg(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def test_decodes_jpeg_and_png_to_rgb():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[..., 0] = 200  # red stays in channel 0: the library speaks RGB, not OpenCV's BGR
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    decoded = decode_image(buffer.getvalue())
    assert decoded.shape == (10, 20, 3)
    assert decoded[0, 0].tolist() == [200, 0, 0]
    assert decode_image(jpeg_bytes()).shape == (48, 64, 3)


def test_grey_and_alpha_images_become_rgb():
    buffer = io.BytesIO()
    Image.new("LA", (5, 4), (90, 255)).save(buffer, format="PNG")
    assert decode_image(buffer.getvalue()).shape == (4, 5, 3)


@pytest.mark.parametrize("text", ["not base64!!", "abc", 42, "", None])
def test_bad_base64_is_a_bad_request(text):
    with pytest.raises(BadRequest, match="base64"):
        decode_base64(text)


def test_bytes_that_are_not_an_image():
    with pytest.raises(BadRequest, match="not an image"):
        decode_image(b"GIF89a but not really" * 10)


def test_truncated_jpeg_is_rejected_not_half_decoded():
    data = jpeg_bytes(256, 256)
    with pytest.raises(BadRequest, match="truncated"):
        decode_image(data[: len(data) // 2])


def test_pixel_limit_is_checked_before_decoding():
    data = jpeg_bytes(200, 100)
    with pytest.raises(PayloadTooLarge, match="20,000 pixels"):
        decode_image(data, max_pixels=10_000)
    assert decode_image(data, max_pixels=20_000).shape == (100, 200, 3)


def test_parse_image_requires_the_field():
    import dataclasses

    from imagine_assist.functions.catalog import get_spec

    spec = dataclasses.replace(get_spec("burrow-detector"), max_image_pixels=10**6)
    with pytest.raises(BadRequest, match="no 'image' field"):
        parse_image({"threshold": 0.5}, spec)
    body = {"image": base64.b64encode(jpeg_bytes()).decode()}
    assert parse_image(body, spec).shape == (48, 64, 3)
