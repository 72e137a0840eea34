"""HTML reports through the CLI, on real espeak runs: ``run --html`` writes report.html beside
report.md with players for the audio the run saved, ``report --html`` re-renders it,
``compare --html``, ``history --html`` and ``aggregate --html`` write their pages, and
``voxbench site`` builds a site over a SQLite store of two runs (audio copied beside it)."""

from __future__ import annotations

import json
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest

from support.cli import assert_one_line_error, voxbench
from voxbench.report.html_parts import slug

pytestmark = pytest.mark.slow
pytest.importorskip("matplotlib")


class Tags(HTMLParser):
    """The start tags of a page with their attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def sources(self, tag: str = "audio") -> list[str]:
        return [a["src"] for t, a in self.tags if t == tag and "src" in a]

    def links(self) -> list[str]:
        return [a["href"] for t, a in self.tags if t == "a" and "href" in a]


class Runs(NamedTuple):
    tmp: Path
    env: dict[str, str]
    first: Path
    second: Path
    proc: subprocess.CompletedProcess[str]  # the first run's


def _run_dir(stderr: str) -> Path:
    line = next(ln for ln in stderr.splitlines() if ln.startswith("results: "))
    return Path(line.removeprefix("results: ").strip()).parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Two real espeak runs recorded in one SQLite store, the first with --html."""
    tmp = tmp_path_factory.mktemp("html-cli")
    env = {"VOXBENCH_STORE": str(tmp / "store.sqlite"), "COLUMNS": "200"}
    common = ["run", "-e", "espeak", "-w", "short", "-n", "2", "--warmup", "0",
              "-o", str(tmp / "results")]  # fmt: skip
    first = voxbench(*common, "--html", env=env)
    assert first.returncode == 0, first.stderr
    second = voxbench(*common, env=env)
    assert second.returncode == 0, second.stderr
    return Runs(tmp, env, _run_dir(first.stderr), _run_dir(second.stderr), first)


def test_run_html_writes_report_html_beside_report_md(runs: Runs) -> None:
    first, second, proc = runs.first, runs.second, runs.proc
    page = first / "report.html"
    assert page.is_file() and (first / "report.md").is_file()
    assert f"html:    {page}" in proc.stderr.replace("\n", "")  # rich may wrap a long path
    assert not (second / "report.html").exists()  # only with --html
    doc = json.loads((first / "results.json").read_text())
    saved = sorted(c["audio_file"] for c in doc["cases"] if c["audio_file"])
    tags = Tags(page.read_text(encoding="utf-8"))
    sources = tags.sources()
    assert saved and sorted(set(sources)) == saved
    assert all((first / s).is_file() for s in sources)
    assert not [s for s in tags.sources("script") + tags.links() if s.startswith("http")]


def test_report_html_rerenders_and_embeds(runs: Runs) -> None:
    env, second = runs.env, runs.second
    proc = voxbench("report", str(second), "--html", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# voxbench run ")  # report.md still on stdout
    assert f"html: {second / 'report.html'}" in proc.stderr
    linked = (second / "report.html").stat().st_size
    proc = voxbench("report", str(second), "--embed-audio", env=env)
    assert proc.returncode == 0, proc.stderr
    tags = Tags((second / "report.html").read_text(encoding="utf-8"))
    assert tags.sources() and all(s.startswith("data:audio/wav;base64,") for s in tags.sources())
    assert (second / "report.html").stat().st_size > linked


def test_compare_history_aggregate_pages(runs: Runs, tmp_path: Path) -> None:
    tmp, env, first, second = runs.tmp, runs.env, runs.first, runs.second
    out = tmp_path / "compare.html"
    proc = voxbench("compare", str(first), str(second), "--html", str(out), env=env)
    assert proc.returncode in (0, 1, 3), proc.stderr  # the gate's verdict on two quick runs
    text = out.read_text(encoding="utf-8")
    assert first.name in text and second.name in text and "Cases" in text
    sources = Tags(text).sources()
    assert sources and all((tmp_path / s).resolve().is_file() for s in sources)
    page = tmp_path / "history.html"
    proc = voxbench("history", "-e", "espeak", "--html", str(page), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "<svg" in page.read_text(encoding="utf-8")
    page = tmp_path / "aggregate.html"
    proc = voxbench("aggregate", str(tmp / "results"), "--html", str(page), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "voxbench aggregate" in page.read_text(encoding="utf-8")


def test_html_file_in_a_missing_folder_is_one_line(runs: Runs, tmp_path: Path) -> None:
    first, second = runs.first, runs.second
    proc = voxbench("compare", str(first), str(second), "--html", str(tmp_path / "no" / "x.html"))
    assert_one_line_error(proc, "--html", "does not exist")


def test_site_over_a_store_of_two_runs(runs: Runs, tmp_path: Path) -> None:
    env, first, second = runs.env, runs.first, runs.second
    site = tmp_path / "site"
    proc = voxbench("site", "--store", env["VOXBENCH_STORE"], "-o", str(site))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(site / "index.html")
    index = (site / "index.html").read_text(encoding="utf-8")
    assert first.name in index and second.name in index  # both runs listed
    assert "engine-espeak.html" in Tags(index).links()
    engine = (site / "engine-espeak.html").read_text(encoding="utf-8")
    assert "<svg" in engine  # the trend over the two runs
    tags = Tags(engine)
    assert tags.sources() and all((site / s).is_file() for s in tags.sources())
    latest = [link for link in tags.links() if link.startswith("runs/")]
    assert latest and (site / latest[0]).is_file()
    assert latest == [f"runs/{slug(second.name)}/report.html"]  # the newest run of espeak
