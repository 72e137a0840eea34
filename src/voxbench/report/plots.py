"""Plots of a result document (and of compare, aggregate and history) as inline SVG strings.

matplotlib draws them (a well-kept library rather than hand-drawn SVG), on a
:class:`matplotlib.figure.Figure` of its own with an Agg canvas attached, inside an
``rc_context``: no pyplot, no global backend switch, nothing that leaks from one call into the
next. Each figure is saved as SVG with text kept as text (``svg.fonttype = "none"``), the XML
prolog and metadata cut, and every element id prefixed with a hash of the plot, so that many
plots can sit inline in one HTML page without two ids colliding.

Every function returns the ``<svg>`` element as a string, or None when the document holds no
data for that plot. Colours are chosen to read on a light and a dark page alike: a transparent
background, text and axes in a mid grey, a palette of mid-tone colours (after Okabe & Ito's
colour-blind-safe set). Text from users, engines and servers (case ids, labels) reaches the SVG
only through matplotlib's text artists, which escape ``<``, ``>`` and ``&``; maths parsing
(``$...$``) is off, so such text is shown literally.

Size: raw samples are never drawn one mark each beyond :data:`MAX_POINTS`; an empirical CDF is
drawn at :data:`ECDF_POINTS` quantiles, a histogram with at most :data:`MAX_BINS` bins. matplotlib
is imported here lazily: voxbench works without it, and a plot asked for without it is a
one-line :class:`~voxbench.errors.ConfigError` naming the extra to install.
"""

from __future__ import annotations

import hashlib
import io
import re
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from voxbench.errors import ConfigError
from voxbench.report.format import swept_keys
from voxbench.report.quality import pareto_front

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from voxbench.analysis.aggregate import Aggregate
    from voxbench.analysis.compare import Comparison
    from voxbench.analysis.history import History
    from voxbench.results.document import Case, LoadResult, ResultDocument

INSTALL_HINT = "plots need matplotlib: pip install 'voxbench[html]'"
MAX_POINTS = 5000
"""More raw points than this in one series are thinned (evenly, first and last kept)."""
ECDF_POINTS = 800
MAX_BINS = 60
GREY = "#888888"
PALETTE = ("#4C9BE8", "#E69F00", "#2EAD7F", "#CC79A7", "#D55E00", "#56B4E9", "#B8A200", "#9A8CF0")
VERDICT_COLOURS = {"regressed": "#E5534B", "improved": "#2EAD7F", "unchanged": GREY, "info": GREY}
STALL = "#E5534B"
WIDTH = 7.5  # inches; the page scales the SVG (it has a viewBox)

_GREY_KEYS = ("text.", "axes.label", "axes.edge", "axes.title", "grid.", "xtick.", "ytick.")
_RC: dict[str, Any] = {
    **{f"{k}color": GREY for k in _GREY_KEYS},
    **dict.fromkeys(("axes.facecolor", "figure.facecolor"), "none"),
    **dict.fromkeys(("axes.spines.top", "axes.spines.right", "legend.frameon"), False),
    **dict.fromkeys(("axes.grid", "axes.axisbelow", "savefig.transparent"), True),
    "svg.fonttype": "none",
    "svg.hashsalt": "voxbench",  # ids from content, not random: the same plot, the same bytes
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9,
    "grid.alpha": 0.25,
}
_NOTE: dict[str, Any] = {"textcoords": "offset points", "fontsize": 7}


