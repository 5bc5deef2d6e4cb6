"""Publishing a registry version: dataset card, model card, Zenodo deposit, dataset zip.

imagine-assist publish template fish                  the metadata file to fill in once
imagine-assist publish card fish --out publish/fish-v3 [--version v3]
imagine-assist publish upload publish/fish-v3 --token-env ZENODO_TOKEN [--sandbox] [--publish]
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.models.registry import Registry
from imagine_assist.publish.cards import dataset_card, default_title, model_card
from imagine_assist.publish.dataset import dataset_facts, find_exports, rebuild, zip_folder
from imagine_assist.publish.document import MISSING_MARK, Missing, to_html, to_markdown
from imagine_assist.publish.metadata import load_metadata
from imagine_assist.publish.zenodo import (
    DEPOSIT_FILE,
    SANDBOX_URL,
    ZENODO_URL,
    Draft,
    ZenodoClient,
    check_deposit,
    deposit_metadata,
    upload,
)

DATASET_CARD = "dataset-card.md"
MODEL_CARD = "model-card.md"

log = logging.getLogger(__name__)


@dataclass
class Publication:
    folder: Path
    version: str
    dataset_zip: Path
    missing: list[Missing]
    deposit_problems: list[str]


def write_publication(
    registry: Registry,
    family: str,
    out_dir: Path,
    metadata_path: Path | None,
    version_name: str | None = None,
    extra_exports: list[Path] = (),
) -> Publication:
    meta = load_metadata(metadata_path, family)  # first: a typo there fails before any work
    version = registry.get(family, version_name) if version_name else registry.current(family)
    if version is None:
        raise UserError(
            f"{family} has no promoted version in {registry.root}; name one with --version "
            "(see `imagine-assist models list`)"
        )
    exports = find_exports(version, list(extra_exports))
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="publish-", dir=out_dir) as work:
        folder = rebuild(version, exports, Path(work) / "package", Path(work))
        try:  # everything is made before anything is written: a folder holds one whole card
            dataset_doc, model_markdown, deposit, facts = _documents(version, folder, meta)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise UserError(
                f"{family} {version.name}'s card.json is damaged ({type(error).__name__}: "
                f"{error}); nothing was written. Publish another version (`imagine-assist "
                "models list`)"
            ) from None
        dataset_markdown = to_markdown(dataset_doc)
        (folder / "README.md").write_text(dataset_markdown)
        target = out_dir / f"{folder.name}-dataset.zip"
        zip_folder(folder, target)
        shutil.rmtree(folder)
    # A folder is one publication: an earlier card's zip of another version beside this one
    # would be deposited with it (and `publish upload` refuses a folder of two).
    for earlier in out_dir.glob(f"{family}-v*-dataset.zip"):
        if earlier != target and re.fullmatch(
            rf"{re.escape(family)}-v\d+-dataset\.zip", earlier.name
        ):
            earlier.unlink()
            log.info("removed %s, the dataset of an earlier card in %s", earlier.name, out_dir)
    (out_dir / DATASET_CARD).write_text(dataset_markdown)
    (out_dir / MODEL_CARD).write_text(model_markdown)
    (out_dir / DEPOSIT_FILE).write_text(json.dumps(deposit, indent=2, ensure_ascii=False))
    return Publication(out_dir, version.name, target, dataset_doc.missing(), check_deposit(deposit))


def _documents(version, folder: Path, meta):
    """The dataset card, the model card's text, the deposit metadata and the facts, from the
    rebuilt dataset `folder` and the version's card."""
    card = version.card
    # the fixed validation exports (--val) are in the zip too, and marked in the cards
    validation = [
        {**entry, "validation": True}
        for entry in card.get("data", {}).get("validation_exports", []) or []
    ]
    lineage = [*card.get("data", {}).get("exports", []), *validation]
    facts = dataset_facts(folder, list(card["recipe"]["classes"]), lineage)
    dataset_doc = dataset_card(version, facts, meta)
    model_markdown = to_markdown(model_card(version, facts, meta))
    family = version.family
    keywords = ["iMagine", "imagine-assist", "CVAT", "object detection", family]
    deposit = deposit_metadata(
        title=dataset_doc.title,
        description_html=to_html(dataset_doc),
        version=version.name,
        keywords=[*keywords, *facts.classes, *meta.keywords],
        meta=meta,
        notes=(
            f"Made by imagine-assist {card.get('code_version', '')} from the model "
            f"registry's {family} {version.name}; checksums in MANIFEST.sha256 inside the zip."
        ),
    )
    return dataset_doc, model_markdown, deposit, facts


def upload_publication(
    folder: Path,
    token_env: str,
    sandbox: bool = False,
    url: str | None = None,
    publish: bool = False,
    log=print,
) -> Draft:
    folder = Path(folder)
    if not (folder / DEPOSIT_FILE).is_file():
        raise UserError(
            f"{folder} has no {DEPOSIT_FILE}; make it with `imagine-assist publish card`"
        )
    token = os.environ.get(token_env, "")
    if not token:
        raise UserError(
            f"set the environment variable {token_env} to a Zenodo personal access token "
            "(scopes deposit:write, and deposit:actions to publish); it is never read from "
            "the command line"
        )
    zips = sorted(folder.glob("*-dataset.zip"))
    if len(zips) != 1 or not (folder / DATASET_CARD).is_file():
        raise UserError(
            f"{folder} should hold one dataset zip and {DATASET_CARD} (found "
            f"{', '.join(p.name for p in zips) or 'no zip'}); run `imagine-assist publish card` "
            "into an empty folder"
        )
    gaps = (folder / DATASET_CARD).read_text().count(MISSING_MARK)
    if gaps and publish:
        raise UserError(
            f"{DATASET_CARD} still has {gaps} field(s) to fill in; a published record cannot "
            "be changed, so fill them in and run `publish card` again (a draft is fine)"
        )
    if gaps:
        log(f"note: {DATASET_CARD} still has {gaps} field(s) to fill in before publishing")
    files = [zips[0], folder / DATASET_CARD]
    base = url or (SANDBOX_URL if sandbox else ZENODO_URL)
    return upload(folder, files, ZenodoClient(base, token), publish=publish, log=log)


__all__ = [
    "Publication",
    "default_title",
    "upload_publication",
    "write_publication",
]
