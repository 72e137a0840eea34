"""The HTML report (report/html.py, html_results.py) from synthetic documents of every scenario,
read back with Python's html.parser: the page is self-contained, every view of report.md is on
it as a sortable table, players point at files that exist (or carry the audio), hostile texts
are shown only escaped, and a page of 200 cases stays under 3 MB."""

from __future__ import annotations

import base64
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from support.result_docs import ENV, make_case, make_doc, noise
from voxbench.report.html import render_html, write_html
from voxbench.report.html_parts import esc
from voxbench.results import Case, ResultDocument, Summary
from voxbench.results.document import (
    ErrorRecord,
    LoadLevel,
    LoadResult,
    Percentiles,
    QualityScore,
    StageSummary,
)
from voxbench.results.pipeline_doc import PipelineCase, PipelineResult
from voxbench.results.stats import summarize
from voxbench.wav import encode_wav

pytest.importorskip("matplotlib")

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"


class Page(HTMLParser):
    """Every start tag with its attributes, and the text, of one page."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.headings: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}  # table id -> rows of cell texts
        self.table: list[list[str]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found))
        self.stack.append(tag)
        if tag == "table":
            self.table = self.tables.setdefault(found.get("id", ""), [])
        elif tag == "tr":
            self.table.append([])
        elif tag in ("td", "th"):
            self.table[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack and self.stack[-1] in ("h1", "h2", "h3"):
            self.headings.append(data)
        if any(t in ("td", "th") for t in self.stack) and self.table and self.table[-1]:
            self.table[-1][-1] += data

    def all(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


def _summary(values: list[float]) -> Summary:
    return Summary(**summarize(values))  # type: ignore[arg-type]


def _wav(path: Path, seconds: float = 0.05) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(16000 * seconds)) / 16000
    path.write_bytes(encode_wav(0.2 * np.sin(2 * math.pi * 440 * t), 16000))


def _single(run_dir: Path | None = None) -> ResultDocument:
    """Two engines on two inputs, one hostile input text and engine name, audio for three
    cases, a failed quality target, an outlier, a streamed case with stages, an error."""
    a = make_case(noise(100, 30), input_id="a")
    a.input_text, a.audio_file, a.audio_seconds, a.streamed = "plain text", "audio/a.wav", 1.0, True
    a.ttfa_ms = _summary(noise(20, 30))
    a.samples.ttfa_ms, a.samples.chunk_gap_ms = noise(20, 30), noise(5, 30)
    a.stages = {"encode": StageSummary(median_ms=60.0, share=0.6)}
    a.quality = {
        "wer": QualityScore(metric="wer", family="intelligibility", value=0.5, target=0.1,
                            target_op="<=", passed=False, higher_is_better=False),
    }  # fmt: skip
    b = make_case([*noise(50, 30), 400.0], input_id="b")  # max 400 > 3 × median 50
    b.engine, b.id, b.input_text = IMG, f"{IMG}/w/b/cpu", SCRIPT
    b.audio_file, b.audio_seconds = "audio/b.wav", 1.0
    c = make_case(noise(80, 30), input_id="a", errors=1, speed=2)
    c.id, c.audio_file = "eng/w/a/speed=2/cpu", "audio/c.wav"
    c.errors = [ErrorRecord(phase="measure", type="EngineFailed", message=f"server said {SCRIPT}")]
    doc = make_doc("run-1", a, b, c)
    if run_dir is not None:
        for case in doc.cases:
            _wav(run_dir / str(case.audio_file))
    return doc


def _load() -> ResultDocument:
    lat = Percentiles(n=200, mean=90, p50=80, p90=120, p95=150, p99=190, p99_9=199, max=200)
    levels = [
        LoadLevel(label=f"{r} rps", kind="rate", value=r, requests=200, ok=190, offered_rate=r,
                  achieved_rate=r * 0.95, error_rate=0.05, errors={"http 500": 10},
                  error_examples={"http 500": f"{IMG} {SCRIPT}"}, latency_ms=lat, ttfa_ms=lat)
        for r in (1.0, 2.0)
    ]  # fmt: skip
    doc = make_doc("load-1")
    return doc.model_copy(
        update={
            "scenario": "load",
            "load": LoadResult(target="http://127.0.0.1:9/", settings={}, levels=levels),
        }
    )


def _micro() -> ResultDocument:
    cases = []
    for backend in ("numpy", "librosa"):
        c = make_case(noise(1.0, 30), input_id="1s", backend=backend)
        c.engine, c.id = "micro:mel", f"micro:mel/{backend}"
        c.meta = {"reference": "librosa", "summary": "log-mel"}
        cases.append(c)
    return make_doc("micro-1", *cases).model_copy(update={"scenario": "micro"})


def _pipeline() -> ResultDocument:
    pipe = PipelineCase(
        mode="sequential", stt="known-stt", llm="echo", tts="known-tts", llm_is_echo=True,
        stt_ms=_summary([100.0, 120.0]), llm_ms=_summary([600.0, 610.0]),
        first_byte_ms=_summary([900.0, 910.0]), tts_first_audio_ms=_summary([150.0, 155.0]),
        shares={"stt": 0.13, "llm": 0.67, "tts": 0.17, "handoff": 0.03}, bottleneck="llm",
        answer=SCRIPT,
    )  # fmt: skip
    case = Case(
        id="chain/spoken/p1/mode=sequential/cpu", engine="chain", workload="spoken",
        input_id="p1", input_kind="audio", params={"mode": "sequential"}, mode="in-process",
        iterations=2, warmup=0, latency_ms=_summary([1000.0, 1010.0]), output_kind="audio",
        audio_file="audio/p1.wav",
        pipeline=pipe,
    )  # fmt: skip
    return ResultDocument(
        scenario="pipeline", run_id="pipe-1", created_at="2026-01-01T00:00:00+00:00",
        voxbench_version="0", environment=ENV, cases=[case],
        pipeline=PipelineResult(settings={"stt": "known-stt", "llm": "echo", "tts": "known-tts",
                                          "workload": "spoken", "modes": ["sequential"]}),
    )  # fmt: skip


def _assert_self_contained(page: Page) -> None:
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name, "")
            assert not value.startswith(("http://", "https://", "//")), (tag, attrs)
        if tag == "link":
            raise AssertionError(f"external stylesheet or link: {attrs}")
        if tag == "script":
            assert "src" not in attrs, attrs
    scripts = page.all("script")
    assert len(scripts) == 1, scripts  # the page's own, inline; nothing a run wrote


@pytest.mark.parametrize("make", [_single, _load, _micro, _pipeline])
def test_every_scenario_has_all_its_views_as_sortable_tables(make) -> None:  # type: ignore[no-untyped-def]
    from voxbench.report.html import doc_sections

    doc = make()
    sections = doc_sections(doc)
    assert sections, doc.scenario
    page = Page(render_html(doc, run_dir=None))
    _assert_self_contained(page)
    tables = list(page.tables.values())
    for s in sections:
        assert s.title in page.headings, (s.title, page.headings)
        if s.headers:  # the view's table, header and rows as report.md has them
            shown = [[c.replace("`", "").replace("**", "") for c in r] for r in s.rows]  # marks
            assert [s.headers, *shown] in [t[: len(s.rows) + 1] for t in tables], s.title
    sortable = [a["data-sort"] for t, a in page.tags if t == "th" and "data-sort" in a]
    assert len(sortable) >= sum(len(s.headers) for s in sections)
    assert set(sortable) <= {"num", "text"}
    assert "Environment" in page.headings
    assert page.all("svg"), "the plots are inline SVG"


def test_without_matplotlib_html_says_how_to_install(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    from voxbench.errors import ConfigError
    from voxbench.report import html

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    with pytest.raises(ConfigError, match=r"pip install 'voxbench\[html\]'"):
        html.render_html(_micro(), run_dir=None)


def test_single_run_tables_and_verdicts() -> None:
    page_text = render_html(_single(), run_dir=None)
    page = Page(page_text)
    assert {"Results", "Quality targets", "Errors"} <= set(page.headings)
    # the failed target is coloured, and the outlier is listed with its ratio
    assert '<td class="fail">FAIL</td>' in page_text
    assert (
        "outlier: slowest 400 ms = 7." in page_text or "outlier: slowest 400 ms = 8." in page_text
    )
    filters = page.all("input")
    ids = {a["id"] for a in page.all("table") if "id" in a}
    assert filters and all(a["data-filter"] in ids for a in filters if "data-filter" in a)


def test_audio_is_linked_relative_to_the_page_and_exists(tmp_path: Path) -> None:
    doc = _single(tmp_path)
    path = write_html(doc, tmp_path)
    assert path == tmp_path / "report.html"
    page = Page(path.read_text(encoding="utf-8"))
    sources = [a["src"] for a in page.all("audio")]
    # gallery: one player per case; "look closer": the outlier and the failed target again
    assert sorted(set(sources)) == ["audio/a.wav", "audio/b.wav", "audio/c.wav"]
    assert len(sources) == 5
    for src in sources:
        assert (tmp_path / src).is_file()
    assert all(a["preload"] == "metadata" and "controls" in a for a in page.all("audio"))
    rows = [a for t, a in page.tags if t == "tr" and "data-input" in a]
    assert sorted(r["data-input"] for r in rows) == ["w/a", "w/a", "w/b"]


def test_missing_audio_is_said_not_linked(tmp_path: Path) -> None:
    doc = _single(tmp_path)
    (tmp_path / "audio" / "b.wav").unlink()
    text = render_html(doc, run_dir=tmp_path)
    assert "audio missing: audio/b.wav" in text
    assert "audio/b.wav" not in [a["src"] for a in Page(text).all("audio")]


def test_embed_audio_gives_data_uris_of_the_files(tmp_path: Path) -> None:
    doc = _single(tmp_path)
    page = Page(render_html(doc, run_dir=tmp_path, embed_audio=True))
    sources = [a["src"] for a in page.all("audio")]
    assert sources and all(s.startswith("data:audio/wav;base64,") for s in sources)
    wanted = base64.b64encode((tmp_path / "audio" / "a.wav").read_bytes()).decode("ascii")
    assert f"data:audio/wav;base64,{wanted}" in sources


@pytest.mark.parametrize("make", [_single, _load, _pipeline])
def test_hostile_texts_appear_only_escaped(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    doc = make()
    text = render_html(doc, run_dir=tmp_path)
    page = Page(text)
    assert SCRIPT not in text and IMG not in text
    assert [t for t, _ in page.tags].count("script") == 1
    assert not page.all("img")
    assert not [a for _, a in page.tags if any(k.startswith("on") for k in a)]
    shown = "".join(page.text)
    assert SCRIPT in shown or IMG in shown  # shown literally, as text
    assert esc(SCRIPT) in text or esc(IMG) in text


def test_the_page_allows_only_its_own_script() -> None:
    from voxbench.report.html_assets import JS, script_hash

    text = render_html(_micro(), run_dir=None)
    policy = [
        a["content"]
        for a in Page(text).all("meta")
        if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert len(policy) == 1 and "default-src 'none'" in policy[0]
    assert f"script-src {script_hash()};" in policy[0]
    assert f"<script>{JS}</script>" in text  # the hash is of exactly what the page holds
    assert "innerHTML" not in JS and "eval(" not in JS


def test_200_cases_without_audio_stay_under_3_mb() -> None:
    cases = []
    for i in range(200):
        c = make_case(noise(100 + i, 200, seed=i), input_id=f"in{i}", speed=i % 4)
        c.id, c.input_text = f"eng/w/in{i}/speed={i % 4}/cpu", "a sentence of some length " * 4
        cases.append(c)
    text = render_html(make_doc("big", *cases), run_dir=None)
    assert len(text.encode("utf-8")) < 3 * 1024 * 1024
    page = Page(text)
    body_rows = [a for t, a in page.tags if t == "tr"]
    assert len(body_rows) > 200  # every case in the results table


def test_compare_page_puts_regressions_first_with_both_players(tmp_path: Path) -> None:
    from voxbench.analysis.compare import compare
    from voxbench.report.html_results import RunAudio, render_compare_html

    base_dir, cand_dir = tmp_path / "base", tmp_path / "cand"
    slow = make_case(noise(100, 30), input_id="a")
    same = make_case(noise(100, 30, seed=1), input_id="b")
    base = make_doc("base", slow, same)
    fast = make_case(noise(150, 30, seed=2), input_id="a")  # 50% slower: regressed
    same2 = make_case(noise(100, 30, seed=3), input_id="b")
    cand = make_doc("cand", fast, same2)
    for doc, folder in ((base, base_dir), (cand, cand_dir)):
        for c in doc.cases:
            c.audio_file, c.input_text = f"audio/{c.input_id}.wav", f"text {c.input_id}"
            _wav(folder / c.audio_file)
    cmp = compare(base, cand, metrics=("latency_ms",))
    text = render_compare_html(
        cmp, base=RunAudio(base, base_dir), candidate=RunAudio(cand, cand_dir), page_dir=tmp_path
    )
    page = Page(text)
    _assert_self_contained(page)
    rows = page.tables["comparison"]
    assert rows[0][0] == "case" and [r[-1] for r in rows[1:]] == ["regressed", "unchanged"]
    assert rows[1][0].endswith("/a/cpu") and rows[1][4].startswith("+5")  # +50% (±noise)
    sources = [a["src"] for a in page.all("audio")]
    assert sources[:2] == ["base/audio/a.wav", "cand/audio/a.wav"]
    assert all((tmp_path / s).is_file() for s in sources)


def test_history_and_aggregate_pages() -> None:
    from voxbench.analysis.aggregate import aggregate
    from voxbench.analysis.history import CaseHistory, History
    from voxbench.report.html import render_aggregate_html, render_history_html

    points = [
        {"run_id": f"r{i}", "created_at": f"2026-01-0{i + 1}T00:00:00", "git_commit": f"c{i}",
         "machine_id": "box", "mode": "worker", "value": v, "ci_low": None, "ci_high": None, "n": 3}
        for i, v in enumerate([100.0, 101.0, 150.0, 151.0])
    ]  # fmt: skip
    change = {"index": 2, "run_id": "r2", "git_commit": "c2", "created_at": "", "before": 100.5,
              "after": 150.5, "change": 0.4975}  # fmt: skip
    hist = History(
        IMG, "latency_ms", "ms", 0.05, [CaseHistory("eng/w/a/cpu", IMG, "w", points, [change])]
    )
    text = render_history_html(hist)
    page = Page(text)
    _assert_self_contained(page)
    assert "+49.8%" in text and IMG not in text and page.all("svg")
    one = make_doc("m1", make_case(noise(100, 30)), machine_id="m1")
    two = make_doc("m2", make_case(noise(50, 30)), machine_id="m2")
    agg, _ = aggregate([(Path("m1"), one), (Path("m2"), two)], "m1")
    page = Page(render_aggregate_html(agg))
    _assert_self_contained(page)
    assert "m2 speedup" in page.text and any(t.startswith("2.0") for t in page.text)
