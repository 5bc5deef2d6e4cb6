"""A card as a small tree of sections, rendered to Markdown (the card file) and to HTML (the
Zenodo description), so the two never say different things.

Inline text may hold `code`, **bold** and [links](https://...); nothing else is interpreted.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

MISSING_MARK = "Missing: fill `"


@dataclass(frozen=True)
class Missing:
    """A field the user still has to fill, and where."""

    field: str
    where: str

    @property
    def text(self) -> str:
        return f"{MISSING_MARK}{self.field}` in `{self.where}`."


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = str | list | Table | Missing  # a paragraph, a bullet list, a table, a gap


@dataclass
class Section:
    title: str
    level: int
    blocks: list[Block] = field(default_factory=list)

    def missing(self) -> list[Missing]:
        return [block for block in self.blocks if isinstance(block, Missing)]


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)

    def add(self, title: str, level: int = 2, *blocks: Block) -> Section:
        section = Section(title, level, list(blocks))
        self.sections.append(section)
        return section

    def section(self, title: str) -> Section:
        return next(section for section in self.sections if section.title == title)

    def missing(self) -> list[Missing]:
        return [gap for section in self.sections for gap in section.missing()]


def to_markdown(document: Document) -> str:
    lines = [f"# {document.title}", ""]
    for section in document.sections:
        lines += ["#" * section.level + f" {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Missing):
                lines.append(f"_{block.text}_")
            elif isinstance(block, Table):
                lines.append("| " + " | ".join(block.header) + " |")
                lines.append("|" + "---|" * len(block.header))
                lines += ["| " + " | ".join(row) + " |" for row in block.rows]
            elif isinstance(block, list):
                lines += [f"- {item}" for item in block]
            else:
                lines.append(block)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def inline_html(text: str) -> str:
    escaped = html.escape(text, quote=True)
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _LINK.sub(r'<a href="\2">\1</a>', escaped)


def to_html(document: Document) -> str:
    """The sections (Zenodo shows the title itself) in the tags Zenodo keeps: h2-h6, p, ul,
    li, table, code, strong, em, a."""
    parts = []
    for section in document.sections:
        level = min(section.level, 6)
        parts.append(f"<h{level}>{inline_html(section.title)}</h{level}>")
        for block in section.blocks:
            if isinstance(block, Missing):
                parts.append(f"<p><em>{inline_html(block.text)}</em></p>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{inline_html(cell)}</th>" for cell in block.header)
                body = "".join(
                    "<tr>" + "".join(f"<td>{inline_html(cell)}</td>" for cell in row) + "</tr>"
                    for row in block.rows
                )
                parts.append(f"<table><tr>{head}</tr>{body}</table>")
            elif isinstance(block, list):
                items = "".join(f"<li>{inline_html(item)}</li>" for item in block)
                parts.append(f"<ul>{items}</ul>")
            else:
                parts.append(f"<p>{inline_html(block)}</p>")
    return "\n".join(parts)
