"""plankton-separator as CVAT sees it, and `imagine-assist separate` for EcoTaxa."""

import base64
import csv

import numpy as np
import pytest
from PIL import Image

from imagine_assist.cli import main
from imagine_assist.cvat.masks import from_nuclio_mask
from imagine_assist.errors import BadRequest
from imagine_assist.functions.catalog import load_function
from imagine_assist.images import encode_jpeg
from imagine_assist.samples import generate_plankton

from .test_nuclio import call, load_main


def png_b64(image: np.ndarray) -> str:
    import io

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")  # lossless: the masks compare exactly
    return base64.b64encode(buffer.getvalue()).decode()


def test_masks_reach_cvat_exactly_with_polygons_and_a_tag():
    from nuclio_sdk.test import Platform

    module, platform = load_main("plankton-separator"), Platform()
    function = load_function("plankton-separator")
    for sample in generate_plankton(6, seed=71):
        status, items = call(platform, module, {"image": png_b64(sample.image)})
        assert status == 200
        shapes = [i for i in items if i["type"] == "mask"]
        tags = [i for i in items if i["type"] == "tag"]
        expected = function.split(sample.image)
        assert len(shapes) == len(expected) and len(tags) == 1
        assert tags[0]["label"] == ("multiple" if len(expected) >= 2 else "single")
        height, width = sample.image.shape[:2]
        for item, mask in zip(shapes, expected.mask, strict=True):
            assert item["label"] == "organism" and len(item["points"]) >= 6
            np.testing.assert_array_equal(from_nuclio_mask(item["mask"], width, height), mask)


def test_scale_bar_rows_are_validated():
    function = load_function("plankton-separator")
    image = encode_jpeg(np.full((100, 120, 3), 250, np.uint8))
    with pytest.raises(BadRequest, match="scale_bar_rows"):
        function.handle({"image": base64.b64encode(image).decode(), "scale_bar_rows": -1})


def test_separate_writes_vignettes_separation_lines_and_ecotaxa_tsv(tmp_path):
    source = tmp_path / "scan"
    source.mkdir()
    for sample in generate_plankton(8, seed=72, multiple_share=0.6):
        Image.fromarray(sample.image).save(source / sample.name.replace(".jpg", ".png"))
    out = tmp_path / "out"
    assert main(["separate", str(source), "--out", str(out)]) == 0
    with (out / "ecotaxa_import.tsv").open() as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    header, types, objects = rows[0], rows[1], rows[2:]
    assert header[:3] == ["img_file_name", "object_id", "object_area"]
    assert set(types) == {"[t]", "[f]"} and len(types) == len(header)
    assert objects and len({row[1] for row in objects}) == len(objects)
    for row in objects:
        record = dict(zip(header, row, strict=True))
        assert (out / "vignettes" / record["img_file_name"]).is_file()
        assert float(record["object_area"]) > 0
        assert (source / record["object_source_vignette"]).is_file()
    separations = sorted((out / "separations").iterdir())
    assert len(separations) == 8
    for path in separations:
        vignette = Image.open(source / path.name.replace("_sep.png", ".png"))
        assert Image.open(path).size == vignette.size


def test_predict_points_plankton_users_to_separate(tmp_path, capsys):
    image = tmp_path / "v.png"
    Image.fromarray(np.full((60, 80, 3), 250, np.uint8)).save(image)
    assert (
        main(
            [
                "predict",
                str(image),
                "--function",
                "plankton-separator",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "imagine-assist separate" in capsys.readouterr().err
