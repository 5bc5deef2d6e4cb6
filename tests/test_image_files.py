"""Which files a command reads, and the names their outputs take."""

import os
from pathlib import Path

import pytest

from imagine_assist.errors import UserError
from imagine_assist.image_files import OutputFiles, list_images, list_output, output_stems


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_the_commands_own_output_folder_is_not_read_as_input(tmp_path):
    first = touch(tmp_path / "a.jpg")
    preview = touch(tmp_path / "results" / "previews" / "a.jpg")  # a run before, --out results
    nested = touch(tmp_path / "sub" / "b.PNG")
    assert list_images(tmp_path) == [first, preview, nested]
    assert list_images(tmp_path, outputs=tmp_path / "results") == [first, nested]
    # named another way (relative, with ..): the same folder
    relative = Path(os.path.relpath(tmp_path / "sub" / ".." / "results"))
    assert list_images(tmp_path, outputs=relative) == [first, nested]
    with pytest.raises(UserError, match="no images"):
        list_images(tmp_path / "results", outputs=tmp_path / "results", own_folders=("previews",))


def test_an_output_folder_holding_the_source_leaves_out_only_the_commands_own_folders(tmp_path):
    """`--out` the project folder above the photos, or the photos' folder itself: the photos
    are read (it said "no images"), the previews the command wrote there are not."""
    photo = touch(tmp_path / "photos" / "a.jpg")
    nested = touch(tmp_path / "photos" / "dive2" / "b.jpg")
    touch(tmp_path / "photos" / "previews" / "a.jpg")  # a run before, --out photos
    own = ("previews",)
    assert list_images(tmp_path / "photos", outputs=tmp_path, own_folders=own) == [
        photo,
        nested,
        tmp_path / "photos" / "previews" / "a.jpg",  # under photos/, not the --out's previews/
    ]
    assert list_images(tmp_path / "photos", outputs=tmp_path / "photos", own_folders=own) == [
        photo,
        nested,
    ]


def test_a_link_in_the_source_to_an_output_is_still_read(tmp_path):
    target = touch(tmp_path / "out" / "x.jpg")
    link = tmp_path / "in" / "x.jpg"
    link.parent.mkdir()
    link.symlink_to(target)
    assert list_images(tmp_path / "in", outputs=tmp_path / "out") == [link]


def test_output_stems_are_unique_and_plain_where_they_can_be():
    base = Path("/scan")
    paths = [
        base / "a.jpg",
        base / "a.png",  # same stem as a.jpg
        base / "s1" / "v1.jpg",
        base / "s2" / "v1.jpg",  # a sample folder reusing a vignette name
        base / "v1.png",
        base / "sub" / "x.jpg",
        base / "sub__x.jpg",
        base / "only.jpg",
    ]
    plain = output_stems(paths, base)
    assert len(set(plain.values())) == len(paths)
    assert plain[base / "only.jpg"] == "only" and plain[base / "sub" / "x.jpg"] == "x"
    assert plain[base / "s1" / "v1.jpg"] == "s1__v1_jpg"
    assert plain[base / "s2" / "v1.jpg"] == "s2__v1_jpg"
    assert {plain[base / "a.jpg"], plain[base / "a.png"]} == {"a_jpg", "a_png"}
    folders = output_stems(paths, base, with_folders=True)
    assert len(set(folders.values())) == len(paths)
    assert folders[base / "s1" / "v1.jpg"] == "s1__v1" and folders[base / "v1.png"] == "v1"
    # sub/x.jpg and sub__x.jpg read alike even with their suffix: a counter settles it
    assert {folders[base / "sub" / "x.jpg"], folders[base / "sub__x.jpg"]} == {
        "sub__x_jpg",
        "sub__x_jpg-2",
    }


def test_photos_in_a_format_not_read_are_named_not_passed_over(tmp_path, caplog):
    """A DJI flight saved as HEIC beside one PNG: only the PNG was counted, without a word."""
    (tmp_path / "DJI_0001.HEIC").write_bytes(b"not read")
    (tmp_path / "DJI_0002.heic").write_bytes(b"not read")
    (tmp_path / "a.png").write_bytes(b"")
    with caplog.at_level("WARNING", logger="imagine_assist"):
        assert list_images(tmp_path) == [tmp_path / "a.png"]
    assert "2 photos (.heic) are not read" in caplog.text and "DJI_0001.HEIC" in caplog.text


def test_a_stem_never_starts_or_ends_with_a_space():
    """EcoTaxa strips every TSV cell: the cut-out " leading_1.png" was looked for as
    "leading_1.png" and reported missing."""
    base = Path("/scan")
    paths = [base / " leading.jpg", base / "trailing .jpg", base / " .jpg", base / "in side.jpg"]
    stems = output_stems(paths, base)
    assert list(stems.values()) == ["_leading", "trailing_", "_", "in side"]


