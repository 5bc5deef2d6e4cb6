"""Usage records of cvat-cli runs, in the gateway access log's JSON-lines form.

A cvat-cli run annotates on this machine, so the gateway never sees it; the run's own command
line carries the CVAT user (``--auth USER[:PASS]``) and server, and that is all we keep of it
(never the password). An agent (``cvat-cli function run-agent``) serves every user's requests
under its operator's login, so its records carry no user. Records go to
``<home>/logs/cvat-cli-usage.jsonl``, next to the gateway's access log, and never leave the
machine.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from pathlib import Path

from imagine_assist.home import Home

log = logging.getLogger(__name__)
CVAT_CLI_LOG = "cvat-cli-usage.jsonl"
_lock = threading.Lock()
_warned = False


def cvat_cli_identity(argv: list[str]) -> dict:
    """The CVAT user and server named on a cvat-cli command line ({} for other programs)."""
    is_cvat_cli = bool(argv) and (
        "cvat-cli" in Path(argv[0]).name or "cvat_cli" in " ".join(argv[:3])
    )
    if not is_cvat_cli:
        return {}
    found = {"user": "", "server": ""}
    for index, word in enumerate(argv):
        for flag, key in (("--auth", "user"), ("--server-host", "server")):
            if word == flag and index + 1 < len(argv):
                found[key] = argv[index + 1]
            elif word.startswith(flag + "="):
                found[key] = word.split("=", 1)[1]
    found["user"] = found["user"].split(":", 1)[0]  # USER[:PASS]: the password stays out
    if "run-agent" in argv:
        # an agent answers every user's requests under the operator's login: that login
        # says nothing about who asked, so it is not counted as a user
        found["user"] = ""
        found["agent"] = True
    return found


def usage_log_path(home: Home | None = None) -> Path:
    return (home or Home.resolve()).root / "logs" / CVAT_CLI_LOG


def record_use(function_id: str, images: int = 1, path: Path | None = None, argv=None) -> None:
    """Append one record; a log that cannot be written never stops the annotation."""
    global _warned
    identity = cvat_cli_identity(list(sys.argv if argv is None else argv))
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": ("cvat-agent" if identity.get("agent") else "cvat-cli") if identity else "sdk",
        "client": socket.gethostname(),
        "function": function_id,
        "status": 200,
        "images": images,
        "user": identity.get("user", ""),
        "server": identity.get("server", ""),
    }
    path = path or usage_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock, path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as error:
        if not _warned:
            log.warning("usage is not recorded: cannot write %s (%s)", path, error)
            _warned = True
