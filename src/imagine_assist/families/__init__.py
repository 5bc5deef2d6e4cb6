"""Families as data: the built-in family files and a user's own, read from one place.

    families/builtin/<name>.yaml   shipped with the package (fish, litter, burrow, plankton)
    <home>/families/<name>.yaml    a user's own (`imagine-assist families create`)

A user's family may not take a built-in name: `fish-detector` must mean the same thing on
every machine. Files are read on every call (a handful of small YAML files), so a family
added while a long session runs is seen without a restart (a running gateway takes it at
its next SIGHUP).
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import yaml

from imagine_assist.errors import UserError
from imagine_assist.families.family import (
    LABELS_FROM_MODEL,
    DefaultTraining,
    Family,
    FunctionDef,
    Gate,
    LabelDef,
    Publication,
    TrainingRecipe,
    check_label_names,
    family_from_dict,
    family_to_dict,
    load_family_file,
)
from imagine_assist.home import Home

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
log = logging.getLogger(__name__)


def builtin_families() -> dict[str, Family]:
    return {
        path.stem: load_family_file(path, builtin=True)
        for path in sorted(BUILTIN_DIR.glob("*.yaml"))
    }


def user_families_dir(home: Home | None = None) -> Path:
    return (home or Home.resolve()).families


FAMILIES_ENV = "IMAGINE_ASSIST_FAMILIES"  # more folders of family files (a Nuclio container)


def _user_family_files(home: Home | None) -> list[Path]:
    folders = [user_families_dir(home)]
    folders += [Path(p) for p in os.environ.get(FAMILIES_ENV, "").split(os.pathsep) if p]
    return [path for folder in folders if folder.is_dir() for path in sorted(folder.glob("*.yaml"))]


def read_families(home: Home | None) -> tuple[dict[str, Family], dict[Path, UserError]]:
    """The families, and the user's family files that could not be used, with why."""
    families = builtin_families()
    problems: dict[Path, UserError] = {}
    for path in _user_family_files(home):
        try:
            family = load_family_file(path)
            if family.name in families:
                other = families[family.name]
                where = "built in" if other.builtin else f"defined in {other.source} too"
                raise UserError(
                    f"{path} redefines the family {family.name!r}, which is {where}; "
                    "rename it (file and `name:`)"
                )
        except UserError as error:
            problems[path] = error
            continue
        families[family.name] = family
    return families, problems


def all_families(home: Home | None = None) -> dict[str, Family]:
    """Built-in families first, then the user's, by name. A user's family file that cannot
    be used is left out with a warning: one mistake in one file must not stop the work of
    every other family. Asking for that family by name gives the file's error."""
    families, problems = read_families(home)
    for path, error in problems.items():
        log.warning("left out the family file %s: %s", path, error)
    return families


def family_names(home: Home | None = None) -> list[str]:
    return list(all_families(home))


def get_family(name: str, home: Home | None = None) -> Family:
    families, problems = read_families(home)
    if name in families:
        return families[name]
    for path, error in problems.items():
        if path.stem == name:
            raise UserError(f"{error} (fix or move the file)")
    raise UserError(
        f"unknown family {name!r}; families: {', '.join(families)} "
        "(start your own with `imagine-assist families create NAME --from export.zip`)"
    )


def save_family(family: Family, home: Home | None = None) -> Path:
    """Write a user's family file atomically; never over a built-in or an existing family."""
    if family.name in builtin_families():
        raise UserError(f"{family.name!r} is a built-in family; choose another name")
    folder = user_families_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{family.name}.yaml"
    partial = folder / f".{family.name}.{uuid.uuid4().hex}.partial"
    header = (
        f"# Family {family.name}, written by imagine-assist. Edit freely: labels, thresholds,\n"
        "# the training recipe and its gate. Check with `imagine-assist families show`.\n"
    )
    partial.write_text(header + yaml.safe_dump(family_to_dict(family), sort_keys=False))
    os.replace(partial, path)
    return path


__all__ = [
    "BUILTIN_DIR",
    "FAMILIES_ENV",
    "LABELS_FROM_MODEL",
    "DefaultTraining",
    "Family",
    "FunctionDef",
    "Gate",
    "LabelDef",
    "Publication",
    "TrainingRecipe",
    "all_families",
    "builtin_families",
    "check_label_names",
    "family_from_dict",
    "family_names",
    "family_to_dict",
    "get_family",
    "load_family_file",
    "read_families",
    "save_family",
    "user_families_dir",
]