def test_a_counted_name_never_takes_another_images_stem():
    base = Path("/scan")
    paths = [base / "a" / "b.jpg", base / "a__b.jpg", base / "a__b_jpg-2.jpg"]
    stems = output_stems(paths, base, with_folders=True)
    assert list(stems.values()) == ["a__b_jpg", "a__b_jpg-2", "a__b_jpg-2-2"]


def test_a_rerun_removes_what_the_run_before_wrote_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    first = OutputFiles(out, "predict", ("previews",))
    for name in ("a.jpg", "b.jpg"):
        first.wrote(touch(out / "previews" / name))
    first.finish()
    mine = touch(out / "previews" / "notes.jpg")  # the user's own file, never listed
    second = OutputFiles(out, "predict", ("previews",))
    second.wrote(touch(out / "previews" / "a.jpg"))
    assert second.finish() == ["previews/b.jpg"]
    assert sorted(p.name for p in (out / "previews").iterdir()) == ["a.jpg", "notes.jpg"]
    assert mine.exists()


def test_a_run_that_died_halfway_is_cleaned_up_by_the_next(tmp_path):
    out = tmp_path / "out"
    died = OutputFiles(out, "separate", ("ecotaxa",))
    died.wrote(touch(out / "ecotaxa" / "x_1.png"))
    died.wrote(touch(out / "ecotaxa" / "x_2.png"))  # and no finish(): killed here
    died._handle.close()
    rerun = OutputFiles(out, "separate", ("ecotaxa",))
    rerun.wrote(touch(out / "ecotaxa" / "x_1.png"))
    assert rerun.finish() == ["ecotaxa/x_2.png"]


def test_a_tampered_list_cannot_remove_files_outside_the_commands_folders(tmp_path):
    out = tmp_path / "out"
    precious = touch(tmp_path / "precious.txt")
    elsewhere = touch(out / "annotations.xml")
    deep = touch(out / "previews" / "sub" / "x.jpg")
    (out / ".predict-outputs").write_text(
        f"{precious}\n../precious.txt\npreviews/../../precious.txt\nannotations.xml\n"
        "previews/sub/x.jpg\nprevious/..\n\\\\server\\share\n"
    )
    OutputFiles(out, "predict", ("previews",)).finish()
    assert precious.exists() and elsewhere.exists() and deep.exists()


def test_escaped_names_and_a_stale_entry_that_cannot_go_do_not_stop_a_rerun(tmp_path):
    out = tmp_path / "out"
    first = OutputFiles(out, "predict", ("previews",))
    escaped = touch(out / "previews" / "ph\\xffoto.jpg")  # readable_name of b"ph\xffoto"
    first.wrote(escaped)
    first.wrote(touch(out / "previews" / "b.jpg"))
    first.finish()
    (out / "previews" / "b.jpg").unlink()
    (out / "previews" / "b.jpg").mkdir()  # a folder there now: not removable as a file
    assert OutputFiles(out, "predict", ("previews",)).finish() == [
        "previews/b.jpg",
        "previews/ph\\xffoto.jpg",
    ]
    assert not escaped.exists() and (out / "previews" / "b.jpg").is_dir()


def test_what_a_worker_listed_before_a_run_died_is_cleaned_up_next(tmp_path):
    out = tmp_path / "out"
    run = OutputFiles(out, "separate", ("ecotaxa",))
    cut = touch(out / "ecotaxa" / "v_1.png")
    list_output(run.listing, out, cut)  # a worker listed and wrote it; never collected
    rerun = OutputFiles(out, "separate", ("ecotaxa",))
    assert rerun.finish() == ["ecotaxa/v_1.png"] and not cut.exists()


def test_images_in_a_linked_folder_are_read_and_a_link_loop_is_walked_once(tmp_path):
    """A flight linked in from another disk was passed over without a word."""
    disk, survey = tmp_path / "disk" / "flight2", tmp_path / "survey"
    disk.mkdir(parents=True)
    (survey / "flight1").mkdir(parents=True)
    (disk / "b.jpg").write_bytes(b"x")
    (survey / "flight1" / "a.jpg").write_bytes(b"x")
    (survey / "flight2").symlink_to(disk)
    (survey / "flight1" / "back").symlink_to(survey)  # a loop: survey/flight1/back/flight1/...
    assert list_images(survey) == [survey / "flight1" / "a.jpg", survey / "flight2" / "b.jpg"]


def test_an_earlier_runs_output_folder_named_as_the_source_is_read(tmp_path):
    """`separate vignettes --out sep`, then any command on `sep/ecotaxa`: its cut-outs are
    what the user asks for, though the run's listing names them."""
    cut_out = touch(tmp_path / "sep" / "ecotaxa" / "v_1.png")
    (tmp_path / "sep" / ".separate-outputs").write_text("ecotaxa/v_1.png\n")
    assert list_images(tmp_path / "sep" / "ecotaxa") == [cut_out]
    with pytest.raises(UserError, match="no images"):  # from above, they are outputs
        list_images(tmp_path / "sep")
