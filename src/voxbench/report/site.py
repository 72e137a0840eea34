"""A static site over the whole results store (``voxbench site -o DIR``): an index of engines,
machines and workloads, and a page per engine with its trends over commits and a gallery of its
newest run. Every page is self-contained (report/html_parts.py) and links only to files in the
site, so the folder can be published as it is: a CI artefact, GitHub Pages.

Layout::

    DIR/index.html
    DIR/engine-<name>.html
    DIR/runs/<run-id>/report.html      the newest run of each engine, its full report
    DIR/runs/<run-id>/audio/…          that run's audio, copied from its run folder when present
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voxbench.errors import ConfigError
from voxbench.report.html_parts import (
    AudioLinker,
    Card,
    Ids,
    cards_html,
    esc,
    figure_html,
    page,
    slug,
    table_html,
)

if TYPE_CHECKING:
    from voxbench.results.document import ResultDocument
    from voxbench.results.store.core import RunInfo, Store

TREND_METRICS = ("latency_ms", "rtf")
"""The metrics each engine page plots over commits (when the store has them)."""


@dataclass
class _Engine:
    name: str
    page: str
    runs: set[str] = field(default_factory=set)
    machines: set[str] = field(default_factory=set)
    workloads: set[str] = field(default_factory=set)
    cases: int = 0


def build_site(store_url: str | None, out: Path) -> Path:
    """Write the site for the store at ``store_url`` (None: ``$VOXBENCH_STORE`` or the default
    file) into ``out``; returns the index page."""
    from voxbench.report.html import require_plotting
    from voxbench.results.store import open_store

    require_plotting()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o: {out} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with open_store(store_url) as store:
        infos = store.runs()
        if not infos:
            raise ConfigError(f"the store {store.url} holds no runs")
        engines = _engines(store)
        latest: dict[str, RunInfo] = {}
        for info in infos:  # newest first
            for name in info.engines:
                latest.setdefault(name, info)
        written: dict[str, Path | None] = {}
        for name, eng in engines.items():
            newest = latest.get(name)
            doc = store.get(newest.run_id) if newest is not None else None
            if newest is not None and doc is not None and newest.run_id not in written:
                written[newest.run_id] = _run_page(doc, newest, out)
            page_text = _engine_page(store, eng, doc, newest, out)
            (out / eng.page).write_text(page_text, encoding="utf-8")
        index = out / "index.html"
        index.write_text(_index_page(store.url, infos, engines, latest), encoding="utf-8")
    return index


def _engines(store: Store) -> dict[str, _Engine]:
    found: dict[str, _Engine] = {}
    pages: set[str] = set()
    for row in store.case_rows():
        name = str(row["engine"])
        if name not in found:
            page_name = f"engine-{slug(name)}.html"
            n = 1
            while page_name in pages:
                n += 1
                page_name = f"engine-{slug(name)}-{n}.html"
            pages.add(page_name)
            found[name] = _Engine(name, page_name)
        eng = found[name]
        eng.runs.add(str(row["run_id"]))
        eng.machines.add(str(row["machine_id"]))
        eng.workloads.add(str(row["workload"]))
        eng.cases += 1
    return dict(sorted(found.items()))


def _copy_audio(doc: ResultDocument, source: str | None, dest: Path) -> None:
    """Copy the audio the run saved from its run folder (the store holds numbers, not audio)."""
    if not source:
        return
    folder = Path(source)
    for case in doc.cases:
        if not case.audio_file:
            continue
        src = folder / case.audio_file
        if src.is_file() and src.resolve().is_relative_to(folder.resolve()):
            target = dest / case.audio_file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


def _run_page(doc: ResultDocument, info: RunInfo, out: Path) -> Path:
    from voxbench.report.html import write_html

    run_dir = out / "runs" / slug(info.run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    _copy_audio(doc, info.source, run_dir)
    return write_html(doc, run_dir)


def _engine_page(
    store: Store, eng: _Engine, doc: ResultDocument | None, info: RunInfo | None, out: Path
) -> str:
    from voxbench.analysis.history import build_history
    from voxbench.report import plots
    from voxbench.report.html import doc_sections, gallery_html

    ids = Ids()
    toc: list[tuple[str, str]] = []
    body = '<p><a href="index.html">← all engines</a></p>'
    body += cards_html(
        [
            Card("runs", str(len(eng.runs))),
            Card("machines", str(len(eng.machines)), ", ".join(sorted(eng.machines))[:120]),
            Card("workloads", str(len(eng.workloads)), ", ".join(sorted(eng.workloads))[:120]),
        ]
    )
    figures = []
    for metric in TREND_METRICS:
        try:
            hist = build_history(store, eng.name, metric=metric)
        except ConfigError:  # no stored values of this metric for the engine
            continue
        figures.append(figure_html(plots.history_plot(hist), f"{metric} over commits"))
    if any(figures):
        anchor = ids.new("trends")
        toc.append((anchor, "Trends"))
        body += f'<h2 id="{anchor}">Trends</h2>' + "".join(figures)
    if doc is not None and info is not None:
        mine = doc.model_copy(update={"cases": [c for c in doc.cases if c.engine == eng.name]})
        anchor = ids.new("latest")
        toc.append((anchor, "Latest run"))
        report = f"runs/{slug(info.run_id)}/report.html"
        body += (
            f'<h2 id="{anchor}">Latest run</h2><p><a href="{esc(report)}">{esc(info.run_id)}</a> '
            f"on {esc(info.machine_id)}, {esc(info.created_at[:19].replace('T', ' '))}</p>"
        )
        sections = doc_sections(mine)
        if sections:
            s = sections[0]
            body += table_html(ids, s.title, s.headers, s.rows, s.numeric)
        run_dir = out / "runs" / slug(info.run_id)
        gallery = gallery_html(ids, mine, run_dir, AudioLinker(out))
        if gallery:
            anchor = ids.new("gallery")
            toc.append((anchor, "Listen"))
            body += f'<h2 id="{anchor}">Listen</h2>{gallery}'
    return page(f"voxbench · {eng.name}", body, toc)


def _index_page(
    url: str, infos: list[RunInfo], engines: dict[str, _Engine], latest: dict[str, RunInfo]
) -> str:
    ids = Ids()
    toc: list[tuple[str, str]] = []
    body = f'<p class="note">{len(infos)} runs in {esc(url)}.</p>'
    machines: dict[str, list[RunInfo]] = defaultdict(list)
    for info in infos:
        machines[info.machine_id].append(info)
    workloads: dict[str, set[str]] = defaultdict(set)
    for eng in engines.values():
        for w in eng.workloads:
            workloads[w].add(eng.name)

    def section(title: str, table: str) -> str:
        anchor = ids.new(title)
        toc.append((anchor, title))
        return f'<h2 id="{anchor}">{esc(title)}</h2>{table}'

    rows = [
        [e.name, str(len(e.runs)), str(e.cases), ", ".join(sorted(e.machines)),
         ", ".join(sorted(e.workloads)), latest[e.name].created_at[:10] if e.name in latest else "–"]
        for e in engines.values()
    ]  # fmt: skip
    headers = ["engine", "runs", "cases", "machines", "workloads", "latest"]
    pages = [e.page for e in engines.values()]
    table = table_html(ids, "engines", headers, rows, {"runs", "cases"}, links=pages)
    body += section("Engines", table)
    rows = [
        [m, str(len(runs)), runs[0].gpus or "–", runs[0].created_at[:10]]
        for m, runs in sorted(machines.items())
    ]
    body += section("Machines", table_html(ids, "machines", ["machine", "runs", "GPUs", "latest"], rows, {"runs"}))  # fmt: skip
    rows = [[w, ", ".join(sorted(names))] for w, names in sorted(workloads.items())]
    body += section("Workloads", table_html(ids, "workloads", ["workload", "engines"], rows))
    rows = [
        [i.run_id, i.created_at[:19].replace("T", " "), i.machine_id, (i.git_commit or "")[:10],
         i.scenario, str(i.cases), ", ".join(i.engines)]
        for i in infos
    ]  # fmt: skip
    body += section("Runs", table_html(ids, "runs", ["run", "created", "machine", "commit", "scenario", "cases", "engines"], rows, {"cases"}))  # fmt: skip
    return page("voxbench results", body, toc)
