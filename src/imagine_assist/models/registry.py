"""Versioned models per family, in a directory the user chooses (the models directory).

    <models dir>/<family>/
        versions/v1/   model.onnx, model.pt, card.json (metrics, lineage, recipe, code version)
        versions/v2/   ...
        CURRENT        the live promotion: {"version": "v2", "previous": "v1", reason, time...}
        history.jsonl  one line per promotion or rollback (a log; CURRENT is the truth)

Every write is atomic, so killing a training run or a promotion at any moment leaves the
registry as it was: a version is staged in a hidden directory and renamed into place only
when complete, and a promotion is one `os.replace` of CURRENT, which also names the version
it replaced (what a rollback returns to); the log lines come after. The served functions follow
CURRENT (`models.store.live_model`); a family without one serves the model installed
directly in its directory, else the bundled default.

The live model is protected: a version whose classes differ from the family's labels is
never promoted, `--force` or not (it would break the served function), and a rollback past
the first promoted version returns to the installed or bundled default.
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

from imagine_assist.errors import UserError

CURRENT = "CURRENT"
CARD = "card.json"
_VERSION = re.compile(r"^v(\d+)$")


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
        return json.loads((self.path / CARD).read_text())

    def file(self, name: str = "model.onnx") -> Path:
        return self.path / name

    def classes(self) -> list[str] | None:
        """The classes the version detects: from its card, else from its ONNX metadata;
        None when neither can tell (a version of a model without classes, or a damaged one)."""
        recorded = self.card.get("classes")
        if isinstance(recorded, list):
            return [str(name) for name in recorded]
        if not self.file("model.onnx").is_file():
            return None
        from imagine_assist.models.detector import open_onnx, ultralytics_metadata

        try:
            return ultralytics_metadata(open_onnx(self.file("model.onnx")), self.path)[0]
        except UserError:
            return None


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    partial.write_text(text)
    os.replace(partial, path)


class Registry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def family_dir(self, family: str) -> Path:
        return self.root / family

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
        """The CURRENT record, or None when nothing was promoted."""
        pointer = self.family_dir(family) / CURRENT
        if not pointer.is_file():
            return None
        try:
            record = json.loads(pointer.read_text())
        except json.JSONDecodeError:
            record = None
        # version None: rolled back past the first version, to the installed or bundled default
        if not isinstance(record, dict) or not isinstance(record.get("version"), str | None):
            raise UserError(f"{pointer} is not a promotion record; promote a version again")
        return record

    def current(self, family: str) -> ModelVersion | None:
        record = self.live(family)
        if record is None:
            return None
        name = record["version"]
        if name is None:
            return None
        pointer = self.family_dir(family) / CURRENT
        version = self.family_dir(family) / "versions" / name
        if not _VERSION.match(name) or not (version / CARD).is_file():
            raise UserError(f"{pointer} names {name!r}, which is not a complete version")
        return ModelVersion(family, name, version)

    def add(self, family: str, files: dict[str, Path], card: dict) -> ModelVersion:
        """Store a new version (not promoted). `files` maps names in the version to sources."""
        folder = self.family_dir(family) / "versions"
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for name, source in files.items():
                shutil.copyfile(source, staging / name)
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
        self.check_classes(version, classes)
        record = self.live(family)
        # the versions live before, most recent last: what rollbacks walk back through
        # (None stands for the installed or bundled default)
        earlier = _earlier(record) if record else []
        if record and record["version"] != name:  # promoting the live version again: no step
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
        with (self.family_dir(family) / "history.jsonl").open("a") as history:
            history.write(json.dumps(record) + "\n")

    def history(self, family: str) -> list[dict]:
        path = self.family_dir(family) / "history.jsonl"
        if not path.is_file():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: the switch itself is in CURRENT
        return records

    def rollback(self, family: str, has_default: bool = True) -> ModelVersion | None:
        """Go back to the version that was live before the present one, and on each further
        rollback to the one before that; past the first promoted version, to the installed
        or bundled default (None), which always exists for a built-in family
        (`has_default`). A rollback never returns to the version it leaves."""
        record = self.live(family)
        if record is None or record.get("version") is None:
            where = "its default model" if has_default else "no promoted version"
            raise UserError(f"{family} serves {where}: there is nothing to roll back")
        earlier = _earlier(record)
        # versions deleted by hand since are skipped, not resurrected
        while earlier and earlier[-1] is not None and not self._complete(family, earlier[-1]):
            earlier.pop()
        reason = f"rollback from {record['version']}"
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

    def _complete(self, family: str, name: str) -> bool:
        return (
            bool(_VERSION.match(name))
            and (self.family_dir(family) / "versions" / name / CARD).is_file()
        )


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
