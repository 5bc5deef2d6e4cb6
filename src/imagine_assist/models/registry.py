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
CURRENT (`models.store.resolve_model`); a family without one serves the model installed
directly in its directory, else the bundled default.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
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
        if not isinstance(record, dict) or not isinstance(record.get("version"), str):
            raise UserError(f"{pointer} is not a promotion record; promote a version again")
        return record

    def current(self, family: str) -> ModelVersion | None:
        record = self.live(family)
        if record is None:
            return None
        name = record["version"]
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

    def promote(
        self, family: str, name: str, reason: str, forced: bool = False, action: str = "promote"
    ) -> ModelVersion:
        version = self.get(family, name)
        previous = self.current(family)
        record = {
            "time": time.time(),
            "action": action,
            "version": name,
            "previous": previous.name if previous else None,
            "forced": forced,
            "reason": reason,
        }
        _write_atomically(
            self.family_dir(family) / CURRENT, json.dumps(record) + "\n"
        )  # the switch
        card = version.card  # then the logs: the version's card and the family's history
        card.setdefault("promotions", []).append(record)
        _write_atomically(version.path / CARD, json.dumps(card, indent=2))
        with (self.family_dir(family) / "history.jsonl").open("a") as history:
            history.write(json.dumps(record) + "\n")
        return version

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

    def rollback(self, family: str) -> ModelVersion:
        """Go back to the version that was current before the present one."""
        record = self.live(family)
        if record is None:
            raise UserError(f"{family} has no promoted version in {self.root} to roll back")
        if not record.get("previous"):
            raise UserError(f"{family} {record['version']} has no earlier version to roll back to")
        reason = f"rollback from {record['version']}"
        return self.promote(family, record["previous"], reason, action="rollback")
