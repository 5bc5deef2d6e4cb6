"""Versioned models per family, in a directory the user chooses (the models directory).

    <models dir>/<family>/
        versions/v1/   model.onnx, model.pt, card.json (metrics, lineage, recipe, code version)
        versions/v2/   ...
        CURRENT        the live promotion: {"version": "v2", "previous": "v1",
                       "earlier": [...], reason, time...}
        history.jsonl  one line per promotion, rollback or repair (a log; CURRENT is the
                       truth, and history.jsonl what `repair` rebuilds a damaged one from)

Every write is atomic, so killing a training run or a promotion at any moment leaves the
registry as it was: a version is staged in a hidden directory and renamed into place only
when complete, and a promotion is one `os.replace` of CURRENT, which also lists the versions
live before it, most recent last (what rollbacks walk back through, one step each); the log
lines come after. Promoting the live version again writes nothing. The leftovers of a killed
write (a staging folder, a `.partial` file) are removed by a later start (`Registry.tidy`).
The served functions follow CURRENT (`models.store.live_model`); a family without one serves
the model installed directly in its directory, else the bundled default.

The live model is protected: a version whose classes differ from the family's labels is
never promoted, `--force` or not (it would break the served function), and a rollback past
the first promoted version returns to the installed or bundled default. A CURRENT damaged
from outside (garbage, cut short, naming a deleted version) stops serving with an error that
names `models repair`; `repair` rebuilds it from the last good entry of history.jsonl, and a
promotion simply overwrites it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.checksums import file_sha256
from imagine_assist.errors import UserError

CURRENT = "CURRENT"
CARD = "card.json"
HISTORY = "history.jsonl"
_VERSION = re.compile(r"^v(\d+)$")
# How long a staging folder or `.partial` file must have been left untouched before a later
# start takes it for a killed run's leftover (see `Registry.tidy`).
STALE_AFTER_S = 15 * 60


class DamagedCurrent(UserError):
    """CURRENT cannot be followed: not a promotion record, or naming a missing version."""


class DamagedVersion(UserError):
    """A version that cannot be used: its card unreadable, or a model file of it gone."""


@dataclass(frozen=True)
class ModelVersion:
    family: str
    name: str
    path: Path

    @property
    def number(self) -> int:
        return int(_VERSION.match(self.name).group(1))

    @property
    def card(self) -> dict:
        path = self.path / CARD
        try:
            card = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as error:  # cut short, not JSON, not even text
            raise DamagedVersion(
                f"{self.family} {self.name} is damaged: {path} cannot be read ({error})"
            ) from None
        if not isinstance(card, dict):
            raise DamagedVersion(f"{self.family} {self.name} is damaged: {path} is not a card")
        return card

    def file(self, name: str = "model.onnx") -> Path:
        return self.path / name

    def model_files(self) -> list[str]:
        """The files the version was stored with (its card's `files`). A card written before
        they were listed: the ONNX export of each .pt checkpoint in the folder, since every
        version is stored as the pair."""
        listed = self.card.get("files")
        if isinstance(listed, list) and all(isinstance(name, str) for name in listed):
            return [Path(name).name for name in listed]
        return sorted(
            {f"{path.stem}.onnx" for path in self.path.glob("*.pt")}
            | {path.name for path in self.path.glob("*.onnx")}
        )

    def problem(self) -> str | None:
        """Why the version cannot serve (an unreadable card, an ONNX file gone), or None. Its
        .pt checkpoints only matter to a retraining that starts from it (`missing_file`):
        deleting them to save disk must not stop serving."""
        try:
            files = self.model_files()
        except DamagedVersion as error:
            return str(error)
        if not any(name.endswith(".onnx") for name in files):
            return f"{self.family} {self.name} is damaged: it holds no model (.onnx) at {self.path}"
        missing = [n for n in files if n.endswith(".onnx") and not self.file(n).is_file()]
        if missing:
            gone = ", ".join(missing)
            return f"{self.family} {self.name} is damaged: {gone} is gone from {self.path}"
        return None

    def missing_file(self, name: str) -> bool:
        """Whether `name` is a file the version was stored with and no longer holds."""
        try:
            return name in self.model_files() and not self.file(name).is_file()
        except DamagedVersion:
            return False  # `problem` names that

    def altered(self, name: str) -> str | None:
        """Why the file `name` is not the one the version was stored with (its checksum in
        the card differs), or None; a card written before checksums were kept says None.
        Reads the whole file: for loading and promoting, not for every lookup."""
        try:
            recorded = self.card.get("sha256")
        except DamagedVersion as error:
            return str(error)
        expected = recorded.get(name) if isinstance(recorded, dict) else None
        if not isinstance(expected, str) or not self.file(name).is_file():
            return None
        if file_sha256(self.file(name)) != expected:
            return (
                f"{self.family} {self.name} is damaged: {name} is not the file stored with "
                f"it (its checksum differs from the card's); {_repair(self.family)}"
            )
        return None

    def unloadable(self, name: str) -> str | None:
        """Why the ONNX file `name` will not open, or None (also for other files)."""
        from imagine_assist.models.detector import open_onnx

        if not name.endswith(".onnx"):
            return None
        try:
            open_onnx(self.file(name), threads=1)
        except UserError as error:
            return f"{self.family} {self.name} is damaged: {error}"
        return None

    def unreadable_model(self) -> str | None:
        """Why one of its ONNX files will not load (cut short, overwritten, replaced by
        another file), or None. Opens each: for a promotion or a repair, not for every
        request."""
        for name in self.model_files():  # cut short first: the plainer reason
            problem = self.unloadable(name)
            if problem is not None:
                return problem
        for name in self.model_files():
            changed = self.altered(name)
            if changed is not None:
                return changed
        return None

    def classes(self) -> list[str] | None:
        """The classes the version detects: from its model's own metadata, else from its
        card; None when neither can tell (a version of a model without classes, or a
        damaged one). The model first: a card edited by hand must not decide what serves."""
        if self.file("model.onnx").is_file():
            from imagine_assist.models.detector import open_onnx, ultralytics_metadata

            try:
                session = open_onnx(self.file("model.onnx"), threads=1)
                return ultralytics_metadata(session, self.path)[0]
            except UserError:
                pass
        recorded = self.card.get("classes")
        if isinstance(recorded, list):
            return [str(name) for name in recorded]
        return None


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    except OSError as error:  # a folder in its place, a read-only or full disk
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None


def _append_line(path: Path, text: str) -> None:
    """Append one line to a log. A line cut short by a kill gets its newline first, so that
    it costs only itself and not the next line too."""
    with path.open("ab") as log:
        if log.tell() > 0:
            with path.open("rb") as tail:
                tail.seek(-1, os.SEEK_END)
                if tail.read(1) != b"\n":
                    log.write(b"\n")
        log.write(text.encode() + b"\n")


def _last_change(path: Path) -> float:
    """The newest modification time of a file, or of a folder and everything in it (a copy
    in progress moves the mtime of the file it writes, not of its folder)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for folder, _, files in os.walk(path):
            for name in files:
                try:
                    newest = max(newest, (Path(folder) / name).lstat().st_mtime)
                except OSError:
                    continue  # removed meanwhile
    return newest


class Registry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self._tidied: set[str] = set()

    def family_dir(self, family: str) -> Path:
        return self.root / family

    def tidy(self, family: str) -> list[Path]:
        """Remove what killed runs left in a family's folder: staging folders of versions
        never renamed into place, and `.partial` files of writes never replaced. Called at
        the start of each write (`add`, promote, rollback, repair) and by `models`, once per
        Registry and family. Returns what it removed.

        The rule: a leftover is removed once nothing in it has changed for STALE_AFTER_S.
        Whether another process still writes it cannot be known for certain: a second
        training run or another machine sharing the models directory holds no lock here,
        and process ids mean nothing across machines or containers. But a write in progress
        keeps touching its files (each file copied into a staging folder grows, a
        `.partial` lives for one small write), and nothing of ours writes for minutes without
        a change. A writer stalled past that loses its staging folder and fails with an
        error (its rename finds nothing); it never leaves half a version."""
        self._tidied.add(family)
        here = self.family_dir(family)
        candidates = [
            *here.glob(".*.partial"),  # CURRENT, and models installed in the family folder
            *here.glob("versions/.staging-*"),
            *here.glob("versions/v*/.*.partial"),  # a card rewritten at a promotion
        ]
        removed = []
        for path in candidates:
            try:
                if time.time() - _last_change(path) < STALE_AFTER_S:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except OSError:
                continue  # gone meanwhile (another start tidied it), or not ours to remove
            removed.append(path)
        return removed

    def _open(self, family: str) -> None:
        if family not in self._tidied:
            self.tidy(family)

    def versions(self, family: str) -> list[ModelVersion]:
        """Complete versions, oldest first (a half-written one is hidden and never listed)."""
        folder = self.family_dir(family) / "versions"
        if not folder.is_dir():
            return []
        found = [
            ModelVersion(family, entry.name, entry)
            for entry in folder.iterdir()
            if _VERSION.match(entry.name) and (entry / CARD).is_file()
        ]
        return sorted(found, key=lambda version: version.number)

    def get(self, family: str, name: str) -> ModelVersion:
        for version in self.versions(family):
            if version.name == name:
                return version
        known = ", ".join(v.name for v in self.versions(family)) or "none"
        raise UserError(f"{family} has no version {name!r} in {self.root} (versions: {known})")

    def live(self, family: str) -> dict | None:
        """The CURRENT record, or None when nothing was promoted. CURRENT gone while
        history.jsonl records a version live is damage: serving the default model instead
        would change the model in silence."""
        pointer = self.family_dir(family) / CURRENT
        if pointer.exists() and not pointer.is_file():  # a folder made by hand, say
            raise DamagedCurrent(
                f"{pointer} is not a file; remove it, then {_repair(family).lstrip()}"
            )
        if not pointer.is_file():
            last = next((r for r in reversed(self.history(family)) if _is_record(r)), None)
            if last is not None and last["version"] is not None:
                raise DamagedCurrent(
                    f"{pointer} is missing, but {HISTORY} records {last['version']} live; "
                    f"{_repair(family)}"
                )
            return None
        try:
            record = json.loads(pointer.read_text())
        # unreadable, cut short, not JSON, not even text, or nested past the parser's depth
        except (OSError, ValueError, RecursionError):
            record = None
        if not _is_record(record):
            raise DamagedCurrent(f"{pointer} is not a promotion record; {_repair(family)}")
        return record

    def current(self, family: str) -> ModelVersion | None:
        record = self.live(family)
        if record is None:
            return None
        name = record["version"]
        if name is None:
            return None
        if not self._stored(family, name):
            raise DamagedCurrent(
                f"{self.family_dir(family) / CURRENT} names {name!r}, which is not a complete "
                f"version; {_repair(family)}"
            )
        version = ModelVersion(family, name, self.family_dir(family) / "versions" / name)
        problem = version.problem()
        if problem is not None:  # the live weights gone: never served by another model silently
            raise DamagedCurrent(f"{problem}; it is the live version: {_repair(family)}")
        return version

    def damage(self, family: str) -> str | None:
        """What is wrong with the family's CURRENT, or None when it can be followed (or
        there is none)."""
        try:
            self.current(family)
        except DamagedCurrent as error:
            return str(error)
        return None

    def add(self, family: str, files: dict[str, Path], card: dict) -> ModelVersion:
        """Store a new version (not promoted). `files` maps names in the version to sources."""
        self._open(family)
        folder = self.family_dir(family) / "versions"
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for name, source in files.items():
                shutil.copyfile(source, staging / name)
            card = {
                **card,
                "files": sorted(files),  # what `problem` checks is still there
                # what `altered` checks is still what was stored: a model file copied over
                # a version's served another model under its name and card
                "sha256": {name: file_sha256(staging / name) for name in sorted(files)},
            }
            while True:
                existing = [v.number for v in self.versions(family)]
                name = f"v{max(existing, default=0) + 1}"
                card = {**card, "family": family, "version": name, "created": time.time()}
                (staging / CARD).write_text(json.dumps(card, indent=2))
                try:
                    os.rename(staging, folder / name)  # atomic; fails if another run took it
                    break
                except OSError:
                    if not (folder / name).exists():
                        raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return ModelVersion(family, name, folder / name)

    def check_classes(self, version: ModelVersion, wanted: Sequence[str] | None = None) -> None:
        """Refuse a version that would not serve the family's labels (`wanted`, else the
        labels of the family file)."""
        if wanted is None:
            from imagine_assist.families import get_family

            wanted = get_family(version.family).labels
            if wanted is None:  # the family takes its labels from whatever model is live
                return
        found = version.classes()
        if found is None:
            raise UserError(
                f"cannot tell which classes {version.family} {version.name} detects (no "
                f"classes in its card, no readable model.onnx); it cannot be promoted"
            )
        if list(found) != list(wanted):
            raise UserError(
                f"{version.family} {version.name} detects {found}, but the family's labels are "
                f"{list(wanted)}; a model with other classes would break "
                f"{version.family}'s functions, so it is never promoted, --force or not. "
                "Start a family for these labels: `imagine-assist families create NAME --from "
                "export.zip`"
            )

    def promote(
        self,
        family: str,
        name: str,
        reason: str,
        forced: bool = False,
        classes: Sequence[str] | None = None,
    ) -> ModelVersion:
        """Make a version live. `classes`: the labels it must detect, when the caller has
        them (a family being created has no family file yet); else the family file's."""
        version = self.get(family, name)
        problem = version.problem() or version.unreadable_model()
        if problem is not None:
            raise DamagedVersion(f"{problem}; it cannot be promoted")
        self.check_classes(version, classes)
        try:
            record = self.live(family)
        except DamagedCurrent:  # overwritten: what was live before, the history tells
            record = self._last_good(family, classes=classes)
        else:
            if record is not None and record["version"] == name:
                return version  # the live version: nothing to change, nothing to log
        # the versions live before, most recent last: what rollbacks walk back through
        # (None stands for the installed or bundled default)
        earlier = _earlier(record) if record else []
        if record and record["version"] != name:
            earlier.append(record["version"])
        self._switch(family, version, reason, earlier, forced, "promote")
        return version

    def _switch(
        self,
        family: str,
        version: ModelVersion | None,
        reason: str,
        earlier: list[str | None],
        forced: bool = False,
        action: str = "promote",
    ) -> None:
        self._open(family)
        record = {
            "time": time.time(),
            "action": action,
            "version": version.name if version else None,
            "previous": earlier[-1] if earlier else None,
            "earlier": earlier,
            "forced": forced,
            "reason": reason,
        }
        _write_atomically(
            self.family_dir(family) / CURRENT, json.dumps(record) + "\n"
        )  # the switch
        if version is not None:  # then the logs: the version's card and the family's history
            card = version.card
            card.setdefault("promotions", []).append(record)
            _write_atomically(version.path / CARD, json.dumps(card, indent=2))
        _append_line(self.family_dir(family) / HISTORY, json.dumps(record))

    def history(self, family: str) -> list[dict]:
        path = self.family_dir(family) / HISTORY
        if not path.is_file():
            return []
        records = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue  # a line cut short by a kill: the switch itself is in CURRENT
            if isinstance(record, dict):
                records.append(record)
        return records

    def rollback(
        self, family: str, has_default: bool = True, to: str | None = None
    ) -> ModelVersion | None:
        """Go back to the version that was live before the present one, and on each further
        rollback to the one before that; past the first promoted version, to the installed
        or bundled default (None), which always exists for a built-in family
        (`has_default`). A rollback never returns to the version it leaves. `to`: go back
        straight to that earlier version (its most recent time live), as that many single
        steps would."""
        record = self.live(family)
        if record is None or record.get("version") is None:
            where = "its default model" if has_default else "no promoted version"
            raise UserError(f"{family} serves {where}: there is nothing to roll back")
        earlier = _earlier(record)
        reason = f"rollback from {record['version']}"
        if to is not None:
            self.get(family, to)  # refuses a version that does not exist (any more)
            if to == record["version"]:
                raise UserError(f"{family} {to} is live: there is nothing to roll back to")
            if to not in earlier:
                went = ", ".join(v or "the default model" for v in earlier) or "nothing"
                raise UserError(
                    f"{family} {to} was not live before {record['version']} (before it: {went}); "
                    f"to make it live, promote it: `imagine-assist models promote {family} {to}`"
                )
            if not self._usable(family, to):  # asked for by name: not passed over for another
                target = self.get(family, to)
                raise DamagedVersion(
                    f"{target.problem() or target.unreadable_model()}; it cannot be rolled back "
                    f"to. `imagine-assist models list {family}` shows the versions that can"
                )
            earlier = earlier[: len(earlier) - earlier[::-1].index(to)]
            reason += f" to {to}"
        # versions deleted by hand since are skipped, not resurrected
        while earlier and earlier[-1] is not None and not self._usable(family, earlier[-1]):
            earlier.pop()
        if earlier and earlier[-1] is not None:
            version = self.get(family, earlier[-1])
            self.check_classes(version)
            self._switch(family, version, reason, earlier[:-1], action="rollback")
            return version
        if not has_default:
            raise UserError(
                f"{family} {record['version']} is the family's first model: there is nothing "
                "earlier to return to"
            )
        self._switch(family, None, reason + " to the default model", [], action="rollback")
        return None

    def needs_repair(self, family: str) -> str | None:
        """Why `repair` would rewrite CURRENT: damaged, or gone while history.jsonl records
        promotions; None when it is sound (or nothing was ever promoted)."""
        problem = self.damage(family)
        if problem is None and self.live(family) is None and self.history(family):
            problem = (
                f"{self.family_dir(family) / CURRENT} is missing, but {HISTORY} records promotions"
            )
        if problem is None and (live := self.current(family)) is not None:
            problem = live.unreadable_model()  # a model file cut short or overwritten
        return problem

    def repair(self, family: str, has_default: bool = True) -> ModelVersion | None:
        """Rebuild a damaged or missing CURRENT from the last good entry of history.jsonl:
        the latest one whose version still exists and detects the family's labels (or
        that went to the default model, when the family has one), with the versions live
        before it that still exist. Without such an entry, the default model. A sound
        CURRENT is left as it is. Returns the version now live (None: the default)."""
        if self.needs_repair(family) is None:
            return self.current(family)
        good = self._last_good(family, has_default)
        if good is None and not has_default:
            raise UserError(
                f"{HISTORY} of {family} names no version that still exists and detects its "
                f"labels, and {family} has no default model to return to; promote a version: "
                f"`imagine-assist models promote {family} vN`"
            )
        if good is None:
            self._switch(family, None, f"repair: no good entry in {HISTORY}", [], action="repair")
            return None
        version = self.get(family, good["version"]) if good["version"] else None
        earlier = [v for v in _earlier(good) if v is None or self._usable(family, v)]
        reason = f"repair: as {HISTORY} last had it"
        forced = good.get("forced") is True
        self._switch(family, version, reason, earlier, forced, action="repair")
        return version

    def _last_good(
        self, family: str, has_default: bool = True, classes: Sequence[str] | None = None
    ) -> dict | None:
        """The latest history record that could be live again: its version still complete
        and detecting the family's labels (`classes`, else the family file's), or the
        default model when the family has one."""
        for record in reversed(self.history(family)):
            if not _is_record(record):
                continue
            name = record["version"]
            if name is None:
                if has_default:
                    return record
                continue
            if not self._complete(family, name):
                continue
            version = self.get(family, name)
            if version.unreadable_model():  # `_complete` has checked the files are there
                continue
            try:
                self.check_classes(version, classes)
            except (UserError, OSError, ValueError):  # other classes, or an unreadable card
                continue
            return record
        return None

    def _stored(self, family: str, name: str) -> bool:
        return (
            bool(_VERSION.match(name))
            and (self.family_dir(family) / "versions" / name / CARD).is_file()
        )

    def _complete(self, family: str, name: str) -> bool:
        """Stored, with a readable card and every model file it was stored with."""
        folder = self.family_dir(family) / "versions" / name
        return self._stored(family, name) and ModelVersion(family, name, folder).problem() is None

    def _usable(self, family: str, name: str) -> bool:
        """Complete, and its ONNX files load: what a rollback or a repair may return to (it
        opens them, so it is for those, not for every lookup)."""
        folder = self.family_dir(family) / "versions" / name
        return (
            self._complete(family, name)
            and ModelVersion(family, name, folder).unreadable_model() is None
        )

    def unlisted(self, family: str) -> list[str]:
        """Version folders whose card is gone: not versions any more, but shown as damaged
        so that a user sees why one is missing (CURRENT may name it)."""
        folder = self.family_dir(family) / "versions"
        if not folder.is_dir():
            return []
        return sorted(
            (
                e.name
                for e in folder.iterdir()
                if _VERSION.match(e.name) and not (e / CARD).exists()
            ),
            key=lambda name: int(name[1:]),
        )


def live_version_name(pointer: Path) -> str | None:
    """The version a CURRENT file names, for a watch that asks every few seconds: at most
    its first MiB (it grows by a version name per promotion: some KiB after years of a
    nightly loop). None for none, or for anything that is not a plain version name."""
    try:
        with pointer.open("rb") as handle:
            record = json.loads(handle.read(1 << 20))
    except (OSError, ValueError, RecursionError):
        return None
    name = record.get("version") if isinstance(record, dict) else None
    return name if isinstance(name, str) and _VERSION.match(name) else None


def _is_record(record: object) -> bool:
    """A promotion record names a version, or None: rolled back past the first version, to
    the installed or bundled default."""
    return (
        isinstance(record, dict)
        and "version" in record  # `{}` names nothing: damaged, not "the default"
        and isinstance(record["version"], str | None)
    )


def _repair(family: str) -> str:
    return f"`imagine-assist models repair {family}` rebuilds it from {HISTORY}"


def _earlier(record: dict) -> list[str | None]:
    """The live versions before this record's, oldest first. A record written before this
    list existed names only the one before, and a rollback record of that time names the
    version it left: that one is not gone back to."""
    earlier = record.get("earlier")
    if isinstance(earlier, list) and all(isinstance(v, str | None) for v in earlier):
        return list(earlier)
    previous = record.get("previous")
    if record.get("action") == "rollback" or not isinstance(previous, str):
        return []
    return [previous]
