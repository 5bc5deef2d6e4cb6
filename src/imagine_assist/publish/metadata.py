"""What the registry cannot know about a family's data: one YAML file the user fills in once.

`imagine-assist publish template <family>` writes it with every field commented; the cards
name each field still empty. Default place: ``<home>/publish/<family>.yaml``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from imagine_assist.errors import UserError

_ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")


def is_orcid(text: str) -> bool:
    """An ORCID iD: four groups of four, the last character its ISO 7064 11,2 check digit
    (Zenodo checks it; a typo in a digit would pass the pattern alone)."""
    if not _ORCID.match(text):
        return False
    total = 0
    for digit in text.replace("-", "")[:-1]:
        total = (total + int(digit)) * 2
    check = (12 - total % 11) % 11
    return text[-1] == ("X" if check == 10 else str(check))


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

TEMPLATE = """\
# Publishing metadata for the {family} family: what the model registry cannot know.
# `imagine-assist publish card {family}` fills the rest of the cards from the registry and
# names every field here that is still empty. Delete the example values you do not use.

title: ""                 # default: "{title}"
creators:                 # Zenodo needs at least one, as "Family name, Given names"
  - name: ""              # e.g. "Doe, Jane"
    affiliation: ""
    orcid: ""             # e.g. 0000-0002-1825-0097 (optional)
contact:                  # who answers questions about the data
  name: ""
  email: ""
  affiliation: ""
keywords: []              # added to the family and its classes
summary: ""               # a paragraph on what the images show and why they were taken
data_sources: ""          # platform, camera, survey or cruise, who took the images
data_quality: ""          # optional: how annotations were checked, beyond what is computed
spatial_coverage:         # where the images were taken
  place: ""               # e.g. "OBSEA cabled observatory, Vilanova i la Geltrú, Spain"
  lat: null               # decimal degrees, WGS84
  lon: null
temporal_coverage:        # when (ISO dates)
  start: ""               # e.g. 2023-01-01
  end: ""
parameters:               # what was measured, with NERC Vocabulary Server links where known
  - name: ""              # e.g. "Abundance of biological entity specified elsewhere"
    uri: ""               # e.g. http://vocab.nerc.ac.uk/collection/P01/current/SDBIOL01/
