"""Zenodo deposits: the metadata JSON, its checks against the deposit API's field rules, and
the upload of a draft through the REST API (developers.zenodo.org, "Deposit").

The upload creates a draft, puts the files in its bucket, then sets the metadata; it
publishes only when asked, since a published record and its DOI cannot be deleted. The token
travels only in the Authorization header, never in a URL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.publish.cards import GRANT, LICENSE
from imagine_assist.publish.metadata import PublishMetadata, is_orcid

ZENODO_URL = "https://zenodo.org"
SANDBOX_URL = "https://sandbox.zenodo.org"
COMMUNITY = "imagine-project"
EUROPEAN_COMMISSION = "10.13039/501100000780"  # the funder's DOI in Crossref's registry
DEPOSIT_FILE = "zenodo-deposit.json"
DRAFT_FILE = "zenodo-draft.json"

UPLOAD_TYPES = {
    "publication",
    "poster",
    "presentation",
    "dataset",
    "image",
    "video",
    "software",
    "lesson",
    "physicalobject",
    "other",
}
ACCESS_RIGHTS = {"open", "embargoed", "restricted", "closed"}
DATE_TYPES = {"Collected", "Valid", "Withdrawn"}
CONTRIBUTOR_TYPES = {
    "ContactPerson",
    "DataCollector",
    "DataCurator",
    "DataManager",
    "Distributor",
    "Editor",
    "HostingInstitution",
    "Producer",
    "ProjectLeader",
    "ProjectManager",
    "ProjectMember",
    "RegistrationAgency",
    "RegistrationAuthority",
    "RelatedPerson",
    "Researcher",
    "ResearchGroup",
    "RightsHolder",
    "Supervisor",
    "Sponsor",
    "WorkPackageLeader",
    "Other",
}
# the deposit API refuses fields it does not know ("Unknown field name")
KNOWN_FIELDS = {
    "upload_type",
    "publication_type",
    "image_type",
    "publication_date",
    "title",
    "creators",
    "description",
    "access_right",
    "license",
    "embargo_date",
    "access_conditions",
    "doi",
    "prereserve_doi",
    "keywords",
    "notes",
    "related_identifiers",
    "contributors",
    "references",
    "communities",
    "grants",
    "journal_title",
    "conference_title",
    "imprint_publisher",
    "partof_title",
    "thesis_supervisors",
    "subjects",
    "version",
    "language",
    "locations",
    "dates",
    "method",
}


def deposit_metadata(
    title: str,
    description_html: str,
    version: str,
    keywords: list[str],
    meta: PublishMetadata,
    notes: str = "",
) -> dict:
    """The body of the deposit API's metadata update, for a dataset in the iMagine community."""
    metadata: dict = {
        "upload_type": "dataset",
        "title": title,
        "creators": [
            {
                key: value
                for key, value in (
                    ("name", creator.name),
                    ("affiliation", creator.affiliation),
                    ("orcid", creator.orcid),
                )
                if value
            }
            for creator in meta.creators
        ],
        "description": description_html,
        "access_right": "open",
        "license": LICENSE.lower(),
        "keywords": list(dict.fromkeys(keywords)),
        "version": version,
        "communities": [{"identifier": COMMUNITY}],
        "grants": [{"id": f"{EUROPEAN_COMMISSION}::{GRANT}"}],
    }
    if meta.contact.get("name"):
        contact = {"name": meta.contact["name"], "type": "ContactPerson"}
        if meta.contact.get("affiliation"):
            contact["affiliation"] = meta.contact["affiliation"]
        metadata["contributors"] = [contact]
    if meta.place:
        location = {"place": meta.place}
        if meta.lat is not None and meta.lon is not None:
            location |= {"lat": meta.lat, "lon": meta.lon}
        metadata["locations"] = [location]
    if meta.start:
        span = {"start": meta.start.isoformat(), "type": "Collected"}
        if meta.end:
            span["end"] = meta.end.isoformat()
        metadata["dates"] = [span]
    if notes:
        metadata["notes"] = notes
    return {"metadata": metadata}


def _is_date(value) -> bool:
    try:
        dt.date.fromisoformat(str(value))
        return True
    except ValueError:
        return False


def _check_list_of_objects(metadata: dict, key: str, problems: list[str]) -> list[dict]:
    value = metadata.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        problems.append(f"{key} must be a list of objects")
        return []
    return value


