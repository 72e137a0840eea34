"""A real headless Chromium for the HTML report tests: Debian's browser driven by Playwright.

``playwright install`` downloads its own browser build, which an offline machine cannot; the
Debian packages ``chromium chromium-headless-shell`` (scripts/setup-system.sh, test set) give one
that Playwright drives through ``executable_path``. The headless shell is preferred: it starts
faster and needs no display. Without either binary the tests are skipped with the fix; ``make
setup`` installs them, so CI never skips.

``open_page(path)`` opens a file in a fresh browser context (its own cache and storage, so one page
cannot warm another's), records what a reader would call broken — console errors, uncaught page
errors, JavaScript dialogs (``alert`` from an injected script) and any request off the local disk
(the reports must work offline) — and keeps a screenshot under tests/artifacts/ for a person to
look at when a test fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

BROWSERS = (Path("/usr/lib/chromium/chromium-headless-shell"), Path("/usr/bin/chromium"))
# the browser runs as root in containers (no user namespaces for its sandbox) and has no GPU
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NO_BROWSER = (
    "no Chromium: apt-get install chromium chromium-headless-shell "
    "(scripts/setup-system.sh test, which make setup runs, does it)"
)
# what a report may load: itself, the audio beside it, data: and blob: URLs of its own making
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def browser_executable() -> Path | None:
    """The first of Debian's Chromium binaries that is installed, headless shell first."""
    return next((p for p in BROWSERS if p.is_file()), None)


class PageLog(list[str]):
    """What went wrong on a page, one line each (console errors, page errors, off-disk requests),
    plus the JavaScript dialogs that opened: an ``alert`` means a script ran that should not."""

    def __init__(self) -> None:
        super().__init__()
        self.dialogs: list[str] = []


OpenPage = Callable[..., "tuple[Page, PageLog]"]


def launch_browser(playwright: Any) -> Browser:
    """Debian's Chromium under Playwright; fails with the fix when neither binary exists."""
    exe = browser_executable()
    if exe is None:
        raise RuntimeError(NO_BROWSER)
    return playwright.chromium.launch(executable_path=str(exe), args=BROWSER_ARGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per test module (starting it takes about a second); pages get their own
    contexts. Not per session: Playwright's sync API keeps an asyncio loop running in the main
    thread while it is open, and every later ``asyncio.run`` (the load generator) would fail."""
    if browser_executable() is None:
        pytest.skip(NO_BROWSER)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        b = launch_browser(playwright)
        try:
            yield b
        finally:
            b.close()


def watch(page: Page) -> PageLog:
    """Record a page's problems from now on; dialogs are recorded, then dismissed (an open
    ``alert`` blocks the page)."""
    log = PageLog()

    def on_console(msg: Any) -> None:
        if msg.type == "error":
            log.append(f"console: {msg.text}")

    def on_dialog(dialog: Any) -> None:
        log.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_request(request: Any) -> None:
        if not request.url.startswith(LOCAL_SCHEMES):
            log.append(f"network: {request.method} {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: log.append(f"pageerror: {exc}"))
    page.on("dialog", on_dialog)
    page.on("request", on_request)
    return log


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as tests/artifacts/NAME.png (git-ignored) and return the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-')}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def open_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[OpenPage]:
    """``open_page(path, *, name=None, **context_options) -> (page, log)``: the file loaded from
    file://, its problems recorded from before the first byte, a screenshot kept as
    tests/artifacts/<test>-<name>.png. ``context_options`` go to ``browser.new_context``
    (``viewport``, ``color_scheme``). Every context is closed when the test ends."""
    contexts: list[Any] = []

    def _open(
        path: Path, *, name: str | None = None, **context_options: Any
    ) -> tuple[Page, PageLog]:
        context = browser.new_context(**context_options)
        contexts.append(context)
        # nothing leaves the machine: a request off the disk is recorded (watch) and refused
        context.route(re.compile(r"^(https?|wss?|ftp)://"), lambda route: route.abort())
        page = context.new_page()
        log = watch(page)
        page.goto(path.resolve().as_uri(), wait_until="load")
        page.evaluate("document.fonts.ready.then(() => true)")
        screenshot(page, f"{request.node.name}-{name or path.stem}")
        return page, log

    yield _open
    for context in contexts:
        context.close()
