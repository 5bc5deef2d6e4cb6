"""CVAT export zips into FiftyOne datasets, and from there into a YOLO training dataset.

Reading goes through FiftyOne's own importers (CVAT for images 1.1, COCO 1.0, Ultralytics
YOLO Detection 1.0), chosen from what the zip holds; CVAT for video 1.1 tracks, which
FiftyOne reads only beside the video file, are read from the XML into one sample per
exported frame. Writing goes through FiftyOne's YOLO exporter. The split is decided by each
image's content hash, so an image lands in the same split in every round, whatever export
it came in, and the held-out images never reach training; video frames are split by
stretches of video instead, so neighbouring frames share their split.

An export is untrusted input: its sizes are limited (`ExportLimits`), checked from the zip's
directory before anything is written and again while writing; a damaged member is a
`UserError`; every image it names must lie inside it; and an unpack that fails leaves
nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import struct
import tempfile
import uuid
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from imagine_assist.checksums import file_sha256
from imagine_assist.errors import UserError
from imagine_assist.fiftyone_database import forget_inherited_port, keep_to_own_database
from imagine_assist.home import Home, configure_offline
from imagine_assist.image_files import IMAGE_SUFFIXES
from imagine_assist.images import readable_name, upright_size

log = logging.getLogger(__name__)
GROUND_TRUTH = "ground_truth"
SPLIT_GROUP = "split_group"
# 100 video frames, 4 s at 25 fps: the camera has moved on by more than a frame's height
VIDEO_SEGMENT_FRAMES = 100
MAX_POINTS_CHARS = 1_000_000  # a shape's `points`: some 50,000 points of "x.xx,y.yy;"
MAX_YAML_NODES = 100_000  # a data.yaml of 10,000 class names is a tenth of it
_FRAME = re.compile(r"^frame_(\d+)$")  # CVAT's names for video frames: frame_000123.PNG
FORMATS = (
    "CVAT for images 1.1",
    "CVAT for video 1.1",
    "COCO 1.0",
    "Ultralytics YOLO Detection 1.0",
)
YOLO_SPLITS = ("train", "val", "valid", "test", "Train", "Validation")

MB = 10**6
# A CVAT task of thousands of 20 MP frames (5-10 MB each as JPEG or PNG) fits in each.
MAX_UNPACKED_BYTES = 20_000 * MB
MAX_FILES = 200_000
MAX_ANNOTATION_BYTES = 512 * MB  # each annotation file: XML, JSON, YAML, TXT
# Images barely compress and CVAT's XML about 10 times, so an export unpacks to a few times
# its size at most; a zip bomb to hundreds of times. Small exports are not held to it.
MAX_RATIO = 200
RATIO_FLOOR = 100 * MB
ANNOTATION_SUFFIXES = (".xml", ".json", ".yaml", ".yml", ".txt")
UNPACKED_ENV = "IMAGINE_ASSIST_EXPORT_MAX_MB"
FILES_ENV = "IMAGINE_ASSIST_EXPORT_MAX_FILES"
ANNOTATION_ENV = "IMAGINE_ASSIST_EXPORT_MAX_ANNOTATION_MB"
RATIO_ENV = "IMAGINE_ASSIST_EXPORT_MAX_RATIO"
_CHUNK = 1 << 20
# what reading a damaged member raises: a bad CRC, a truncated or garbled deflate stream
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


def fiftyone():
    """Import FiftyOne only after its database directory and telemetry are set."""
    configure_offline(Home.resolve())
    forget_inherited_port()
    import fiftyone as fo

    keep_to_own_database()
    return fo


@dataclass(frozen=True)
class ExportInfo:
    path: Path
    format: str
    sha256: str
    root: Path  # where it was unpacked


def _size(count: float) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / MB:.1f} MB"


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not number > 0:
        raise UserError(f"{name}={value!r}: give a positive number")
    return number


@dataclass(frozen=True)
class ExportLimits:
    """How much one export may unpack to: in all, in files, in each annotation file, and
    as a multiple of the zip's own size. Each can be raised through its environment
    variable (sizes in MB)."""

    unpacked_bytes: float = MAX_UNPACKED_BYTES
    files: float = MAX_FILES
    annotation_bytes: float = MAX_ANNOTATION_BYTES
    ratio: float = MAX_RATIO

    @classmethod
    def from_env(cls) -> ExportLimits:
        return cls(
            _env_number(UNPACKED_ENV, MAX_UNPACKED_BYTES / MB) * MB,
            _env_number(FILES_ENV, MAX_FILES),
            _env_number(ANNOTATION_ENV, MAX_ANNOTATION_BYTES / MB) * MB,
            _env_number(RATIO_ENV, MAX_RATIO),
        )

    def check_count(self, export: Path, count: int) -> None:
        if count > self.files:
            raise UserError(
                f"{export} holds {count:,} files, over the limit of {self.files:,.0f} for one "
                f"export: export the task in parts, or raise the limit with {FILES_ENV}=N"
            )

    def check_size(self, export: Path, name: str, member: int, total: int, zip_bytes: int):
        """`member`: the bytes of `name` so far; `total`: of the whole export so far."""
        if name.lower().endswith(ANNOTATION_SUFFIXES) and member > self.annotation_bytes:
            raise UserError(
                f"{export}: {name} unpacks to over {_size(self.annotation_bytes)}, the limit "
                "for one annotation file: export the task in parts, or raise the limit with "
                f"{ANNOTATION_ENV}=MB"
            )
        if total > self.unpacked_bytes:
            raise UserError(
                f"{export} unpacks to over {_size(self.unpacked_bytes)}, the limit for one "
                f"export: export the task in parts, or raise the limit with {UNPACKED_ENV}=MB"
            )
        if total > max(RATIO_FLOOR, self.ratio * zip_bytes):
            raise UserError(
                f"{export} ({_size(zip_bytes)}) unpacks to over {self.ratio:g} times its size, "
                "as a zip bomb does (an export of images stays near once its size). If it is "
                f"a genuine export, raise the limit with {RATIO_ENV}=TIMES"
            )


def _declared_entries(export: Path) -> int | None:
    """The number of entries the zip's end record declares, read before zipfile parses the
    directory (millions of entries would take gigabytes); None where it cannot tell."""
    try:
        with export.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - (22 + 0xFFFF + 20)))  # the record, a comment, a locator
            tail = handle.read()
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or at + 22 > len(tail):
                return None
            entries = struct.unpack_from("<H", tail, at + 10)[0]
            if entries != 0xFFFF:
                return entries
            if at < 20 or tail[at - 20 : at - 16] != b"PK\x06\x07":  # zip64's locator
                return None
            handle.seek(struct.unpack_from("<Q", tail, at - 12)[0])
            record = handle.read(40)
    except OSError:
        return None  # _open_zip says what is wrong
    if len(record) < 40 or record[:4] != b"PK\x06\x06":
        return None
    return struct.unpack_from("<Q", record, 32)[0]


def _open_zip(export: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(export)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise UserError(
            f"{export} is not a readable zip ({error}); export the task again"
        ) from None


def _check_directory(export: Path, members: list[zipfile.ZipInfo], limits: ExportLimits):
    """Everything the zip's directory can tell before a byte is written."""
    limits.check_count(export, len(members))
    zip_bytes, total = export.stat().st_size, 0
    for info in members:
        name = info.filename
        if name.startswith("/") or ".." in Path(name).parts:  # never outside the unpack folder
            raise UserError(f"{export} holds an unsafe path: {name}")
        if info.flag_bits & 0x1:
            raise UserError(f"{export}: {name} is encrypted; export the task without a password")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UserError(
                f"{export}: {name} is compressed with method {info.compress_type}, which this "
                "tool does not unpack; zip it again with deflate, as CVAT does"
            )
        total += info.file_size
        limits.check_size(export, name, info.file_size, total, zip_bytes)


