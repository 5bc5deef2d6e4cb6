"""`imagine-assist evaluate --function plankton-separator` on a CVAT for images 1.1 export
whose organisms are masks or polygons (drawn or corrected in CVAT)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from imagine_assist.app.main import main
from imagine_assist.functions.catalog import load_function
from imagine_assist.images import read_image
from imagine_assist.models.separate import score_separation, summarise
from imagine_assist.samples import generate_plankton, write_cvat_export
from imagine_assist.samples.plankton import PLANKTON_LABELS
from imagine_assist.training.mask_exports import read_cvat_organisms


def write_export(path: Path, samples) -> Path:
    """A CVAT for images 1.1 zip of the samples, each organism an RLE <mask>."""
    return write_cvat_export(path, samples, PLANKTON_LABELS, masks=True)


def truth_masks(sample) -> list[np.ndarray]:
    return [obj.mask.astype(bool) for obj in sample.objects]


def test_masks_written_by_cvat_read_back_exactly(tmp_path):
    samples = list(generate_plankton(3, seed=31, multiple_share=1.0, max_size=300))
    export = write_export(tmp_path / "export.zip", samples)
    with zipfile.ZipFile(export) as archive:
        archive.extract("annotations.xml", tmp_path / "x")
    read = list(read_cvat_organisms(tmp_path / "x" / "annotations.xml", export))
    assert [v.name for v in read] == [s.name for s in samples]
    for vignette, sample in zip(read, samples, strict=True):
        shape = (vignette.height, vignette.width)
        assert shape == sample.image.shape[:2] and vignette.tag is None
        got = [organism.full(shape) for organism in vignette.organisms]
        assert len(got) == len(sample.objects) >= 2
        for mask, truth in zip(got, truth_masks(sample), strict=True):
            np.testing.assert_array_equal(mask, truth)


def test_a_polygon_is_an_organism_and_a_tag_is_read(tmp_path):
    xml = tmp_path / "annotations.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>'
        '<image id="0" name="v.png" width="40" height="30">'
        '<polygon label="organism" points="10,5;30,5;30,25;10,25" occluded="0"/>'
        '<box label="organism" xtl="1" ytl="1" xbr="5" ybr="5" occluded="0"/>'
        '<tag label="multiple"/></image></annotations>'
    )
    (vignette,) = read_cvat_organisms(xml, xml)
    assert vignette.tag == "multiple" and len(vignette.organisms) == 1  # the box is no organism
    organism = vignette.organisms[0]
    assert organism.xyxy == (10, 5, 30, 25) and organism.area == 21 * 21  # inclusive, as CVAT


@pytest.mark.parametrize(
    ("image", "shapes", "says"),
    [
        ('width="huge" height="30"', "", "no whole width and height"),
        ('width="100000" height="100000"', "", "at most 60,000,000"),
        (
            'width="4000" height="4000"',
            '<polygon label="organism" points="1,1;3,1;3,3"/>' * 20,
            "more organisms than",
        ),
        ('width="40" height="30"', '<mask label="o" rle="5, x" left="0" top="0" '
         'width="4" height="4"/>', "cannot be read"),
        # decoded before it was checked: 1.7 GB, or a traceback
        ('width="40" height="30"', '<mask label="o" rle="1500000000, 1" left="0" top="0" '
         'width="4" height="4"/>', "runs cover 1500000001 pixels, not its 4x4 box"),
        ('width="40" height="30"', '<mask label="o" rle="1e30" left="0" top="0" '
         'width="4" height="4"/>', "not whole numbers"),
        # runs that wrap round to the box's 16 pixels in int64: a crash of the process
        ('width="40" height="30"', '<mask label="o" rle="' + ",".join([str(2**62)] * 4)
         + ',16" left="0" top="0" width="4" height="4"/>', "larger than the box"),
        ('width="40" height="30"', '<mask label="o" rle="9223372036854775808, 1" left="0" '
         'top="0" width="4" height="4"/>', "larger than the box"),
        ('width="40" height="30"', '<mask label="o" rle="7.9, 8.1" left="0" top="0" '
         'width="4" height="4"/>', "not whole numbers"),  # truncated and accepted
        ('width="40" height="30"', '<polygon label="o" points="nan,1;5,5;9,9"/>', "not numbers"),
        ('width="40" height="30"', '<polygon label="o" points="1,1;5,5"/>', "at least 3"),
        ('width="40" height="30"', '<polygon label="o" points="-1e12,0;1e12,0;0,1e12"/>',
         "within reach"),
    ],
)  # fmt: skip
def test_a_tampered_export_is_refused_before_masks_are_drawn(tmp_path, image, shapes, says):
    """Sizes and shapes are checked before a mask of that size is allocated: a hostile
    export cannot make the reader draw gigabytes."""
    from imagine_assist.errors import UserError

    xml = tmp_path / "annotations.xml"
    xml.write_text(
        f'<annotations><image id="0" name="v.png" {image}>{shapes}</image></annotations>'
    )
    with pytest.raises(UserError, match=says):
        list(read_cvat_organisms(xml, xml))


def test_a_mask_a_row_past_its_image_is_cut_to_it(tmp_path):
    """CVAT keeps such masks (cvat-ai/cvat#9316): one refused the whole export."""
    xml = tmp_path / "annotations.xml"
    xml.write_text(
        '<annotations><image id="0" name="v.png" width="6" height="4">'
        '<mask label="o" rle="4, 8" left="2" top="1" width="4" height="3"/></image></annotations>'
    )  # a 4x3 box from row 1: its first row background, rows 2 and 3 filled
    (vignette,) = read_cvat_organisms(xml, xml)
    assert vignette.organisms[0].xyxy == (2, 2, 5, 3) and vignette.organisms[0].area == 8
    xml.write_text(xml.read_text().replace('top="1"', 'top="2"'))  # rows 2-4 of 4
    (vignette,) = read_cvat_organisms(xml, xml)
    assert vignette.organisms[0].xyxy == (2, 3, 5, 3) and vignette.organisms[0].area == 4


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    samples = list(generate_plankton(8, seed=33, multiple_share=0.5, max_size=420))
    return write_export(folder / "plankton.zip", samples), samples


@pytest.mark.slow  # the bundled models on 8 vignettes: the full tier, as evaluate's others
def test_the_organisms_sent_are_scored_against_the_drawn_ones(export, tmp_path, capsys):
    path, samples = export
    assert main(["evaluate", str(path), "--function", "plankton-separator",
                 "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    facts = json.loads((tmp_path / "out" / "summary.json").read_text())

    # the same figures as scoring the function's own answers against the exact masks
    function = load_function("plankton-separator")
    scores, sent = [], 0
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(unpacked)
    for sample in samples:  # the images as the export holds them (JPEG)
        separation = function.split(read_image(unpacked / "images" / sample.name))
        sent += len(separation.detections)
        scores.append(score_separation(separation.masks, truth_masks(sample)))
    expected = summarise(scores)
    assert facts["separation"]["all"]["f1"] == pytest.approx(expected["f1"])
    assert facts["separation"]["all"]["under_split_rate"] == pytest.approx(
        expected["under_split_rate"]
    )
    assert facts["vignettes"] == 8 and facts["organisms_sent"] == sent
    assert facts["drawn_organisms"] == sum(len(s.objects) for s in samples)
    assert facts["multiples"] == sum(len(s.objects) >= 2 for s in samples)
    assert f"F1 {expected['f1']:.3f}" in printed
    assert (tmp_path / "out" / "worst_separations.png").stat().st_size > 1000


def test_an_export_of_boxes_only_is_refused_with_what_to_give(tmp_path, capsys):
    path = tmp_path / "coco.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("annotations/instances_default.json", '{"images": [], "annotations": []}')
    code = main(["evaluate", str(path), "--function", "plankton-separator",
                 "--out", str(tmp_path / "o")])  # fmt: skip
    error = capsys.readouterr().err
    assert code == 2 and "CVAT for images 1.1" in error and "single/ and multiple/" in error


def test_an_export_with_nothing_drawn_is_refused_not_scored_as_singles(tmp_path, capsys):
    """Boxes only, or vignettes nobody drew on: scored, they read as single vignettes of no
    organism (F1 0.000), where the truth was never given."""
    samples = list(generate_plankton(3, seed=41, max_size=300))
    export = write_cvat_export(tmp_path / "boxes.zip", samples, PLANKTON_LABELS, masks=False)
    argv = [
        "evaluate",
        str(export),
        "--function",
        "plankton-separator",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    assert (
        "no organism drawn as a mask or polygon on any of its 3 vignettes"
        in capsys.readouterr().err
    )
