"""Exports are untrusted input: image names stay inside the export, unpacking is limited
(checked from the zip's directory before anything is written), damaged zips are a
UserError, and nothing is left behind when unpacking fails. No FiftyOne, no models: fast."""

import json
import os
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from imagine_assist.errors import UserError
from imagine_assist.training import exports
from imagine_assist.training.exports import load_export, unpack, unpacked

IMAGE = b"\xff\xd8\xff\xe0 a JPEG, as far as unpacking cares"


def cvat_xml(*names: str) -> str:
    images = "".join(
        f'<image id="{i}" name="{name}" width="64" height="48">'
        '<box label="fish" xtl="1" ytl="2" xbr="30" ybr="40" occluded="0"/></image>'
        for i, name in enumerate(names)
    )
    header = '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>'
    return f"{header}{images}</annotations>"


def write_zip(path: Path, members: dict[str, bytes | str], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def raw_zip(path: Path, members: list[tuple[str, bytes, int, int, int]]) -> Path:
    """A zip written byte by byte, so that its directory says what a test wants. Members are
    (name, the bytes stored, method, CRC, the uncompressed size declared)."""
    body, directory = b"", b""
    for name, data, method, crc, size in members:
        encoded, date = name.encode(), (1 << 5) | 1  # 1 January 1980
        local = struct.pack(
            "<IHHHHHIIIHH",
            *(0x04034B50, 20, 0, method, 0, date, crc, len(data), size, len(encoded), 0),
        )
        directory += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            *(0x02014B50, 20, 20, 0, method, 0, date, crc, len(data), size, len(encoded)),
            *(0, 0, 0, 0, 0, len(body)),
        )
        directory += encoded
        body += local + encoded + data
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), len(body), 0)
    path.write_bytes(body + directory + end)
    return path


def deflated_repeats(chunk: bytes, times: int) -> bytes:
    """The raw deflate stream of `chunk` repeated `times` times, built without compressing
    them all: after a full flush the compressor forgets, so every chunk compresses alike."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * times + compressor.flush()


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def left_in(work: Path) -> list[str]:
    return sorted(p.name for p in work.rglob("*")) if work.exists() else []


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside any export, that an export must never bring in."""
    path = tmp_path / "elsewhere" / "secret.jpg"
    path.parent.mkdir()
    path.write_bytes(IMAGE)
    return path


# 1. Image names resolve inside the export only


@pytest.mark.parametrize("kind", ["absolute", "parent"])
def test_cvat_image_names_outside_the_export_are_refused(tmp_path, secret, kind):
    name = str(secret) if kind == "absolute" else "../../elsewhere/secret.jpg"
    export = write_zip(
        tmp_path / "task.zip",
        {"annotations.xml": cvat_xml("a.jpg", name), "images/a.jpg": IMAGE},
    )
    work = tmp_path / "work"
    with pytest.raises(UserError, match="outside itself") as refused:
        unpack(export, work)
    assert name in str(refused.value)
    assert left_in(work) == []


def test_coco_file_names_outside_the_export_are_refused(tmp_path, secret):
    coco = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 2, "file_name": str(secret), "width": 64, "height": 48},
        ],
        "annotations": [],
        "categories": [{"id": 1, "name": "fish"}],
    }
    export = write_zip(
        tmp_path / "coco.zip",
        {"annotations/instances_default.json": json.dumps(coco), "images/a.jpg": IMAGE},
    )
    with pytest.raises(UserError, match="outside itself") as refused:
        unpack(export, tmp_path / "work")
    assert str(secret) in str(refused.value)


@pytest.mark.parametrize("where", ["split folder", "image list"])
def test_yolo_paths_outside_the_export_are_refused(tmp_path, secret, where):
    config = {"names": {0: "fish"}}
    members = {"images/train/a.jpg": IMAGE, "labels/train/a.txt": "0 0.5 0.5 0.2 0.2\n"}
    if where == "split folder":
        config["train"] = str(secret.parent)
    else:
        config["train"] = "train.txt"
        members["train.txt"] = f"images/train/a.jpg\n{secret}\n"
    members["data.yaml"] = yaml.safe_dump(config)
    export = write_zip(tmp_path / "yolo.zip", members)
    with pytest.raises(UserError, match="outside itself"):
        unpack(export, tmp_path / "work")
    assert left_in(tmp_path / "work") == []


