"""HTML pages of what is judged across runs: a comparison (regressions first, with the base and
candidate audio of each regressed case side by side), an aggregate over machines, a history.

They are built from the analysis objects the text renderers use (analysis/compare, aggregate,
history) with the pieces of report/html_parts.py; plots come from report/plots.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voxbench.report.html_parts import (
    AudioLinker,
    Card,
    Ids,
    cards_html,
    esc,
    figure_html,
    note_html,
    page,
    table_html,
)

if TYPE_CHECKING:
    from voxbench.analysis.aggregate import Aggregate
    from voxbench.analysis.compare import Comparison
    from voxbench.analysis.history import History
    from voxbench.results.document import Case, ResultDocument


@dataclass(frozen=True)
class RunAudio:
    """One side of a comparison for listening: its document and the folder its audio is in."""

    doc: ResultDocument
    run_dir: Path | None

    def case(self, case_id: str) -> Case | None:
        """The case of this id."""
        return next((c for c in self.doc.cases if c.id == case_id), None)

    def by_key(self, key: str) -> Case | None:
        """The case compare matched on ``key`` (an invalid one has no ids, only its key)."""
        from voxbench.results.keys import case_key

        return next((c for c in self.doc.cases if case_key(c) == key), None)


def _h2(ids: Ids, title: str, body: str, toc: list[tuple[str, str]]) -> str:
    if not body:
        return ""
    anchor = ids.new(title)
    toc.append((anchor, title))
    return f'<h2 id="{anchor}">{esc(title)}</h2>{body}'


def render_compare_html(
    cmp: Comparison,
    *,
    base: RunAudio | None = None,
    candidate: RunAudio | None = None,
    page_dir: Path | None = None,
    embed_audio: bool = False,
) -> str:
    """The comparison as a page: counts, the change plot, every (case, metric) row with its
    interval, regressions first, then the players of regressed cases, base beside candidate.
    ``page_dir``: where the page will be written (audio links are relative to it)."""
    from voxbench.analysis import compare as cm
    from voxbench.report import plots

    ids = Ids()
    toc: list[tuple[str, str]] = []
    n = cmp.counts()
    cards = [
        Card("regressed", str(n["regressed"]), f"threshold {cmp.threshold * 100:g}%",
             "bad" if n["regressed"] else "good"),
        Card("improved", str(n["improved"])),
        Card("unchanged", str(n["unchanged"]), f"{n['noisy_metrics']} noisy metric(s)"),
    ]  # fmt: skip
    if cmp.invalid:
        cards.append(Card("invalid", str(len(cmp.invalid)), "not compared", "bad"))
    runs = [
        [side, r.run_id, r.machine_id, (r.git_commit or "")[:12], r.created_at, r.label]
        for side, r in (("base", cmp.base), ("candidate", cmp.candidate))
    ]
    body = cards_html(cards)
    body += table_html(ids, "runs", ["side", "run", "machine", "commit", "created", "from"], runs)
    body += _h2(ids, "Changes", figure_html(plots.compare_changes(cmp), "Relative change per case and metric, with its interval"), toc)  # fmt: skip
    rows = [[i.key, "–", "–", "–", "–", "–", "–", "invalid"] for i in cmp.invalid]
    rows += [
        [key, m.metric, cm._num(m.base, m.unit), cm._num(m.candidate, m.unit), cm._change(m),
         cm._ci(m), cm._p(m.p_value), cm._verdict_text(m)]
        for key, m in cm.rows(cmp)
    ]  # fmt: skip
    headers = ["case", "metric", "base", "candidate", "change", "95% CI", "p (M-W)", "verdict"]
    table = table_html(ids, "comparison", headers, rows, {"base", "candidate", "change", "p (M-W)"})
    body += _h2(ids, "Cases", note_html(cm._noise_note(cmp)) + table, toc)
    notes = [f"- invalid, not compared `{i.key}`: {i.text()}" for i in cmp.invalid]
    notes += [f"- not compared `{c.key}` {why}" for c in cmp.cases for why in c.not_compared]
    notes += [f"- only in base `{k}`" for k in cmp.only_base]
    notes += [f"- only in candidate `{k}`" for k in cmp.only_candidate]
    body += _h2(ids, "Not compared", note_html("\n".join(notes)), toc)
    if base is not None and candidate is not None:
        audio = AudioLinker(page_dir, embed_audio)
        found: list[_Pair] = [
            (c.key, c.verdict, base.case(c.base_case), candidate.case(c.candidate_case))
            for c in cmp.cases
        ]
        found += [
            (i.key, "invalid", base.by_key(i.key), candidate.by_key(i.key)) for i in cmp.invalid
        ]
        regressed = [p for p in found if p[1] == "regressed"]
        others = [p for p in found if p[1] != "regressed"]
        body += _h2(ids, "Listen: regressed", _pairs(ids, regressed, base, candidate, audio), toc)
        listen = _pairs(ids, others, base, candidate, audio)
        if listen:
            listen = f"<details><summary>{len(others)} other cases</summary>{listen}</details>"
        body += _h2(ids, "Listen: the rest", listen, toc)
    title = f"voxbench compare {cmp.base.run_id} → {cmp.candidate.run_id}"
    return page(title, body, toc)


_Pair = tuple[str, str, "Case | None", "Case | None"]
"""A matched case for listening: key, verdict, the base case, the candidate case."""


def _pairs(ids: Ids, pairs: list[_Pair], base: RunAudio, cand: RunAudio, audio: AudioLinker) -> str:
    """Base and candidate players side by side for each case that saved audio on either side."""
    rows = []
    for key, verdict, b, c in pairs:
        if not ((b and b.audio_file) or (c and c.audio_file)):
            continue
        either = b or c
        text = either.input_text if either is not None else None
        players = "".join(
            f"<div><div class=note>{side}</div>{audio.player(run.run_dir, case.audio_file if case else None)}</div>"
            for side, run, case in (("base", base, b), ("candidate", cand, c))
        )
        rows.append(
            f"<tr><td>{esc(key)}</td><td>{esc(verdict)}</td><td class=text>{esc(text or '')}</td>"
            f'<td><div class="pair">{players}</div></td></tr>'
        )
    if not rows:
        return ""
    table_id = ids.new("pairs")
    return (
        f'<div class="scroll"><table id="{table_id}"><thead><tr><th scope="col" data-sort="text">case</th>'
        '<th scope="col" data-sort="text">verdict</th><th scope="col">text</th>'
        f'<th scope="col">base · candidate</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def render_aggregate_html(agg: Aggregate) -> str:
    """Machines side by side: who they are, the comparison bars, one table per metric (value
    and speedup against the baseline machine)."""
    from voxbench.analysis import aggregate as ag
    from voxbench.report import plots

    ids = Ids()
    toc: list[tuple[str, str]] = []
    machines = [
        [m.label, ", ".join(m.gpus) or "–", m.cpu_model, ", ".join(m.runs)] for m in agg.machines
    ]
    body = note_html(
        f"Baseline machine: **{agg.baseline}**. Speedup = how many times faster than the "
        "baseline (above 1: faster), from each machine's newest run of the case."
    )
    body += _h2(
        ids,
        "Machines",
        table_html(ids, "machines", ["machine", "GPUs", "CPU", "runs"], machines),
        toc,
    )
    body += _h2(
        ids, "Comparison", figure_html(plots.aggregate_bars(agg), "Machines compared per case"), toc
    )
    for name, metric in ag.METRICS.items():
        cells = [[r.values.get(m.machine_id, {}).get(name) for m in agg.machines] for r in agg.rows]
        if not any(v is not None for row in cells for v in row):
            continue
        headers = ["case"]
        for m in agg.machines:
            headers.append(m.label)
            if m.machine_id != agg.baseline:
                headers.append(f"{m.label} speedup")
        rows = []
        for r in agg.rows:
            row = [r.case]
            for m in agg.machines:
                row.append(ag._fmt(r.values.get(m.machine_id, {}).get(name)))
                if m.machine_id != agg.baseline:
                    s = r.speedups.get(m.machine_id, {}).get(name)
                    row.append("–" if s is None else f"{s:.2f}×")
            rows.append(row)
        better = "higher is better" if metric.higher_is_better else "lower is better"
        title = f"{name}" + (f" ({metric.unit})" if metric.unit else "") + f", {better}"
        body += _h2(ids, title, table_html(ids, name, headers, rows, set(headers[1:])), toc)
    return page("voxbench aggregate", body, toc)


def render_history_html(hist: History) -> str:
    """A metric over commits: the plot (change points marked), then each case's series."""
    from voxbench.analysis import history as hi
    from voxbench.report import plots

    ids = Ids()
    toc: list[tuple[str, str]] = []
    changes = sum(len(c.change_points) for c in hist.cases)
    cards = [
        Card("cases", str(len(hist.cases)), f"engine {hist.engine}"),
        Card(
            "runs", str(max((len(c.points) for c in hist.cases), default=0)), "most in one series"
        ),
        Card("change points", str(changes), f"steps of at least {hist.min_shift * 100:g}%"),
    ]
    unit = f" ({hist.unit})" if hist.unit else ""
    body = cards_html(cards)
    body += _h2(
        ids,
        "Over time",
        figure_html(plots.history_plot(hist), f"{hist.metric}{unit} over commits"),
        toc,
    )
    for ch in hist.cases:
        marks = {c["index"]: c for c in ch.change_points}
        rows = []
        for i, p in enumerate(ch.points):
            ci = (
                f"{hi._fmt(p['ci_low'])} … {hi._fmt(p['ci_high'])}"
                if p["ci_low"] is not None
                else ""
            )
            cp = marks.get(i)
            mark = f"{cp['change'] * 100:+.1f}%" if cp and cp["change"] is not None else ""
            rows.append([p["created_at"][:19].replace("T", " "), (p["git_commit"] or "")[:10],
                         p["machine_id"], p["run_id"], hi._fmt(p["value"]), ci, mark])  # fmt: skip
        headers = ["date", "commit", "machine", "run", hist.metric, "95% CI", "change point"]
        body += _h2(
            ids,
            ch.label,
            table_html(ids, ch.label, headers, rows, {hist.metric, "change point"}),
            toc,
        )
    return page(f"voxbench history {hist.engine} · {hist.metric}", body, toc)
