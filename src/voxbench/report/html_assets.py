"""The style sheet and the script every HTML report inlines (report/html.py).

Kept apart from the page builder so the page logic stays short. The script works on the DOM the
page already holds: it sorts rows, hides rows a filter does not match and switches the gallery's
grouping by moving existing elements; it never builds markup from strings (no ``innerHTML``), so
nothing a run recorded can become markup in the browser. The page's Content-Security-Policy
allows exactly this script (by its hash) and no other.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1f24; --muted: #5f6b76; --line: #d6dbe0;
  --card: #f5f7f9; --accent: #0b62c4; --pass: #1a7f37; --fail: #c62828; --warn: #9a6700;
  --pass-bg: #dff3e4; --fail-bg: #fde2e1; --warn-bg: #fff4d6; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111417; --fg: #e3e7eb; --muted: #9aa5b1; --line: #30363d; --card: #1a1f24;
    --accent: #58a6ff; --pass: #3fb950; --fail: #ff7b72; --warn: #d29922;
    --pass-bg: #12301c; --fail-bg: #3d1514; --warn-bg: #33290b; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .2rem 0 .6rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 1.8rem 0 .5rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.02rem; margin: 1.2rem 0 .4rem; }
a { color: var(--accent); }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
nav.toc { display: flex; flex-wrap: wrap; gap: .3rem .9rem; font-size: .9rem; margin: .4rem 0; }
.note { color: var(--muted); font-size: .9rem; margin: .3rem 0; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: .6rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: .6rem .8rem; min-width: 0; }
.card .label { color: var(--muted); font-size: .8rem; text-transform: uppercase;
  letter-spacing: .03em; }
.card .value { font-size: 1.3rem; font-weight: 600; overflow-wrap: anywhere; }
.card .detail { font-size: .85rem; color: var(--muted); overflow-wrap: anywhere; }
.card.bad { border-color: var(--fail); } .card.good { border-color: var(--pass); }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
table { border-collapse: collapse; font-size: .88rem; margin: .3rem 0; }
th, td { padding: .3rem .55rem; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { position: sticky; top: 0; background: var(--card); white-space: nowrap; }
th[data-sort] { cursor: pointer; user-select: none; }
th[data-sort]::after { content: " \\2195"; color: var(--muted); font-size: .8em; }
th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--fg); }
th[aria-sort="descending"]::after { content: " \\2193"; color: var(--fg); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.pass { color: var(--pass); background: var(--pass-bg); font-weight: 600; }
td.fail { color: var(--fail); background: var(--fail-bg); font-weight: 600; }
td.warn { color: var(--warn); background: var(--warn-bg); }
tbody tr:hover { background: var(--card); }
input.filter { font: inherit; padding: .25rem .5rem; margin: .2rem 0; width: min(100%, 22rem);
  color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 6px; }
figure.plot { margin: .6rem 0; overflow-x: auto; }
figure.plot svg { max-width: 100%; height: auto; }
figure.plot figcaption { color: var(--muted); font-size: .85rem; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 520px), 1fr));
  gap: .8rem; }
audio { width: 240px; max-width: 100%; height: 36px; display: block; }
.text { max-width: 34rem; overflow-wrap: anywhere; }
.missing { color: var(--warn); font-size: .85rem; }
.pair { display: flex; flex-wrap: wrap; gap: .6rem; }
.pair > div { min-width: 0; }
dl.env { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .9rem; margin: .3rem 0; }
dl.env dt { color: var(--muted); } dl.env dd { margin: 0; overflow-wrap: anywhere; }
details > summary { cursor: pointer; color: var(--accent); margin: .3rem 0; }
button.group { font: inherit; font-size: .85rem; padding: .2rem .6rem; border-radius: 6px;
  border: 1px solid var(--line); background: var(--card); color: var(--fg); cursor: pointer; }
button.group[aria-pressed="true"] { border-color: var(--accent); }
footer { color: var(--muted); font-size: .8rem; margin: 2rem 0 1rem; }
@media (max-width: 640px) { main { padding: .6rem; } body { font-size: 14px; }
  audio { width: 190px; } }
"""

JS = """
(function () {
  "use strict";
  function cellKey(cell, numeric) {
    var text = (cell && cell.textContent || "").trim();
    if (!numeric) { return text.toLowerCase(); }
    var m = text.replace(/,/g, "").match(/[-+]?[0-9]*[.]?[0-9]+(?:e[-+]?[0-9]+)?/i);
    return m ? parseFloat(m[0]) : null;
  }
  function sortBy(th) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    if (!body) { return; }
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-sort") === "num";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(th.parentNode.children, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a.cells[index], numeric), y = cellKey(b.cells[index], numeric);
      if (x === y) { return 0; }
      if (x === null || x === "") { return 1; }
      if (y === null || y === "") { return -1; }
      return (x < y ? -1 : 1) * dir;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.tabIndex = 0;
    th.addEventListener("click", function () { sortBy(th); });
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(th); }
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (box) {
    var table = document.getElementById(box.getAttribute("data-filter"));
    box.addEventListener("input", function () {
      var q = box.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  });
  document.querySelectorAll("button[data-group]").forEach(function (button) {
    button.addEventListener("click", function () {
      var gallery = document.getElementById(button.getAttribute("data-gallery"));
      var key = button.getAttribute("data-group");
      var items = Array.prototype.slice.call(gallery.querySelectorAll("[data-input]"));
      items.sort(function (a, b) {
        var x = a.getAttribute("data-" + key), y = b.getAttribute("data-" + key);
        return x < y ? -1 : x > y ? 1 : 0;
      });
      var body = gallery.tBodies[0];
      items.forEach(function (item) { body.appendChild(item); });
      gallery.parentNode.parentNode.querySelectorAll("button[data-group]").forEach(function (b) {
        b.setAttribute("aria-pressed", b === button ? "true" : "false");
      });
    });
  });
})();
"""


def script_hash(script: str = JS) -> str:
    """The CSP source that allows exactly ``script`` as an inline script ('sha256-…')."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy() -> str:
    """The page's policy: no network at all, only the page's own script, styles inline, audio and
    images from the page's folder or data: URIs. An injected ``<script>`` or ``onerror=`` would
    not run even if escaping ever failed."""
    return (
        "default-src 'none'; "
        f"script-src {script_hash()}; "
        "style-src 'unsafe-inline'; "
        "img-src 'self' data:; "
        "media-src 'self' data: file:; "
        "base-uri 'none'; form-action 'none'"
    )
