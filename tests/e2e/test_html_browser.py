"""The HTML reports of real runs, opened from file:// in a real headless Chromium (Debian's,
driven by Playwright: tests/support/browser.py).

Every page must open with no console error, no uncaught script error and no request off the disk;
its plots must be drawn (an ``<svg>`` with a real size in every plot), every ``<audio>`` must load
its file (the duration the browser reads is the WAV's own) and play it, a header click must sort
its table and the filter box narrow it. The runs are made by the CLI as a user makes them: espeak
and piper on the short workload, a load test against ``voxbench serve -e espeak``, a compare, a
history and a site over the store they were recorded in, and a workload of hostile input texts
whose page must show the markup as text and run none of it. Screenshots: tests/artifacts/.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import httpx
import pytest
import soundfile as sf

from conftest import CAL
from support.cli import voxbench

if TYPE_CHECKING:  # imported by pytest as the plugin below: importing it first skips its rewrite
    from support.browser import OpenPage, PageLog

pytestmark = pytest.mark.slow

PLOT = "figure.plot"
HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>"]
MB = 1024 * 1024


# -- the runs -------------------------------------------------------------------------------------


def made(out: Path) -> Path:
    """The one run folder under the results root ``out`` (machine id ``m``)."""
    [folder] = [p.parent for p in out.glob("m/*/results.json")]
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store the module's runs are recorded in (history and site read it)."""
    return tmp_path_factory.mktemp("html-store") / "store.sqlite"


def cli_run(out: Path, store: Path, *args: str) -> Path:
    """``voxbench run ... --html`` into its own results root; returns the run folder."""
    proc = voxbench(
        "run", *args, "-o", str(out), "--machine-id", "m", "--store", str(store), "--html"
    )
    assert proc.returncode == 0, proc.stderr
    folder = made(out)
    assert (folder / "report.html").is_file(), proc.stderr
    return folder


@pytest.fixture(scope="module")
def engines_run(tmp_path_factory: pytest.TempPathFactory, store: Path) -> Path:
    """espeak and piper on the short workload, 3 measured calls each (about 15 s)."""
    out = tmp_path_factory.mktemp("html-run")
    return cli_run(out, store, "-e", "espeak,piper", "-w", "short", "-n", "3", "--warmup", "1")


@pytest.fixture(scope="module")
def espeak_runs(tmp_path_factory: pytest.TempPathFactory, store: Path) -> list[Path]:
    """Two more espeak runs in the same store: a compare's pair and a history's points."""
    args = ("-e", "espeak", "-w", "short", "-n", "10", "--warmup", "1")
    return [cli_run(tmp_path_factory.mktemp(f"html-espeak{i}"), store, *args) for i in range(2)]


def document(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())


# -- what a page must do --------------------------------------------------------------------------


def assert_clean(log: PageLog) -> None:
    assert list(log) == [], "\n".join(log)
    assert log.dialogs == []


def assert_plots_drawn(page: Any, at_least: int) -> int:
    """Every plot holds an ``<svg>`` the browser laid out at a real size; returns how many."""
    sizes = page.eval_on_selector_all(
        PLOT,
        """figs => figs.map(f => { const s = f.querySelector('svg');
            if (!s) return null; const r = s.getBoundingClientRect(); return [r.width, r.height]; })""",
    )
    assert len(sizes) >= at_least, f"{len(sizes)} plots, expected at least {at_least}"
    assert all(s is not None and s[0] > 50 and s[1] > 50 for s in sizes), sizes
    # text stays text in the SVG (svg.fonttype none): a mathtext label would show its TeX source
    raw = page.eval_on_selector_all(
        f"{PLOT} svg text", r"ts => ts.map(t => t.textContent).filter(t => /\$.*\\/.test(t))"
    )
    assert raw == [], f"plot labels shown as TeX source: {sorted(set(raw))[:5]}"
    return len(sizes)


# Each <audio>: wait for its metadata (or its error), then play it muted until time moves.
PLAY_ALL = """async (els) => {
  const out = [];
  for (const a of els) {
    const meta = await new Promise((done) => {
      if (a.readyState >= 1) return done(true);
      const t = setTimeout(() => done(false), 10000);
      a.addEventListener('loadedmetadata', () => { clearTimeout(t); done(true); }, {once: true});
      a.addEventListener('error', () => { clearTimeout(t); done(false); }, {once: true});
      if (a.preload === 'none') a.load();
    });
    let played = 0, error = a.error ? a.error.code : null;
    if (meta) {
      a.muted = true;
      try {
        await a.play();
        const t0 = performance.now();
        while (a.currentTime === 0 && performance.now() - t0 < 10000) {
          await new Promise((r) => setTimeout(r, 20));
        }
        played = a.currentTime;
      } catch (e) { error = String(e); }
      a.pause();
    }
    out.push({src: a.currentSrc, readyState: a.readyState, duration: a.duration,
              played: played, error: error});
  }
  return out;
}"""


