"""FiftyOne's database, one per home.

FiftyOne starts MongoDB through a "multi-client" service process, and a new client attaches
to any such service its user runs, whatever database directory that service was started
on. So `imagine-assist demo` (its own home) run while a review is open in the user's home
put the demo's datasets in the user's database; two test processes shared one; and one
service that stopped answering (its command killed at the wrong moment) hung every later
command of every home, since FiftyOne waits for the service's answer without a timeout.

`keep_to_own_database()` makes FiftyOne attach only to a service of this process's own
database directory (`FIFTYONE_DATABASE_DIR`, the home's `fiftyone/db`), waits a bounded
time for its answer, and otherwise starts one of its own, as FiftyOne would; the processes
of one home take turns at this, so two commands started at once share one MongoDB.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pickle
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

# How long a running service may take to accept this process as a client.
REGISTER_TIMEOUT_S = 10.0


def keep_to_own_database() -> None:
    """Patch FiftyOne's database service (once, before its first connection)."""
    import fiftyone.core.config as focn
    import fiftyone.core.service as fos
    import fiftyone.service.util as fosu

    if getattr(fos.DatabaseService.start, "keeps_to_own_database", False):
        return

    def start(service) -> None:
        own = os.path.realpath(focn.load_config().database_dir)
        with _starting(own):
            for process in fosu.find_processes_by_args(service._service_args):
                if not _serves(process, own):
                    continue  # another home's database
                if _register(process, fosu):
                    service.attached = True
                    service.child = process
                    return
            fos.Service.start(service)  # none of ours answers: start one, as FiftyOne does
            service.port  # noqa: B018 -- held until MongoDB listens: the next one attaches

    start.keeps_to_own_database = True
    fos.DatabaseService.start = start


@contextmanager
def _starting(database_dir: str) -> Iterator[None]:
    """One process of a home at a time looks for its database service or starts it. Two
    commands started together would otherwise both start MongoDB on the same directory,
    and the second MongoDB fail on the first's lock (exit 100)."""
    folder = Path(database_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # bounded: a start waits at most FiftyOne's 60 s
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _serves(process, database_dir: str) -> bool:
    """Whether a service process runs MongoDB on `database_dir`."""
    try:
        arguments = process.cmdline()
    except Exception:  # gone, or not ours to read
        return False
    for flag, value in zip(arguments, arguments[1:], strict=False):
        if flag == "--dbpath":
            return os.path.realpath(value) == database_dir
    return False


def _register(process, fosu) -> bool:
    """FiftyOne's "register" message to the service, answered within `REGISTER_TIMEOUT_S`."""
    try:
        port = next(iter(fosu.get_listening_tcp_ports(process)))
        with socket.create_connection(("localhost", port), timeout=REGISTER_TIMEOUT_S) as sock:
            with sock.makefile("wb") as out:
                pickle.dump(("register", os.getpid()), out)
            with sock.makefile("rb") as answer:
                # the service is this user's own FiftyOne process (found by its owner)
                return pickle.load(answer) is True  # noqa: S301
    except Exception as error:  # no port, refused, a timeout, a garbled answer
        log.warning("FiftyOne's database service %s did not answer: %s", process.pid, error)
        return False
