"""`imagine-assist usage report`: images processed per function and month, distinct clients
and CVAT users, and countries where a GeoIP file is given, from the gateway's access log and
the cvat-cli usage log; as CSV, a plot and the gateway's live counters.

An image counts once per answered request (2xx): one CVAT detector call, tracker frame or
cvat-cli image. Country lookup is offline only: a CSV of address ranges the user supplies,
such as DB-IP's "IP to Country Lite" (start,end,country) or IP2Location LITE DB1 (integer
ranges); nothing is looked up on the network.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import gzip
import ipaddress
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from imagine_assist.errors import UserError

log = logging.getLogger(__name__)

INVOCATIONS = "/api/function_invocations"
LOCAL = "local network"
# loopback, private, shared (CGNAT) and link-local ranges, as integers: ipaddress's own
# is_private walks a list of networks per call, the slowest step of a year's report
_LOCAL_NETWORKS = [
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
]
_LOCAL_RANGES = [
    (net.version, int(net.network_address), int(net.broadcast_address)) for net in _LOCAL_NETWORKS
]


@dataclass(frozen=True)
class Use:
    time: dt.datetime
    function: str
    status: int
    images: int
    client: str
    user: str = ""
    server: str = ""

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300


# The first release's year, and a day past now: a line dated outside them is a device with
# no clock or a forged one, and the report (one bar a month between the extremes) would
# run for minutes to a year 9999.
EARLIEST_YEAR = 2024


def _parse_time(text: str) -> dt.datetime:
    """The time as written, in the writer's own zone: a request at 00:30 on 1 January,
    local time, belongs to the new year whatever UTC says."""
    if not isinstance(text, str):
        raise ValueError("time")
    moment = dt.datetime.fromisoformat(text)  # the gateway's %Y-%m-%dT%H:%M:%S%z
    if moment.tzinfo is None:
        raise ValueError(f"no time zone in {text!r}")
    latest = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    if moment.year < EARLIEST_YEAR or moment > latest:
        raise ValueError(f"{text!r} is not a time this tool can have written")
    return moment


# a function, client, user or server (a CVAT URL) longer than this is no name a writer wrote
MAX_NAME_CHARS = 1000


def _text(value: object) -> str:
    """A name from a log line: text of a sensible length, else refused (a list or a dict
    counted as a client; a 100 k-character header became a row and a legend entry)."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_NAME_CHARS:
        raise ValueError("name")
    return value


def read_uses(paths: Iterable[Path]) -> tuple[list[Use], int]:
    """Invocations from access logs and cvat-cli logs, and the number of lines skipped as
    unreadable (a log cut short by a kill ends in half a line)."""
    uses, skipped = [], 0
    for path in paths:
        try:
            skipped += _read_log(path, uses)
        except (OSError, EOFError) as error:  # e.g. a .gz that logrotate is still writing
            log.warning("skipped the rest of %s: %s", path, error)
            skipped += 1
    return uses, skipped


# One log line is one request or one cvat-cli run; a task of a million frames is beyond
# any run here, and a negative count is no count.
MAX_IMAGES_PER_LINE = 1_000_000