def assert_audio_plays(page: Any, at_least: int) -> list[dict[str, Any]]:
    """Every ``<audio>`` loads and plays; a linked file's duration is the WAV's own (the page
    links the file the run saved, not some other). Returns what each element reported."""
    players = page.eval_on_selector_all("audio", PLAY_ALL)
    assert len(players) >= at_least, f"{len(players)} players, expected at least {at_least}"
    for p in players:
        assert p["readyState"] >= 1 and p["error"] is None, p
        assert p["played"] > 0, p
        if p["src"].startswith("file:"):
            wav = Path(unquote(urlparse(p["src"]).path))
            assert p["duration"] == pytest.approx(sf.info(str(wav)).duration, abs=0.01), p
        else:
            assert p["src"].startswith("data:audio/wav;base64,") and p["duration"] > 0.1, p
    return players


def column(page: Any, table: Any, index: int) -> list[str]:
    """The visible cells of one column, top to bottom."""
    return table.locator("tbody tr:not([hidden])").evaluate_all(
        f"rows => rows.map(r => r.cells[{index}].textContent.trim())"
    )


def number(text: str) -> float | None:
    import re

    m = re.search(r"[-+]?[0-9]*[.]?[0-9]+(?:e[-+]?[0-9]+)?", text.replace(",", ""), re.I)
    return float(m.group()) if m else None


def assert_sorts(page: Any, min_rows: int = 2) -> None:
    """The first numeric column, in a table with two different values in it, sorts ascending on
    a click on its header and descending on a second click."""
    for table in page.locator("table:has(th[data-sort=num])").all():
        headers = table.locator("thead th")
        for i in range(headers.count()):
            th = headers.nth(i)
            if th.get_attribute("data-sort") != "num":
                continue
            before = [number(c) for c in column(page, table, i)]
            values = [v for v in before if v is not None]
            if len(before) < min_rows or len(set(values)) < 2:
                continue
            th.click()
            up = [v for v in (number(c) for c in column(page, table, i)) if v is not None]
            assert up == sorted(values), (th.inner_text(), up)
            assert th.get_attribute("aria-sort") == "ascending"
            th.click()
            down = [v for v in (number(c) for c in column(page, table, i)) if v is not None]
            assert down == sorted(values, reverse=True), (th.inner_text(), down)
            return
    pytest.fail("no table with a numeric column of two different values to sort")


# -- a run ----------------------------------------------------------------------------------------


def test_run_report_plots_plays_and_sorts(engines_run: Path, open_page: OpenPage) -> None:
    doc = document(engines_run)
    cases = doc["cases"]
    assert {c["engine"] for c in cases} == {"espeak", "piper"}
    page, log = open_page(engines_run / "report.html")
    assert_clean(log)
    assert_plots_drawn(page, at_least=3)
    with_audio = [c for c in cases if c.get("audio_file")]
    assert len(with_audio) == len(cases)
    players = assert_audio_plays(page, at_least=len(with_audio))
    # every saved file has a player on the page
    linked = {Path(unquote(urlparse(p["src"]).path)).resolve() for p in players}
    assert {(engines_run / c["audio_file"]).resolve() for c in with_audio} <= linked
    assert_sorts(page)
    assert_clean(log)  # nothing went wrong while playing and sorting either
    from support.browser import screenshot

    screenshot(page, "run-report-after-play-and-sort")


def test_run_report_filter_box_narrows_a_table(engines_run: Path, open_page: OpenPage) -> None:
    page, log = open_page(engines_run / "report.html")
    box = page.locator("input.filter").first
    table = page.locator(f"table#{box.get_attribute('data-filter')}")
    rows = table.locator("tbody tr")
    total = rows.count()
    assert total > 3
    box.fill("piper")
    shown = table.locator("tbody tr:not([hidden])")
    assert 0 < shown.count() < total
    assert all("piper" in t.lower() for t in shown.all_inner_texts())
    box.fill("")
    assert table.locator("tbody tr:not([hidden])").count() == total
    assert_clean(log)