def test_a_yolo_path_of_the_machine_it_was_made_on_reads_the_export(tmp_path, secret):
    """FiftyOne and Ultralytics write data.yaml's `path` as an absolute folder: inside a zip
    that folder is the export itself, not wherever it once was."""
    config = {"path": str(secret.parent), "train": "./images/train/", "names": {0: "fish"}}
    export = write_zip(
        tmp_path / "yolo.zip",
        {
            "data.yaml": yaml.safe_dump(config),
            "images/train/a.jpg": IMAGE,
            "labels/train/a.txt": "",
        },
    )
    info = unpack(export, tmp_path / "work")
    assert yaml.safe_load((info.root / "data.yaml").read_text())["path"] == "."


def test_exports_naming_their_own_images_still_unpack(tmp_path):
    export = write_zip(
        tmp_path / "task.zip",
        {
            "annotations.xml": cvat_xml("a.jpg", "sub/b.jpg", "sub/../a.jpg"),
            "images/a.jpg": IMAGE,
            "images/sub/b.jpg": IMAGE,
        },
    )
    info = unpack(export, tmp_path / "work")
    assert info.format == "CVAT for images 1.1"
    assert (info.root / "images" / "sub" / "b.jpg").read_bytes() == IMAGE
    assert left_in(tmp_path / "work") == sorted(
        ["export-" + info.sha256[:12], "images", "annotations.xml", "a.jpg", "sub", "b.jpg"]
    )