def _read_log(path: Path, uses: list[Use]) -> int:
    skipped = 0
    opener = gzip.open if path.suffix == ".gz" else open  # logrotate's compressed files
    with opener(path, "rt", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a record")
                if "source" not in record and record.get("path") != INVOCATIONS:
                    continue  # health checks, listings, metrics: no image processed
                images = record.get("images", 1)
                # a whole number, as every writer writes it: a damaged or forged line is
                # skipped, not read as 1_000 images, Infinity or a True
                if type(images) is not int or not 0 <= images <= MAX_IMAGES_PER_LINE:
                    raise ValueError(f"{images!r} images")
                if type(record["status"]) is not int:
                    raise ValueError("status")
                uses.append(
                    Use(
                        time=_parse_time(record["time"]),
                        function=_text(record.get("function")) or "?",
                        status=record["status"],
                        images=images,
                        client=_text(record.get("client")),
                        user=_text(record.get("user")),
                        server=_text(record.get("server")),
                    )
                )
            except (ValueError, KeyError, TypeError, OverflowError):
                skipped += 1
    return skipped


def _address(text: str):
    text = text.strip().strip('"')
    return int(text) if text.isdigit() else int(ipaddress.ip_address(text))


# what GeoIP files write for "no country": IP2Location "-", MaxMind/DB-IP "ZZ" or nothing
NO_COUNTRY = {"", "-", "ZZ"}


def load_geoip(path: Path) -> Callable[[str], str]:
    """A lookup from address to country code over a CSV of ranges: start,end,country[,...].

    Ranges are dotted or colon addresses (DB-IP) or integers (IP2Location); an integer range
    above 2**32, or one in IP2Location's IPv6 file, is IPv6 (its IPv4 part is mapped)."""
    ranges: list[tuple[int, int, int, str]] = []  # (version, start, end, country)
    with path.open(newline="", errors="replace") as handle:
        for row in csv.reader(handle):
            if len(row) < 3 or row[0].startswith("#"):
                continue
            try:
                start, end = _address(row[0]), _address(row[1])
            except ValueError:
                continue  # a header line
            code = row[2].strip().strip('"')
            if code.upper() in NO_COUNTRY:
                continue
            version = 6 if ":" in row[0] or end >= 2**32 else 4
            ranges.append((version, start, end, code))
    if not ranges:
        raise UserError(f"{path} holds no address ranges (want CSV rows: start,end,country)")
    ranges.sort()
    keys = [(version, start) for version, start, _, _ in ranges]

    def find(version: int, number: int) -> str | None:
        index = bisect.bisect_right(keys, (version, number)) - 1
        if index >= 0:
            found_version, start, end, code = ranges[index]
            if found_version == version and start <= number <= end:
                return code
        return None

    @functools.lru_cache(maxsize=65536)  # a year of log repeats the same clients
    def country(client: str) -> str:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return "unknown"  # a host name (cvat-cli records)
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped  # ::ffff:1.2.3.4 is 1.2.3.4
        number = int(address)
        if any(
            version == address.version and start <= number <= end
            for version, start, end in _LOCAL_RANGES
        ):
            return LOCAL
        code = find(address.version, number)
        if code is None and address.version == 4:  # IP2Location's IPv6 file maps IPv4
            code = find(6, number + 0xFFFF00000000)
        return code or "unknown"

    return country


@dataclass
class UsageReport:
    monthly: list[dict] = field(default_factory=list)
    yearly: list[dict] = field(default_factory=list)
    functions: dict[str, int] = field(default_factory=dict)
    skipped_lines: int = 0


def summarise(
    uses: list[Use], since: dt.date | None = None, country: Callable[[str], str] | None = None
) -> UsageReport:
    if since:
        uses = [use for use in uses if use.time.date() >= since]
    monthly: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"images": 0, "failed": 0, "clients": set(), "users": set()}
    )
    yearly: dict[int, dict] = defaultdict(
        lambda: {"images": 0, "clients": set(), "users": set(), "countries": set()}
    )
    functions: dict[str, int] = defaultdict(int)
    for use in uses:
        month = monthly[(f"{use.time.year:04d}-{use.time.month:02d}", use.function)]
        if not use.succeeded:
            month["failed"] += 1
            continue
        year = yearly[use.time.year]
        for bucket in (month, year):
            bucket["images"] += use.images
            bucket["clients"].add(use.client)
            if use.user:
                bucket["users"].add(f"{use.user}@{use.server}" if use.server else use.user)
        if country:
            year["countries"].add(country(use.client))
        functions[use.function] += use.images
    report = UsageReport(functions=dict(sorted(functions.items())))
    for (month, function), values in sorted(monthly.items()):
        report.monthly.append(
            {
                "month": month,
                "function": function,
                "images": values["images"],
                "failed_requests": values["failed"],
                "clients": len(values["clients"]),
                "users": len(values["users"]),
            }
        )
    for year, values in sorted(yearly.items()):
        countries = sorted(values["countries"] - {LOCAL, "unknown"})
        report.yearly.append(
            {
                "year": year,
                "images": values["images"],
                "clients": len(values["clients"]),
                "users": len(values["users"]),
                "countries": len(countries) if country else "",
                "country_codes": ";".join(countries),
            }
        )
    return report


def read_counters(url: str) -> dict[str, int]:
    """Answered invocations per function since the running gateway started (its /metrics)."""
    import requests

    from imagine_assist.nuclio.gateway import TOKEN_ENV, client_headers

    try:
        answer = requests.get(f"{url.rstrip('/')}/metrics", headers=client_headers(), timeout=10)
    except requests.RequestException as error:
        raise UserError(f"could not read {url}/metrics: {error}") from None
    if answer.status_code == 401:
        raise UserError(f"{url} wants its token: set {TOKEN_ENV} as for `imagine-assist serve`")
    if answer.status_code != 200:
        raise UserError(f"{url}/metrics answered {answer.status_code}; is it our gateway?")
    text = answer.text
    counters: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        if not line.startswith("imagine_assist_requests_total{"):
            continue
        labels, _, value = line.partition("} ")
        fields = dict(part.split("=", 1) for part in labels.split("{", 1)[1].split(","))
        if fields.get("code", '""').strip('"').startswith("2"):
            counters[fields["function"].strip('"')] += int(float(value))
    return dict(counters)


def write_report(report: UsageReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows, header in (
        (
            "usage-monthly.csv",
            report.monthly,
            ["month", "function", "images", "failed_requests", "clients", "users"],
        ),
        (
            "usage-yearly.csv",
            report.yearly,
            ["year", "images", "clients", "users", "countries", "country_codes"],
        ),
    ):
        with (out_dir / name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        written.append(out_dir / name)
    written.append(plot_monthly(report, out_dir / "usage.png"))
    return written


def _every_month(months: list[str]) -> list[str]:
    """Every "YYYY-MM" from the first to the last: an idle month is a bar of 0, not a gap
    closed up."""
    if not months:
        return []
    year, month = map(int, months[0].split("-"))
    every = []
    while f"{year:04d}-{month:02d}" <= months[-1]:
        every.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return every


def plot_monthly(report: UsageReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = _every_month(sorted({row["month"] for row in report.monthly}))
    functions = sorted({row["function"] for row in report.monthly})
    figure, axes = plt.subplots(figsize=(max(6, len(months) * 0.6 + 3), 4))
    bottom = [0] * len(months)
    for function in functions:
        heights = [
            sum(
                row["images"]
                for row in report.monthly
                if row["month"] == month and row["function"] == function
            )
            for month in months
        ]
        axes.bar(months, heights, bottom=bottom, label=function)
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    axes.set_ylabel("images processed")
    axes.set_title("imagine-assist usage per month")
    if functions:
        axes.legend(fontsize="small")
    axes.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
