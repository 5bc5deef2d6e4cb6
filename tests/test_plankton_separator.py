"""plankton-separator as CVAT sees it, and `imagine-assist separate` for EcoTaxa."""

import base64
import csv
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from imagine_assist.app.main import main
from imagine_assist.cvat.masks import from_nuclio_mask
from imagine_assist.errors import BadRequest, ModelNotFound, UserError
from imagine_assist.functions.catalog import load_function
from imagine_assist.images import encode_jpeg
from imagine_assist.models.separate import (
    crop_scale_bar,
    score_separation,
    separate_touching,
    summarise,
)
from imagine_assist.models.store import BUNDLED_DIR
from imagine_assist.nuclio.cvat_requests import answer
from imagine_assist.samples import generate_plankton

from .test_nuclio import call, load_main


def scan_of(tmp_path, n: int, **options):
    """A folder of `n` generated vignettes, as PNG files."""
    source = tmp_path / "scan"
    source.mkdir()
    for sample in generate_plankton(n, **options):
        Image.fromarray(sample.image).save(source / sample.name.replace(".jpg", ".png"))
    return source


def png_b64(image: np.ndarray) -> str:
    import io

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")  # lossless: the masks compare exactly
    return base64.b64encode(buffer.getvalue()).decode()


def test_masks_reach_cvat_exactly_with_polygons_and_a_tag(monkeypatch):
    from nuclio_sdk.test import Platform

    # as deployed: the models volume holds separator.onnx with classifier.onnx beside it
    monkeypatch.setenv("IMAGINE_ASSIST_MODEL", str(BUNDLED_DIR / "plankton" / "separator.onnx"))
    module, platform = load_main("plankton-separator"), Platform()
    function = load_function("plankton-separator")
    for sample in generate_plankton(6, seed=71):
        status, items = call(platform, module, {"image": png_b64(sample.image)})
        assert status == 200
        shapes = [i for i in items if i["type"] == "mask"]
        tags = [i for i in items if i["type"] == "tag"]
        expected = function.split(sample.image)
        assert len(shapes) == len(expected.detections) and len(tags) == 1
        p_multiple = float(tags[0]["attributes"][0]["value"])
        assert tags[0]["attributes"][0]["name"] == "p_multiple" and 0 <= p_multiple <= 1
        # the classifier lets the vignette be cut, the cut must give two organisms or more
        said_multiple = p_multiple >= function.multiple_threshold and len(shapes) >= 2
        assert tags[0]["label"] == ("multiple" if said_multiple else "single")
        # the tag's confidence is the probability of what it says, when one speaks for it
        if said_multiple:
            assert float(tags[0]["confidence"]) == pytest.approx(p_multiple, abs=1e-4)
        elif p_multiple < function.multiple_threshold:
            assert float(tags[0]["confidence"]) == pytest.approx(1 - p_multiple, abs=1e-4)
        else:
            assert "confidence" not in tags[0]
        height, width = sample.image.shape[:2]
        for item, mask in zip(shapes, expected.masks, strict=True):
            assert item["label"] == "organism" and len(item["points"]) >= 6
            full = mask.full((height, width))
            np.testing.assert_array_equal(from_nuclio_mask(item["mask"], width, height), full)


def test_a_blank_vignette_gets_no_tag_in_cvat():
    """No organism, yet CVAT got a "single" tag with a confidence, where `separate` says
    "no organism found"; the cvat-cli module did the same."""
    from types import SimpleNamespace

    from imagine_assist.cvat.sdk_function import sdk_function_for

    function = load_function("plankton-separator")
    blank = np.full((200, 240, 3), 240, np.uint8)
    assert answer(function, {"image": png_b64(blank)}) == []
    context = SimpleNamespace(conf_threshold=None, conv_mask_to_poly=False, frame_name="b.png")
    assert sdk_function_for(function).detect(context, Image.fromarray(blank)) == []