def check_deposit(deposit: dict) -> list[str]:
    """Problems with a deposit body under the deposit API's field rules; empty when valid."""
    if not isinstance(deposit, dict) or not isinstance(deposit.get("metadata"), dict):
        return ['the body must be {"metadata": {...}}']
    metadata, problems = deposit["metadata"], []
    for key in sorted(set(metadata) - KNOWN_FIELDS):
        problems.append(f"unknown field {key!r} (Zenodo refuses it)")
    upload_type = metadata.get("upload_type")
    if upload_type not in UPLOAD_TYPES:
        problems.append(f"upload_type must be one of {sorted(UPLOAD_TYPES)}, not {upload_type!r}")
    if upload_type == "publication" and not metadata.get("publication_type"):
        problems.append("publication_type is required for a publication")
    if upload_type == "image" and not metadata.get("image_type"):
        problems.append("image_type is required for an image")
    for key in ("title", "description"):
        if not isinstance(metadata.get(key), str) or not metadata[key].strip():
            problems.append(f"{key} is required and must be non-empty text")
    creators = _check_list_of_objects(metadata, "creators", problems)
    if not creators:
        problems.append('creators needs at least one {"name": "Family name, Given names"}')
    for creator in creators:
        name = creator.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append("every creator needs a name")
        elif "," not in name:
            problems.append(f'creator {name!r} must be "Family name, Given names"')
        if set(creator) - {"name", "affiliation", "orcid", "gnd"}:
            problems.append(f"creator {name!r} has fields Zenodo does not know")
        if creator.get("orcid") and not is_orcid(str(creator["orcid"])):
            problems.append(f"creator {name!r}: {creator['orcid']!r} is not an ORCID iD")
    access = metadata.get("access_right", "open")
    if access not in ACCESS_RIGHTS:
        problems.append(f"access_right must be one of {sorted(ACCESS_RIGHTS)}, not {access!r}")
    if access in ("open", "embargoed") and not metadata.get("license"):
        problems.append(f"license is required when access_right is {access}")
    if access == "embargoed" and not _is_date(metadata.get("embargo_date")):
        problems.append("embargo_date (YYYY-MM-DD) is required when access_right is embargoed")
    if access == "restricted" and not metadata.get("access_conditions"):
        problems.append("access_conditions is required when access_right is restricted")
    if "publication_date" in metadata and not _is_date(metadata["publication_date"]):
        problems.append("publication_date must be an ISO date (YYYY-MM-DD)")
    keywords = metadata.get("keywords", [])
    if not isinstance(keywords, list) or not all(
        isinstance(word, str) and word.strip() for word in keywords
    ):
        problems.append("keywords must be a list of non-empty strings")
    if "version" in metadata and not isinstance(metadata["version"], str):
        problems.append("version must be text")
    for community in _check_list_of_objects(metadata, "communities", problems):
        if not isinstance(community.get("identifier"), str) or not community["identifier"]:
            problems.append('each community needs an "identifier"')
    for grant in _check_list_of_objects(metadata, "grants", problems):
        if not isinstance(grant.get("id"), str) or not grant["id"]:
            problems.append('each grant needs an "id" (e.g. "10.13039/501100000780::101058625")')
    for contributor in _check_list_of_objects(metadata, "contributors", problems):
        if not contributor.get("name"):
            problems.append("every contributor needs a name")
        if contributor.get("type") not in CONTRIBUTOR_TYPES:
            problems.append(f"contributor type must be one of {sorted(CONTRIBUTOR_TYPES)}")
    for location in _check_list_of_objects(metadata, "locations", problems):
        if not location.get("place"):
            problems.append("every location needs a place")
        lat, lon = location.get("lat"), location.get("lon")
        numbers = all(
            isinstance(value, int | float) and not isinstance(value, bool) for value in (lat, lon)
        )
        if (lat is None) != (lon is None):
            problems.append("a location gives both lat and lon, or neither")
        elif lat is not None and not numbers:
            problems.append("location lat and lon must be numbers")
        elif lat is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
            problems.append("location lat must be in [-90, 90] and lon in [-180, 180]")
    for span in _check_list_of_objects(metadata, "dates", problems):
        if span.get("type") not in DATE_TYPES:
            problems.append(f"date type must be one of {sorted(DATE_TYPES)}")
        if not (span.get("start") or span.get("end")):
            problems.append("a date needs a start, an end or both")
        for key in ("start", "end"):
            if key in span and not _is_date(span[key]):
                problems.append(f"date {key} must be an ISO date (YYYY-MM-DD)")
    return problems


# --- upload --------------------------------------------------------------------------------


@dataclass
class Draft:
    id: int
    html: str
    files: list[str]
    published: bool
    doi: str = ""


