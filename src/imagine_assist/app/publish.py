"""`imagine-assist publish`: dataset and model cards, the Zenodo deposit and the dataset zip
of a registry version."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagine_assist.app.common import MODELS_HELP
from imagine_assist.errors import UserError
from imagine_assist.home import Home


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "publish",
        help="dataset and model cards, Zenodo deposit and dataset zip of a version",
        parents=parents,
    )
    parser.add_argument("action", choices=["template", "card", "upload"])
    parser.add_argument("target", help="the family (template, card), or a card folder (upload)")
    parser.add_argument(
        "--out",
        help="card: output folder; template: metadata file path (default: for a template, "
        "--metadata's path)",
    )
    parser.add_argument("--version", help="registry version, e.g. v3 (default: the promoted one)")
    parser.add_argument("--metadata", help="metadata file (default: <home>/publish/<family>.yaml)")
    parser.add_argument(
        "--export",
        action="append",
        help="where an export that trained it is now, if the home no longer holds it (repeat)",
    )
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--token-env", default="ZENODO_TOKEN", help="variable holding the Zenodo token"
    )
    parser.add_argument("--sandbox", action="store_true", help="sandbox.zenodo.org")
    parser.add_argument(
        "--url",
        help="another server with Zenodo's deposit API, a self-hosted Zenodo (default: zenodo.org)",
    )
    parser.add_argument(
        "--publish", action="store_true", help="publish the draft (a DOI cannot be taken back)"
    )
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import family_dir
    from imagine_assist.publish import upload_publication, write_publication
    from imagine_assist.publish.cards import default_title
    from imagine_assist.publish.metadata import default_path, write_template

    if args.action == "upload":
        draft = upload_publication(
            Path(args.target), args.token_env, args.sandbox, args.url, args.publish
        )
        state = f"published, DOI {draft.doi}" if draft.published else "a draft, not published"
        print(f"deposit {draft.id} is {state}: {draft.html}")
        if not draft.published:
            print("check it on Zenodo, then publish there or run again with --publish")
        return 0
    from imagine_assist.families import get_family

    family = get_family(args.target).name  # here, not in argparse: --home decides what exists
    metadata = Path(args.metadata) if args.metadata else default_path(Home.resolve().root, family)
    if args.action == "template":
        path = write_template(
            Path(args.out) if args.out else metadata, family, default_title(family, "vN")
        )
        # the card reads the default file by itself; any other must be named again
        given = "" if path == default_path(Home.resolve().root, family) else f" --metadata {path}"
        print(
            f"wrote {path}; fill it in, then run `imagine-assist publish card {family}{given} "
            "--out FOLDER`"
        )
        return 0
    if not args.out:
        raise UserError("give --out <folder> for the cards, the deposit JSON and the zip")
    registry = Registry(family_dir(family, args.models).parent)
    publication = write_publication(
        registry,
        family,
        Path(args.out),
        metadata,
        args.version,
        [Path(path) for path in args.export or []],
    )
    print(
        f"{family} {publication.version}: cards, zenodo-deposit.json and "
        f"{publication.dataset_zip.name} in {publication.folder}"
    )
    for gap in publication.missing:
        print(f"missing: {gap.field} (fill it in {gap.where})")
    for problem in publication.deposit_problems:
        print(f"zenodo would refuse the deposit: {problem}")
    if not metadata.is_file():
        print(f"no metadata file at {metadata}: `imagine-assist publish template {family}`")
    return 0