def _damaged(export: Path, name: str, why) -> UserError:
    return UserError(f"{export} is damaged: {name} cannot be read ({why}); export the task again")


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, export: Path) -> Iterator[bytes]:
    """A member's bytes, a megabyte at a time; zipfile checks its CRC at the end."""
    try:
        with archive.open(info) as source:
            while chunk := source.read(_CHUNK):
                yield chunk
    except _DAMAGE as error:
        raise _damaged(export, info.filename, error) from None


def _extract(archive, members, folder: Path, export: Path, limits: ExportLimits) -> None:
    """Write the members under `folder`, counting what is written, since the sizes the
    directory declares can lie."""
    zip_bytes, total = export.stat().st_size, 0
    for info in members:
        target = folder / info.filename
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with target.open("wb") as sink:
            for chunk in _chunks(archive, info, export):
                written += len(chunk)
                total += len(chunk)
                if written > info.file_size:
                    raise _damaged(export, info.filename, "longer than its directory says")
                limits.check_size(export, info.filename, written, total, zip_bytes)
                sink.write(chunk)


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned(work_dir: Path) -> None:
    """Half-unpacked folders of runs that were killed (their process is gone)."""
    for folder in work_dir.glob(".export-*.partial"):
        try:
            pid = int(folder.name.split(".")[2])
        except (IndexError, ValueError):
            continue
        if pid > 0 and not _process_running(pid):
            shutil.rmtree(folder, ignore_errors=True)


def unpack(export: str | Path, work_dir: Path, sha256: str | None = None) -> ExportInfo:
    """Unpack an export into `work_dir`/export-<hash> as untrusted input: within
    `ExportLimits`, checked from the zip's directory first; damaged members, unsafe paths,
    and image names outside the export (`check_image_names`) are refused with a
    `UserError`. It is written to a temporary folder, which is removed if anything fails
    and renamed into place when all is well; the caller keeps the result (the FiftyOne
    samples point into it) and removes it, or uses `unpacked`. `sha256`, when the caller
    has just computed it, saves reading the export again."""
    export = Path(export)
    if not export.is_file():
        raise UserError(f"no export at {export}")
    limits = ExportLimits.from_env()
    declared = _declared_entries(export)
    if declared is not None:
        limits.check_count(export, declared)
    # absolute: FiftyOne's YOLO importer joins a relative folder onto itself (publish --out pub)
    work_dir = Path(work_dir).absolute()
    with _open_zip(export) as archive:
        members = archive.infolist()
        _check_directory(export, members, limits)
        sha = sha256 or file_sha256(export)
        root = work_dir / f"export-{sha[:12]}"
        work_dir.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(work_dir)
        staging = Path(
            tempfile.mkdtemp(
                prefix=f".export-{sha[:12]}.{os.getpid()}.", suffix=".partial", dir=work_dir
            )
        )
        try:
            try:
                _extract(archive, members, staging, export, limits)
            except OSError as error:  # the disk, not the zip: _chunks turns those into UserError
                raise UserError(f"could not unpack {export} into {work_dir}: {error}") from None
            export_format = detect_format(staging, export)
            check_image_names(staging, export_format, export)
            if root.exists():
                # moved aside, then removed: the folder is missing for two renames, not for
                # the whole removal (earlier datasets of this export point into it)
                old = work_dir / f".export-{sha[:12]}.{os.getpid()}.old.partial"
                os.replace(root, old)
                os.replace(staging, root)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return ExportInfo(export, export_format, sha, root)


@contextmanager
def unpacked(export: str | Path, work_dir: Path, sha256: str | None = None) -> Iterator[ExportInfo]:
    """`unpack` for the length of a `with` block: the folder is removed when the block
    ends, however it ends. For callers that keep nothing pointing into it afterwards (a
    FiftyOne dataset of it does: delete the dataset inside the block)."""
    info = unpack(export, work_dir, sha256)
    try:
        yield info
    finally:
        shutil.rmtree(info.root, ignore_errors=True)


def _inside(root: Path, path: str | Path) -> bool:
    """Whether `path` (absolute, or relative to the current directory) lies inside `root`,
    after `..` and symbolic links are followed."""
    try:
        return Path(path).resolve().is_relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a loop of links
        return False


def _outside(export: Path, name: str) -> UserError:
    return UserError(
        f"{export} names an image outside itself: {name!r}. An export may name only the "
        "images it holds: export the task from CVAT again"
    )