def test_cvats_threshold_is_the_p_multiple_threshold(monkeypatch):
    """CVAT's dialog offers one threshold: for the separator it moves the single/multiple
    call, as `evaluate --threshold` does. It used to change nothing."""
    from nuclio_sdk.test import Platform

    monkeypatch.setenv("IMAGINE_ASSIST_MODEL", str(BUNDLED_DIR / "plankton" / "separator.onnx"))
    module, platform = load_main("plankton-separator"), Platform()
    description = load_function("plankton-separator").spec.cvat_description
    assert "Threshold: the P(multiple) at or above which a vignette is cut" in description
    assert "(default the classifier's own" in description
    vignettes = [png_b64(s.image) for s in generate_plankton(4, seed=72, multiple_share=1.0)]

    def answers(threshold):
        body = {} if threshold is None else {"threshold": threshold}
        replies = [call(platform, module, {"image": v, **body}) for v in vignettes]
        assert all(status == 200 for status, _ in replies)
        return [items for _, items in replies]

    never_cut = answers(1.0)  # no P(multiple) reaches 1: every vignette is one organism
    assert all(sum(i["type"] == "mask" for i in items) == 1 for items in never_cut)
    assert all(items[-1]["label"] == "single" for items in never_cut)
    always_cut = answers(0.0)  # every vignette goes to the separator
    assert sum(items[-1]["label"] == "multiple" for items in always_cut) >= 3
    assert answers(None) == answers("")  # left out: the classifier's own threshold


def test_scale_bar_rows_are_validated():
    function = load_function("plankton-separator")
    image = encode_jpeg(np.full((100, 120, 3), 250, np.uint8))
    with pytest.raises(BadRequest, match="scale_bar_rows"):
        answer(function, {"image": base64.b64encode(image).decode(), "scale_bar_rows": -1})


