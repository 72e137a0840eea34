"""Make the README's pictures of the HTML reports: docs/images/report.png (a demo run's
report.html) and docs/images/site.png (``voxbench site`` over the store that run went into).

    .venv/bin/python scripts/screenshots.py            # a fresh demo run (about 30 s)
    .venv/bin/python scripts/screenshots.py --run results/<machine>/<run-id> --store S

The demo run is espeak and piper on the short and medium workloads, recorded in a store of its
own (never the user's), so the pictures show real numbers of this machine. The browser is the
one the tests use: Debian's Chromium driven by Playwright (tests/support/browser.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.browser import launch_browser  # noqa: E402

IMAGES = ROOT / "docs" / "images"
VIEWPORT = {"width": 1280, "height": 1400}
"""The top of each page, at a laptop's width: what a reader sees first (a full page of every
table would be a very tall picture)."""


def voxbench(*args: str) -> str:
    """Run the CLI as a user does; its stdout, or exit with its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "voxbench", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"voxbench {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def demo_run(work: Path, store: Path) -> Path:
    """A real run with its report.html; returns the run folder."""
    out = work / "results"
    voxbench(
        "run", "-e", "espeak,piper", "-w", "short,medium", "-n", "10", "--warmup", "1",
        "-o", str(out), "--machine-id", "demo", "--store", str(store), "--html",
    )  # fmt: skip
    [folder] = [p.parent for p in out.glob("demo/*/results.json")]
    return folder


def shoot(url: str, path: Path) -> None:
    """One screenshot of the page at ``url`` (light colour scheme, the viewport's height)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT, color_scheme="light")
            page.goto(url, wait_until="load")
            page.evaluate("document.fonts.ready.then(() => true)")
            page.screenshot(path=str(path))
        finally:
            browser.close()
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} kB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a run folder to show (default: a fresh demo run)")
    parser.add_argument("--store", help="the store the site is built from (default: the demo's)")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voxbench-shots-") as tmp:
        work = Path(tmp)
        store = args.store or str(work / "store.sqlite")
        if args.run is None:
            run = demo_run(work, Path(store))
        else:
            run = args.run
            voxbench("report", str(run), "--html")
        shoot((run / "report.html").resolve().as_uri(), IMAGES / "report.png")
        site = work / "site"
        voxbench("site", "--store", store, "-o", str(site))
        shoot((site / "index.html").resolve().as_uri(), IMAGES / "site.png")


if __name__ == "__main__":
    main()
