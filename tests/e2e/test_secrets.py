"""An API key in the environment reaches the server and nowhere else: not results.json,
report.md, report.html, the store, stdout or stderr, even when a careless server echoes the
Authorization header back in its error body. Real servers on 127.0.0.1 (tests/support/speech_server:
espeak behind an OpenAI-shaped endpoint, one requiring the key, one failing with the key echoed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from support.cli import voxbench
from support.speech_server import SpeechServer

KEY = "sk-test-Zq8v1d7Secr3tKeyNeverWritten"
pytestmark = [pytest.mark.usefixtures("no_default_keys"), pytest.mark.slow]


def test_api_key_appears_in_no_output(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    out = tmp_path / "results"
    with SpeechServer(api_key=KEY) as secured, SpeechServer(fail_status=500) as echoing:
        proc = voxbench(
            "run", "-e", secured, "-e", echoing, "-w", "short", "--iterations", "1",
            "--warmup", "0", "--html", "-o", str(out),
            env={"OPENAI_API_KEY": KEY, "VOXBENCH_STORE": str(store)},
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # the echoing server's cases failed, as it should
    [run] = [p.parent for p in out.rglob("results.json")]
    results = (run / "results.json").read_text()
    assert '"error_count": 0' in results  # the secured server answered: the key was sent
    assert "injected failure" in results  # and the echo was recorded, masked
    texts = {
        "results.json": results,
        "report.md": (run / "report.md").read_text(),
        "report.html": (run / "report.html").read_text(),
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "store": "\n".join(sqlite3.connect(store).iterdump()),
    }
    assert all(texts[k] for k in ("results.json", "report.md", "report.html", "store"))
    leaked = [name for name, text in texts.items() if KEY in text or KEY[8:24] in text]
    assert leaked == []
