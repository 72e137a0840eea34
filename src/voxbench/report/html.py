"""A run as one self-contained HTML page (report.html): summary cards, every report view as a
sortable, filterable table, the plots of report/plots.py inline, the environment, and a listen
gallery tied to the numbers.

The page reads only the result document (and the audio the run saved), like report.md, so
``voxbench report RUN_DIR --html`` re-renders any past run. It loads nothing from the network:
styles and the script are inline, plots are inline SVG, audio is linked relative to the page
(``audio/…``) or embedded as data: URIs. Every string a user, an engine or a server wrote is
escaped (report/html_parts.py); the page's Content-Security-Policy runs only its own script.

Compare, aggregate and history pages are in report/html_results.py and re-exported here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from voxbench.errors import ConfigError
from voxbench.report.format import Section, environment_lines, fmt, fmt_rtf, is_invalid
from voxbench.report.html_parts import (
    AudioLinker,
    Card,
    Ids,
    cards_html,
    environment_html,
    esc,
    figure_html,
    page,
    plots_html,
    section_html,
    table_html,
)
from voxbench.report.html_results import (
    render_aggregate_html,
    render_compare_html,
    render_history_html,
)
from voxbench.results.document import Case, ResultDocument

__all__ = [
    "INSTALL_HINT",
    "render_aggregate_html",
    "render_compare_html",
    "render_history_html",
    "render_html",
    "require_plotting",
    "write_html",
]

INSTALL_HINT = "HTML reports need matplotlib: pip install 'voxbench[html]'"
OUTLIER_RATIO = 3.0
"""A case is an outlier when its slowest measured call took more than this × its median."""
CASE_PLOTS = 12
"""Per-case plots (latency distribution, stream timeline) drawn at most: a page of 200 cases
stays small; the slowest cases and the outliers come first."""


def require_plotting() -> None:
    """Fail in one line, before any work, when matplotlib (the plots) is not installed."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(INSTALL_HINT)


def write_html(doc: ResultDocument, run_dir: Path, *, embed_audio: bool = False) -> Path:
    """Write ``run_dir/report.html`` (audio linked as ``audio/…``, or embedded); returns it."""
    path = run_dir / "report.html"
    path.write_text(render_html(doc, run_dir=run_dir, embed_audio=embed_audio), encoding="utf-8")
    return path


def render_html(doc: ResultDocument, *, run_dir: Path | None, embed_audio: bool = False) -> str:
    """The page of one run of any scenario. ``run_dir``: the folder the audio paths are relative
    to (the page is written there); None renders without players."""
    require_plotting()
    ids = Ids()
    audio = AudioLinker(run_dir, embed_audio)
    parts: list[tuple[str, str, str]] = []  # (anchor, toc title, html)

    def add(title: str, body: str) -> None:
        if body:
            anchor = ids.new(title)
            parts.append((anchor, title, f'<h2 id="{anchor}">{esc(title)}</h2>{body}'))

    add("Summary", cards_html(summary_cards(doc)))
    add("Plots", plots_html(doc_plots(doc)))
    for section in doc_sections(doc):
        anchor = ids.new(section.title)
        parts.append((anchor, section.title, section_html(ids, section, anchor=anchor)))
    add("Per-case plots", plots_html(case_plots(doc)))
    add("Look closer", attention_html(ids, doc, run_dir, audio))
    add("Listen", gallery_html(ids, doc, run_dir, audio))
    add("Environment", environment_block(ids, doc))
    body = "".join(p[2] for p in parts)
    title = f"voxbench {_scenario_word(doc)} {doc.run_id}"
    return page(title, body, [(a, t) for a, t, _ in parts])


def _scenario_word(doc: ResultDocument) -> str:
    return {"single": "run", "load": "load", "micro": "micro", "pipeline": "pipeline"}[doc.scenario]


# -- the views --------------------------------------------------------------------------------