def test_run_report_on_a_phone_and_in_the_dark(engines_run: Path, open_page: OpenPage) -> None:
    """390 px wide: nothing makes the page itself scroll sideways (wide tables scroll inside
    their own box); dark colour scheme: the page follows it."""
    phone, log = open_page(
        engines_run / "report.html", name="phone", viewport={"width": 390, "height": 844}
    )
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
    assert_clean(log)
    background = "getComputedStyle(document.body).backgroundColor"
    light, _ = open_page(engines_run / "report.html", name="light", color_scheme="light")
    dark, log = open_page(engines_run / "report.html", name="dark", color_scheme="dark")
    assert light.evaluate(background) != dark.evaluate(background)
    assert_clean(log)


def test_report_command_embeds_the_audio(
    engines_run: Path, open_page: OpenPage, tmp_path: Path
) -> None:
    """``voxbench report RUN --html --embed-audio``: the page alone, moved away from the run
    folder, still plays every case."""
    proc = voxbench("report", str(engines_run), "--html", "--embed-audio")
    assert proc.returncode == 0, proc.stderr
    alone = tmp_path / "alone.html"
    alone.write_bytes((engines_run / "report.html").read_bytes())
    page, log = open_page(alone)
    assert_clean(log)
    players = assert_audio_plays(page, at_least=len(document(engines_run)["cases"]))
    assert all(p["src"].startswith("data:") for p in players)


def test_page_without_audio_is_small(engines_run: Path) -> None:
    size = (engines_run / "report.html").stat().st_size
    assert 10_000 < size < 3 * MB, size


# -- a load run against voxbench serve ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def load_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``voxbench load --html`` at 5 and 10 req/s against ``voxbench serve -e espeak`` on
    127.0.0.1 (about 10 s)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "voxbench", "serve", "-e", "espeak", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("voxbench serve did not come up")
                time.sleep(0.05)
        out = tmp_path_factory.mktemp("html-load")
        proc = voxbench(
            "load", "-t", f"http://127.0.0.1:{port}/v1/audio/speech", "--rate", "5,10",
            "--duration", "3s", "--warmup", "0.5s", "--min-duration", "2s", "--arrivals",
            "constant", "-o", str(out), "--machine-id", "m", "--no-store", "--html",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)
    return made(out)


def test_load_report_in_the_browser(load_run: Path, open_page: OpenPage) -> None:
    levels = document(load_run)["load"]["levels"]
    assert len(levels) == 2
    page, log = open_page(load_run / "report.html")
    assert_clean(log)
    assert_plots_drawn(page, at_least=1)
    text = page.inner_text("body")
    assert all(lv["label"] in text for lv in levels), [lv["label"] for lv in levels]
    assert_sorts(page)
    assert_clean(log)


# -- compare, history and the site over the store --------------------------------------------------


def test_compare_page(espeak_runs: list[Path], open_page: OpenPage, tmp_path: Path) -> None:
    """Two espeak runs: the page beside neither run still plays both runs' audio."""
    base, candidate = espeak_runs
    out = tmp_path / "compare.html"
    proc = voxbench("compare", str(base), str(candidate), "--html", str(out), "--no-run-noise")
    assert proc.returncode in (0, 1), proc.stderr  # noise may flag a case: the page is the test
    page, log = open_page(out)
    assert_clean(log)
    assert_plots_drawn(page, at_least=1)
    text = page.inner_text("body")
    for folder in espeak_runs:
        assert document(folder)["run_id"] in text
    assert_clean(log)