def cvat_images(xml_path: Path, export: Path) -> Iterator[ET.Element]:
    """Each complete <image> element of a CVAT for images 1.1 XML, read as a stream (the
    XML can be hundreds of megabytes): the images before it are cleared as it comes."""
    try:
        top = None
        for event, element in ET.iterparse(xml_path, events=("start", "end")):
            top = element if top is None else top
            if event == "end" and element.tag == "image":
                yield element
                top.clear()  # the images read so far
    except ET.ParseError as error:
        raise UserError(f"{export}: {xml_path.name} is not readable CVAT XML: {error}") from None


def cvat_image_name(image: ET.Element) -> str:
    """An <image>'s file as FiftyOne's importer looks it up: subset/name."""
    name, subset = image.get("name", ""), image.get("subset")
    return os.path.join(subset, name) if subset else name


def _cvat_image_names(xml_path: Path, export: Path) -> Iterator[tuple[str, object]]:
    """Each <image>'s file and its declared (width, height), as written. An image without
    its size, or a box without its label or a corner, is refused by name: FiftyOne's
    importer says only `'@width'`."""
    for image in cvat_images(xml_path, export):
        name = cvat_image_name(image)
        for key in ("width", "height"):
            _number_attribute(image, key, f"<image> {name!r}", export)
        for box in image.iter("box"):
            if not box.get("label"):
                raise UserError(f"{export}: a <box> of {name!r} has no label")
            for key in ("xtl", "ytl", "xbr", "ybr"):
                _number_attribute(box, key, f"a <box> of {name!r}", export)
        for shape in image:
            points = shape.get("points") or ""
            if len(points) > MAX_POINTS_CHARS:
                # FiftyOne took a minute and 2.6 GB on one polygon of 2 million points before
                # it refused the sample; CVAT's own tools draw some hundreds
                raise UserError(
                    f"{export}: a <{shape.tag}> of {name!r} has about {points.count(';') + 1:,} "
                    f"points; at most {MAX_POINTS_CHARS // 20:,} are read"
                )
        yield name, (image.get("width"), image.get("height"))


def _number_attribute(element: ET.Element, key: str, what: str, export: Path) -> None:
    try:
        if math.isfinite(float(element.get(key))):
            return
    except (TypeError, ValueError):
        pass
    value = element.get(key)
    said = "no " + key if value is None else f"{key}={readable_name(value[:40])!r}"
    raise UserError(f"{export}: {what} has {said}, where CVAT writes a number")


def coco_subsets(root: Path) -> list[tuple[Path, Path]]:
    """A COCO export's label files, each with the folder its images are in: CVAT writes
    one `instances_<subset>.json` a subset (Train, Validation...), with the subset's
    images in `images/<subset>/`, or all of them in `images/`."""
    files = sorted(root.glob("annotations/instances_*.json")) or sorted(
        root.glob("annotations/*.json")
    )
    subsets = []
    for labels in files:
        folder = images_dir(root) / labels.stem.removeprefix("instances_")
        subsets.append((labels, folder if folder.is_dir() else images_dir(root)))
    return subsets


def _coco_image_names(labels: Path, export: Path) -> Iterator[tuple[str, object]]:
    try:
        data = json.loads(labels.read_bytes())
    except RecursionError:
        raise UserError(f"{export}: {labels.name} is JSON nested too deeply") from None
    except (OSError, ValueError) as error:
        raise UserError(f"{export}: {labels.name} is not readable JSON: {error}") from None
    images = data.get("images") if isinstance(data, dict) else None
    _check_coco_categories(data, labels.name, export)
    for image in images if isinstance(images, list) else []:
        if isinstance(image, dict) and isinstance(image.get("file_name"), str):
            yield image["file_name"], (image.get("width"), image.get("height"))


def _check_coco_categories(data, name: str, export: Path) -> None:
    """Every annotation's category is one the file declares: FiftyOne's importer says only
    the number (`7`)."""
    if not isinstance(data, dict):
        return
    categories = data.get("categories")
    known = (
        {c.get("id") for c in categories if isinstance(c, dict)}
        if isinstance(categories, list)
        else set()
    )
    annotations = data.get("annotations")
    for annotation in annotations if isinstance(annotations, list) else []:
        if not isinstance(annotation, dict):
            continue
        if annotation.get("category_id") not in known:
            raise UserError(
                f"{export}: {name} has an annotation (id {annotation.get('id')!r}) of category "
                f"{annotation.get('category_id')!r}, which its categories do not declare"
            )
        box = annotation.get("bbox")
        if box is not None and not _finite_box(box):
            # CVAT's XML is held to the same: 1e309 is read as infinity, and scored as a miss
            raise UserError(
                f"{export}: {name} has an annotation (id {annotation.get('id')!r}) whose bbox "
                f"is not four finite numbers: {readable_name(repr(box)[:80])}"
            )


def _finite_box(box: object) -> bool:
    return (
        isinstance(box, list)
        and len(box) == 4
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box
        )
    )


def read_yaml(path: Path, where: object) -> object:
    """A YAML file that came from outside (an export's data.yaml), or a UserError naming
    `where`: unreadable, not YAML, nested past the parser's depth, or larger, its anchors'
    aliases followed, than any data.yaml could be. (A 1 KB file of nested aliases, a "YAML
    bomb", loads cheaply as shared lists and grows to gigabytes the moment it is walked.)"""
    try:
        value = yaml.safe_load(path.read_text(errors="replace"))
    except OSError as error:
        raise UserError(f"{where}: {path.name} cannot be read: {error}") from None
    except yaml.YAMLError as error:
        raise UserError(f"{where}: {path.name} is not readable YAML: {error}") from None
    except RecursionError:
        raise UserError(f"{where}: {path.name} is YAML nested too deeply") from None
    stack, seen = [value], 0
    while stack:  # every node as often as it is reached: what a walk of it would cost
        item = stack.pop()
        seen += 1
        if seen > MAX_YAML_NODES:
            raise UserError(
                f"{where}: {path.name} holds over {MAX_YAML_NODES:,} values once its aliases "
                "are followed; a data.yaml names some folders and classes"
            )
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


def yaml_split_entries(config: dict) -> Iterator[tuple[str, object]]:
    """Each (split key, entry) a data.yaml names: a key's string, or each item of its list."""
    for key in YOLO_SPLITS:
        value = config.get(key)
        for entry in (
            [value] if isinstance(value, str) else value if isinstance(value, list) else []
        ):
            yield key, entry


