"""`imagine-assist usage report` over what a gateway run and cvat-cli runs really logged."""

import csv
import gzip
import json
import shutil
import socket
import types

import PIL.Image
import pytest
import requests

from imagine_assist.app.main import main
from imagine_assist.cvat.sdk_function import SdkDetectionFunction
from imagine_assist.errors import UserError
from imagine_assist.functions.catalog import load_function
from imagine_assist.nuclio.gateway import Gateway
from imagine_assist.nuclio.serve import background_server, build_hosts
from imagine_assist.usage.record import cvat_cli_identity, record_use
from imagine_assist.usage.report import load_geoip, read_counters

from .test_gateway import FISH, b64, invoke_headers

CVAT_CLI = ["/venv/bin/cvat-cli", "--server-host", "https://cvat.example", "--auth"]


def rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def gateway_log(tmp_path_factory):
    """The access log of a gateway that answered 3 images, refused 1 and was asked for its
    health and an unknown function; and the gateway's counters read while it ran."""
    folder = tmp_path_factory.mktemp("usage")
    log = folder / "gateway-access.jsonl"
    gateway = Gateway(build_hosts(["fish-detector"], folder / "models"), port=0, access_log=log)
    with background_server(gateway) as url:
        for _ in range(3):
            answer = requests.post(
                f"{url}/api/function_invocations",
                json={"image": b64(FISH)},
                headers=invoke_headers("fish-detector"),
                timeout=60,
            )
            assert answer.status_code == 200
        bad = requests.post(
            f"{url}/api/function_invocations",
            json={"image": "not base64!"},
            headers=invoke_headers("fish-detector"),
            timeout=60,
        )
        assert bad.status_code == 400
        requests.get(f"{url}/api/healthz", timeout=10)
        unknown = requests.post(
            f"{url}/api/function_invocations", json={}, headers=invoke_headers("nope"), timeout=10
        )
        assert unknown.status_code == 404
        counters = read_counters(url)
        argv = ["usage", "report", "--log", str(log), "--gateway", url]
        assert main([*argv, "--out", str(folder / "live")]) == 0
    return log, counters


def test_report_counts_what_the_gateway_answered(gateway_log, tmp_path, capsys):
    gateway_log, _ = gateway_log
    assert main(["usage", "report", "--log", str(gateway_log), "--out", str(tmp_path)]) == 0
    monthly = {row["function"]: row for row in rows(tmp_path / "usage-monthly.csv")}
    assert monthly["fish-detector"]["images"] == "3"
    assert monthly["fish-detector"]["failed_requests"] == "1"
    assert monthly["fish-detector"]["clients"] == "1"  # 127.0.0.1
    assert monthly["nope"]["images"] == "0" and monthly["nope"]["failed_requests"] == "1"
    (yearly,) = rows(tmp_path / "usage-yearly.csv")
    assert yearly["images"] == "3" and yearly["clients"] == "1" and yearly["users"] == "0"
    assert (tmp_path / "usage.png").stat().st_size > 1000
    assert "fish-detector: 3 images" in capsys.readouterr().out


def test_live_counters_agree_with_the_log(gateway_log):
    log, counters = gateway_log
    assert counters == {"fish-detector": 3}  # answered; the refused one and "nope" are not
    records = [json.loads(line) for line in log.read_text().splitlines()]
    answered = [
        r for r in records if r["path"] == "/api/function_invocations" and r["status"] == 200
    ]
    assert len(answered) == 3