def doc_sections(doc: ResultDocument) -> list[Section]:
    """Every view report.md shows for this scenario, as Sections (the headline table first)."""
    from voxbench.report.load import load_sections
    from voxbench.report.markdown import RTF_NOTE, all_sections, case_notes, case_row, main_headers
    from voxbench.report.micro import HEADERS, MICRO_NOTE, NUMERIC, micro_notes, micro_row
    from voxbench.report.pipeline import pipeline_sections
    from voxbench.results.skips import skip_text

    found: list[Section] = []
    if doc.scenario == "load" and doc.load is not None:
        found += load_sections(doc.load)
    elif doc.scenario == "pipeline":
        found += pipeline_sections(doc)
    elif doc.scenario == "micro":
        rows = [micro_row(c) for c in doc.cases]
        note = "\n".join([MICRO_NOTE, *micro_notes(doc)])
        found.append(
            Section("Kernels", HEADERS, [[r[h] for h in HEADERS] for r in rows], note, NUMERIC)
        )
        failed = [[c.id, e.phase, e.type, e.message] for c in doc.cases for e in c.errors]
        if failed:
            found.append(Section("Errors", ["case", "phase", "type", "message"], failed))
    elif doc.cases:
        rows = [case_row(c) for c in doc.cases]
        headers = main_headers(doc, rows)
        note = "\n".join([RTF_NOTE, *case_notes(doc, headers)])
        numeric = {h for h in headers if h.endswith(("ms", "s", "↓", "↑", "MB", "MiB"))}
        numeric |= {"WER", "CPU", "errors", "chars/s", "tok/s"} & set(headers)
        found.append(
            Section("Results", headers, [[r[h] for h in headers] for r in rows], note, numeric)
        )
        found += all_sections(doc)
    if doc.skipped:
        found.append(Section("Skipped", ["skipped"], [[skip_text(s)] for s in doc.skipped]))
    return found


def summary_cards(doc: ResultDocument) -> list[Card]:
    """The figures a reader looks for first, each only where the run holds it."""
    cards: list[Card] = []
    if doc.scenario == "load" and doc.load is not None:
        from voxbench.report.load import capacity_lines

        lines = capacity_lines(doc.load)
        if lines:
            head, _, rest = lines[0].partition(":")  # "capacity: <level> meets <SLO> …"
            cards.append(Card(head or "capacity", (rest or head).strip()[:120]))
        rates = [lv.achieved_rate for lv in doc.load.levels if lv.achieved_rate is not None]
        if rates:
            cards.append(Card("most achieved", f"{max(rates):.2f}/s", f"{len(rates)} levels"))
        invalid = [lv.label for lv in doc.load.levels if is_invalid(lv.validity)]
        cards.append(_validity_card(len(doc.load.levels), invalid, "levels"))
        return cards
    measured = [c for c in doc.cases if c.latency_ms is not None]
    cards.append(Card("cases", str(len(doc.cases)), f"{len(measured)} measured"))
    if measured:
        fast = min(measured, key=lambda c: c.latency_ms.median if c.latency_ms else 0.0)
        median = fast.latency_ms.median if fast.latency_ms else None
        cards.append(Card("fastest", fast.engine, f"{fmt(median, 2)} ms median · {fast.id}"))
    rtf = [c for c in doc.cases if c.rtf is not None]
    if rtf:
        best = min(rtf, key=lambda c: c.rtf or 0.0)
        cards.append(Card("best rtf ↓", fmt_rtf(best.rtf), best.id))
    ttfa = [c for c in doc.cases if c.ttfa_ms is not None]
    if ttfa:
        first = min(ttfa, key=lambda c: c.ttfa_ms.median if c.ttfa_ms else 0.0)
        cards.append(
            Card(
                "first audio",
                f"{fmt(first.ttfa_ms.median if first.ttfa_ms else None, 1)} ms",
                first.id,
            )
        )
    scores = [s for c in doc.cases for s in c.quality.values() if s.passed is not None]
    if scores:
        failed = sum(not s.passed for s in scores)
        tone = "bad" if failed else "good"
        cards.append(
            Card("quality targets", f"{len(scores) - failed}/{len(scores)} pass", "", tone)
        )
    errors = sum(c.error_count for c in doc.cases)
    if errors:
        cards.append(Card("errors", str(errors), "calls that failed", "bad"))
    invalid = [c.id for c in doc.cases if is_invalid(c.validity)]
    cards.append(_validity_card(len(doc.cases), invalid, "cases"))
    return cards