def test_compare_page_with_a_known_regression(open_page: OpenPage, tmp_path: Path) -> None:
    """The calibration sleep engine (known timing: 20 ms per call, then 40 ms): the regressed
    case is on the page with the base and candidate players side by side, both playing."""
    line = tmp_path / "one.txt"
    line.write_text("The quick brown fox jumps over the lazy dog.\n")
    runs = []
    for ms in (20, 40):
        out = tmp_path / f"sleep{ms}"
        proc = voxbench(
            "run", "-e", f"{CAL}:SleepEngine", "-a", f"call_ms={ms}", "-w", str(line), "-n", "10",
            "--warmup", "1", "--in-process", "-o", str(out), "--machine-id", "m", "--no-store",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        runs.append(made(out))
    page_file = tmp_path / "cmp.html"
    proc = voxbench(
        "compare", str(runs[0]), str(runs[1]), "--ignore-param", "call_ms", "--html",
        str(page_file),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    page, log = open_page(page_file)
    assert_clean(log)
    assert_plots_drawn(page, at_least=1)
    assert "regressed" in page.inner_text("body")
    players = assert_audio_plays(page, at_least=2)
    saved = {(r / c["audio_file"]).resolve() for r in runs for c in document(r)["cases"]}
    assert len(saved) == 2
    assert saved <= {Path(unquote(urlparse(p["src"]).path)).resolve() for p in players}


def test_history_page(
    engines_run: Path, espeak_runs: list[Path], store: Path, open_page: OpenPage, tmp_path: Path
) -> None:
    out = tmp_path / "history.html"
    proc = voxbench("history", "-e", "espeak", "-w", "short", "--store", str(store), "--html",
                    str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page, log = open_page(out)
    assert_clean(log)
    assert_plots_drawn(page, at_least=1)
    text = page.inner_text("body")
    for folder in [engines_run, *espeak_runs]:
        assert document(folder)["run_id"] in text


def local_links(page: Any) -> list[str]:
    """The pages on disk a page links to (anchors within a page dropped), in order."""
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    found = [h.split("#")[0] for h in hrefs if h.startswith("file:")]
    return sorted({h for h in found if h.endswith(".html")})


def test_site_over_the_store(
    engines_run: Path, espeak_runs: list[Path], store: Path, open_page: OpenPage, tmp_path: Path
) -> None:
    """``voxbench site``: the index names both engines; each engine page it links to draws its
    trends and plays its latest run's audio, and the run report that page links to works too."""
    site = tmp_path / "site"
    proc = voxbench("site", "--store", str(store), "-o", str(site))
    assert proc.returncode == 0, proc.stderr
    page, log = open_page(site / "index.html")
    assert_clean(log)
    text = page.inner_text("body")
    assert "espeak" in text and "piper" in text
    engine_pages = [h for h in local_links(page) if "/engine-" in h]
    assert [Path(urlparse(h).path).name for h in engine_pages] == [
        "engine-espeak.html",
        "engine-piper.html",
    ]
    reports: set[str] = set()
    for href in engine_pages:
        sub, sublog = open_page(Path(unquote(urlparse(href).path)))
        assert_clean(sublog)
        assert_plots_drawn(sub, at_least=1)
        assert_audio_plays(sub, at_least=1)
        reports |= {h for h in local_links(sub) if h.endswith("/report.html")}
    # each engine page links the newest run of that engine (folders named by the lower-cased id)
    docs = [document(f) for f in [engines_run, *espeak_runs]]
    newest = {
        max((d for d in docs if any(c["engine"] == e for c in d["cases"])),
            key=lambda d: d["created_at"])["run_id"].lower()
        for e in ("espeak", "piper")
    }  # fmt: skip
    assert {Path(urlparse(h).path).parent.name for h in reports} == newest, reports
    for href in sorted(reports):
        sub, sublog = open_page(Path(unquote(urlparse(href).path)), name="site-run")
        assert_clean(sublog)
        assert_plots_drawn(sub, at_least=1)
        assert_audio_plays(sub, at_least=1)


# -- hostile input texts --------------------------------------------------------------------------


def test_hostile_input_texts_show_as_text_and_run_nothing(
    tmp_path: Path, open_page: OpenPage
) -> None:
    workload = tmp_path / "hostile.txt"
    workload.write_text("\n".join(HOSTILE) + "\n")
    proc = voxbench(
        "run", "-e", "espeak", "-w", str(workload), "-n", "1", "--warmup", "0", "-o",
        str(tmp_path / "out"), "--machine-id", "m", "--no-store", "--html",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = made(tmp_path / "out")
    page, log = open_page(folder / "report.html")
    assert_clean(log)  # no alert, and no script the page's policy had to refuse
    text = page.inner_text("body")
    for line in HOSTILE:
        assert line in text
    assert page.locator('img[src="x"]').count() == 0
    scripts = page.eval_on_selector_all(
        "script:not([type='application/json'])", "ss => ss.map(s => s.textContent)"
    )
    assert len(scripts) == 1 and "alert(" not in scripts[0]
    assert_audio_plays(page, at_least=1)


def test_hostile_engine_argument_and_error_message_show_as_text(
    tmp_path: Path, open_page: OpenPage
) -> None:
    """An engine argument with markup, and the engine's error that repeats it: both appear as
    text (case id, parameter column, error table) and nothing runs."""
    hostile = "<img src=x onerror=alert(3)>"
    workload = tmp_path / "one.txt"
    workload.write_text("hello there\n")
    proc = voxbench(
        "run", "-e", "espeak", "-a", f"voice={hostile}", "-w", str(workload), "-n", "1",
        "--warmup", "0", "-o", str(tmp_path / "out"), "--machine-id", "m", "--no-store", "--html",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # every call failed: measured, and it fails
    page, log = open_page(made(tmp_path / "out") / "report.html")
    assert_clean(log)
    text = page.inner_text("body")
    assert f"voice={hostile}" in text
    assert f"espeak-ng has no voice '{hostile}'" in text
    assert page.locator('img[src="x"]').count() == 0
