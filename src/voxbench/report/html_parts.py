"""The pieces every HTML page is made of: the page shell, a :class:`~voxbench.report.format.Section`
as a sortable, filterable table, summary cards, inline plots and audio players.

Every string that reaches the page goes through :func:`esc` (``html.escape`` with quotes) before
any markup is added around it; the only markup added to recorded text is the Markdown the views
use themselves (`` `code` `` and ``**bold**``), applied *after* escaping, so it can only wrap text
that is already inert.
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from voxbench.report.format import INVALID, Section
from voxbench.report.html_assets import CSS, JS, content_security_policy

VERDICT_CLASS = {
    "PASS": "pass",
    "FAIL": "fail",
    "met": "pass",
    "missed": "fail",
    "improved": "pass",
    "regressed": "fail",
    INVALID: "fail",
    "yes": "pass",
    "no": "fail",
}
"""Cells that are verdicts, and the colour class each gets."""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_MD_ESCAPE = re.compile(r"\\([*|_\\])")  # report.md's escapes: \* at a line start, \| in cells


def esc(text: object) -> str:
    """Any value as inert HTML text (``&``, ``<``, ``>``, ``"`` and ``'`` escaped)."""
    return html.escape(str(text), quote=True)


def inline(text: str) -> str:
    """One line of the views' Markdown as HTML: escaped first, then `` `code` `` and ``**bold**``."""
    out = _CODE.sub(r"<code>\1</code>", esc(_MD_ESCAPE.sub(r"\1", text)))
    return _BOLD.sub(r"<strong>\1</strong>", out)


def note_html(note: str) -> str:
    """A view's note: paragraphs, and ``- `` lines as a list."""
    if not note:
        return ""
    parts: list[str] = []
    items: list[str] = []
    for line in note.splitlines():
        if line.startswith("- "):
            items.append(f"<li>{inline(line[2:])}</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line.strip():
            parts.append(f"<p>{inline(line)}</p>")
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    return f'<div class="note">{"".join(parts)}</div>'


def slug(text: str) -> str:
    """An id for an anchor or a table: lower-case letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


class Ids:
    """Unique element ids within one page."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def new(self, text: str) -> str:
        base = slug(text)
        name, n = base, 1
        while name in self.used:
            n += 1
            name = f"{base}-{n}"
        self.used.add(name)
        return name


def _cell(text: str, numeric: bool) -> str:
    classes = [c for c in ("num" if numeric else "", VERDICT_CLASS.get(text.strip(), "")) if c]
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{attr}>{inline(text)}</td>"


def table_html(
    ids: Ids,
    name: str,
    headers: list[str],
    rows: list[list[str]],
    numeric: Iterable[str] = (),
    links: list[str] | None = None,
) -> str:
    """A table whose headers sort it on click (``data-sort``: ``num`` or ``text``) and whose rows
    a filter box above it narrows; cells are display strings (escaped here). ``links``: per row,
    a page (in the same folder) its first cell links to."""
    nums = set(numeric)
    table_id = ids.new(name)
    head = "".join(
        f'<th scope="col" data-sort="{"num" if h in nums else "text"}"'
        f"{' class=num' if h in nums else ''}>{esc(h)}</th>"
        for h in headers
    )
    cells = [[_cell(c, h in nums) for h, c in zip(headers, row, strict=False)] for row in rows]
    for row, cell, href in zip(rows, cells, links or [], strict=False):
        cell[0] = f'<td><a href="{esc(href)}">{esc(row[0])}</a></td>'
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in cells)
    search = (
        f'<input class="filter" type="search" data-filter="{table_id}" '
        f'placeholder="filter {len(rows)} rows" aria-label="filter {esc(name)}">'
        if len(rows) > 3
        else ""
    )
    return (
        f'{search}<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def section_html(ids: Ids, section: Section, level: int = 2, anchor: str | None = None) -> str:
    """A report view: heading (with ``anchor`` as its id), note, and its table if it has one."""
    anchor = anchor or ids.new(section.title)
    out = f'<h{level} id="{anchor}">{esc(section.title)}</h{level}>{note_html(section.note)}'
    if section.headers:
        out += table_html(ids, section.title, section.headers, section.rows, section.numeric)
    return out


@dataclass(frozen=True)
class Card:
    """One summary figure: a label, the value, a line saying of what; ``tone`` good/bad/""."""

    label: str
    value: str
    detail: str = ""
    tone: str = ""


def cards_html(cards: list[Card]) -> str:
    """The summary cards at the top of a page."""
    if not cards:
        return ""
    items = "".join(
        f'<div class="card{" " + c.tone if c.tone else ""}"><div class="label">{esc(c.label)}</div>'
        f'<div class="value">{esc(c.value)}</div>'
        + (f'<div class="detail">{esc(c.detail)}</div>' if c.detail else "")
        + "</div>"
        for c in cards
    )
    return f'<div class="cards">{items}</div>'


def figure_html(svg: str | None, caption: str) -> str:
    """An inline plot (an SVG string from report/plots.py, produced by matplotlib, which escapes
    the text it draws); nothing when there is no plot."""
    if not svg:
        return ""
    return f'<figure class="plot">{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def plots_html(figures: list[str]) -> str:
    """Plots side by side where the screen is wide enough."""
    shown = [f for f in figures if f]
    return f'<div class="plots">{"".join(shown)}</div>' if shown else ""


@dataclass(frozen=True)
class AudioLinker:
    """How a page refers to the audio a run saved: linked relative to the page (the default) or
    embedded as a ``data:audio/wav;base64`` URI (``embed``)."""

    page_dir: Path | None
    embed: bool = False

    def source(self, run_dir: Path | None, audio_file: str | None) -> str | None:
        """The ``src`` for one saved file, None when there is none (or it is gone)."""
        if not audio_file or run_dir is None:
            return None
        path = run_dir / audio_file
        if not path.is_file():
            return None
        if self.embed:
            return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        if self.page_dir is None:
            return path.resolve().as_uri()
        rel = os.path.relpath(path.resolve(), self.page_dir.resolve())
        return Path(rel).as_posix()

    def player(self, run_dir: Path | None, audio_file: str | None) -> str:
        """An ``<audio>`` element for a saved file, or a short note when it cannot be played."""
        src = self.source(run_dir, audio_file)
        if src is None:
            what = "no audio saved" if not audio_file else f"audio missing: {audio_file}"
            return f'<span class="missing">{esc(what)}</span>'
        return f'<audio controls preload="metadata" src="{esc(src)}"></audio>'


def environment_html(rows: list[tuple[str, str]]) -> str:
    """The environment as a definition list (values escaped, inline Markdown kept)."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{inline(v)}</dd>" for k, v in rows if v)
    return f'<dl class="env">{items}</dl>'


def page(title: str, body: str, toc: list[tuple[str, str]] | None = None) -> str:
    """A complete page: every style and the script inline, a policy that allows no network."""
    nav = ""
    if toc:
        nav = (
            '<nav class="toc">' + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in toc) + "</nav>"
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy()}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main><h1>{esc(title)}</h1>{nav}{body}"
        "<footer>Made by voxbench from the run's result document; opens offline.</footer>"
        f"</main><script>{JS}</script></body></html>\n"
    )