def require_matplotlib() -> None:
    """Raise the one-line :class:`ConfigError` saying how to install matplotlib when it is
    missing (callers check before doing work whose plot they could not draw)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None


@contextmanager
def _figure(height: float, *, ncols: int = 1, nrows: int = 1) -> Iterator[tuple[Figure, Any]]:
    """A fresh Figure with an Agg canvas and its axes, under voxbench's plot style."""
    require_matplotlib()
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.rcsetup import cycler

    rc = {**_RC, "axes.prop_cycle": cycler(color=list(PALETTE))}
    with matplotlib.rc_context(cast(Any, rc)):
        fig = Figure(figsize=(WIDTH, max(height, 1.6)), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        yield fig, axes


def _svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element: no prolog, no metadata, ids unique to this plot."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    prefix = "vb" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:8] + "-"
    ref = re.compile(r'(\bid="|href="#|url\(#)')
    # only inside tags: text content (escaped by matplotlib) is never rewritten
    return re.sub(r"<[^>]+>", lambda m: ref.sub(lambda r: r.group(1) + prefix, m.group(0)), text)


def _thin(values: Sequence[float], limit: int = MAX_POINTS) -> list[int]:
    """Indices of at most ``limit`` evenly spaced values, the first and the last kept."""
    n = len(values)
    if n <= limit:
        return list(range(n))
    step = (n - 1) / (limit - 1)
    return sorted({round(i * step) for i in range(limit)})


def _label(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ecdf(ax: Axes, values: list[float], label: str, colour: str) -> None:
    import numpy as np

    x = np.sort(np.asarray(values, dtype=float))
    p = np.linspace(0, 1, min(len(x), ECDF_POINTS))
    q = np.quantile(x, p)
    ax.plot(q, p, drawstyle="steps-post", color=colour, label=label, gid=f"ecdf-{label}")


def latency_distribution(case: Case) -> str | None:
    """Histogram and empirical CDF of one case's raw latencies (and ttfa, when streamed), in ms:
    the shape behind the median, its tail and any second mode."""
    named = [("latency", case.samples.latency_ms), ("ttfa", case.samples.ttfa_ms)]
    series = [(name, vals) for name, vals in named if vals]
    if not case.samples.latency_ms:
        return None
    import numpy as np

    with _figure(2.8, ncols=2) as (fig, axes):
        hist, cdf = axes[0]
        for i, (name, vals) in enumerate(series):
            x = np.asarray(vals, dtype=float)
            edges = np.histogram_bin_edges(x, bins="auto")
            if len(edges) > MAX_BINS + 1:
                edges = np.linspace(x.min(), x.max(), MAX_BINS + 1)
            counts, edges = np.histogram(x, bins=edges)
            colour = PALETTE[i]
            hist.stairs(counts, edges, fill=True, alpha=0.45, color=colour, gid=f"hist-{name}")
            hist.stairs(counts, edges, color=colour, label=f"{name} (n={len(x)})")
            _ecdf(cdf, list(vals), name, colour)
        hist.set(xlabel="ms", ylabel="calls", title="distribution")
        hist.legend()
        cdf.set(xlabel="ms", ylabel="share of calls ≤ x", title="empirical CDF", ylim=(0, 1.02))
        fig.suptitle(_label(case.id, 90), color=GREY)
        return _svg(fig)


def latency_overview(doc: ResultDocument) -> str | None:
    """Every case's latency distribution side by side: box = quartiles, tick = median, whiskers
    = 1st and 99th percentiles (outliers are not drawn one by one: the page stays small). Drawn
    as bars and lines: ``Axes.boxplot`` reads every rcParam, which makes matplotlib import pyplot
    to resolve its backend."""
    cases = [c for c in doc.cases if c.samples.latency_ms]
    if not cases:
        return None
    import numpy as np

    q = np.array([np.percentile(c.samples.latency_ms, [1, 25, 50, 75, 99]) for c in cases])
    ys = list(range(len(cases)))
    with _figure(0.9 + 0.32 * len(cases)) as (fig, axes):
        ax = axes[0][0]
        ax.hlines(ys, q[:, 0], q[:, 4], color=GREY, lw=1)
        boxes = ax.barh(ys, q[:, 3] - q[:, 1], left=q[:, 1], height=0.6, color=PALETTE[0],
                        alpha=0.55, edgecolor=GREY)  # fmt: skip
        for i, box in enumerate(boxes):
            box.set_gid(f"box-{i}")
        ax.vlines(q[:, 2], [y - 0.3 for y in ys], [y + 0.3 for y in ys], color=PALETTE[1], lw=2)
        ax.set_yticks(ys, [_label(c.id) for c in cases])
        ax.invert_yaxis()  # first case on top
        ax.set(xlabel="latency, ms (lower is better)", title="latency by case")
        if q[:, 4].max() / max(q[:, 0].min(), 1e-9) > 30:
            _log_scale(ax.xaxis, ax.set_xscale)
        return _svg(fig)


def _log_scale(axis: Any, set_scale: Any) -> None:
    """A log axis labelled in plain numbers: its default labels are mathtext, which the
    ``text.parse_math=False`` above (names shown literally) would print as ``$\\mathdefault…$``."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    set_scale("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _length(c: Case, kind: str) -> float | None:
    if kind == "input chars":
        return float(c.input_chars) if c.input_chars else None
    if kind == "input audio s":
        return c.input_audio_seconds
    return c.audio_seconds


def rtf_vs_length(doc: ResultDocument) -> str | None:
    """rtf (wall / audio; lower is better) against input length, one series per engine: input
    characters for text inputs, else input audio seconds (speech recognition), else the audio
    made. A flat line is an engine whose cost grows with the length; a falling one pays a fixed
    overhead that longer inputs amortise."""
    rated = [c for c in doc.cases if c.rtf is not None]
    kind = next(
        (
            k
            for k in ("input chars", "input audio s", "output audio s")
            if rated and all(_length(c, k) for c in rated)
        ),
        None,
    )
    if kind is None:
        return None
    by_engine: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for c in rated:
        x = _length(c, kind)
        if x is not None and c.rtf is not None:
            by_engine[c.engine].append((x, c.rtf))
    with _figure(3.2) as (fig, axes):
        ax = axes[0][0]
        for i, (engine, pts) in enumerate(by_engine.items()):
            pts.sort()
            colour = PALETTE[i % len(PALETTE)]
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, "o-", ms=4, lw=1, color=colour, label=_label(engine), gid=f"series-{i}")
        rtfs = [c.rtf for c in rated if c.rtf is not None]
        if min(rtfs) > 0 and max(rtfs) / min(rtfs) > 20:
            _log_scale(ax.yaxis, ax.set_yscale)
        ax.axhline(1.0, color=GREY, ls=":", lw=1)  # above it: slower than real time
        ax.set(
            xlabel=kind.replace(" s", " (seconds)"), ylabel="rtf = wall / audio (lower is better)"
        )
        ax.set_title("real-time factor against input length")
        ax.legend()
        return _svg(fig)


def stage_bars(doc: ResultDocument) -> str | None:
    """Stacked bars of each case's stage medians (ms, as the engine named its stages), with the
    rest of the median call as "other"."""
    staged = [c for c in doc.cases if c.stages]
    if not staged:
        return None
    names = list(dict.fromkeys(n for c in staged for n in c.stages))
    colours = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    with _figure(1.1 + 0.34 * len(staged)) as (fig, axes):
        ax = axes[0][0]
        labels = [_label(c.id) for c in staged]
        left = [0.0] * len(staged)
        parts = [
            (n, [c.stages[n].median_ms if n in c.stages else 0.0 for c in staged]) for n in names
        ]
        other = [
            max(
                (c.latency_ms.median if c.latency_ms else 0.0)
                - sum(c.stages[n].median_ms for n in c.stages),
                0.0,
            )
            for c in staged
        ]
        if any(other):
            parts.append(("other", other))
            colours["other"] = GREY
        for n, widths in parts:
            bars = ax.barh(
                labels, widths, left=left, color=colours[n], label=_label(n, 30), height=0.6
            )
            for i, bar in enumerate(bars):
                bar.set_gid(f"bar-{n}-{i}")
            left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.invert_yaxis()
        ax.set(xlabel="median ms", title="stages of a call")
        ax.legend(loc="lower right", ncols=min(len(parts), 4))
        return _svg(fig)


def _stream_iteration(case: Case) -> tuple[float, list[float]] | None:
    """(ttfa, chunk gaps) of the iteration with the median total time, when the gaps can be told
    apart per iteration (every iteration sent as many chunks); else the median ttfa and the
    median gap repeated ``chunks - 1`` times."""
    ttfa, gaps = case.samples.ttfa_ms, case.samples.chunk_gap_ms
    if not ttfa:
        return None
    n = len(ttfa)
    if gaps and len(gaps) % n == 0:
        k = len(gaps) // n
        runs = [(ttfa[i], gaps[i * k : (i + 1) * k]) for i in range(n)]
        runs.sort(key=lambda r: r[0] + sum(r[1]))
        return runs[n // 2]
    chunks = case.chunks or 1
    gap = statistics.median(gaps) if gaps else 0.0
    return statistics.median(ttfa), [gap] * (chunks - 1)


def _playback(
    arrivals: list[float], chunk_ms: float
) -> tuple[list[float], list[tuple[float, float]]]:
    """When each chunk starts playing for a listener who starts at the first chunk and plays in
    real time, and the stalls (start, length in ms) where a chunk was not there yet."""
    starts, stalls = [], []
    head = arrivals[0]
    for a in arrivals:
        if a > head:
            stalls.append((head, a - head))
            head = a
        starts.append(head)
        head += chunk_ms
    return starts, stalls


def stream_timeline(case: Case) -> str | None:
    """A streamed answer's chunks as they arrived (ttfa, then the chunk gaps, of the iteration
    with the median total time) against real-time playback from the first chunk: where a chunk
    arrives after the listener reached it, playback stalls (marked). The document keeps how many
    chunks and how much audio, not each chunk's length, so chunks are taken as equally long."""
    if case.output_kind == "text" or not case.audio_seconds or not case.samples.ttfa_ms:
        return None
    found = _stream_iteration(case)
    if found is None:
        return None
    ttfa, gaps = found
    arrivals = [ttfa]
    for g in gaps:
        arrivals.append(arrivals[-1] + g)
    chunk_ms = case.audio_seconds * 1000 / len(arrivals)
    starts, stalls = _playback(arrivals, chunk_ms)
    keep = _thin(arrivals, 1500)  # steps finer than a pixel add bytes, not information
    audio_done = [(i + 1) * chunk_ms / 1000 for i in range(len(arrivals))]
    with _figure(3.2) as (fig, axes):
        ax = axes[0][0]
        xs, ys = [arrivals[i] for i in keep], [audio_done[i] for i in keep]
        ax.step(xs, ys, where="post", color=PALETTE[0], label="audio received", gid="arrivals")
        if len(keep) <= 200:  # a dot per chunk while the dots can be told apart
            ax.plot(xs, ys, "o", ms=2.5, color=PALETTE[0], gid="chunks")
        play_x = [s for i in keep for s in (starts[i], starts[i] + chunk_ms)]
        play_y = [v for i in keep for v in (i * chunk_ms / 1000, audio_done[i])]
        ax.plot(
            play_x, play_y, color=PALETTE[1], lw=1.2, label="real-time playback", gid="playback"
        )
        for j, (at, length) in enumerate(stalls[:200]):
            ax.axvspan(at, at + length, color=STALL, alpha=0.25, lw=0, gid=f"stall-{j}")
        total = sum(s for _, s in stalls)
        note = f"{len(stalls)} stall(s), {total:.0f} ms" if stalls else "no stall"
        ax.set(
            xlabel="ms since the request",
            ylabel="audio seconds",
            title=f"{_label(case.id, 70)}: chunks against playback ({note})",
        )
        ax.legend(loc="upper left")
        return _svg(fig)


def sweep_table_plot(doc: ResultDocument) -> str | None:
    """For a sweep: chars/s (or, without text inputs, rtf) by swept parameter value, one group of
    bars per setting and one bar per workload, one panel per engine (medians over the inputs)."""
    keys = swept_keys(doc)
    if not keys:
        return None
    use_chars = any(c.chars_per_second for c in doc.cases)
    metric = "chars/s (higher is better)" if use_chars else "rtf = wall / audio (lower is better)"
    by_engine: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for c in doc.cases:
        value = c.chars_per_second if use_chars else c.rtf
        used = [k for k in keys if k in c.params]
        if value is None or not used:
            continue
        setting = ", ".join(f"{k}={c.params[k]}" for k in used)
        by_engine[c.engine][setting][c.workload].append(value)
    if not by_engine:
        return None
    with _figure(0.4 + 2.6 * len(by_engine), nrows=len(by_engine)) as (fig, axes):
        for row, (engine, settings) in zip(axes, by_engine.items(), strict=True):
            ax = row[0]
            workloads = list(dict.fromkeys(w for s in settings.values() for w in s))
            width = 0.8 / len(workloads)
            for j, w in enumerate(workloads):
                xs = [i + (j - (len(workloads) - 1) / 2) * width for i in range(len(settings))]
                ys = [statistics.median(s[w]) if s.get(w) else 0.0 for s in settings.values()]
                bars = ax.bar(
                    xs, ys, width=width * 0.95, label=_label(w, 30), color=PALETTE[j % len(PALETTE)]
                )
                for i, bar in enumerate(bars):
                    bar.set_gid(f"bar-{w}-{i}")
            ax.set_xticks(
                range(len(settings)), [_label(s, 30) for s in settings], rotation=20, ha="right"
            )
            ax.set(ylabel=metric, title=f"sweep: {_label(engine)}")
            ax.legend(title="workload")
        return _svg(fig)


def pareto(doc: ResultDocument) -> str | None:
    """Quality against speed: for each quality value with a target, each setting's rtf (median
    over its inputs) against its quality (mean over them), the target as a dashed line and the
    Pareto front (no other setting both at least as fast and at least as good) joined."""
    groups: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    higher: dict[str, bool] = {}
    targets: dict[str, float] = {}
    keys = swept_keys(doc)
    for c in doc.cases:
        for name, s in c.quality.items():
            if s.target is None or s.value is None or c.rtf is None:
                continue
            setting = ", ".join(f"{k}={c.params[k]}" for k in keys if k in c.params)
            label = f"{c.engine} {setting}".strip() + f" ({c.workload}, {c.device})"
            groups[name][label].append((c.rtf, s.value))
            higher[name], targets[name] = s.higher_is_better, s.target
    if not groups:
        return None
    with _figure(3.0 * len(groups), nrows=len(groups)) as (fig, axes):
        for row, (name, settings) in zip(axes, groups.items(), strict=True):
            ax = row[0]
            labels = list(settings)
            pts = [
                (statistics.median(r for r, _ in v), statistics.fmean(q for _, q in v))
                for v in settings.values()
            ]
            front = pareto_front(pts, higher[name])
            ax.scatter(*zip(*pts, strict=True), s=18, color=PALETTE[0], gid="settings")
            on = sorted(p for p, f in zip(pts, front, strict=True) if f)
            ax.plot(*zip(*on, strict=True), "o-", color=PALETTE[1], ms=6, mfc="none",
                    label="Pareto front", gid="front")  # fmt: skip
            for xy, label, f in zip(pts, labels, front, strict=True):
                if f:
                    ax.annotate(_label(label, 40), xy, xytext=(4, 4), **_NOTE)
            ax.axhline(targets[name], color=STALL, ls="--", lw=1, label=f"target {targets[name]:g}")
            better = "higher" if higher[name] else "lower"
            ax.set(
                xlabel="rtf = wall / audio (lower is better)", ylabel=f"{name} ({better} is better)"
            )
            ax.set_title(f"quality against speed: {_label(name, 40)}")
            ax.legend()
        return _svg(fig)


def _pct_series(
    levels: Sequence[Any], attrs: tuple[str, str]
) -> tuple[str, dict[str, list[float | None]]] | None:
    """The first of ``attrs`` (all-request figure, then successes-only) that some level has, and
    its p50/p95/p99 per level."""
    for attr in attrs:
        dists = [getattr(lv, attr) for lv in levels]
        if any(d is not None for d in dists):
            return attr, {
                p: [getattr(d, p) if d is not None else None for d in dists]
                for p in ("p50", "p95", "p99")
            }
    return None


def load_curves(load: LoadResult) -> str | None:
    """Achieved throughput (successful responses per second) against latency p50/p95/p99, and
    against ttfa when streamed, one point per level: the knee is where the server saturates.
    Percentiles over every request (a failure at the time it took) when the run kept them."""
    levels = [lv for lv in load.levels if lv.achieved_rate is not None]
    if not levels:
        return None
    panels = [
        s
        for s in (
            _pct_series(levels, ("latency_all_ms", "latency_ms")),
            _pct_series(levels, ("ttfa_all_ms", "ttfa_ms")),
        )
        if s
    ]
    if not panels:
        return None
    x = [lv.achieved_rate or 0.0 for lv in levels]
    with _figure(3.0, ncols=len(panels)) as (fig, axes):
        for ax, (attr, pcts) in zip(axes[0], panels, strict=True):
            for i, (p, ys) in enumerate(pcts.items()):
                pts = [(a, y) for a, y in zip(x, ys, strict=True) if y is not None]
                kw = {"color": PALETTE[i], "label": p, "gid": f"curve-{attr}-{p}"}
                ax.plot(*zip(*pts, strict=True), "o-", ms=4, **kw)
            which = "all requests" if "_all_" in attr else "successes"
            ax.set(xlabel="achieved requests/s", ylabel=f"{attr.split('_')[0]} ms ({which})")
            ax.legend()
        fig.suptitle(f"throughput against latency: {_label(load.target, 70)}", color=GREY)
        return _svg(fig)


def load_errors(load: LoadResult) -> str | None:
    """Errors by kind per load level, stacked; None when no level failed a request."""
    kinds = list(dict.fromkeys(k for lv in load.levels for k in lv.errors))
    if not kinds:
        return None
    labels = [_label(lv.label, 24) for lv in load.levels]
    with _figure(3.0) as (fig, axes):
        ax = axes[0][0]
        bottom = [0.0] * len(labels)
        for j, kind in enumerate(kinds):
            counts = [float(lv.errors.get(kind, 0)) for lv in load.levels]
            colour = PALETTE[j % len(PALETTE)]
            bars = ax.bar(
                range(len(labels)), counts, bottom=bottom, label=_label(kind), color=colour
            )
            for i, bar in enumerate(bars):
                bar.set_gid(f"bar-{j}-{i}")
            bottom = [a + b for a, b in zip(bottom, counts, strict=True)]
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
        ax.set(ylabel="failed requests", title="errors by kind per level")
        ax.legend()
        return _svg(fig)


PIPELINE_PARTS = (("stt", "stt"), ("llm", "llm"), ("tts", "tts"), ("handoff", "lost"))


def pipeline_stages(doc: ResultDocument) -> str | None:
    """Per prompt × mode, where the time to the first audio byte goes: recogniser, language
    model (sequential: the whole answer; streaming: its first sentence), TTS to its first audio,
    and the time lost between them, stacked (medians; a dot marks the measured first byte)."""
    cases = [c for c in doc.cases if c.pipeline is not None and c.pipeline.first_byte_ms]
    if not cases:
        return None
    with _figure(1.1 + 0.34 * len(cases)) as (fig, axes):
        ax = axes[0][0]
        labels = [_label(f"{c.input_id} · {c.pipeline.mode}") for c in cases if c.pipeline]
        left = [0.0] * len(cases)
        for j, (key, name) in enumerate(PIPELINE_PARTS):
            widths = [max(c.stages[key].median_ms, 0.0) if key in c.stages else 0.0 for c in cases]
            colour = GREY if key == "handoff" else PALETTE[j]
            bars = ax.barh(labels, widths, left=left, color=colour, label=name, height=0.6)
            for i, bar in enumerate(bars):
                bar.set_gid(f"bar-{key}-{i}")
            left = [a + b for a, b in zip(left, widths, strict=True)]
        first = [
            c.pipeline.first_byte_ms.median
            for c in cases
            if c.pipeline and c.pipeline.first_byte_ms
        ]
        ax.plot(first, labels, "D", color=PALETTE[4], ms=4, label="first byte", gid="first-byte")
        ax.invert_yaxis()
        ax.set(xlabel="ms from the end of speech", title="time to the first audio byte")
        ax.legend(loc="lower right", ncols=5)
        return _svg(fig)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _interval(m: Any) -> tuple[float, float, float]:
    """A MetricChange's change in percent and the distances to its interval's ends (0 without
    an interval: a point estimate)."""
    x = 100 * (m.change or 0.0)
    return (
        x,
        max(x - 100 * _or(m.ci_low, m.change), 0.0),
        max(100 * _or(m.ci_high, m.change) - x, 0.0),
    )


def compare_changes(cmp: Comparison) -> str | None:
    """Each matched case × gated metric: the relative change (candidate / base − 1) with its
    confidence interval, regressions first, coloured by verdict, the threshold as dotted lines."""
    from voxbench.analysis.compare import METRICS, rows

    found = [(k, m) for k, m in rows(cmp) if METRICS[m.metric].gated and m.change is not None]
    if not found:
        return None
    with _figure(1.0 + 0.3 * len(found)) as (fig, axes):
        ax = axes[0][0]
        labels = [_label(f"{k} · {m.metric}", 70) for k, m in found]
        for verdict, colour in VERDICT_COLOURS.items():
            idx = [i for i, (_, m) in enumerate(found) if m.verdict == verdict]
            if not idx:
                continue
            xs, lo, hi = zip(*(_interval(found[i][1]) for i in idx), strict=True)
            ax.errorbar(
                list(xs), idx, xerr=[list(lo), list(hi)], fmt="none", capsize=3, color=colour
            )
            ax.plot(xs, idx, "o", ms=5, color=colour, label=verdict, gid=f"changes-{verdict}")
        for t in (-cmp.threshold, cmp.threshold):
            ax.axvline(100 * t, color=GREY, ls=":", lw=1)
        ax.axvline(0, color=GREY, lw=0.8)
        ax.set_yticks(range(len(found)), labels)
        ax.set_ylim(len(found) - 0.5, -0.5)
        ax.set(xlabel=f"change, % (candidate / base − 1; {cmp.confidence * 100:g}% interval)")
        ax.set_title(f"{_label(cmp.base.label, 40)} → {_label(cmp.candidate.label, 40)}")
        ax.legend(loc="lower right")
        return _svg(fig)


def aggregate_bars(agg: Aggregate) -> str | None:
    """Per case, each machine's figure side by side (one panel per default metric with data),
    the speedup against the baseline machine written on its bar."""
    from voxbench.analysis.aggregate import DEFAULT_TABLES, METRICS

    panels = [
        m
        for m in DEFAULT_TABLES
        if any(
            r.values.get(mc.machine_id, {}).get(m) is not None
            for r in agg.rows
            for mc in agg.machines
        )
    ]
    if not panels:
        return None
    n_rows, n_mach = len(agg.rows), len(agg.machines)
    height = 0.8 + len(panels) * (0.6 + 0.22 * n_rows * n_mach)
    with _figure(height, nrows=len(panels)) as (fig, axes):
        for row, metric in zip(axes, panels, strict=True):
            ax = row[0]
            width = 0.8 / n_mach
            for j, mc in enumerate(agg.machines):
                ys = [i + (j - (n_mach - 1) / 2) * width for i in range(n_rows)]
                vals = [r.values.get(mc.machine_id, {}).get(metric) or 0.0 for r in agg.rows]
                kw = {"label": _label(mc.label, 50), "color": PALETTE[j % len(PALETTE)]}
                bars = ax.barh(ys, vals, height=width * 0.95, **kw)
                for i, (bar, r) in enumerate(zip(bars, agg.rows, strict=True)):
                    bar.set_gid(f"bar-{metric}-{j}-{i}")
                    s = r.speedups.get(mc.machine_id, {}).get(metric)
                    if s is not None and mc.machine_id != agg.baseline:
                        at = (bar.get_width(), bar.get_y() + bar.get_height() / 2)
                        ax.annotate(f"{s:.2f}×", at, xytext=(3, 0), va="center", **_NOTE)
            ax.set_yticks(range(n_rows), [_label(r.case) for r in agg.rows])
            ax.invert_yaxis()
            unit = METRICS[metric].unit
            better = "higher" if METRICS[metric].higher_is_better else "lower"
            ax.set(xlabel=f"{metric}" + (f" ({unit})" if unit else "") + f", {better} is better")
            ax.legend(loc="lower right", title=f"baseline: {_label(agg.baseline, 30)}")
        return _svg(fig)


def history_plot(hist: History) -> str | None:
    """One panel per series (case, machine, mode): the metric run by run (its 95% interval as
    error bars where stored), change points as dashed lines labelled with the shift, red where
    the shift is a regression for this metric, green where an improvement."""
    from voxbench.results.metrics import BY_NAME

    cases = [ch for ch in hist.cases if ch.points]
    if not cases:
        return None
    metric = BY_NAME.get(hist.metric)
    higher = metric.higher_is_better if metric is not None else False
    unit = f" ({hist.unit})" if hist.unit else ""
    with _figure(0.3 + 2.3 * len(cases), nrows=len(cases)) as (fig, axes):
        for k, (row, ch) in enumerate(zip(axes, cases, strict=True)):
            ax = row[0]
            vals = ch.values
            xs = list(range(len(vals)))
            lo = [max(v - _or(p["ci_low"], v), 0.0) for v, p in zip(vals, ch.points, strict=True)]
            hi = [max(_or(p["ci_high"], v) - v, 0.0) for v, p in zip(vals, ch.points, strict=True)]
            if any(lo) or any(hi):
                ax.errorbar(xs, vals, yerr=[lo, hi], fmt="none", capsize=2, color=PALETTE[0])
            ax.plot(xs, vals, "o-", ms=3, lw=1.2, color=PALETTE[0], gid=f"series-{k}")
            for j, cp in enumerate(ch.change_points):
                change = cp["change"]
                bad = change is not None and (change > 0) != higher
                colour = VERDICT_COLOURS["regressed" if bad else "improved"]
                x = cp["index"] - 0.5
                ax.axvline(x, color=colour, ls="--", lw=1.2, gid=f"change-{k}-{j}")
                if change is not None:
                    word = "regressed" if bad else "improved"
                    text, where = f"{change * 100:+.1f}% {word}", ("data", "axes fraction")
                    ax.annotate(
                        text, (x, 1), xycoords=where, xytext=(3, -10), color=colour, **_NOTE
                    )
            ticks = _thin(xs, 8)
            tick_labels = [
                f"{ch.points[i]['created_at'][:10]}\n{(ch.points[i]['git_commit'] or '')[:8]}"
                for i in ticks
            ]
            ax.set_xticks(ticks, tick_labels, fontsize=7)
            ax.set(ylabel=f"{hist.metric}{unit}")
            ax.set_title(_label(ch.label, 90), loc="left")
        return _svg(fig)