def test_a_scale_bar_strip_as_tall_as_the_vignette_is_refused_not_kept_whole(tmp_path, capsys):
    """Kept whole, the vignette's scale bar would go to EcoTaxa as an organism: the request
    is refused, and `separate` skips that vignette with the reason and goes on."""
    function = load_function("plankton-separator")
    short = np.full((100, 120, 3), 250, np.uint8)
    for rows, left in ((100, 0), (95, 5)):  # none left, or a 5-row sliver
        with pytest.raises(BadRequest, match=f"strip of {rows} rows leaves {left} of the"):
            answer(function, {"image": png_b64(short), "scale_bar_rows": rows})  # a 400
    source = tmp_path / "scan"
    source.mkdir()
    tall = next(generate_plankton(1, seed=5)).image
    Image.fromarray(tall).save(source / "tall.png")
    Image.fromarray(short).save(source / "short.png")
    rows = str(tall.shape[0] - 40)  # within the tall one, above the short one
    assert (
        main(
            [
                "separate",
                str(source),
                "--out",
                str(tmp_path / "out"),
                "--workers",
                "1",
                "--scale-bar-rows",
                rows,
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "short.png" in captured.err and "leaves 0 of the vignette's 100 rows" in captured.err
    assert "tall.png" not in captured.err
    assert (tmp_path / "out" / "separations" / "tall_sep.png").exists()


@pytest.mark.slow  # seconds of work: the full tier
def test_separate_writes_vignettes_separation_lines_and_ecotaxa_tsv(tmp_path):
    source = tmp_path / "scan"
    source.mkdir()
    for sample in generate_plankton(8, seed=72, multiple_share=0.6):
        Image.fromarray(sample.image).save(source / sample.name.replace(".jpg", ".png"))
    out = tmp_path / "out"
    assert main(["separate", str(source), "--out", str(out)]) == 0
    tsv = out / "ecotaxa" / "ecotaxa_import.tsv"
    assert tsv.read_bytes().isascii()  # plain ASCII, no mark: read alike by every EcoTaxa
    with tsv.open() as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    header, types, objects = rows[0], rows[1], rows[2:]
    assert header[:3] == ["img_file_name", "object_id", "object_area"]
    assert set(types) == {"[t]", "[f]"} and len(types) == len(header)
    assert objects and len({row[1] for row in objects}) == len(objects)
    threshold = load_function("plankton-separator").multiple_threshold
    records = [dict(zip(header, row, strict=True)) for row in objects]
    organisms = Counter(record["object_source_vignette"] for record in records)
    for record in records:
        # EcoTaxa looks for each image beside the TSV
        assert (tsv.parent / record["img_file_name"]).is_file()
        assert float(record["object_area"]) > 0
        assert (source / record["object_source_vignette"]).is_file()
        # the classifier's call travels with each object, so EcoTaxa can sort on it
        p_multiple = float(record["object_p_multiple"])
        assert 0.0 <= p_multiple <= 1.0
        cut = p_multiple >= threshold and organisms[record["object_source_vignette"]] >= 2
        assert cut == (record["object_separation"] == "multiple")
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


def _f1(separate, samples):
    scores = []
    for sample in samples:
        rows = sample.scale_bar_rows
        truth = [o.mask[: o.mask.shape[0] - rows] for o in sample.objects]
        scores.append(score_separation(separate(crop_scale_bar(sample.image, rows)), truth))
    return summarise(scores)


@pytest.mark.slow  # a quality benchmark
def test_bundled_models_separate_and_classify_better_than_the_watershed():
    function = load_function("plankton-separator")
    samples = list(generate_plankton(24, seed=74, multiple_share=0.5))
    model, watershed = _f1(function.separate, samples), _f1(separate_touching, samples)
    assert model["f1"] >= 0.75 and model["f1"] >= watershed["f1"] + 0.15, (model, watershed)
    calls = [function.split(sample.image) for sample in samples]
    said = [call.tag == "multiple" for call in calls]
    truth = [sample.multiple for sample in samples]
    assert sum(s == t for s, t in zip(said, truth, strict=True)) >= 0.85 * len(samples)
    for separation in calls:
        classified = separation.p_multiple >= function.multiple_threshold
        cut = len(separation.detections) >= 2
        assert separation.tag == ("multiple" if classified and cut else "single")
        if not classified:  # a single is never cut apart
            assert len(separation.detections) == 1


def test_without_models_the_watershed_serves_and_counts_give_the_tag(tmp_path, monkeypatch):
    from imagine_assist.models import store

    monkeypatch.setattr(store, "BUNDLED_DIR", tmp_path / "nothing-bundled")
    function = load_function("plankton-separator", models_dir=tmp_path / "models")
    assert function.separate is separate_touching and function.classifier is None
    sample = next(generate_plankton(1, seed=75, multiple_share=1.0))
    call = function.split(sample.image)
    assert call.p_multiple is None
    assert call.tag == ("multiple" if len(call.detections) >= 2 else "single")


def test_named_weights_that_are_missing_or_broken_are_an_error(tmp_path):
    with pytest.raises(ModelNotFound):
        load_function("plankton-separator", tmp_path / "missing.onnx")
    broken = tmp_path / "separator.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(UserError, match="not a readable ONNX model"):
        load_function("plankton-separator", broken)
    detector = BUNDLED_DIR / "fish" / "model.onnx"
    with pytest.raises(UserError, match="not a segmentation model"):
        load_function("plankton-separator", detector)


@pytest.mark.slow  # separates twice
def test_separate_keeps_every_vignette_of_a_shared_name_and_skips_its_own_outputs(tmp_path):
    """ZooScan sample folders reuse vignette names. Each vignette keeps its own objects,
    every row's image is beside the TSV (where EcoTaxa looks), and a second run with --out
    inside the scan reads none of the first run's cut-outs. A name beyond ASCII puts
    UTF-8's mark at the TSV's head, without which EcoTaxa reads it as Latin-1."""
    source = tmp_path / "scan"
    samples = generate_plankton(3, seed=73, multiple_share=0.0)
    for folder, sample in zip(["s1", "échantillon", "."], samples, strict=True):
        (source / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.image).save(source / folder / "v1.png")
    out = source / "separated"
    tables = []
    for _ in range(2):
        assert main(["separate", str(source), "--out", str(out), "--workers", "1"]) == 0
        tsv = out / "ecotaxa" / "ecotaxa_import.tsv"
        tables.append(tsv.read_text())
    assert tables[0] == tables[1]
    assert tsv.read_bytes().startswith(b"\xef\xbb\xbf")  # EcoTaxa then reads UTF-8
    with tsv.open(encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle, delimiter="\t"))[1:]
    sources = {record["object_source_vignette"] for record in records}
    assert sources == {"s1/v1.png", "échantillon/v1.png", "v1.png"}
    assert len({record["object_id"] for record in records}) == len(records)
    names = [record["img_file_name"] for record in records]
    assert len(set(names)) == len(names)
    assert sorted(p.name for p in tsv.parent.glob("*.png")) == sorted(names)
    assert len(list((out / "separations").iterdir())) == 3


@pytest.mark.slow  # separates twice, once in worker processes
def test_separate_with_two_workers_matches_one(tmp_path):
    source = tmp_path / "scan"
    source.mkdir()
    for sample in generate_plankton(6, seed=76, multiple_share=0.6):
        Image.fromarray(sample.image).save(source / sample.name.replace(".jpg", ".png"))
    (source / "broken.png").write_bytes(b"\x89PNG but not really")
    tables = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        assert main(["separate", str(source), "--out", str(out), "--workers", str(workers)]) == 0
        tables.append((out / "ecotaxa" / "ecotaxa_import.tsv").read_text())
    assert tables[0] == tables[1] and tables[0].count("\n") > 2 + 6


class FixedClassifier:
    """A single/multiple classifier that always says the same P(multiple)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def p_multiple(self, image: np.ndarray) -> float:
        return self.p


def test_the_classifier_decides_and_a_single_is_never_cut_apart():
    """Issue 14: one real amphipod went to EcoTaxa as 4 objects because the separator's
    count overruled the classifier. Now a vignette the classifier calls single is one
    object, its whole foreground; only a multiple is separated."""
    from imagine_assist.functions.catalog import get_spec
    from imagine_assist.functions.separator import SeparatorFunction

    sample = next(generate_plankton(1, seed=76, multiple_share=1.0))
    spec = get_spec("plankton-separator")
    single = SeparatorFunction(spec, None, separate_touching, FixedClassifier(0.05)).split(
        sample.image
    )
    assert single.tag == "single" and len(single.detections) == 1
    whole = single.detections.data["box_mask"][0]
    truth = np.logical_or.reduce([obj.mask for obj in sample.objects])
    ys, xs = np.nonzero(truth)  # the one object spans every organism
    x1, y1, x2, y2 = whole.xyxy
    assert x1 <= xs.min() + 2 and y1 <= ys.min() + 2 and x2 >= xs.max() - 2 and y2 >= ys.max() - 2
    multiple = SeparatorFunction(spec, None, separate_touching, FixedClassifier(0.95)).split(
        sample.image
    )
    assert len(multiple.detections) == len(separate_touching(crop_scale_bar(sample.image, 20)))
    assert len(multiple.detections) >= 2 and multiple.tag == "multiple"


def test_a_vignette_the_separator_leaves_whole_is_a_single():
    """Of 23 real vignettes the classifier called multiple and the separator left in one
    piece, 21 were singles: the tag follows the cut, and P(multiple) still travels."""
    from imagine_assist.functions.catalog import get_spec
    from imagine_assist.functions.separator import SeparatorFunction
    from imagine_assist.models.separate import organism_box_mask

    sample = next(generate_plankton(1, seed=77, multiple_share=0.0))
    spec = get_spec("plankton-separator")

    def whole(image):
        return [organism_box_mask(image)]

    call = SeparatorFunction(spec, None, whole, FixedClassifier(0.95)).split(sample.image)
    assert call.tag == "single" and len(call.detections) == 1
    assert call.p_multiple == 0.95


def test_a_rerun_leaves_only_this_runs_cut_outs_beside_the_tsv(tmp_path):
    """EcoTaxa imports the folder the TSV is in: cut-outs of a vignette that is no longer
    in the scan must not be there, while a file of the user's own stays."""
    source = scan_of(tmp_path, 2, seed=31, multiple_share=1.0)
    out = tmp_path / "out"
    command = ["separate", str(source), "--out", str(out), "--workers", "1"]
    assert main(command) == 0
    (out / "ecotaxa" / "README.txt").write_text("the user's own notes")
    gone = sorted(source.iterdir())[0]
    gone.unlink()
    assert main(command) == 0
    with (out / "ecotaxa" / "ecotaxa_import.tsv").open() as handle:
        named = {row[0] for row in list(csv.reader(handle, delimiter="\t"))[2:]}
    assert named and not any(name.startswith(gone.stem) for name in named)
    beside = {p.name for p in (out / "ecotaxa").iterdir()}
    assert beside == named | {"ecotaxa_import.tsv", "README.txt"}
    assert [p.name for p in (out / "separations").iterdir()] == [
        f"{sorted(source.iterdir())[0].stem}_sep.png"
    ]


def test_weights_that_will_not_load_are_one_error_before_anything_is_written(tmp_path):
    """With worker processes, a model that failed in each worker's start-up made the pool
    restart its workers for ever, a traceback a second."""
    import subprocess
    import sys

    source = tmp_path / "scan"
    source.mkdir()
    Image.fromarray(next(generate_plankton(1, seed=8)).image).save(source / "v.png")
    fish = BUNDLED_DIR / "fish" / "model.onnx"  # not a separator
    command = [sys.executable, "-m", "imagine_assist.app.main", "separate", str(source)]
    command += ["--out", str(tmp_path / "out"), "--workers", "2", "--weights", str(fish)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("error:") == 1
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("broken", ["separator.onnx", "classifier.onnx"])
def test_a_live_plankton_version_that_does_not_load_says_how_to_go_back(tmp_path, broken):
    from imagine_assist.models.registry import Registry

    models = tmp_path / "models"
    bundled = BUNDLED_DIR / "plankton"
    files = {name: bundled / name for name in ("separator.onnx", "classifier.onnx")}
    registry = Registry(models)
    from imagine_assist.families import get_family

    registry.add("plankton", files, {"classes": list(get_family("plankton").labels)})
    registry.promote("plankton", "v1", "real organisms")
    model = models / "plankton" / "versions" / "v1" / broken
    model.write_bytes(model.read_bytes()[:100])
    with pytest.raises(UserError, match="live version v1: `imagine-assist models repair plankton`"):
        load_function("plankton-separator", models_dir=models)


def _tsv_records(out):
    with (out / "ecotaxa" / "ecotaxa_import.tsv").open() as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[2:]]


@pytest.mark.slow  # seconds of work: the full tier
def test_the_tsv_gives_each_organisms_own_box_and_names_vignettes_with_none(tmp_path, capsys):
    """object_bx/by/width/height were the cut-out's, 4 px of margin each side; and a blank
    or faint vignette had no row and no word."""
    source = tmp_path / "scan"
    source.mkdir()
    vignette = np.full((200, 240), 240, np.uint8)
    vignette[50:70, 100:140] = 40  # 40 x 20 px, away from the edges
    vignette[150:160, 0:30] = 40  # 30 x 10 px, touching the left edge
    Image.fromarray(vignette).save(source / "rect.png")
    Image.fromarray(np.full((200, 240), 240, np.uint8)).save(source / "blank.png")
    out = tmp_path / "out"
    argv = ["separate", str(source), "--out", str(out), "--scale-bar-rows", "0", "--workers", "1"]
    assert main(argv) == 0
    boxes = sorted(
        tuple(int(float(r[k])) for k in ("object_bx", "object_by", "object_width", "object_height"))
        for r in _tsv_records(out)
    )
    assert boxes == [(0, 150, 30, 10), (100, 50, 40, 20)]
    err = capsys.readouterr().err
    assert "no organism found in 1 vignettes" in err and "blank.png" in err


@pytest.mark.slow  # seconds of work: the full tier
def test_a_rerun_stopped_halfway_leaves_no_tsv_of_the_run_before(tmp_path, monkeypatch):
    """A stopped rerun had rewritten cut-outs under the names the old TSV gave other
    organisms: zipped for EcoTaxa, images and measurements no longer matched."""
    from imagine_assist import zooscan

    source = scan_of(tmp_path, 4, seed=73, multiple_share=0.5)
    out = tmp_path / "out"
    argv = ["separate", str(source), "--out", str(out), "--workers", "1"]
    assert main(argv) == 0 and _tsv_records(out)
    separate_one, calls = zooscan._separate_one, []

    def stopped_at_the_third(function, job):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return separate_one(function, job)

    monkeypatch.setattr(zooscan, "_separate_one", stopped_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        zooscan.separate_to_files(source, out, workers=1)
    assert not (out / "ecotaxa" / "ecotaxa_import.tsv").exists()
