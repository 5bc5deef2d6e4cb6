"""`imagine-assist models`: list, show, promote, roll back or repair a family's model versions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imagine_assist.app.common import MODELS_HELP, family_help, reload_gateway
from imagine_assist.errors import UserError


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models",
        help="list, show, promote, roll back or repair model versions",
        description="The registry keeps every version `train --from` made. promote makes one "
        "live (it must pass its gate, or take --force, and detect the family's labels); "
        "promoting the live version changes nothing. rollback returns to the version live "
        "before, one step per call back through the promotions, and from the first one to the "
        "installed or bundled default model; --to goes back to a named earlier version. "
        "repair rebuilds a damaged CURRENT from the last good entry of history.jsonl.",
        parents=parents,
    )
    parser.add_argument("action", choices=["list", "show", "promote", "rollback", "repair"])
    parser.add_argument("family", help=family_help())
    parser.add_argument(
        "version",
        nargs="?",
        help="e.g. v3: the version to promote, or to show (default: the live one)",
    )
    parser.add_argument(
        "--to",
        metavar="VERSION",
        help="rollback: go back to this earlier version (e.g. v2), as several rollbacks would",
    )
    parser.add_argument("--models", help=MODELS_HELP)
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote a version that failed its gate; it never overrides a class mismatch "
        "(a model whose classes differ from the family's labels is never promoted)",
    )
    parser.add_argument("--gateway", help="URL of a running gateway to reload afterwards")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from imagine_assist.families import get_family
    from imagine_assist.models.registry import Registry
    from imagine_assist.models.store import family_dir, has_default_model

    family = get_family(args.family).name  # here, not in argparse: --home decides what exists
    registry = Registry(family_dir(family, args.models).parent)
    registry.tidy(family)  # what killed runs left behind
    if args.to and args.action != "rollback":
        raise UserError("--to goes with rollback: `models rollback FAMILY --to vN`")
    # list, show vN, promote (which overwrites it) and repair work on a damaged CURRENT;
    # rollback and show of the live version stop with its error, which names `models repair`
    damage = registry.damage(family)
    if damage and (args.action == "rollback" or (args.action == "show" and not args.version)):
        raise UserError(damage)
    current = None if damage else registry.current(family)
    if args.action == "list":
        versions = registry.versions(family)
        if not versions:
            print(f"no {family} versions in {registry.root}")
        if damage:
            print(f"warning: {damage}", file=sys.stderr)
        for name in registry.unlisted(family):
            print(f"  {name}  damaged: its card.json is gone")
        for version in versions:
            mark = "*" if current and current.name == version.name else " "
            problem = version.problem() or version.unreadable_model()
            if problem is not None:  # one damaged version must not hide the others
                print(f"{mark} {version.name}  damaged: {problem.split(': ', 1)[-1]}")
                continue
            card = version.card
            candidate = (card.get("metrics") or {}).get("candidate") or {}
            gate = card.get("gate", {})
            verdict = (
                "undecided" if gate.get("decided") is False
                else "passed" if gate.get("passed") else "failed"
            )  # fmt: skip
            # a box detector's versions carry mAP50, a separator's its object F1
            separator = card.get("model") == "separator"
            key, shown = ("f1", "F1") if separator else ("mAP50", "mAP50")
            gone = [name for name in version.model_files() if not version.file(name).is_file()]
            print(
                f"{mark} {version.name}  {shown} {candidate.get(key, float('nan')):.3f}  "
                f"gate {verdict}  {len(card.get('data', {}).get('exports', []))} export(s)"
                + (f"  ({', '.join(gone)} gone: serves, cannot be retrained from)" if gone else "")
            )
        if current is None and not damage:
            print(f"* {_default_model(family, args.models)}")
        return 0
    if args.action == "show":
        version = registry.get(family, args.version) if args.version else current
        if version is None:
            raise UserError(
                f"{family} serves its default model (no promoted version); name a version: "
                f"`imagine-assist models show {family} v1`"
            )
        print(json.dumps(version.card, indent=2))
        problem = version.problem() or version.unreadable_model()
        if problem is not None:  # as `list` marks it: a card alone looks sound
            print(f"warning: {problem}", file=sys.stderr)
        return 0
    if args.action == "promote":
        if not args.version:
            raise UserError(f"name the version to promote, e.g. `models promote {family} v3`")
        version = registry.get(family, args.version)
        if current and current.name == version.name:
            print(f"{family} {version.name} is live already; nothing changed")
            return 0
        gate = version.card.get("gate", {"passed": True})
        if not gate.get("passed") and not args.force:
            verdict = "failed its gate" if gate.get("decided", True) else "could not be judged"
            raise UserError(
                f"{version.name} {verdict} ({'; '.join(gate.get('reasons', []))}); "
                "add --force to promote it anyway"
            )
        forced = not gate.get("passed", True)
        reason = "by hand" + (", forced" if forced else "")
        registry.promote(family, version.name, reason, forced)  # refuses other classes
        print(f"promoted {family} {version.name}" + (" over a damaged CURRENT" if damage else ""))
    elif args.action == "rollback":
        has_default = has_default_model(family, args.models)
        version = registry.rollback(family, has_default=has_default, to=args.to)
        print(f"rolled {family} back to {current_name(version)}")
    else:
        problem = registry.needs_repair(family)
        if problem is None:
            live = current_name(registry.current(family))
            print(f"{family}'s CURRENT is sound ({live} live); nothing to repair")
            return 0
        version = registry.repair(family, has_default=has_default_model(family, args.models))
        print(f"{problem}\nrepaired: {family} serves {current_name(version)}")
    if args.gateway:
        reload_gateway(args.gateway, family)
    return 0


def current_name(version) -> str:
    return version.name if version else "its default model"


def _default_model(family: str, models_dir) -> str:
    """What serves a family with no version promoted, for `models list`'s live mark."""
    from imagine_assist.families import get_family
    from imagine_assist.models.store import live_model

    try:
        served = [f.model for f in get_family(family).functions if f.runtime != "reid"]
        name = Path(served[0]).stem if served else "model"  # plankton: separator.onnx
        live = live_model(family, models_dir, name=name)
    except UserError:
        return "no model yet: nothing serves"
    where = "installed by hand" if live.source == "installed" else "bundled with the package"
    return f"default  the model {where} ({live.path}), no version promoted"