def yaml_split_folders(root: Path, config: dict) -> list[Path]:
    """The image folders a data.yaml's splits name, found the ways Ultralytics finds them:
    under `path`, beside the yaml, or (Roboflow's `../train/images`) inside the folder;
    resolved, each once. Image lists (.txt) are no folders: they name images in these."""
    base = Path(str(config.get("path") or root))
    base = base if base.is_absolute() else root / base
    folders: list[Path] = []
    for _, entry in yaml_split_entries(config):
        candidates = [base / str(entry), root / str(entry), root / str(entry).lstrip("./")]
        found = next((c.resolve() for c in candidates if c.is_dir()), None)
        if found is not None and found not in folders:
            folders.append(found)
    return folders


def _confine_yolo(root: Path, export: Path) -> None:
    """data.yaml's `path` names where the dataset was written (FiftyOne and Ultralytics
    write an absolute one), which in an export is the export itself: a `path` outside it is
    replaced by the folder data.yaml is in. A split folder or image list outside the
    export, or an image a list names outside it, is refused."""
    data_yaml = root / "data.yaml"
    config = read_yaml(data_yaml, export)
    if not isinstance(config, dict):
        return
    base = root
    if config.get("path"):
        path = str(config["path"])
        if _inside(root, root / path):
            base = root / path
        else:
            log.warning(
                "%s: data.yaml's path %s is outside the export; reading the export", export, path
            )
            config["path"] = "."
            data_yaml.write_text(yaml.safe_dump(config, sort_keys=False))
    for split, entry in yaml_split_entries(config):
        if not isinstance(entry, str):
            raise UserError(
                f"{export}: data.yaml's {split} names {readable_name(repr(entry)[:80])}, "
                "not a folder or a list of images"
            )
        where = base / entry
        if not _inside(root, where):
            raise _outside(export, f"{entry} (data.yaml's {split})")
        if where.suffix == ".txt" and where.is_file():
            for line in where.read_text(errors="replace").splitlines():
                if line.strip() and not _inside(root, where.parent / line.strip()):
                    raise _outside(export, line.strip())


def check_image_names(root: Path, export_format: str, export: Path) -> None:
    """Every image the export's annotations name must lie inside the export, and be there:
    CVAT leaves the images out unless 'Save images' is ticked. A name outside is
    refused, not skipped with a warning: an export that names a file elsewhere on the disk
    (an absolute path, `../`) was made by hand or to harm, and reading it would put that
    file into review, training and a published dataset; training on the rest alone would
    quietly differ from what the person exported. CVAT for video 1.1 names no images
    (its frames are found in the folder)."""
    if export_format == "CVAT for images 1.1":
        names, base = _cvat_image_names(root / "annotations.xml", export), images_dir(root)
    elif export_format == "COCO 1.0":
        for labels, base in coco_subsets(root):
            _check_named_images(root, _coco_image_names(labels, export), base, export)
        return
    elif export_format == "Ultralytics YOLO Detection 1.0":
        _confine_yolo(root, export)
        _refuse_missing(export, *_yolo_missing_images(root))
        return
    else:
        return
    _check_named_images(root, names, base, export)


def _check_named_images(root: Path, names, base: Path, export: Path) -> None:
    named, missing, declared = 0, [], []
    for name, size in names:
        if not _inside(root, base / name):
            raise _outside(export, name)
        named += 1
        if not (base / name).is_file():
            missing.append(name)
        declared.append((name, size))
    _refuse_missing(export, named, missing)
    for name, size in declared:
        _check_declared_size(base / name, name, size, export)


def _refuse_missing(export: Path, named: int, missing: list[str]) -> None:
    if named and len(missing) == named:
        raise UserError(
            f"{export} holds the annotations of {named} images but none of the images: "
            "export the task again with 'Save images' (cvat-sdk: include_images=True)"
        )
    if missing:
        raise UserError(
            f"{export} lacks {len(missing)} of the {named} images its annotations name, "
            f"{missing[0]!r} first: export the task again with 'Save images'"
        )


def _yolo_missing_images(root: Path) -> tuple[int, list[str]]:
    """How many images a YOLO export's label files stand for (CVAT writes one per image,
    empty for an image without boxes), and those whose image is not in `images/`."""
    named, missing = yolo_images_of_labels(root / "labels", root / "images")
    return named, [str(Path("images") / name) for name in missing]


