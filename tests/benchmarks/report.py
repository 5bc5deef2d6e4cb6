"""Each benchmark owns one marked section of docs/benchmarks.md and rewrites only that."""

from __future__ import annotations

import re
from pathlib import Path

TITLE = "# Benchmarks\n"


def write_section(path: str | Path, name: str, markdown: str) -> None:
    path = Path(path)
    text = path.read_text() if path.is_file() else TITLE
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def write_report(path: str | Path, name: str, title: str, body: str) -> None:
    """The section `name` as "## title", the command that produced it (this script and its
    arguments) and today's date, then `body`."""
    import sys
    import time

    command = f"python tests/benchmarks/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:])
    header = f"## {title}\n\nProduced by `{command.strip()}` on {time.strftime('%Y-%m-%d')}.\n\n"
    write_section(path, name, header + body)