def _validity_card(total: int, invalid: list[str], what: str) -> Card:
    if invalid:
        return Card(
            "validity", f"{len(invalid)} of {total} invalid", ", ".join(invalid)[:160], "bad"
        )
    return Card("validity", f"all {total} valid", f"no {what} judged invalid", "good")


# -- plots ------------------------------------------------------------------------------------


def doc_plots(doc: ResultDocument) -> list[str]:
    """The run-wide plots this scenario has data for, each with its caption."""
    from voxbench.report import plots

    wanted: list[tuple[Callable[[], str | None], str]]
    if doc.scenario == "load" and doc.load is not None:
        load = doc.load
        wanted = [
            (lambda: plots.load_curves(load), "Achieved throughput against latency, per level"),
            (lambda: plots.load_errors(load), "Errors by kind, per level"),
        ]
    elif doc.scenario == "pipeline":
        wanted = [(lambda: plots.pipeline_stages(doc), "Time to first byte by stage")]
    else:
        wanted = [
            (lambda: plots.latency_overview(doc), "Latency of every case"),
            (
                lambda: plots.rtf_vs_length(doc),
                "Real-time factor against input length (lower is better)",
            ),
            (lambda: plots.stage_bars(doc), "Stage medians per case"),
            (lambda: plots.sweep_table_plot(doc), "The sweep by parameter value and workload"),
            (lambda: plots.pareto(doc), "Quality against speed, Pareto front marked"),
        ]
    return [figure_html(draw(), caption) for draw, caption in wanted]


def _latency_ratio(case: Case) -> float:
    lat = case.latency_ms
    return lat.max / lat.median if lat and lat.median > 0 else 0.0


def is_outlier(case: Case) -> bool:
    """The slowest measured call took more than :data:`OUTLIER_RATIO` × the median."""
    return _latency_ratio(case) > OUTLIER_RATIO


