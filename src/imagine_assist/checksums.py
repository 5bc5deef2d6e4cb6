"""SHA-256 of files, read in blocks: export lineage, content splits, and the checksum
manifests of offline bundles and published datasets (``sha256sum -c`` reads them too)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from imagine_assist.errors import UserError

MANIFEST = "MANIFEST.sha256"


def file_sha256(path: str | Path) -> str:
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_manifest(folder: Path) -> Path:
    """A checksum line per file under `folder`, in sha256sum's format."""
    lines = [
        f"{file_sha256(path)}  {path.relative_to(folder).as_posix()}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    ]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")
    return folder / MANIFEST


def verify_manifest(folder: str | Path) -> list[str]:
    """Problems found: files changed, missing or not listed. Empty when the folder is whole."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise UserError(f"{folder} has no {MANIFEST}: not a bundle or dataset, or cut short")
    listed = {}
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    problems = []
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"missing: {name}")
        elif file_sha256(path) != digest:
            problems.append(f"changed: {name}")
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and path.name != MANIFEST and name not in listed:
            problems.append(f"not listed: {name}")
    return problems