def _md5(path: Path) -> str:
    """What Zenodo reports for an uploaded file ("md5:<hex>")."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


class ZenodoClient:
    def __init__(self, base_url: str, token: str, timeout_s: float = 300.0) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout_s = timeout_s

    def call(self, method: str, url: str, what: str, expected: tuple[int, ...], **kwargs):
        import requests

        try:
            response = self.session.request(method, url, timeout=self.timeout_s, **kwargs)
        except requests.ConnectionError as error:
            raise UserError(
                f"could not reach {self.base_url} to {what}: {error.__class__.__name__}. "
                "No network here? The deposit folder is complete: run the same command "
                "where there is one."
            ) from None
        except requests.Timeout:
            raise UserError(
                f"{self.base_url} did not answer in {self.timeout_s:g} s ({what})"
            ) from None
        except requests.RequestException as error:  # a URL without a scheme, say
            raise UserError(f"could not send the request to {what} to {url}: {error}") from None
        if response.status_code in (401, 403):
            raise UserError(
                f"Zenodo refused the token ({response.status_code}) to {what}: it needs the "
                "deposit:write scope (and deposit:actions to publish)"
            )
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = None
        if response.status_code not in expected:
            detail = response.text[:300]
            if isinstance(body, dict):
                detail = str(body.get("message", ""))
                detail += "".join(
                    f"; {item.get('field', '')}: {item.get('message', item)}"
                    for item in body.get("errors") or []
                    if isinstance(item, dict)
                )
            raise UserError(f"Zenodo answered {response.status_code} to {what}: {detail}")
        if not isinstance(body, dict):
            raise UserError(
                f"{url} answered {response.status_code} to {what} with something other than "
                "a JSON object (a proxy or a login page?); is this Zenodo's deposit API?"
            )
        return body


def upload(
    folder: Path, files: list[Path], client: ZenodoClient, publish: bool = False, log=print
) -> Draft:
    """Create a draft deposit, upload `files` into it, set its metadata; publish if asked."""
    deposit = json.loads((folder / DEPOSIT_FILE).read_text())
    problems = check_deposit(deposit)
    if problems:
        raise UserError(
            f"{folder / DEPOSIT_FILE} would be refused by Zenodo: " + "; ".join(problems)
        )
    record = _previous_draft(folder, client.base_url)
    if record is None:
        created = client.call(
            "POST",
            f"{client.base_url}/api/deposit/depositions",
            "create a draft",
            (200, 201),
            json={},
        )
        record = {
            "id": created["id"],
            "links": created.get("links", {}),
            "base_url": client.base_url,
            "files": {},
        }
        _save_draft(folder, record)
        log(f"draft {record['id']} created: {record['links'].get('html', '')}")
    else:
        log(f"going on with draft {record['id']} made earlier from this folder ({DRAFT_FILE})")
    draft_id, links = record["id"], record["links"]
    bucket = links.get("bucket")
    if not bucket:
        raise UserError(f"Zenodo's answer for draft {draft_id} has no bucket link to upload to")
    # A file the draft holds that this folder no longer does is an earlier card's (another
    # version's zip): it would be published under this deposit's DOI with the rest.
    for name in [n for n in record["files"] if n not in {path.name for path in files}]:
        client.call(
            "DELETE",
            f"{bucket}/{name}",
            f"remove {name}, which this folder no longer holds, from draft {draft_id}",
            (200, 204, 404),
        )
        del record["files"][name]
        _save_draft(folder, record)
        log(f"removed {name} from the draft: this folder no longer holds it")
    for path in files:
        md5 = _md5(path)
        if record["files"].get(path.name) == md5:
            log(f"{path.name} is already in the draft")
            continue
        with path.open("rb") as handle:
            answer = client.call(
                "PUT",
                f"{bucket}/{path.name}",
                f"upload {path.name} to draft {draft_id}",
                (200, 201),
                data=handle,
                headers={"Content-Type": "application/octet-stream"},
            )
        checksum = answer.get("checksum", "")
        if checksum and checksum != f"md5:{md5}":
            raise UserError(
                f"{path.name} arrived damaged in draft {draft_id} (Zenodo has {checksum}); "
                "run the same command again to upload it again"
            )
        record["files"][path.name] = md5
        _save_draft(folder, record)
        log(f"uploaded {path.name} ({path.stat().st_size:,} bytes)")
    client.call(
        "PUT",
        f"{client.base_url}/api/deposit/depositions/{draft_id}",
        f"set the metadata of draft {draft_id}",
        (200,),
        json=deposit,
    )
    log("metadata set")
    doi = ""
    if publish:
        published = client.call(
            "POST",
            links.get("publish")
            or f"{client.base_url}/api/deposit/depositions/{draft_id}/actions/publish",
            f"publish draft {draft_id}",
            (200, 202),
        )
        doi = published.get("doi", "")
        record["doi"] = doi
        _save_draft(folder, record)
    return Draft(draft_id, links.get("html", ""), list(record["files"]), publish, doi)


def _save_draft(folder: Path, record: dict) -> None:
    partial = folder / f".{DRAFT_FILE}.partial"
    partial.write_text(json.dumps(record, indent=2))
    partial.replace(folder / DRAFT_FILE)


def _previous_draft(folder: Path, base_url: str) -> dict | None:
    """The draft an earlier run made from this folder, so a rerun goes on with it instead of
    leaving a second draft behind; None when there is none for this Zenodo."""
    path = folder / DRAFT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record.get("files"), dict):
            raise ValueError("files")
    except (ValueError, AttributeError):
        raise UserError(
            f"{path} is damaged; find the draft on Zenodo, then delete {path} to start anew"
        ) from None
    if record.get("doi"):
        raise UserError(
            f"this folder was published as {record['doi']}; a change needs a new version "
            f"on Zenodo (delete {path} to make a separate deposit)"
        )
    if record.get("base_url") != base_url:
        return None
    return record