limitations: ""           # for the model card: where the model should not be trusted
"""

# field -> what the cards need it for; the cards and `publish card` name these when empty
CARD_FIELDS = {
    "creators": "the Zenodo creators (required by Zenodo)",
    "contact": "Contact information",
    "spatial_coverage": "Spatial coverage",
    "temporal_coverage": "Temporal coverage",
    "parameters": "Parameters (NERC vocabulary links)",
}


@dataclass(frozen=True)
class Creator:
    name: str
    affiliation: str = ""
    orcid: str = ""


@dataclass(frozen=True)
class Parameter:
    name: str
    uri: str = ""


@dataclass
class PublishMetadata:
    family: str
    source: Path | None = None
    title: str = ""
    creators: list[Creator] = field(default_factory=list)
    contact: dict = field(default_factory=dict)
    keywords: list[str] = field(default_factory=list)
    summary: str = ""
    data_sources: str = ""
    data_quality: str = ""
    place: str = ""
    lat: float | None = None
    lon: float | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    parameters: list[Parameter] = field(default_factory=list)
    limitations: str = ""

    def missing(self) -> list[str]:
        """Fields the cards need that are still empty, in CARD_FIELDS order."""
        empty = {
            "creators": not self.creators,
            "contact": not (self.contact.get("name") and self.contact.get("email")),
            "spatial_coverage": not self.place,
            "temporal_coverage": self.start is None,
            "parameters": not self.parameters,
        }
        return [name for name in CARD_FIELDS if empty[name]]


def default_path(home_root: Path, family: str) -> Path:
    return home_root / "publish" / f"{family}.yaml"


def write_template(path: Path, family: str, title: str) -> Path:
    if path.exists():
        raise UserError(f"{path} exists; edit it, or give another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(family=family, title=title))
    return path


def _date(value, name: str, path: Path) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):  # YAML reads 2023-01-01T10:00:00 as a datetime
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise UserError(
            f"{path}: {name} must be an ISO date like 2023-06-30, not {value!r}"
        ) from None


def _text(raw: dict, name: str, path: Path) -> str:
    value = raw.get(name) or ""
    if not isinstance(value, str | int | float):
        raise UserError(f"{path}: {name} must be text")
    return str(value).strip()


def _mapping(raw: dict, name: str, path: Path) -> dict:
    value = raw.get(name)
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise UserError(
            f"{path}: {name} must be a group of fields, as in `publish template`, not {value!r}"
        )
    return value


def _entries(raw: dict, name: str, path: Path, mappings: bool = True) -> list:
    value = raw.get(name)
    if value in (None, ""):
        return []
    if not isinstance(value, list) or (
        mappings and not all(isinstance(entry, dict) for entry in value)
    ):
        kind = "entries with fields" if mappings else "items"
        raise UserError(
            f"{path}: {name} must be a list of {kind} (lines starting with '- '), not {value!r}"
        )
    return value


def load_metadata(path: Path | None, family: str) -> PublishMetadata:
    """The user's metadata, checked; an absent file gives empty metadata (all fields missing)."""
    if path is None or not path.is_file():
        return PublishMetadata(family=family, source=path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from None
    except ValueError as error:  # YAML's own date reading: 2023-02-30
        raise UserError(f"{path}: {error} (dates are YYYY-MM-DD)") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must be a mapping of fields (see `publish template`)")
    creators = []
    for entry in _entries(raw, "creators", path):
        if not str(entry.get("name") or "").strip():
            continue  # the template's empty example
        name = str(entry["name"]).strip()
        if "," not in name:
            raise UserError(f'{path}: creator {name!r} must be written "Family name, Given names"')
        orcid = str(entry.get("orcid") or "").strip()
        if orcid and not is_orcid(orcid):
            raise UserError(
                f"{path}: {orcid!r} is not an ORCID iD (0000-0000-0000-0000, its last "
                "character the check digit of the others)"
            )
        creators.append(Creator(name, str(entry.get("affiliation") or "").strip(), orcid))
    contact = {k: str(v).strip() for k, v in _mapping(raw, "contact", path).items() if v}
    if contact.get("email") and not _EMAIL.match(contact["email"]):
        raise UserError(f"{path}: contact email {contact['email']!r} is not an address")
    space = _mapping(raw, "spatial_coverage", path)
    lat, lon = space.get("lat"), space.get("lon")
    try:
        lat = None if lat in (None, "") else float(lat)
        lon = None if lon in (None, "") else float(lon)
    except (TypeError, ValueError):
        raise UserError(f"{path}: spatial_coverage lat and lon must be numbers") from None
    if (lat is not None and not -90 <= lat <= 90) or (lon is not None and not -180 <= lon <= 180):
        raise UserError(f"{path}: spatial_coverage lat must be in [-90, 90] and lon in [-180, 180]")
    time_span = _mapping(raw, "temporal_coverage", path)
    start = _date(time_span.get("start"), "temporal_coverage.start", path)
    end = _date(time_span.get("end"), "temporal_coverage.end", path)
    if start and end and end < start:
        raise UserError(f"{path}: temporal_coverage ends ({end}) before it starts ({start})")
    parameters = [
        Parameter(str(entry["name"]).strip(), str(entry.get("uri") or "").strip())
        for entry in _entries(raw, "parameters", path)
        if str(entry.get("name") or "").strip()
    ]
    keywords = [
        str(word).strip()
        for word in _entries(raw, "keywords", path, mappings=False)
        if str(word).strip()
    ]
    return PublishMetadata(
        family=family,
        source=path,
        title=_text(raw, "title", path),
        creators=creators,
        contact=contact,
        keywords=keywords,
        summary=_text(raw, "summary", path),
        data_sources=_text(raw, "data_sources", path),
        data_quality=_text(raw, "data_quality", path),
        place=str(space.get("place") or "").strip(),
        lat=lat,
        lon=lon,
        start=start,
        end=end,
        parameters=parameters,
        limitations=_text(raw, "limitations", path),
    )
