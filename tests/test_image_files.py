"""Which files a command reads, and the names their outputs take."""

import os
from pathlib import Path

import pytest

from imagine_assist.errors import UserError
from imagine_assist.image_files import list_images, output_stems


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
        list_images(tmp_path / "results", outputs=tmp_path / "results")


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


def test_a_counted_name_never_takes_another_images_stem():
    base = Path("/scan")
    paths = [base / "a" / "b.jpg", base / "a__b.jpg", base / "a__b_jpg-2.jpg"]
    stems = output_stems(paths, base, with_folders=True)
    assert list(stems.values()) == ["a__b_jpg", "a__b_jpg-2", "a__b_jpg-2-2"]
