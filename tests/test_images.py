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


def _tagged_jpeg(rgb: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def _marked_frame() -> np.ndarray:
    """A 40x60 frame, dark but for a bright block in its top-left corner as stored."""
    rgb = np.full((40, 60, 3), 30, np.uint8)
    rgb[:10, :16] = 230
    return rgb


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_opencv_and_cvat_do(orientation):
    """A photo taken on its side carries its turn in EXIF. CVAT shows and sizes it upright,
    and the training readers (OpenCV) read it upright, so serving must too, or every box
    on such a frame lands in the wrong place."""
    import cv2

    data = _tagged_jpeg(_marked_frame(), orientation)
    decoded = decode_image(data)
    upright = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert decoded.shape == upright.shape
    assert decoded.shape[:2] == ((60, 40) if orientation >= 5 else (40, 60))
    assert np.abs(decoded.astype(int) - upright.astype(int)).max() <= 2


def test_reduced_decode_reports_the_upright_size():
    from imagine_assist.images import decode_image_reduced

    rgb = np.zeros((800, 1200, 3), np.uint8)
    rgb[:100, :200] = 255  # top-left as stored: top-right once turned a quarter clockwise
    image, size = decode_image_reduced(_tagged_jpeg(rgb, 6), reduce_to=300)
    assert size == (800, 1200)
    assert image.shape[1] < 800 and image.shape[0] / image.shape[1] == pytest.approx(1.5, 0.02)
    height, width = image.shape[:2]
    assert image[: height // 10, -width // 10 :].mean() > 200
    assert image[: height // 10, : width // 10].mean() < 50


def test_a_damaged_exif_block_decodes_as_stored():
    rgb = _marked_frame()
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=95, exif=b"Exif\x00\x00garbage!")
    assert decode_image(buffer.getvalue()).shape == (40, 60, 3)


def test_sixteen_bit_grey_keeps_its_contrast():
    """PIL's own conversion clips 16-bit samples at 255, which makes a 16-bit camera frame
    a white page. The frame's range is scaled into a byte instead."""
    grey = np.full((30, 40), 1000, np.uint16)
    grey[10:20, 10:30] = 4000  # a 12-bit camera's bright organism on a dim field
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode.startswith("I;16")
    decoded = decode_image(buffer.getvalue())
    assert decoded.shape == (30, 40, 3)
    assert decoded[15, 20].tolist() == [255, 255, 255]
    assert decoded[0, 0].tolist() == [64, 64, 64]  # 1000 / 4000 of the brightest


def test_float_and_small_integer_grey_frames():
    buffer = io.BytesIO()
    field = np.zeros((8, 8), np.float32)
    field[2:4, 2:4] = 0.5  # a float frame in 0-1: its brightest becomes 255
    field[0, 0] = np.nan
    Image.fromarray(field).save(buffer, format="TIFF")
    decoded = decode_image(buffer.getvalue())
    assert decoded[3, 3, 0] == 255 and decoded[6, 6, 0] == 0 and decoded[0, 0, 0] == 0
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), 90, np.int32), mode="I").save(buffer, format="TIFF")
    assert decode_image(buffer.getvalue())[0, 0].tolist() == [90, 90, 90]


def test_a_wide_frame_taller_than_a_strip_is_scaled_by_its_whole_range():
    """Wide frames become bytes strip by strip (a 60 MP float TIFF took 1.4 GB whole): the
    range is the whole frame's, the darkest strip's minimum and the brightest's maximum."""
    field = np.linspace(-20.0, 80.0, 900 * 50, dtype=np.float32).reshape(900, 50)
    field[450, 10] = np.inf
    buffer = io.BytesIO()
    Image.fromarray(field).save(buffer, format="TIFF")
    decoded = decode_image(buffer.getvalue())[..., 0].astype(int)
    assert decoded[0, 0] == 0 and decoded[-1, -1] == 255 and decoded[450, 10] == 255
    assert np.all(np.diff(decoded.ravel()[decoded.ravel() != 255][:-1]) >= 0)  # no seam


def test_a_sixteen_bit_training_frame_is_read_by_opencv_as_it_is_served(tmp_path):
    """The trainers read files with OpenCV, which makes a 12-bit frame in 16-bit PNG near
    black (samples / 256). The retraining dataset rewrites such a frame as it is served."""
    import cv2

    from imagine_assist.training.retrain import _merge_part

    grey = np.full((30, 40), 1000, np.uint16)
    grey[10:20, 10:30] = 4000
    part = tmp_path / "part"
    for name, image in (("deep.png", Image.fromarray(grey)), ("plain.jpg", None)):
        (part / "images" / "train").mkdir(parents=True, exist_ok=True)
        (part / "labels" / "train").mkdir(parents=True, exist_ok=True)
        path = part / "images" / "train" / name
        if image is None:
            Image.fromarray(np.full((30, 40, 3), 77, np.uint8)).save(path, quality=95)
        else:
            image.save(path)
        (part / "labels" / "train" / f"{path.stem}.txt").write_text("0 0.5 0.5 0.5 0.3\n")
    plain_bytes = (part / "images" / "train" / "plain.jpg").read_bytes()
    assert cv2.imread(str(part / "images" / "train" / "deep.png"))[15, 20, 0] == 15  # 4000 // 256
    _merge_part(part, tmp_path / "dataset", "train", "e0-")
    images = tmp_path / "dataset" / "images" / "train"
    served = decode_image((images / "deep.png").read_bytes())
    trained = cv2.imread(str(images / "deep.png"))[:, :, ::-1]
    np.testing.assert_array_equal(trained, served)
    assert trained[15, 20].tolist() == [255, 255, 255] and trained[0, 0, 0] == 64
    assert (images / "plain.jpg").read_bytes() == plain_bytes  # an 8-bit frame as it was
    assert (tmp_path / "dataset" / "labels" / "train" / "deep.txt").exists()
    assert sorted(p.name for p in images.iterdir()) == ["deep.png", "plain.jpg"]