def yolo_images_of_labels(labels_root: Path, images_root: Path) -> tuple[int, list[str]]:
    """How many label files lie under `labels_root`, and (as paths under `images_root`,
    without suffix) those with no image of their name where Ultralytics looks for it."""
    stems: dict[Path, set[str]] = {}  # per image folder: the stems of its images
    named, missing = 0, []
    for label in sorted(labels_root.rglob("*.txt")) if labels_root.is_dir() else []:
        relative = label.relative_to(labels_root)
        folder = images_root / relative.parent
        if folder not in stems:
            stems[folder] = (
                {p.stem for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
                if folder.is_dir()
                else set()
            )
        named += 1
        if label.stem not in stems[folder]:
            missing.append(str(relative.with_suffix("")))
    return named, missing


def _check_declared_size(path: Path, name: str, declared, export: Path) -> None:
    """Boxes are read in the pixels of the size the annotations declare: a size that is not
    the image's own would put every box somewhere else (a width of 100,000,000 made each
    box a speck at the corner, trained on and published without a word)."""
    try:
        width, height = (int(value) for value in declared)
    except (TypeError, ValueError):
        return  # none declared (FiftyOne reads the image's own), or unreadable: FiftyOne says
    actual = upright_size(path)
    if actual is not None and actual != (width, height):
        raise UserError(
            f"{export}: {name} is {actual[0]}x{actual[1]} pixels, but its annotations declare "
            f"{width}x{height}; its boxes would land elsewhere. Export the task again from CVAT"
        )


def _first_annotation(xml_path: Path) -> str:
    """ "image" or "track", whichever element comes first, or "" when neither does (then
    the task's mode, "interpolation" for video, is returned with a "mode:" prefix). Read
    a megabyte at a time, never a whole line: the meta before them (labels, one <segment>
    per job) can be long, the annotations after them longer still, and all on one line."""
    video_mode, tail = False, ""
    with xml_path.open(errors="replace") as handle:
        while chunk := handle.read(_CHUNK):
            text = tail + chunk
            image, track = text.find("<image "), text.find("<track ")
            if image >= 0 or track >= 0:
                return "track" if track >= 0 and (image < 0 or track < image) else "image"
            video_mode = video_mode or "<mode>interpolation</mode>" in text
            tail = text[-32:]  # a tag cut in two by the chunk
    return "mode:interpolation" if video_mode else ""


def detect_format(root: Path, export: Path) -> str:
    if (root / "annotations.xml").is_file():
        first = _first_annotation(root / "annotations.xml")
        is_video = first in ("track", "mode:interpolation")
        return "CVAT for video 1.1" if is_video else "CVAT for images 1.1"
    if list(root.glob("annotations/*.json")):
        return "COCO 1.0"
    if (root / "data.yaml").is_file():
        return "Ultralytics YOLO Detection 1.0"
    raise UserError(
        f"{export} is not an export this tool reads. Export the task from CVAT as one of: "
        + ", ".join(FORMATS)
    )


def images_dir(root: Path) -> Path:
    for name in ("images", "data"):
        if (root / name).is_dir():
            return root / name
    return root


def load_export(info: ExportInfo, name: str | None = None):
    """A FiftyOne dataset of the export, labels in the `ground_truth` field. If it cannot
    be read, its unpack folder is removed with it (nothing else can use it); a sample whose
    file lies outside the export is refused here too, whatever the importer made of the
    names `unpack` checked."""
    try:
        # a name of its own per run: two runs reading one export (two trainings in their own
        # work folders) would each delete the other's dataset under a shared one
        dataset = _read_export(info, name or f"export-{info.sha256[:12]}-{uuid.uuid4().hex[:8]}")
        root = info.root.resolve()
        outside = next((p for p in dataset.values("filepath") if not _inside(root, p)), None)
        if outside is not None:
            dataset.delete()
            raise _outside(info.path, outside)
        # declared labels are read stripped, as CVAT keeps them: a drawn "fish " beside a
        # declared "fish" would be a second class
        spaced = {label: label.strip() for label in labels_in(dataset) if label != label.strip()}
        relabel(dataset, GROUND_TRUTH, spaced)
    except BaseException:
        remove_unless_used(info, name)
        raise
    # absolute: the dataset is reopened from other folders and sessions
    dataset.info["export"] = {
        "path": str(info.path.absolute()),
        "sha256": info.sha256,
        "format": info.format,
    }
    dataset.info["declared_labels"] = export_declared_labels(info, dataset.info)
    dataset.save()
    return dataset


def remove_unless_used(info: ExportInfo, own: str | None = None) -> None:
    """Remove an export's unpack folder unless a FiftyOne dataset other than `own` may
    still point into it: the datasets of one export (each function's review, class-agnostic
    or not) share the folder named after its hash, and carry that hash in their names."""
    fo = fiftyone()
    tag = info.sha256[:12]
    if any(tag in name and name != own for name in fo.list_datasets()):
        return
    shutil.rmtree(info.root, ignore_errors=True)


# CVAT label types that can never be a box: a family's detector would offer CVAT a box label
# that no box ever teaches
_NOT_BOX_LABEL_TYPES = {"tag", "points", "polyline", "skeleton", "cuboid"}


def export_declared_labels(info: ExportInfo, read: dict) -> list[str]:
    """The labels an export declares, in its own order, whether or not a box uses them:
    a CVAT task's, job's or project's `<meta>` labels (not those that can never be a box,
    such as tags), a COCO file's categories (as the importer keeps them in `read`, the
    dataset's info: the JSON is not parsed again), a YOLO data.yaml's names. A task's label
    set is the user's: the first 50 images of a 14-species task may hold boxes of only five."""
    names: list[object] = []
    try:
        if info.format.startswith("CVAT for"):
            # FiftyOne keeps a task's labels without their types, and a job's not at all
            names = _cvat_meta_labels(info.root / "annotations.xml")
        elif info.format == "COCO 1.0":
            categories = read.get("categories") or []
            names = [c.get("name") for c in categories if isinstance(c, dict)]
        elif (info.root / "data.yaml").is_file():
            config = read_yaml(info.root / "data.yaml", info.path)
            declared = config.get("names") if isinstance(config, dict) else None
            if isinstance(declared, dict):
                declared = [declared[key] for key in sorted(declared, key=_yolo_key)]
            names = list(declared) if isinstance(declared, list) else []
    except (OSError, ValueError, AttributeError, IndexError, RecursionError, ET.ParseError):
        return []
    except UserError:
        return []  # what the importer made of it stands; it refuses what it cannot read
    ordered: list[str] = []
    for name in names:
        if isinstance(name, str) and name.strip() and name.strip() not in ordered:
            ordered.append(name.strip())
    return ordered


def _yolo_key(key) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        return 1 << 30


def _cvat_meta_labels(xml_path: Path) -> list[str]:
    """The box-able labels of a CVAT export's `<meta>` (task, job or project), read up to
    the first annotation: the meta comes first, the annotations after it may be long."""
    names: list[str] = []
    path: list[str] = []
    for event, element in ET.iterparse(str(xml_path), events=("start", "end")):
        if event == "start":
            path.append(element.tag)
            if element.tag in ("image", "track"):
                break
            continue
        path.pop()
        if (
            element.tag == "label"
            and path[-3:-1] in (["meta", "task"], ["meta", "job"], ["meta", "project"])
            and path[-1] == "labels"
        ):
            kind = (element.findtext("type") or "").strip()
            if kind not in _NOT_BOX_LABEL_TYPES:
                names.append(element.findtext("name") or "")
            element.clear()
    return names


def _read_export(info: ExportInfo, name: str):
    fo = fiftyone()
    if fo.dataset_exists(name):
        fo.delete_dataset(name)
    root = info.root
    # CVAT importers return several label kinds; keep the boxes, under one field name
    boxes = {"name": name, "label_field": {"detections": GROUND_TRUTH}}
    common = {"name": name, "label_field": GROUND_TRUTH}
    try:
        if info.format == "CVAT for images 1.1":
            dataset = fo.Dataset.from_dir(
                dataset_type=fo.types.CVATImageDataset,
                data_path=str(images_dir(root)),
                labels_path=str(root / "annotations.xml"),
                progress=False,  # as every other loader here: a bar out of nowhere
                **boxes,
            )
            _restore_exact_boxes(dataset, root / "annotations.xml", images_dir(root), info.path)
            return dataset
        if info.format == "CVAT for video 1.1":
            return _load_cvat_video(fo, root, name, info.path)
        if info.format == "COCO 1.0":
            return _load_coco(fo, root, common)
        return _load_yolo(fo, root, common)
    except UserError:
        raise
    except Exception as error:  # FiftyOne's importers raise many kinds on malformed files
        raise UserError(
            f"{info.path}: FiftyOne could not read it as {info.format}: {error}"
        ) from None


def _load_coco(fo, root: Path, common: dict):
    """Every subset of a COCO export (`coco_subsets`): reading only the first label file
    left the other subsets out without a word."""
    dataset = fo.Dataset(common["name"])
    for labels, images in coco_subsets(root):
        dataset.add_dir(
            dataset_type=fo.types.COCODetectionDataset,
            data_path=str(images),
            labels_path=str(labels),
            label_types="detections",
            label_field=common["label_field"],
            progress=False,
        )
    return dataset


def _restore_exact_boxes(dataset, xml_path: Path, base: Path, export: Path) -> None:
    """Put back the box corners FiftyOne's CVAT importer rounds to whole pixels, and add the
    objects it reads as no box at all: polygons, ellipses and masks, as the upright box
    around each (as video exports' shapes are read).

    CVAT keeps corners to a hundredth of a pixel. Rounded, a 10-pixel fish's box moves by
    up to half a pixel a side, enough to turn a match at IoU 0.5 into a miss when a model
    is scored, and to teach a model boxes a little off. The importer reads an <image>'s
    boxes in order, so each is matched to its own by position; an image whose detections
    do not pair with its boxes one for one, label for label, keeps FiftyOne's reading. A
    turned box becomes the upright box around it. A fish outlined with a polygon was left
    out, and the model's box on it scored a false positive."""
    import fiftyone as fo

    exact, left_out = {}, Counter()
    for image in cvat_images(xml_path, export):
        try:
            width, height = float(image.get("width")), float(image.get("height"))
            boxes = [(box.get("label"), shape_bounds(box)) for box in image.iter("box")]
            outlines = []
            for shape in image:
                if shape.tag in ("box", "tag"):
                    continue
                bounds = shape_bounds(shape)
                if bounds is None:
                    left_out[shape.tag] += 1
                else:
                    outlines.append((shape.get("label"), bounds))
        except (TypeError, ValueError, AttributeError):
            continue  # FiftyOne's reading stands; it refuses what it cannot read itself
        if (boxes or outlines) and width > 0 and height > 0:
            where = os.path.normpath(os.path.abspath(base / cvat_image_name(image)))
            exact[where] = (width, height, boxes, outlines)
    if left_out:
        log.warning(
            "%s: %s have no area to hold a box and were left out",
            export,
            ", ".join(f"{count} {tag}" for tag, count in sorted(left_out.items())),
        )
    if not exact:
        return

    def relative(bounds, width, height) -> list[float]:
        x1, y1, x2, y2 = bounds
        return [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]

    for sample in dataset.iter_samples(autosave=True):
        found = exact.get(os.path.normpath(sample.filepath))
        if found is None:
            continue
        width, height, boxes, outlines = found
        detections = sample[GROUND_TRUTH] if sample.has_field(GROUND_TRUTH) else None
        drawn = detections.detections if detections is not None else []
        if len(drawn) == len(boxes) and all(
            d.label == label for d, (label, _) in zip(drawn, boxes, strict=True)
        ):
            for detection, (_, bounds) in zip(drawn, boxes, strict=True):
                detection.bounding_box = relative(bounds, width, height)
        if outlines:
            added = [
                fo.Detection(label=label, bounding_box=relative(bounds, width, height))
                for label, bounds in outlines
            ]
            sample[GROUND_TRUTH] = fo.Detections(detections=list(drawn) + added)


def _video_identity(tree, xml_path: Path) -> str:
    """The video the export is of: its source file name, else the task's name ("" for a job
    export, which names neither)."""
    if tree.find("meta/project") is not None:
        raise UserError(
            f"{xml_path} is a project export, whose frame numbers restart in every task: "
            "export each video task on its own (Actions > Export task dataset)"
        )
    for path in ("meta/task", "meta/job"):
        node = tree.find(path)
        if node is not None:
            return (node.findtext("source") or node.findtext("name") or "").strip()
    return ""


def _rotated_bounds(x1, y1, x2, y2, degrees: float) -> tuple[float, float, float, float]:
    """Axis-aligned bounds of a box turned about its centre (CVAT turns clockwise)."""
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w, half_h = (x2 - x1) / 2, (y2 - y1) / 2
    cos, sin = abs(math.cos(math.radians(degrees))), abs(math.sin(math.radians(degrees)))
    reach_x, reach_y = half_w * cos + half_h * sin, half_w * sin + half_h * cos
    return cx - reach_x, cy - reach_y, cx + reach_x, cy + reach_y


def shape_bounds(shape) -> tuple[float, float, float, float] | None:
    """The box around a CVAT shape that outlines an object (box, polygon, ellipse, mask);
    None for shapes without an area (polyline, points) and for skeletons and cuboids."""
    number = lambda key: float(shape.get(key))  # noqa: E731
    if shape.tag == "box":
        box = (number("xtl"), number("ytl"), number("xbr"), number("ybr"))
        degrees = float(shape.get("rotation") or 0)
        return _rotated_bounds(*box, degrees) if degrees % 180 else box
    if shape.tag == "polygon":
        points = [tuple(map(float, pair.split(","))) for pair in shape.get("points").split(";")]
        xs, ys = [x for x, _ in points], [y for _, y in points]
        return min(xs), min(ys), max(xs), max(ys)
    if shape.tag == "ellipse":
        cx, cy, rx, ry = (number(key) for key in ("cx", "cy", "rx", "ry"))
        angle = math.radians(float(shape.get("rotation") or 0))
        reach_x = math.hypot(rx * math.cos(angle), ry * math.sin(angle))
        reach_y = math.hypot(rx * math.sin(angle), ry * math.cos(angle))
        return cx - reach_x, cy - reach_y, cx + reach_x, cy + reach_y
    if shape.tag == "mask":
        left, top = number("left"), number("top")
        return left, top, left + number("width"), top + number("height")
    return None


def video_boxes(xml_path: Path) -> tuple[dict[int, list[tuple]], str, set[str]]:
    """Visible shapes per video frame from CVAT for video 1.1 tracks, as boxes (label, x1,
    y1, x2, y2); the video's identity; the kinds of shape left out. CVAT writes a shape for
    every frame of a track, interpolated ones included, numbered as in the video (a frame
    step leaves gaps), and an `outside` one where the object leaves."""
    try:
        tree = ET.parse(xml_path)
    except (ET.ParseError, OSError) as error:
        raise UserError(f"{xml_path} is not readable CVAT XML: {error}") from None
    by_frame: dict[int, list[tuple]] = {}
    left_out: set[str] = set()
    try:
        for track in tree.iter("track"):
            label = track.get("label", "")
            for shape in track:
                if shape.get("frame") is None or shape.get("outside") == "1":
                    continue
                bounds = shape_bounds(shape)
                if bounds is None:
                    left_out.add(shape.tag)
                    continue
                by_frame.setdefault(int(shape.get("frame")), []).append((label, *bounds))
    except (TypeError, ValueError, AttributeError):
        raise UserError(
            f"{xml_path} has a track shape without a frame number or coordinates"
        ) from None
    return by_frame, _video_identity(tree, xml_path), left_out


def _load_cvat_video(fo, root: Path, name: str, export: Path):
    """Each exported frame as a sample with its boxes; frames of one stretch of video share
    a split group, so near-identical neighbours never straddle training and testing."""
    import PIL.Image

    by_frame, video, left_out = video_boxes(root / "annotations.xml")
    if left_out:
        log.warning(
            "%s: %s shapes have no area to train a box on and were left out",
            export,
            ", ".join(sorted(left_out)),
        )
    frames = {}
    for path in images_dir(root).rglob("*"):
        match = _FRAME.match(path.stem)
        if match and path.is_file():
            frames[int(match.group(1))] = path
    if not frames:
        raise UserError(
            f"{export} holds the tracks but no frames: export the task again with "
            "'Save images' (cvat-sdk: include_images=True)"
        )
    # The loop names exports by task (task-12.zip), so a job export, which names no video,
    # keeps its groups from round to round too.
    group_base = video or export.name
    # every frame of a video has its size: one header read, not one per frame
    with PIL.Image.open(frames[min(frames)]) as image:
        width, height = image.size
    samples = []
    for frame, path in sorted(frames.items()):
        detections = []
        for label, x1, y1, x2, y2 in by_frame.get(frame, []):
            x1, y1 = max(0.0, x1), max(0.0, y1)
            x2, y2 = min(float(width), x2), min(float(height), y2)
            if x2 > x1 and y2 > y1:
                box = [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]
                detections.append(fo.Detection(label=label, bounding_box=box))
        sample = fo.Sample(filepath=str(path))
        sample[GROUND_TRUTH] = fo.Detections(detections=detections)
        sample[SPLIT_GROUP] = f"{group_base}#{frame // VIDEO_SEGMENT_FRAMES}"
        samples.append(sample)
    dataset = fo.Dataset(name)
    dataset.add_samples(samples)
    return dataset


def split_key(sample, digest: str) -> str:
    """What decides a sample's split: its split group when it has one (video frames), else
    its own content digest."""
    group = sample[SPLIT_GROUP] if sample.has_field(SPLIT_GROUP) else None
    return hashlib.sha256(group.encode()).hexdigest() if group else digest


def yolo_labels_folder(images: Path) -> Path | None:
    """Where Ultralytics looks for an image folder's labels: its last `images` part turned
    into `labels` (None: a folder with no such part)."""
    parts = list(images.parts)
    if "images" not in parts:
        return None
    at = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:at], "labels", *parts[at + 1 :])


