"""``voxbench load`` against a transcription endpoint: real pocketsphinx behind ``voxbench serve``
on 127.0.0.1, a short open-loop level of real uploads; its WER must be the one ``voxbench run``
reports for the same items (the engine is deterministic), and its input audio per second the
rate times the mean input length. A scripted raw server (known answers) shows what is sent and
how a non-transcript answer is counted."""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cli import voxbench
from voxbench.errors import ConfigError
from voxbench.load.run import LoadRequest, run_load
from voxbench.load.schedule import Level
from voxbench.results.accuracy import corpus_rates
from voxbench.workloads import resolve_workload

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_default_keys")]
pytest.importorskip("pocketsphinx")
pytest.importorskip("piper")
pytest.importorskip("starlette")

RATE = 1.5  # about half of what one pocketsphinx slot transcribes: no queue builds
REQUESTS = 12  # an even count: each of the two items is measured six times
WARMUP_S = 2.0


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("voxbench-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXBENCH_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def server(cache: Path) -> Iterator[str]:
    """``voxbench serve --engine pocketsphinx`` in its own process: pocketsphinx decodes holding
    the GIL, so a server thread in this process would stall the load generator's event loop."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voxbench",
            "serve",
            "--engine",
            "pocketsphinx",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("voxbench serve --engine pocketsphinx did not come up")
                time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        url = f"{base}/v1/audio/transcriptions"
        # one call first: the engine's first decode is slower, and its backlog would spill
        # warm-up completions into the first level's window
        path = resolve_workload("spoken-short").items[0].path
        assert path is not None
        warm = httpx.post(url, files={"file": (path.name, path.read_bytes())}, timeout=60)
        assert warm.status_code == 200 and warm.json() == {"text": "good morning everyone"}
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _run_wer(workload: str, cache: Path, tmp_path: Path) -> float:
    """The corpus WER ``voxbench run -e pocketsphinx --stream off`` reports for ``workload``:
    whole-utterance calls, as ``serve`` makes them (pocketsphinx's streamed path, fed 100 ms
    blocks, hears espeak-ng's speech differently)."""
    out = tmp_path / "run.json"
    proc = voxbench(
        "run", "-e", "pocketsphinx", "-w", workload, "-n", "1", "--warmup", "0",
        "--stream", "off", "-o", str(tmp_path / "run"), "--json", str(out), "--no-store",
        env={"VOXBENCH_CACHE": str(cache)}, timeout=600,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1: too few samples to be valid
    cases = json.loads(out.read_text())["cases"]
    assert len(cases) == 2 and all(not c["errors"] for c in cases)
    rates = corpus_rates(c["accuracy"] for c in cases)
    assert rates is not None
    return rates["wer"]


# (workload, its WER with pocketsphinx decoding whole utterances: piper's speech is heard
# exactly; espeak-ng's as "oh lord everyone" and "thirty three", 7 errors in 8 words)
KNOWN = [("spoken-short", 0.0), ("spoken-short-espeak", 7 / 8)]


@pytest.mark.parametrize(("workload", "known_wer"), KNOWN)
def test_a_level_against_pocketsphinx(
    workload: str, known_wer: float, server: str, cache: Path, tmp_path: Path
) -> None:
    from voxbench import api

    if workload.endswith("espeak") and shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    request = LoadRequest(
        target=server,
        levels=[Level("rate", RATE)],
        requests=REQUESTS,
        warmup_s=WARMUP_S,
        arrivals="constant",
        workload=workload,
        slo="latency_p99<5s,wer<=90%",
        max_lag_ms=50,  # a shared test machine: the generator's precision is not under test here
        output=tmp_path / "load",
    )
    outcome = api.load_test(request, record=False)
    load = outcome.doc.load
    assert load is not None and load.settings["transcription"] is True
    (level,) = load.levels
    assert level.errors == {} and level.ok == level.requests == REQUESTS
    assert level.warmup_requests == round(WARMUP_S * RATE)
    assert level.latency_ms is not None and level.latency_ms.n == REQUESTS
    assert level.latency_all_ms is not None and level.latency_all_ms.n == REQUESTS
    assert 0 < level.latency_ms.p50 <= level.latency_ms.p99 < 5000  # type: ignore[operator]
    assert level.ttfa_ms is None and level.stalls is None  # a transcript is no audio

    assert level.wer_requests == REQUESTS
    assert level.wer == pytest.approx(known_wer, abs=1e-12)
    assert level.wer == pytest.approx(_run_wer(workload, cache, tmp_path), abs=1e-12)

    seconds = [item.meta["duration_s"] for item in resolve_workload(workload).items]
    assert level.audio_seconds_per_second == pytest.approx(
        RATE * statistics.mean(seconds), rel=0.10
    )
    assert level.achieved_rate == pytest.approx(RATE, rel=0.10)
    assert level.rtf is not None and level.rtf.n == REQUESTS
    assert level.rtf.max <= level.latency_ms.max / 1000 / min(seconds) + 1e-9  # type: ignore[operator]

    assert level.validity is not None and level.validity.valid, level.validity.reasons
    assert level.slo == {"latency_p99<5s": True, "wer<=90%": True} and level.meets_slo
    assert load.capacity["level"] == level.label
    report = (outcome.path / "report.md").read_text(encoding="utf-8")
    assert "| RTFx |" in report and "| WER |" in report and "ttfa p50" not in report
    assert "input audio s/s transcribed" in report


def test_a_text_workload_is_refused_before_any_folder(server: str, tmp_path: Path) -> None:
    request = LoadRequest(
        target=server, levels=[Level("rate", 1)], workload="short", output=tmp_path / "out"
    )
    with pytest.raises(ConfigError, match="needs audio"):
        run_load(request)
    assert not (tmp_path / "out").exists()


class ScriptedServer:
    """A raw HTTP/1.1 server of known answers: reads each request (head and Content-Length
    body), keeps it, and answers ``reply``."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests: list[tuple[bytes, bytes]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/audio/transcriptions"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(buf) < length:
                    buf += conn.recv(65536)
                self.requests.append((head, buf[:length]))
                buf = buf[length:]
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()


def _answer(body: bytes, content_type: str = "application/json") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _level(url: str, cache: Path, tmp_path: Path) -> Any:
    request = LoadRequest(
        target=url, levels=[Level("rate", 20)], requests=4, warmup_s=0, arrivals="constant",
        workload="spoken-short", output=tmp_path / "load", model="tiny",
    )  # fmt: skip
    doc, _ = run_load(request)
    return doc.load.levels[0]


def test_the_upload_on_the_wire_and_answers_that_are_no_transcript(
    cache: Path, tmp_path: Path
) -> None:
    from voxbench.load.serve_stt import parse_form

    known = ScriptedServer(_answer(b'{"text": "Good morning, everyone."}'))
    try:
        level = _level(known.url, cache, tmp_path)
    finally:
        known.close()
    files = {
        i.path.name: i.path.read_bytes() for i in resolve_workload("spoken-short").items if i.path
    }
    assert len(known.requests) == 4 and level.ok == 4
    sent = []
    for head, body in known.requests:
        kind = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-type:")
        )
        fields = parse_form(kind, body)
        assert fields["model"] == (None, b"tiny")
        assert fields["response_format"] == (None, b"json")
        name, data = fields["file"]
        assert name is not None and data == files[name]
        sent.append(name)
    assert sorted(sent) == sorted([*files, *files])  # each item twice, whole
    # every answer says item 1's words: right for the two item-1 requests, for item 2's
    # ("Turn left at the bridge.", 5 words) 3 substitutions and 2 deletions each: 10 / 16
    assert level.wer == pytest.approx(10 / 16)

    html = ScriptedServer(_answer(b"<html>busy</html>", "text/html"))
    try:
        broken = _level(html.url, cache, tmp_path)
    finally:
        html.close()
    assert broken.ok == 0 and broken.errors == {"bad_answer": 4}
    assert broken.error_examples["bad_answer"].startswith("BadAnswer: the answer is not JSON")
    assert broken.wer is None
