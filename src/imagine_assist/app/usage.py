"""`imagine-assist usage report`: images processed per function and month, users, clients
and countries, from the gateway's and cvat-cli's logs."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagine_assist.errors import UserError
from imagine_assist.home import Home


def add_parser(subparsers, parents) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "usage",
        help="images processed per function and month, users, clients, countries",
        parents=parents,
    )
    parser.add_argument("action", choices=["report"])
    parser.add_argument(
        "--since", help="first day counted, YYYY-MM-DD (default: the first one logged)"
    )
    parser.add_argument(
        "--log",
        action="append",
        help="access or cvat-cli log, repeat for several (default: those in <home>/logs/)",
    )
    parser.add_argument(
        "--geoip",
        help="CSV of address ranges start,end,country, read offline (default: no countries)",
    )
    parser.add_argument("--gateway", help="also read this running gateway's counters")
    parser.add_argument("--out", default="usage-report", help="folder for the CSV and plot")
    parser.set_defaults(run=run, out_is_folder=True)
    return parser


def run(args: argparse.Namespace) -> int:
    import datetime as dt

    from imagine_assist.usage.record import usage_log_path
    from imagine_assist.usage.report import (
        load_geoip,
        read_counters,
        read_uses,
        summarise,
        write_report,
    )

    home = Home.resolve()
    if args.log:
        logs = list(dict.fromkeys(Path(path).resolve() for path in args.log))  # once each
        absent = [str(path) for path in logs if not path.is_file()]
        if absent:  # a typo must not quietly leave a log's uses out of the report
            raise UserError(f"no usage log at {', '.join(absent)}")
    else:  # the current logs and what logrotate kept of them (.1, .2.gz, ...)
        cvat_cli_log = usage_log_path(home)
        logs = sorted((home.root / "logs").glob("gateway-access.jsonl*"))
        logs += sorted(cvat_cli_log.parent.glob(f"{cvat_cli_log.name}*"))
        logs = logs or [home.root / "logs" / "gateway-access.jsonl", cvat_cli_log]
    found = [path for path in logs if path.is_file()]
    if not found:
        raise UserError(f"no usage logs at {', '.join(map(str, logs))}; give them with --log")
    try:
        since = dt.date.fromisoformat(args.since) if args.since else None
    except ValueError:
        raise UserError(f"--since wants a date like 2026-01-01, not {args.since!r}") from None
    uses, skipped = read_uses(found)
    country = load_geoip(Path(args.geoip)) if args.geoip else None
    report = summarise(uses, since, country)
    written = write_report(report, Path(args.out))
    for row in report.yearly:
        print(
            f"{row['year']}: {row['images']} images, {row['clients']} client address(es), "
            f"{row['users']} CVAT user(s)"
            + (f", {row['countries']} countries ({row['country_codes']})" if country else "")
        )
    for function, images in report.functions.items():
        print(f"  {function}: {images} images")
    if skipped:
        print(f"skipped {skipped} unreadable log line(s)")
    if args.gateway:
        for function, count in sorted(read_counters(args.gateway).items()):
            print(f"  running gateway, since its start: {function} {count} answered")
    print(f"wrote {', '.join(str(path) for path in written)}")
    return 0