def test_cvat_cli_runs_count_their_user_and_never_keep_the_password(
    gateway_log, tmp_path, monkeypatch
):
    gateway_log, _ = gateway_log
    cli_log = tmp_path / "cvat-cli-usage.jsonl"
    monkeypatch.setattr("imagine_assist.usage.record.usage_log_path", lambda home=None: cli_log)
    monkeypatch.setattr("sys.argv", [*CVAT_CLI, "alice:pa55word", "task", "auto-annotate", "7"])
    function = SdkDetectionFunction(load_function("fish-detector"))
    context = types.SimpleNamespace(conf_threshold=None, conv_mask_to_poly=False)
    for _ in range(2):
        function.detect(context, PIL.Image.fromarray(FISH))
    record_use("fish-detector", path=cli_log, argv=[*CVAT_CLI[:-1], "--auth=bob"])
    assert "pa55word" not in cli_log.read_text()
    argv = ["usage", "report", "--log", str(gateway_log), "--log", str(cli_log)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    (yearly,) = rows(tmp_path / "out" / "usage-yearly.csv")
    assert yearly["images"] == "6"  # 3 through the gateway, 3 by cvat-cli
    assert yearly["users"] == "2"  # alice and bob on cvat.example
    assert yearly["clients"] == "2"  # 127.0.0.1 and this machine
    record = json.loads(cli_log.read_text().splitlines()[0])
    assert record["user"] == "alice" and record["server"] == "https://cvat.example"
    assert record["client"] == socket.gethostname() and record["source"] == "cvat-cli"


def test_identity_comes_only_from_cvat_cli_command_lines():
    assert cvat_cli_identity(["/usr/bin/python", "-m", "pytest", "--auth", "x"]) == {}
    assert cvat_cli_identity(["python", "-m", "cvat_cli", "--auth", "carol"]) == {
        "user": "carol",
        "server": "",
    }


def test_months_since_and_countries_from_an_offline_geoip_file(gateway_log, tmp_path, capsys):
    """Lines as the gateway wrote them, moved in time and address, as from several sites."""
    gateway_log, _ = gateway_log
    line = json.loads(next(x for x in gateway_log.read_text().splitlines() if '"status": 200' in x))
    moved = [
        {**line, "time": "2025-12-31T23:30:00+0000", "client": "8.8.8.8"},
        {**line, "time": "2026-01-02T10:00:00+0100", "client": "81.1.2.3"},
        {**line, "time": "2026-02-02T10:00:00+0000", "client": "2a00:1450::1"},
        {**line, "time": "2026-02-03T10:00:00+0000", "client": "10.0.0.5"},
    ]
    log = tmp_path / "access.jsonl"
    log.write_text("".join(json.dumps(x) + "\n" for x in moved) + '{"time": "2026-02-0')
    geoip = tmp_path / "dbip-country-lite.csv"
    geoip.write_text(
        "8.8.8.0,8.8.8.255,US\n81.0.0.0,81.255.255.255,ES\n2a00:1450::,2a00:1450::ffff,IE\n"
    )
    argv = ["usage", "report", "--log", str(log), "--geoip", str(geoip)]
    assert main([*argv, "--out", str(tmp_path / "all")]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 unreadable log line(s)" in out
    yearly = {row["year"]: row for row in rows(tmp_path / "all" / "usage-yearly.csv")}
    assert yearly["2025"]["images"] == "1" and yearly["2025"]["country_codes"] == "US"
    # 10.0.0.5 is on the local network: a client, but no country
    assert yearly["2026"]["images"] == "3" and yearly["2026"]["country_codes"] == "ES;IE"
    assert yearly["2026"]["countries"] == "2" and yearly["2026"]["clients"] == "3"
    months = [row["month"] for row in rows(tmp_path / "all" / "usage-monthly.csv")]
    assert months == ["2025-12", "2026-01", "2026-02"]  # 2026-01-02T10:00+0100 is January
    assert main([*argv, "--since", "2026-02-01", "--out", str(tmp_path / "feb")]) == 0
    (february,) = rows(tmp_path / "feb" / "usage-yearly.csv")
    assert february["images"] == "2"
    lookup = load_geoip(geoip)
    assert lookup("8.8.8.8") == "US" and lookup("9.9.9.9") == "unknown"


def test_bad_report_arguments_are_clear(tmp_path, capsys):
    missing = tmp_path / "none.jsonl"
    assert main(["usage", "report", "--log", str(missing), "--out", str(tmp_path)]) == 2
    assert "no usage log at" in capsys.readouterr().err
    missing.write_text("")
    argv = ["usage", "report", "--log", str(missing), "--since", "last week"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert "--since wants a date" in capsys.readouterr().err
    empty_geoip = tmp_path / "geo.csv"
    empty_geoip.write_text("network,country\n")
    argv = ["usage", "report", "--log", str(missing), "--geoip", str(empty_geoip)]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert "no address ranges" in capsys.readouterr().err


def test_default_logs_include_what_logrotate_kept(gateway_log, tmp_path, monkeypatch):
    gateway_log, _ = gateway_log
    logs = tmp_path / "home" / "logs"
    logs.mkdir(parents=True)
    shutil.copyfile(gateway_log, logs / "gateway-access.jsonl")
    with gzip.open(logs / "gateway-access.jsonl.1.gz", "wt") as rotated:
        rotated.write(gateway_log.read_text())
    monkeypatch.setenv("IMAGINE_ASSIST_HOME", str(tmp_path / "home"))
    assert main(["usage", "report", "--out", str(tmp_path / "out")]) == 0
    (yearly,) = rows(tmp_path / "out" / "usage-yearly.csv")
    assert yearly["images"] == "6"  # 3 in the current log, 3 in the rotated one


def test_months_and_years_follow_the_local_time_written(gateway_log, tmp_path):
    gateway_log, _ = gateway_log
    line = json.loads(gateway_log.read_text().splitlines()[0])
    line |= {"path": "/api/function_invocations", "status": 200, "function": "fish-detector"}
    log = tmp_path / "access.jsonl"
    log.write_text(
        json.dumps(line | {"time": "2026-01-01T00:30:00+0100"})  # 2025-12-31 23:30 in UTC
        + "\n"
        + json.dumps(["not", "a", "record"])
        + "\n"
        + '"a string"\n'
    )
    argv = ["usage", "report", "--log", str(log), "--since", "2026-01-01"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    (yearly,) = rows(tmp_path / "out" / "usage-yearly.csv")
    assert yearly["year"] == "2026" and yearly["images"] == "1"
    (monthly,) = rows(tmp_path / "out" / "usage-monthly.csv")
    assert monthly["month"] == "2026-01"


def test_geoip_reads_ip2location_integer_ranges_and_mapped_addresses(tmp_path):
    """IP2Location LITE DB1 IPv6: integers, quoted, IPv4 as ::ffff:a.b.c.d, "-" for none."""
    mapped = 0xFFFF00000000
    rows_ = [
        ("0", str(mapped - 1), "-", "-"),
        (str(mapped + 0x01000000), str(mapped + 0x01FFFFFF), "AU", "Australia"),
        (str(0x2A001450 << 96), str((0x2A001450 << 96) + 2**96 - 1), "IE", "Ireland"),
    ]
    geoip = tmp_path / "IP2LOCATION-LITE-DB1.IPV6.CSV"
    geoip.write_text("".join(",".join(f'"{v}"' for v in row) + "\n" for row in rows_))
    lookup = load_geoip(geoip)
    assert lookup("1.2.3.4") == "AU"  # an IPv4 client, found through the mapped range
    assert lookup("::ffff:1.2.3.4") == "AU"
    assert lookup("2a00:1450::1") == "IE"
    assert lookup("::ffff:127.0.0.1") == "local network"
    assert lookup("5.6.7.8") == "unknown"  # "-" is no country


def test_agents_record_no_user():
    argv = [*CVAT_CLI, "operator:pw", "function", "run-agent", "12", "--function-file", "x.py"]
    identity = cvat_cli_identity(argv)
    assert identity["user"] == "" and identity["agent"] is True


def test_counters_of_a_gateway_with_a_token(tmp_path, monkeypatch):
    gateway = Gateway(build_hosts(["fish-detector"], tmp_path / "models"), port=0, token="t0k")
    with background_server(gateway) as url:
        monkeypatch.delenv("IMAGINE_ASSIST_TOKEN", raising=False)
        with pytest.raises(UserError, match="wants its token"):
            read_counters(url)
        monkeypatch.setenv("IMAGINE_ASSIST_TOKEN", "t0k")
        assert read_counters(url) == {}


def test_a_mistyped_log_a_log_given_twice_and_a_forged_count(tmp_path, capsys):
    """A typo left that log's uses out without a word, a log given twice counted twice, and
    a line of -50 images took 50 from the year."""
    log = tmp_path / "cvat-cli-usage.jsonl"
    line = {"source": "cvat-cli", "time": "2026-01-10T10:00:00+00:00", "status": 200,
            "function": "fish-detector", "images": 2, "user": "jane"}  # fmt: skip
    forged = {**line, "time": "2026-09-10T10:00:00+00:00", "images": -50}
    late = {**line, "time": "2026-09-11T10:00:00+00:00", "images": 3}
    log.write_text("".join(json.dumps(r) + "\n" for r in (line, forged, late)))
    argv = ["usage", "report", "--out", str(tmp_path / "out")]
    assert main([*argv, "--log", str(log), "--log", str(tmp_path / "typo.jsonl")]) == 2
    assert "no usage log at" in capsys.readouterr().err
    assert main([*argv, "--log", str(log), "--log", str(log)]) == 0
    printed = capsys.readouterr().out
    assert "2026: 5 images" in printed and "fish-detector: 5 images" in printed
    from imagine_assist.usage.report import _every_month

    assert _every_month(["2026-01", "2026-09"])[:3] == ["2026-01", "2026-02", "2026-03"]
    assert len(_every_month(["2025-11", "2026-02"])) == 4  # across the new year


def test_hostile_log_lines_are_skipped_and_the_report_stays_quick(tmp_path, capsys):
    """`"images": Infinity` crashed the report; "1_000", true and 2.9 were counted as
    images; a list became a function; one line dated 9999 kept it busy for minutes and
    one of 1970 drew a plot 40,000 px wide."""
    log = tmp_path / "gateway-access.jsonl"
    good = {"time": "2026-03-10T10:00:00+00:00", "path": "/api/function_invocations",
            "status": 200, "function": "fish-detector", "images": 2}  # fmt: skip
    hostile = [
        '{"time": "2026-03-10T10:00:00+00:00", "path": "/api/function_invocations", '
        '"status": 200, "images": Infinity}',
        *(json.dumps({**good, "images": value}) for value in ("1_000", " 7 ", True, 2.9)),
        json.dumps({**good, "function": ["x"]}),
        json.dumps({**good, "client": {"a": 1}}),
        json.dumps({**good, "function": "f" * 100_000}),
        json.dumps({**good, "status": "200"}),
        json.dumps({**good, "time": "9999-12-01T00:00:00+00:00"}),
        json.dumps({**good, "time": "1970-01-01T00:00:00+00:00"}),
    ]
    log.write_text("\n".join([json.dumps(good), *hostile]) + "\n")
    out = tmp_path / "out"
    assert main(["usage", "report", "--log", str(log), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {len(hostile)} unreadable log line(s)" in printed
    assert [r["month"] for r in rows(out / "usage-monthly.csv")] == ["2026-03"]
    assert "fish-detector: 2 images" in printed


def test_the_access_log_follows_logrotate(tmp_path):
    """After logrotate moved the log aside, every later request went into the moved (then
    compressed and deleted) file, and out of the report."""
    log = tmp_path / "gateway-access.jsonl"
    gateway = Gateway(build_hosts(["fish-detector"], tmp_path / "models"), port=0, access_log=log)
    try:
        gateway.write_access({"n": 1})
        log.rename(tmp_path / "gateway-access.jsonl.1")  # logrotate's default: create
        log.touch()
        gateway.write_access({"n": 2})
        log.unlink()  # removed by hand: made anew
        gateway.write_access({"n": 3})
    finally:
        gateway.close()
    assert (tmp_path / "gateway-access.jsonl.1").read_text() == '{"n": 1}\n'
    assert log.read_text() == '{"n": 3}\n'


def test_an_access_log_that_cannot_be_written_never_breaks_an_answer(tmp_path, caplog):
    """With the log's folder removed, every answer was cut off mid-body (the line is written
    before the last bytes go out), and the gateway never wrote its log again."""
    import shutil

    log = tmp_path / "logs" / "gateway-access.jsonl"
    log.parent.mkdir()
    gateway = Gateway(build_hosts(["fish-detector"], tmp_path / "models"), port=0, access_log=log)
    with background_server(gateway) as url:
        shutil.rmtree(log.parent)
        with caplog.at_level("WARNING"):
            for _ in range(2):
                answer = requests.get(f"{url}/api/functions", timeout=30)
                assert answer.status_code == 200 and answer.json()
        assert caplog.text.count("cannot write the access log") == 1
        log.parent.mkdir()  # the folder is back: the log goes on
        assert requests.get(f"{url}/api/functions", timeout=30).status_code == 200
    assert '"path": "/api/functions"' in log.read_text()
