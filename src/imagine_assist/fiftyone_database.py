"""FiftyOne's database, one per home.

FiftyOne starts MongoDB through a "multi-client" service process, and a new client attaches
to any such service its user runs, whatever database directory that service was started
on. So `imagine-assist demo` (its own home) run while a review is open in the user's home
put the demo's datasets in the user's database; two test processes shared one; and one
service that stopped answering (its command killed at the wrong moment) hung every later
command of every home, since FiftyOne waits for the service's answer without a timeout.

`keep_to_own_database()` makes FiftyOne attach only to a service of this process's own
database directory (`FIFTYONE_DATABASE_DIR`, the home's `fiftyone/db`), waits a bounded
time for its answer (a service of its own that does not answer is an error naming the
process to end, since its MongoDB holds the directory), and otherwise starts one of its
own, as FiftyOne would. The processes of one home take turns at this, so two commands
started at once share one MongoDB. A database port inherited from a parent process (a
notebook's FiftyOne) is dropped, since it may be another home's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pickle
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imagine_assist.errors import UserError

log = logging.getLogger(__name__)

# How long a running service may take to accept this process as a client.
REGISTER_TIMEOUT_S = 10.0
# How long a command waits for another of its home to start MongoDB (FiftyOne itself waits
# up to 60 s for it to listen).
START_WAIT_S = 120.0


def forget_inherited_port() -> None:
    """Before FiftyOne is imported: a `FIFTYONE_PRIVATE_DATABASE_PORT` set now came from a
    parent process, and FiftyOne would connect to it without looking at whose it is."""
    if "fiftyone" not in sys.modules:
        os.environ.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)


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
                if not _register(process, fosu):
                    # its MongoDB holds the directory's lock: a second one could not start
                    raise UserError(
                        f"FiftyOne's database service for {own} (process {process.pid}) does "
                        f"not answer; end it (`kill {process.pid}`) and run the command again"
                    )
                service.attached = True
                service.child = process
                return
            fos.Service.start(service)  # none of ours runs: start one, as FiftyOne does
            service.port  # noqa: B018 -- held until MongoDB listens: the next one attaches

    start.keeps_to_own_database = True
    fos.DatabaseService.start = start


@contextmanager
def _starting(database_dir: str) -> Iterator[None]:
    """One process of a home at a time looks for its database service or starts it. Two
    commands started together would otherwise both start MongoDB on the same directory,
    and the second MongoDB fail on the first's lock (exit 100)."""
    folder = Path(database_dir)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        handle = open(folder.parent / f".{folder.name}.start.lock", "a")  # noqa: SIM115
    except OSError as error:  # a database folder of the user's, its parent not writable
        log.info("no start lock beside %s (%s): starting without one", folder, error)
        yield
        return
    with handle:
        deadline = time.monotonic() + START_WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:  # its holder stopped (Ctrl-Z) or hangs
                    raise UserError(
                        f"another command of this home has been starting FiftyOne's database "
                        f"({folder}) for over {START_WAIT_S:.0f} s; let it finish or end it"
                    ) from None
                time.sleep(0.2)
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


# FiftyOne's service answers a registration with a pickled True. The answer is compared as
# bytes, never unpickled: whatever listens on that port is not trusted to run code here.
_YES = {pickle.dumps(True, protocol) for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1)}


def _register(process, fosu) -> bool:
    """FiftyOne's "register" message to the service, answered within `REGISTER_TIMEOUT_S`."""
    try:
        port = next(iter(fosu.get_listening_tcp_ports(process)))
        with socket.create_connection(("localhost", port), timeout=REGISTER_TIMEOUT_S) as sock:
            with sock.makefile("wb") as out:
                pickle.dump(("register", os.getpid()), out)
            answer = b""
            while len(answer) < 16 and (chunk := sock.recv(16)):
                answer += chunk
                if answer in _YES:
                    return True
            return False
    except Exception as error:  # no port, refused, a timeout, a garbled answer
        log.warning("FiftyOne's database service %s did not answer: %s", process.pid, error)
        return False
