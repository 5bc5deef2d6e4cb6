"""Which files under a folder are images, the names their outputs take, and which outputs
of an earlier run a rerun removes.

Commands that write one output per input image (`predict`'s previews, `separate`'s
organisms and separation lines) name it after the image. Two images may share a stem (a
ZooScan sample folder reuses vignette names; `a.jpg` beside `a.png`), and one output must
never overwrite another, so `output_stems` gives each image a stem no other image of the
run has.

A rerun into the same `--out` on fewer images (or with another model, cutting fewer
organisms) would leave the earlier run's previews and cut-outs beside the new ones, where
they read as results of this run. `OutputFiles` lists what a command writes in its own
output folders, so the next run removes what it does not write again, and nothing else;
and `list_images` never reads a file such a list names as an input image, wherever under
the source the earlier run wrote it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path, PurePosixPath

from imagine_assist.errors import UserError
from imagine_assist.images import readable_name

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# Photos we cannot read, which a folder of drone or camera pictures holds: named, not
# passed over in silence (a DJI flight saved as HEIC counted nothing and said nothing).
UNREAD_PHOTO_SUFFIXES = {".heic", ".heif", ".avif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".raw"}


def list_images(
    source: str | Path, outputs: str | Path | None = None, own_folders: tuple[str, ...] = ()
) -> list[Path]:
    """The image paths under `source`, by suffix, sorted. What each file really is (a
    regular file, not a FIFO or a device) and its size are checked when it is read
    (`images.read_image`).

    Files under `outputs`, the command's own output folder, are left out: with `--out`
    inside the source folder, a second run would otherwise read the first run's previews
    and cut-outs as new images. When `outputs` holds the source itself (`--out` the
    project folder above the photos, or the photos' own folder), only the folders the
    command writes images into (`own_folders`, under `outputs`) are left out."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UserError(f"{source} is neither an image nor a directory")
    skips: list[Path] = []
    if outputs is not None:
        out = Path(outputs).resolve()
        holds_source = source.resolve().is_relative_to(out)
        skips = [out / folder for folder in own_folders] if holds_source else [out]
    inside: dict[Path, bool] = {}  # per folder: one resolve for a folder of 10,000 vignettes
    listed: dict[Path, frozenset[str]] = {}  # per folder: the outputs its listings name
    files = list(_files_under(source))
    images = sorted(
        p
        for p in files
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not _is_under(p.parent, skips, inside)
        and not _written_by_a_run(p, source, listed)
    )
    unread = sorted(p for p in files if p.suffix.lower() in UNREAD_PHOTO_SUFFIXES)
    if unread:
        kinds = ", ".join(sorted({p.suffix.lower() for p in unread}))
        log.warning(
            "%d photos (%s) are not read, %s first: convert them to JPEG, PNG or TIFF",
            len(unread),
            kinds,
            readable_name(unread[0]),
        )
    if not images:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {source}")
    return images


def _files_under(source: Path):
    """Every file path under `source`, through linked folders too (a survey's flights linked
    in from another disk; `rglob` passes them over in silence), each real folder once: a
    link back up the tree is not followed round."""
    seen: set[tuple[int, int]] = set()
    for folder, folders, files in os.walk(source, followlinks=True):
        try:
            stat = os.stat(folder)
        except OSError:  # a dangling link or a folder gone meanwhile
            folders[:] = []
            continue
        if (stat.st_dev, stat.st_ino) in seen:
            folders[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        folders.sort()
        for name in files:
            yield Path(folder) / name


def _written_by_a_run(path: Path, source: Path, listed: dict[Path, frozenset[str]]) -> bool:
    """Whether an earlier run of any command wrote `path` into its output folder, as that
    folder's `OutputFiles` listing says: a preview, a plot, a cut-out. Such a folder may lie
    anywhere under the source (`predict photos --out photos`, then `predict .`), and its
    images are never inputs. Only files a listing names are left out, never the user's; and
    only listings inside the source count: `separate` run on an earlier run's `ecotaxa/`
    cut-outs, named as the source, reads them."""
    places = [(path.parent, path.name)]
    if path.parent != source:
        places.append((path.parent.parent, f"{path.parent.name}/{path.name}"))
    for folder, line in places:
        if folder not in listed:
            listed[folder] = listed_outputs(folder)
        if line in listed[folder]:
            return True
    return False


def listed_outputs(folder: Path) -> frozenset[str]:
    """Every output the listings in `folder` (`.<command>-outputs`) name, as `name` or
    `folder/name` under it; a line that is anything else is not an output of ours."""
    lines: set[str] = set()
    try:
        listings = [p for p in folder.glob(".*-outputs") if p.is_file()]
    except OSError:
        return frozenset()
    for listing in listings:
        try:
            text = listing.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        lines.update(line for line in text.splitlines() if _an_output_line(line))
    return frozenset(lines)


def _an_output_line(line: str) -> bool:
    parts = PurePosixPath(line).parts
    return 1 <= len(parts) <= 2 and all(part not in ("", ".", "..", "/") for part in parts)


def _is_under(parent: Path, folders: list[Path], known: dict[Path, bool]) -> bool:
    """Whether files in `parent` lie under one of `folders`. The file's own place counts,
    not a link's target: a link into the outputs that lives in the source is the user's."""
    if not folders:
        return False
    if parent not in known:
        try:
            where = parent.resolve()
            known[parent] = any(where.is_relative_to(folder) for folder in folders)
        except OSError:  # a symlink loop among the parents: not ours to judge here
            known[parent] = False
    return known[parent]


def _edge_spaces(stem: str) -> str:
    """Spaces at either end of a stem as underscores: EcoTaxa strips every TSV cell, so a
    cut-out named " a_1.png" was looked for as "a_1.png" and reported missing."""
    kept = stem.strip()
    if kept == stem:
        return stem
    lead = len(stem) - len(stem.lstrip())
    return "_" * lead + kept + "_" * (len(stem) - lead - len(kept)) if kept else "_" * len(stem)


def output_stems(paths: list[Path], base: Path, with_folders: bool = False) -> dict[Path, str]:
    """A stem for each image's outputs, unique within `paths`, in `readable_name` form.

    An image's stem is its file's stem (`with_folders`: its path under `base` without the
    suffix, folders joined by `__`) when no other image has that stem, so the common case
    keeps the names people expect. Images that share one are told apart by their path under
    `base` and their suffix (`s1/v1.jpg` -> `s1__v1_jpg`), and a counter settles anything
    still equal (`-2`, `-3`, in path order)."""

    def relative(path: Path) -> Path:
        return path.relative_to(base) if path.is_relative_to(base) else Path(path.name)

    def joined(path: Path, suffix: str) -> str:
        parts = relative(path).parts
        return _edge_spaces(readable_name("__".join([*parts[:-1], Path(parts[-1]).stem + suffix])))

    stems = {
        p: joined(p, "") if with_folders else _edge_spaces(readable_name(p.stem)) for p in paths
    }
    shared = Counter(stems.values())
    for path in paths:
        if shared[stems[path]] > 1:
            stems[path] = joined(path, path.suffix.replace(".", "_"))
    unique: dict[Path, str] = {}
    taken: set[str] = set()
    for path in paths:  # a counter's name may be another image's stem ("a-2"): count on
        stem, n = stems[path], 2
        while stem in taken:
            stem, n = f"{stems[path]}-{n}", n + 1
        unique[path] = stem
        taken.add(stem)
    return unique


def none_could_be_read(source: str | Path, skipped: list[tuple[Path, str]]) -> UserError:
    """The error when not one image under `source` could be used (unreadable, too small,
    too large, a scale-bar strip that leaves nothing...), with the reasons: the
    first few, and how many more, so the user sees why without rerunning with -v."""
    reasons = [reason for _, reason in skipped]
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    return UserError(f"none of the {len(skipped)} images under {source} could be used: {shown}")


class OutputFiles:
    """The files one run of a command writes into `folders` under `out` (and the `files` it
    writes in `out` itself), listed as they are written in `out/.<command>-outputs`.
    `finish()` removes those an earlier run listed that this one did not write. A run that
    dies halfway has listed what it wrote, so the next one cleans it up; a file the command
    never wrote (the user's own) is never touched, and a line of a tampered list that is not
    a plain file name in one of `folders` (or one of `files`) is ignored."""

    def __init__(
        self, out: Path, command: str, folders: tuple[str, ...], files: tuple[str, ...] = ()
    ) -> None:
        self.out = out
        self.folders = folders
        self.files = files  # names the command writes directly in `out` (a plot)
        self.listing = out / f".{command}-outputs"
        self.earlier = self._read()
        self.written: set[str] = set()
        self._handle = None

    def _read(self) -> set[str]:
        try:
            text = self.listing.read_text(encoding="utf-8", errors="replace")
        except OSError:  # none yet, or unreadable: nothing of ours to remove
            return set()
        return {line for line in text.splitlines() if self._ours(line)}

    def _ours(self, line: str) -> bool:
        if not _an_output_line(line):
            return False
        parts = PurePosixPath(line).parts
        return parts[0] in self.files if len(parts) == 1 else parts[0] in self.folders

    def wrote(self, path: Path, listed: bool = False) -> None:
        """Record `path`, a file under one of the folders, as written by this run; `listed`:
        a worker process has put it in the list already (`list_output`)."""
        line = path.relative_to(self.out).as_posix()
        if line in self.written:
            return
        if listed:
            self.written.add(line)
            return
        if self._handle is None:
            self._handle = self.listing.open("a", encoding="utf-8")
        self._handle.write(line + "\n")
        self._handle.flush()
        self.written.add(line)

    def finish(self) -> list[str]:
        """Remove what an earlier run wrote and this one did not; the list names this run's
        files only from now on. Returns what was removed."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        stale = sorted(self.earlier - self.written)
        for line in stale:
            try:
                (self.out / line).unlink(missing_ok=True)
            except OSError as error:  # a folder there now, or not ours to remove: leave it
                log.warning("left %s: %s", self.out / line, error)
        partial = self.listing.with_name(self.listing.name + ".part")
        partial.write_text("".join(f"{line}\n" for line in sorted(self.written)), "utf-8")
        os.replace(partial, self.listing)
        self.earlier = set(self.written)
        return stale


def list_output(listing: Path, out: Path, path: Path) -> None:
    """`OutputFiles.wrote` for a worker process: `path` (under `out`) put in the list before
    it is written, so a run killed with results not yet collected still names it. One short
    line per write, appended: lines of several workers do not mix."""
    line = path.relative_to(out).as_posix() + "\n"
    with open(listing, "a", encoding="utf-8") as handle:
        handle.write(line)