def case_plots(doc: ResultDocument) -> list[str]:
    """Latency distributions and stream timelines of at most :data:`CASE_PLOTS` cases: outliers
    first, then the slowest."""
    if doc.scenario in ("load", "pipeline"):
        return []
    from voxbench.report import plots

    chosen = sorted(
        (c for c in doc.cases if c.samples.latency_ms),
        key=lambda c: (not is_outlier(c), -(c.latency_ms.median if c.latency_ms else 0.0)),
    )[:CASE_PLOTS]
    out = [
        figure_html(plots.latency_distribution(c), f"Latency distribution: {c.id}") for c in chosen
    ]
    streamed = [c for c in chosen if c.streamed][: CASE_PLOTS // 2]
    out += [
        figure_html(plots.stream_timeline(c), f"Chunk arrivals against playback: {c.id}")
        for c in streamed
    ]
    return out


# -- listening --------------------------------------------------------------------------------


def case_text(case: Case) -> str:
    """What the case said or answered: the input text, or a pipeline's answer."""
    if case.pipeline is not None:
        return case.pipeline.answer or case.pipeline.transcript or ""
    return case.input_text or case.output_text or ""


def variant(case: Case) -> str:
    """The engine with what sets this case apart from its siblings on the same input."""
    extra = [f"{k}={v}" for k, v in case.params.items()]
    if case.device != "cpu":
        extra.append(case.device)
    if case.batch_size > 1:
        extra.append(f"×{case.batch_size}")
    if case.pipeline is not None:
        extra.append(case.pipeline.mode)
    return case.engine + (f" ({', '.join(extra)})" if extra else "")


def _input_label(case: Case) -> str:
    return f"{case.workload}/{case.input_id}"


def gallery_html(ids: Ids, doc: ResultDocument, run_dir: Path | None, audio: AudioLinker) -> str:
    """A player for every case that saved audio, with its text; grouped by input (every engine
    on one input together) or, at a click, by engine. One element per case: the buttons move
    rows, so embedded audio is on the page once."""
    cases = [c for c in doc.cases if c.audio_file]
    if not cases:
        return ""
    gallery = ids.new("gallery")
    rows = []
    for c in sorted(cases, key=lambda c: (_input_label(c), variant(c))):
        lat = c.latency_ms
        rows.append(
            f'<tr data-input="{esc(_input_label(c))}" data-engine="{esc(variant(c))}">'
            f"<td>{esc(_input_label(c))}</td><td class=text>{esc(case_text(c))}</td>"
            f"<td>{esc(variant(c))}</td>"
            f"<td class=num>{esc(fmt(lat.median if lat else None, 1))}</td>"
            f"<td class=num>{esc(fmt_rtf(c.rtf))}</td>"
            f"<td>{audio.player(run_dir, c.audio_file)}</td></tr>"
        )
    head = "".join(
        f'<th scope="col" data-sort="{kind}"{" class=num" if kind == "num" else ""}>{name}</th>'
        for name, kind in (
            ("input", "text"),
            ("text", "text"),
            ("engine", "text"),
            ("median ms", "num"),
            ("rtf ↓", "num"),
            ("listen", "text"),
        )
    )
    buttons = (
        '<p>Group: <button type="button" class="group" aria-pressed="true" data-group="input" '
        f'data-gallery="{gallery}">by input</button> <button type="button" class="group" '
        f'aria-pressed="false" data-group="engine" data-gallery="{gallery}">by engine</button> '
        f'<input class="filter" type="search" data-filter="{gallery}" placeholder="filter" '
        'aria-label="filter the gallery"></p>'
    )
    return (
        f'<div>{buttons}<div class="scroll"><table id="{gallery}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></div>"
    )


def attention_html(ids: Ids, doc: ResultDocument, run_dir: Path | None, audio: AudioLinker) -> str:
    """The cases worth a second look, each with its player: outliers (slowest call more than
    3× the median) and failed quality targets."""
    rows: list[list[str]] = []
    players: list[str] = []
    for c in doc.cases:
        why = []
        if is_outlier(c) and c.latency_ms:
            why.append(
                f"outlier: slowest {fmt(c.latency_ms.max, 1)} ms = "
                f"{_latency_ratio(c):.1f}× the median {fmt(c.latency_ms.median, 1)} ms"
            )
        failed = [
            f"{name} {s.value:.3g} misses {s.target_op} {s.target:g}"
            for name, s in c.quality.items()
            if s.passed is False and s.value is not None and s.target is not None
        ]
        why += [f"target FAIL: {f}" for f in failed]
        if not why:
            continue
        rows.append([c.id, "; ".join(why)])
        players.append(audio.player(run_dir, c.audio_file) if c.audio_file else "")
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{esc(r[0])}</td><td class=fail>{esc(r[1])}</td><td>{p}</td></tr>"
        for r, p in zip(rows, players, strict=True)
    )
    table_id = ids.new("look-closer")
    return (
        f'<div class="scroll"><table id="{table_id}"><thead><tr><th scope="col" data-sort="text">'
        'case</th><th scope="col" data-sort="text">why</th><th scope="col">listen</th></tr>'
        f"</thead><tbody>{body}</tbody></table></div>"
    )


# -- environment ------------------------------------------------------------------------------


def environment_block(ids: Ids, doc: ResultDocument) -> str:
    """Machine, GPU, versions, method and command (as report.md has them), then the packages."""
    rows = []
    for line in environment_lines(doc):
        text = line.removeprefix("- ")
        if text.startswith("**") and "**" in text[2:]:
            key, _, value = text[2:].partition("**")
            rows.append((key, value.strip()))
        else:
            rows.append(("", text))
    env = doc.environment
    out = environment_html(rows)
    listed = sorted({**env.tools, **env.packages}.items())
    if listed:
        out += "<details><summary>packages and tools</summary>"
        out += table_html(ids, "packages", ["name", "version"], [[k, v] for k, v in listed])
        out += "</details>"
    return out
