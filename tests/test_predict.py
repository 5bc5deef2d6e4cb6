"""`imagine-assist predict`: the files a user gets, read back with FiftyOne's CVAT parser."""

import csv

import pytest
from PIL import Image

from imagine_assist.app.main import main
from imagine_assist.functions.catalog import FUNCTIONS
from imagine_assist.samples import generate_fish


@pytest.fixture(scope="module")
def fish_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fish-images")
    for sample in generate_fish(5, seed=21):
        Image.fromarray(sample.image).save(folder / sample.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return folder


def test_predict_writes_xml_csv_plot_and_previews(fish_model, fish_images, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            str(fish_images),
            "--function",
            "fish-detector",
            "--out",
            str(out),
            "--weights",
            str(fish_model.onnx),
            "--threshold",
            "0.05",
        ]
    )
    assert code == 0
    assert "broken.jpg" in capsys.readouterr().err  # reported, and the others still done

    from fiftyone.utils.cvat import load_cvat_image_annotations

    _, cvat_labels, cvat_images = load_cvat_image_annotations(str(out / "annotations.xml"))
    assert [label["name"] for label in cvat_labels.labels] == FUNCTIONS["fish-detector"].label_names
    assert len(cvat_images) == 5

    with (out / "counts.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5
    by_name = {image.name: len(image.boxes) for image in cvat_images}
    for row in rows:
        per_label = sum(int(row[label]) for label in FUNCTIONS["fish-detector"].label_names)
        assert per_label == int(row["total"]) == by_name[row["image"]]
    with (out / "counts_total.csv").open() as handle:
        totals = {row["label"]: int(row["count"]) for row in csv.DictReader(handle)}
    assert sum(totals.values()) == sum(by_name.values())
    assert (out / "counts.png").stat().st_size > 1000
    assert len(list((out / "previews").glob("*.jpg"))) == 5


def test_unknown_function_and_bad_threshold_are_clear_errors(tmp_path, capsys, fish_images):
    assert (
        main(["predict", str(fish_images), "--function", "shark-detector", "--out", str(tmp_path)])
        == 2
    )
    err = capsys.readouterr().err
    assert "known functions:" in err and "fish-detector, litter-detector" in err
    with pytest.raises(SystemExit):
        main(
            [
                "predict",
                str(fish_images),
                "--function",
                "fish-detector",
                "--out",
                str(tmp_path),
                "--threshold",
                "2",
            ]
        )


def test_a_video_given_to_predict_points_to_track(tmp_path, capsys):
    video = tmp_path / "dive.MP4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    argv = ["predict", str(video), "--function", "fish-detector", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert f"`imagine-assist track {video} --function fish-detector`" in capsys.readouterr().err


def test_missing_model_tells_how_to_get_one(tmp_path, capsys, fish_images):
    code = main(
        [
            "predict",
            str(fish_images),
            "--function",
            "fish-detector",
            "--out",
            str(tmp_path),
            "--weights",
            str(tmp_path / "none.onnx"),
        ]
    )
    assert code == 2
    assert "imagine-assist train" in capsys.readouterr().err


def test_predict_gives_each_image_its_preview_and_skips_its_own_outputs(fish_model, tmp_path):
    """a.jpg beside a.png, and sub/x.jpg beside sub__x.jpg, are four previews; a second
    run with --out inside the folder reads none of the first run's previews."""
    source = tmp_path / "photos"
    (source / "sub").mkdir(parents=True)
    frames = generate_fish(4, seed=22)
    for name, sample in zip(["a.jpg", "a.png", "sub/x.jpg", "sub__x.jpg"], frames, strict=True):
        Image.fromarray(sample.image).save(source / name)
    out = source / "results"
    command = ["predict", str(source), "--function", "fish-detector", "--out", str(out)]
    command += ["--weights", str(fish_model.onnx), "--threshold", "0.05"]
    counts = []
    for _ in range(2):
        assert main(command) == 0
        counts.append((out / "counts.csv").read_text())
    assert counts[0] == counts[1]
    with (out / "counts.csv").open() as handle:
        names = [row["image"] for row in csv.DictReader(handle)]
    assert sorted(names) == ["a.jpg", "a.png", "sub/x.jpg", "sub__x.jpg"]
    assert len(list((out / "previews").glob("*.jpg"))) == 4
    # a rerun on fewer images leaves no preview of the image that is gone
    (source / "sub__x.jpg").unlink()
    assert main(command) == 0
    previews = sorted(p.name for p in (out / "previews").glob("*.jpg"))
    assert previews == ["a_jpg.jpg", "a_png.jpg", "sub__x.jpg"]  # sub/x.jpg's, now unshared


def test_outputs_in_the_photos_folder_or_below_the_project_are_never_read_as_photos(
    fish_model, tmp_path
):
    """`--out` the photos' own folder, then the project above it: the plot and the
    previews the first run wrote there were read as photos and counted again."""
    project = tmp_path / "project"
    photos = project / "photos"
    photos.mkdir(parents=True)
    for sample in generate_fish(3, seed=23):
        Image.fromarray(sample.image).save(photos / sample.name)
    (photos / "my_own_plot.png").write_bytes((photos / sample.name).read_bytes())  # a photo

    def names(out):
        with (out / "counts.csv").open() as handle:
            return sorted(row["image"] for row in csv.DictReader(handle))

    options = ["--function", "fish-detector", "--weights", str(fish_model.onnx)]
    for _ in range(2):
        assert main(["predict", str(photos), "--out", str(photos), *options]) == 0
        assert (photos / "counts.png").is_file()
        assert names(photos) == sorted(
            [*(p.name for p in photos.glob("fish_*")), "my_own_plot.png"]
        )
    assert main(["predict", str(project), "--out", str(project), *options]) == 0
    assert names(project) == [f"photos/{name}" for name in names(photos)]


def test_when_no_image_can_be_read_the_error_says_why(tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    for index in range(5):
        (folder / f"{index}.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--function", "fish-detector", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: none of the 5 images under")
    assert "0.jpg" in error and "not an image that can be read" in error
    assert error.endswith("and 2 more")


def test_a_rerun_that_can_read_no_image_leaves_the_earlier_results(fish_images, tmp_path):
    """A second run into the same folder, of files that all fail to read, deleted the
    earlier XML, CSVs and plot before failing, and left nothing in their place."""
    out = tmp_path / "out"
    argv = ["predict", str(fish_images), "--function", "fish-detector", "--out", str(out)]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"annotations.xml", "boxes.csv", "counts.csv", "counts.png"} <= set(before)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "0.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["predict", str(broken), "--function", "fish-detector", "--out", str(out)]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("command", ["predict", "separate", "track"])
def test_a_second_run_into_an_out_folder_in_use_is_refused(tmp_path, capsys, command):
    """Two predicts into one --out removed each other's results, and the folder's listing
    of its outputs was the last one's: one run's results were lost though it said it had
    written them."""
    import subprocess
    import sys

    out = tmp_path / "out"
    holder = subprocess.Popen(  # another run holding the folder, as a real one would
        [sys.executable, "-c", "import sys, time; from imagine_assist.home import "
         "out_folder_held\nwith out_folder_held(sys.argv[1], 'predict'):\n print('held', "
         "flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        source = tmp_path / "photos"
        source.mkdir()
        argv = {
            "predict": ["predict", str(source), "--function", "fish-detector"],
            "separate": ["separate", str(source)],
            "track": ["track", str(source / "tow.mp4")],
        }[command]
        assert main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{out} is in use by another run (predict, pid {holder.pid})" in err
        assert "another folder with --out" in err
    finally:
        holder.kill()
        holder.wait()


def test_one_out_folder_is_one_lock_however_it_is_spelt(tmp_path, monkeypatch, capsys):
    """`--out .` and a symbolic link took locks of their own beside the same folder, and
    a run refused for its input left the folders it had made for its lock."""
    from imagine_assist.errors import UserError
    from imagine_assist.home import out_folder_held

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "link").symlink_to(out)
    monkeypatch.chdir(out)
    with out_folder_held(out, "predict"):
        for spelt in (".", tmp_path / "link", f"{out}/"):
            with pytest.raises(UserError, match="in use by another run"):
                with out_folder_held(spelt, "separate"):
                    pass
    assert sorted(p.name for p in out.iterdir()) == []  # the lock is beside it, not inside
    deep = tmp_path / "new" / "deep" / "out"
    argv = ["predict", str(tmp_path / "nosuch"), "--function", "fish-detector"]
    assert main([*argv, "--out", str(deep)]) == 2
    assert "neither an image nor a directory" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