def yolo_class_ids(names) -> set[int]:
    """The class ids a data.yaml's `names` declares: a list's positions, or a mapping's keys
    (which need not run 0, 1, 2...)."""
    if isinstance(names, dict):
        return {int(key) for key in names if str(key).lstrip("-").isdigit()}
    return set(range(len(names or [])))


def check_yolo_labels(image_folders, class_ids: set[int] | None, where: Path) -> set[int]:
    """Every line of the label files of these image folders is a box or polygon of a class
    the data names (`class_ids`; None: any class id from 0). FiftyOne's importer passes
    over a line with another class id, or one it cannot parse, without a word: an
    evaluation or a training would quietly lack those boxes, where a CVAT or COCO export
    with an unknown label is refused. Returns the class ids the lines use."""
    used: set[int] = set()
    for images in image_folders:
        labels = yolo_labels_folder(Path(images))
        if labels is None or not labels.is_dir():
            continue
        for path in sorted(labels.rglob("*.txt")):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            for number, line in enumerate(lines, start=1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    label, values = int(fields[0]), [float(v) for v in fields[1:]]
                except ValueError:
                    values, label = [], -1
                shape = len(values) in (4, 5) or (len(values) >= 6 and len(values) % 2 == 0)
                if not shape or not all(math.isfinite(v) for v in values):
                    raise UserError(
                        f"{where}: {readable_name(path)} line {number} is not a YOLO box "
                        f"(class x y width height): {readable_name(line[:80])!r}"
                    )
                if label < 0 or (class_ids is not None and label not in class_ids):
                    known = ", ".join(map(str, sorted(class_ids or ()))) or "none"
                    raise UserError(
                        f"{where}: {readable_name(path)} line {number} has class {label}, but "
                        f"data.yaml names {len(class_ids or ())} classes ({known})"
                    )
                used.add(label)
    return used


def _load_yolo(fo, root: Path, common: dict):
    """Every subset folder under images/: CVAT names them after the task's subsets (Train,
    Test, Validation, default or the user's own), and a subset missing from a fixed list
    was left out without a word. FiftyOne's importer reads one split of one yaml, so ours
    (in the unpack folder) names each folder."""
    config = read_yaml(root / "data.yaml", root) or {}
    names = config.get("names") if isinstance(config, dict) else None
    images = root / "images"
    folders = sorted(p.resolve() for p in images.iterdir() if p.is_dir()) if images.is_dir() else []
    # and the image folders data.yaml names elsewhere (`path: sub`), as Ultralytics reads them
    named = yaml_split_folders(root, config) if isinstance(config, dict) else []
    for where in named:  # unless read already, inside a folder read or holding one
        if _inside(root, where) and not any(
            f == where or f.is_relative_to(where) or where.is_relative_to(f) for f in folders
        ):
            folders.append(where)
    if isinstance(names, list | dict):
        check_yolo_labels(folders, yolo_class_ids(names), root)
    dataset = fo.Dataset(common["name"])
    add_yolo_folders(dataset, root, folders, names, root / ".imagine-assist-subsets.yaml")
    if not len(dataset) and config:
        raise UserError(f"{root}: data.yaml names no image folder under images/")
    return dataset


def add_yolo_folders(dataset, root: Path, folders: list[Path], names, yaml_path: Path) -> None:
    """Each image folder (its labels where Ultralytics looks) into the dataset's
    `ground_truth`. FiftyOne's importer reads one split of one yaml: the yaml written at
    `yaml_path` names every folder as a split of its own."""
    import fiftyone as fo

    splits = {f"subset{index}": str(folder) for index, folder in enumerate(folders)}
    yaml_path.write_text(yaml.safe_dump({"names": names, **splits}))
    for split in splits:
        dataset.add_dir(
            dataset_dir=str(root),
            dataset_type=fo.types.YOLOv5Dataset,
            yaml_path=str(yaml_path),
            split=split,
            label_field=GROUND_TRUTH,
            include_all_data=True,  # images without a label file are background, not noise
            progress=False,
        )


def labels_in(dataset) -> set[str]:
    if not dataset.has_sample_field(GROUND_TRUTH):  # an export without a single box
        return set()
    return set(dataset.distinct(f"{GROUND_TRUTH}.detections.label"))


def declared_labels(dataset) -> list[str]:
    """The labels the export declares, in its order (`export_declared_labels`, recorded
    when it was loaded)."""
    declared = (dataset.info or {}).get("declared_labels") or []
    return [name for name in declared if isinstance(name, str)]


def check_export(dataset, classes: tuple[str, ...], export: Path) -> None:
    """An empty export, or one whose labels are not the family's, gets a clear error."""
    if len(dataset) == 0:
        raise UserError(f"{export} holds no images")
    labelled = (
        dataset.count(f"{GROUND_TRUTH}.detections") if dataset.has_sample_field(GROUND_TRUTH) else 0
    )
    if labelled == 0:
        raise UserError(f"{export} holds {len(dataset)} images but no boxes")
    unknown = labels_in(dataset) - set(classes)
    if unknown:
        raise UserError(
            f"{export} has labels this family does not know: {', '.join(sorted(unknown))}. "
            f"The family's classes are: {', '.join(classes)}. Map them with --map "
            "EXPORT_LABEL=FAMILY_LABEL, rename them in CVAT, or start a family of your own "
            "(`imagine-assist families create NAME --from EXPORT`)"
        )


def content_split(image_path: str, val: float, test: float) -> str:
    """train, val or test, from the image bytes alone: stable across rounds and exports."""
    return split_of_digest(file_sha256(image_path), val, test)


def training_split(key: str, val: float, test: float, fixed_validation: bool) -> str:
    """The split of an image outside any `--val` export, by its content key. With a fixed
    validation export, the test slot's images validate instead: an image never moves into
    training because --val came or went."""
    split = split_of_digest(key, val, test)
    return "val" if fixed_validation and split == "test" else split


def split_of_digest(sha256_hex: str, val: float, test: float) -> str:
    slot = int(sha256_hex[:16], 16) / 2**64  # the first 8 bytes, uniform in [0, 1)
    if slot < test:
        return "test"
    if slot < test + val:
        return "val"
    return "train"


def parse_label_map(items: list[str] | None) -> dict[str, str]:
    """`["fish=diplodus", "map.yaml"]` -> {"fish": "diplodus", ...}: an export's labels onto a
    family's. Each item is SOURCE=TARGET, or a YAML file of such pairs."""
    mapping: dict[str, str] = {}
    for item in items or []:
        if "=" in item:
            source, _, target = item.partition("=")
            pairs = {source.strip(): target.strip()}
        else:
            path = Path(item)
            try:
                pairs = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError) as error:
                raise UserError(
                    f"--map {item!r} is neither SOURCE=TARGET nor a readable YAML file: {error}"
                ) from None
            if not isinstance(pairs, dict):
                raise UserError(f"{path}: a label map is a YAML mapping, export label: label")
        for source, target in pairs.items():
            # YAML reads `fish:` as None and `yes: fish` as True: neither is a label name
            if any(
                side is None or isinstance(side, bool) or not str(side).strip()
                for side in (source, target)
            ):
                raise UserError(
                    f"--map {item!r}: both sides need a label name, got {source!r}: {target!r} "
                    "(quote a name YAML reads otherwise: 'yes', 'no', 'on', 'off')"
                )
            mapping[str(source).strip()] = str(target).strip()
    return mapping


def check_label_map(mapping: dict[str, str] | None, classes: tuple[str, ...], family: str) -> None:
    """Every target of a label map must be one of the family's labels."""
    unknown = sorted({target for target in (mapping or {}).values() if target not in classes})
    if unknown:
        raise UserError(
            f"--map targets {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} "
            f"not among {family}'s labels ({', '.join(classes)})"
        )


def relabel(dataset, field: str, mapping: dict[str, str] | None = None, to: str | None = None):
    """Rename the labels of `field` in place: through `mapping` (labels not in it stay), or
    all to one label `to` (a class-agnostic comparison), keeping the old one as `class`.
    Written in one bulk update: saving sample by sample costs seconds per hundred images."""
    if (not mapping and to is None) or not dataset.has_sample_field(field):
        return
    path = f"{field}.detections.label"
    labels = dataset.values(path)  # per sample: a list of labels, or None without the field
    if to is not None:
        dataset.set_values(f"{field}.detections.class", labels)
        renamed = [None if row is None else [to] * len(row) for row in labels]
    else:
        renamed = [None if row is None else [mapping.get(x, x) for x in row] for row in labels]
    dataset.set_values(path, renamed)
