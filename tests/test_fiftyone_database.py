"""FiftyOne's database stays in the home that asked for it: a client never attaches to
another home's database service, a service that does not answer costs a bounded wait and
not a hang, and commands of one home started together share one MongoDB."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # MongoDB starts: seconds each, the full tier

CLIENT = textwrap.dedent(
    """
    import sys
    from imagine_assist.training.exports import fiftyone
    fo = fiftyone()
    dataset = fo.Dataset(sys.argv[1], persistent=True)
    import fiftyone.core.odm.database as database
    print("datasets", sorted(fo.list_datasets()))
    print("dbpath", database._db_service.child.cmdline())
    """
)


def client(db_dir, name: str, log) -> subprocess.Popen:
    """A command of the home whose database is `db_dir`, its output to the file `log`. Not
    a pipe: the MongoDB service a client starts inherits its output and outlives it."""
    env = {**os.environ, "FIFTYONE_DATABASE_DIR": str(db_dir)}
    env.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)  # this test process's own MongoDB
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, name], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def finished(process: subprocess.Popen, log, timeout: float = 120) -> str:
    try:
        process.wait(timeout=timeout)  # reaped: a service counts a zombie client as alive
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("a FiftyOne client hung on another home's database service")
    output = Path(log.name).read_text()
    assert process.returncode == 0, output
    return output


def silent_service(db_dir) -> subprocess.Popen:
    """A process that looks like a database service of `db_dir` to FiftyOne's search, and
    accepts connections without ever answering (as a service stuck after a killed run)."""
    silent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); "
            "s.listen(8); print(s.getsockname()[1], flush=True); time.sleep(300)",
            "--51-service",
            "db",
            "--multi",
            "mongod",
            "--dbpath",
            str(db_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    silent.stdout.readline()  # listening
    return silent


def test_a_silent_service_of_another_home_is_neither_joined_nor_waited_on(tmp_path):
    silent = silent_service(tmp_path / "other-home-db")
    try:
        with open(tmp_path / "mine.log", "w") as log:
            output = finished(client(tmp_path / "own-db", "mine", log), log)
    finally:
        silent.kill()
        silent.wait()
    assert "datasets ['mine']" in output
    assert str(tmp_path / "own-db") in output.split("dbpath", 1)[1]
    assert (tmp_path / "own-db" / "WiredTiger").exists()


def test_commands_of_one_home_started_together_share_its_database(tmp_path):
    db_dir = tmp_path / "db"
    logs = [open(tmp_path / f"d{i}.log", "w") for i in range(3)]  # noqa: SIM115
    clients = [client(db_dir, f"d{i}", log) for i, log in enumerate(logs)]
    outputs = [finished(process, log) for process, log in zip(clients, logs, strict=True)]
    for log in logs:
        log.close()
    for i, output in enumerate(outputs):
        assert f"'d{i}'" in output, output  # each made its dataset; none failed on a lock
    assert (db_dir / "WiredTiger").exists()


def test_a_silent_service_of_the_same_home_is_named_not_waited_on(tmp_path):
    """Its MongoDB holds the folder: a second could not start, so the command stops with
    the process to end, after a bounded wait (FiftyOne waited for ever)."""
    silent = silent_service(tmp_path / "db")
    try:
        with open(tmp_path / "c.log", "w") as log:
            process = client(tmp_path / "db", "mine", log)
            process.wait(timeout=120)
    finally:
        silent.kill()
        silent.wait()
    output = (tmp_path / "c.log").read_text()
    assert process.returncode != 0
    assert f"(process {silent.pid}) does not answer; end it (`kill {silent.pid}`)" in output