@pytest.mark.parametrize("kind", ["cvat", "coco"])
def test_a_declared_size_that_is_not_the_images_own_is_refused(tmp_path, kind):
    """Boxes are read in the declared size's pixels: a width of 100,000,000 made every box a
    speck at the corner, trained on without a word. The image's own size is 64x48."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buffer, "PNG")
    for width, refused in ((64, False), (100_000_000, True)):
        if kind == "cvat":
            xml = cvat_xml("a.png").replace('width="64"', f'width="{width}"')
            members = {"annotations.xml": xml}
        else:
            coco = {
                "images": [{"id": 1, "file_name": "a.png", "width": width, "height": 48}],
                "annotations": [],
                "categories": [{"id": 1, "name": "fish"}],
            }
            members = {"annotations/instances_default.json": json.dumps(coco)}
        export = write_zip(
            tmp_path / f"{kind}-{width}.zip", {**members, "images/a.png": buffer.getvalue()}
        )
        if refused:
            with pytest.raises(
                UserError, match="a.png is 64x48 pixels, but its annotations declare 100000000x48"
            ):
                unpack(export, tmp_path / "work")
        else:
            unpack(export, tmp_path / "work")


# 2. Limits, checked from the directory before anything is written


def test_a_small_zip_of_a_huge_xml_is_refused_quickly_and_in_little_memory(tmp_path):
    """356 KB holding a 300 MB annotations.xml, as the probe sent."""
    size = 300 * 2**20
    stream = deflated_repeats(b" " * 2**20, 300)
    export = raw_zip(tmp_path / "bomb.zip", [("annotations.xml", stream, 8, 0, size)])
    assert export.stat().st_size < 400_000
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match="times its size") as refused:
            unpack(export, tmp_path / "work")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exports.RATIO_ENV in str(refused.value)
    assert peak < 20 * 2**20
    assert left_in(tmp_path / "work") == []


def test_a_1_mb_zip_of_1_gb_is_refused_before_it_is_written(tmp_path):
    size = 1100 * 2**20
    stream = deflated_repeats(bytes(2**20), 1100)
    export = raw_zip(
        tmp_path / "bomb.zip",
        [
            ("annotations.xml", cvat_xml("frame.png").encode(), 0, 0, len(cvat_xml("frame.png"))),
            ("images/frame.png", stream, 8, 0, size),  # CRC 0: it must never be read
        ],
    )
    assert export.stat().st_size < 1.2e6
    with pytest.raises(UserError, match="times its size"):
        unpack(export, tmp_path / "work")
    assert left_in(tmp_path / "work") == []


def test_the_unpacked_size_limit_says_how_to_raise_it(tmp_path, monkeypatch):
    export = write_zip(
        tmp_path / "task.zip",
        {"annotations.xml": cvat_xml("a.jpg"), "images/a.jpg": os.urandom(1_500_000)},
        zipfile.ZIP_STORED,
    )
    monkeypatch.setenv(exports.UNPACKED_ENV, "1")
    with pytest.raises(
        UserError, match=f"over 1.0 MB, the limit for one export.*{exports.UNPACKED_ENV}"
    ):
        unpack(export, tmp_path / "work")
    assert left_in(tmp_path / "work") == []
    monkeypatch.setenv(exports.UNPACKED_ENV, "2")
    assert unpack(export, tmp_path / "work").format == "CVAT for images 1.1"


def test_the_file_count_limit_is_read_before_the_directory(tmp_path, monkeypatch):
    members = {"annotations.xml": cvat_xml("0.jpg")} | {f"images/{i}.jpg": IMAGE for i in range(11)}
    export = write_zip(tmp_path / "task.zip", members)
    monkeypatch.setenv(exports.FILES_ENV, "10")
    parsed = []
    monkeypatch.setattr(exports, "_open_zip", lambda path: parsed.append(path))
    with pytest.raises(
        UserError, match=f"holds 12 files, over the limit of 10.*{exports.FILES_ENV}"
    ):
        unpack(export, tmp_path / "work")
    assert parsed == []  # refused from the end record, before zipfile read the directory


def test_an_annotation_file_over_its_limit_is_refused(tmp_path, monkeypatch):
    xml = cvat_xml(*(f"{i:06d}.jpg" for i in range(20_000)))
    assert len(xml) > 2 * exports.MB
    export = write_zip(tmp_path / "task.zip", {"annotations.xml": xml})
    monkeypatch.setenv(exports.ANNOTATION_ENV, "1")
    with pytest.raises(
        UserError, match=f"annotations.xml unpacks to over 1.0 MB.*{exports.ANNOTATION_ENV}"
    ):
        unpack(export, tmp_path / "work")


def test_a_directory_that_understates_a_size_writes_no_more_than_it_says(tmp_path, monkeypatch):
    """The directory says 1 KB; the member inflates to 8 MB. Not a byte past the declared
    size reaches the disk, and the zip is damaged, not a traceback."""
    data = bytes(8 * 2**20)
    export = raw_zip(
        tmp_path / "liar.zip",
        [
            (
                "annotations.xml",
                cvat_xml("a.jpg").encode(),
                0,
                zlib.crc32(cvat_xml("a.jpg").encode()),
                len(cvat_xml("a.jpg")),
            ),
            ("images/a.jpg", deflated(data), 8, zlib.crc32(data), 1024),
        ],
    )
    written = []
    real_extract = exports._extract

    def watch(archive, members, folder, export, limits):
        try:
            real_extract(archive, members, folder, export, limits)
        finally:
            written.extend(p.stat().st_size for p in folder.rglob("*.jpg"))

    monkeypatch.setattr(exports, "_extract", watch)
    with pytest.raises(UserError, match="is damaged: images/a.jpg"):
        unpack(export, tmp_path / "work")
    assert written and max(written) <= 1024
    assert left_in(tmp_path / "work") == []


# 3. Nothing is left behind


def test_an_export_of_no_known_format_leaves_nothing_behind(tmp_path):
    export = write_zip(tmp_path / "other.zip", {"readme.txt": "hello", "data/a.jpg": IMAGE})
    with pytest.raises(UserError, match="not an export this tool reads"):
        unpack(export, tmp_path / "work")
    assert left_in(tmp_path / "work") == []


def test_unpacked_removes_the_folder_however_the_block_ends(tmp_path):
    export = write_zip(
        tmp_path / "task.zip", {"annotations.xml": cvat_xml("a.jpg"), "images/a.jpg": IMAGE}
    )
    with unpacked(export, tmp_path / "work") as info:
        assert (info.root / "images" / "a.jpg").is_file()
    assert not info.root.exists()
    with pytest.raises(KeyError), unpacked(export, tmp_path / "work") as info:
        raise KeyError("the caller failed")
    assert left_in(tmp_path / "work") == []


def test_an_export_that_cannot_be_read_takes_its_unpack_folder_with_it(tmp_path, monkeypatch):
    export = write_zip(
        tmp_path / "video.zip",
        {"annotations.xml": '<annotations><track id="0" label="fish"/></annotations>'},
    )
    info = unpack(export, tmp_path / "work")
    assert info.root.is_dir()
    # no FiftyOne needed: the video reader refuses an export without frames before using it
    monkeypatch.setattr(
        exports,
        "fiftyone",
        lambda: SimpleNamespace(dataset_exists=lambda name: False, list_datasets=lambda: []),
    )
    with pytest.raises(UserError, match="'Save images'"):
        load_export(info)
    assert left_in(tmp_path / "work") == []


def test_folders_of_killed_unpacks_are_removed_at_the_next(tmp_path):
    work = tmp_path / "work"
    abandoned = work / ".export-0123456789ab.999999999.x1y2.partial"  # no such process
    (abandoned / "images").mkdir(parents=True)
    running = work / f".export-0123456789ab.{os.getpid()}.z9.partial"
    running.mkdir()
    export = write_zip(
        tmp_path / "task.zip", {"annotations.xml": cvat_xml("a.jpg"), "images/a.jpg": IMAGE}
    )
    unpack(export, work)
    assert not abandoned.exists() and running.exists()


# 4. A damaged zip is a UserError that says so


def _damage(kind: str, tmp_path: Path) -> Path:
    data = b"".join(b'<image id="%d" name="%d.jpg"/>\n' % (i, i) for i in range(5000))
    stream = deflated(data)
    if kind == "garbled":  # zlib.error: invalid code lengths, distances too far back
        stream = stream[:100] + bytes(b ^ 0x5A for b in stream[100:600]) + stream[600:]
    elif kind == "truncated":  # the stream stops half way
        stream = stream[: len(stream) // 2]
    crc = zlib.crc32(data) ^ (1 if kind == "bad CRC" else 0)
    return raw_zip(
        tmp_path / f"{kind}.zip",
        [
            ("images/a.jpg", IMAGE, 0, zlib.crc32(IMAGE), len(IMAGE)),
            ("annotations.xml", stream, 8, crc, len(data)),
        ],
    )


@pytest.mark.parametrize("kind", ["garbled", "truncated", "bad CRC"])
def test_a_damaged_zip_says_it_is_damaged(tmp_path, kind):
    export = _damage(kind, tmp_path)
    with pytest.raises(UserError, match=f"{export} is damaged: annotations.xml cannot be read"):
        unpack(export, tmp_path / "work")
    assert left_in(tmp_path / "work") == []  # images/a.jpg was written, and removed


def test_a_zip_this_tool_cannot_unpack_says_why(tmp_path):
    export = write_zip(
        tmp_path / "bz2.zip", {"annotations.xml": cvat_xml("a.jpg")}, zipfile.ZIP_BZIP2
    )
    with pytest.raises(UserError, match="compressed with method 12"):
        unpack(export, tmp_path / "work")


def test_an_export_saved_without_its_images_says_how_to_export_it(tmp_path):
    """CVAT leaves the images out of an export unless 'Save images' is ticked."""
    bare = write_zip(tmp_path / "bare.zip", {"annotations.xml": cvat_xml("a.jpg", "b.jpg")})
    with pytest.raises(UserError, match="none of the images.*'Save images'"):
        unpack(bare, tmp_path / "work")
    partial = write_zip(
        tmp_path / "partial.zip",
        {"annotations.xml": cvat_xml("a.jpg", "b.jpg"), "images/a.jpg": IMAGE},
    )
    with pytest.raises(UserError, match="lacks 1 of the 2 images.*'b.jpg'"):
        unpack(partial, tmp_path / "work")
    assert left_in(tmp_path / "work") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('width="64" ', ""), "<image> 'a.jpg' has no width, where CVAT writes a number"),
        (('xtl="1" ', ""), "a <box> of 'a.jpg' has no xtl"),
        (('ybr="40"', 'ybr="forty"'), "a <box> of 'a.jpg' has ybr='forty'"),
        (('label="fish" ', ""), "a <box> of 'a.jpg' has no label"),
    ],
)
def test_a_cvat_image_or_box_missing_a_field_is_named(tmp_path, change, message):
    xml = cvat_xml("a.jpg").replace(*change)
    export = write_zip(tmp_path / "t.zip", {"annotations.xml": xml, "images/a.jpg": IMAGE})
    with pytest.raises(UserError, match=message.replace("<", ".").replace(">", ".")):
        unpack(export, tmp_path / "work")


def test_a_coco_annotation_of_an_undeclared_category_is_named(tmp_path):
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 3, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}],
        "categories": [{"id": 1, "name": "fish"}],
    }
    export = write_zip(
        tmp_path / "coco.zip",
        {"annotations/instances_default.json": json.dumps(coco), "images/a.jpg": IMAGE},
    )
    with pytest.raises(UserError, match="annotation .id 3. of category 7, which its categories"):
        unpack(export, tmp_path / "work")


def yaml_bomb(levels: int = 10) -> str:
    """9 ** levels strings in a few hundred bytes: each list names the one before 9 times."""
    lines = ['a: &a ["lol"]']
    for level in range(1, levels):
        lines.append(
            f"l{level}: &l{level} ["
            + ", ".join(["*" + (f"l{level - 1}" if level > 1 else "a")] * 9)
            + "]"
        )
    lines.append(f"train: *l{levels - 1}")
    lines.append("names: {0: fish}")
    return "\n".join(lines) + "\n"


def test_a_yaml_bomb_in_data_yaml_is_refused_at_once_in_little_memory(tmp_path):
    """A 927-byte zip took 6.3 GB and ended in a MemoryError traceback."""
    members = {"data.yaml": yaml_bomb(), "images/train/a.jpg": IMAGE, "labels/train/a.txt": ""}
    export = write_zip(tmp_path / "bomb.zip", members)
    tracemalloc.start()
    with pytest.raises(UserError, match="holds over 100,000 values once its aliases"):
        unpack(export, tmp_path / "work")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50e6 and left_in(tmp_path / "work") == []


def test_a_yolo_split_that_is_not_a_folder_name_is_named(tmp_path):
    members = {"data.yaml": "train: [[a, b]]\nnames: {0: fish}\n", "images/train/a.jpg": IMAGE}
    with pytest.raises(UserError, match="data.yaml's train names .'a', 'b'., not a folder"):
        unpack(write_zip(tmp_path / "odd.zip", members), tmp_path / "work")


@pytest.mark.parametrize("kind", ["coco json", "data.yaml"])
def test_annotations_nested_past_the_parsers_depth_are_one_line(tmp_path, kind):
    if kind == "coco json":
        members = {"annotations/instances_default.json": "[" * 100_000, "images/a.jpg": IMAGE}
        says = "is JSON nested too deeply"
    else:
        members = {"data.yaml": "train: " + "[" * 20_000, "images/train/a.jpg": IMAGE}
        says = "data.yaml is (YAML nested too deeply|not readable YAML)"
    with pytest.raises(UserError, match=says):
        unpack(write_zip(tmp_path / "deep.zip", members), tmp_path / "work")


def test_a_coco_bbox_that_is_not_four_finite_numbers_is_named(tmp_path):
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 1e309, 10]}],
        "categories": [{"id": 1, "name": "fish"}],
    }
    text = json.dumps(coco).replace("Infinity", "1e309")
    export = write_zip(
        tmp_path / "coco.zip", {"annotations/instances_default.json": text, "images/a.jpg": IMAGE}
    )
    with pytest.raises(UserError, match=r"id 3\) whose bbox is not four finite numbers"):
        unpack(export, tmp_path / "work")


def test_a_shape_of_millions_of_points_is_refused_before_fiftyone_reads_it(tmp_path):
    """8.6 KB zipped, it took FiftyOne 64 s and 2.6 GB before it refused the sample."""
    points = ";".join(["1.00,2.00"] * 200_000)
    xml = cvat_xml("a.jpg").replace(
        "</image>", f'<polygon label="fish" points="{points}" z_order="0"/></image>'
    )
    export = write_zip(tmp_path / "task.zip", {"annotations.xml": xml, "images/a.jpg": IMAGE})
    with pytest.raises(UserError, match="a <polygon> of 'a.jpg' has about 200,000 points"):
        unpack(export, tmp_path / "work")
