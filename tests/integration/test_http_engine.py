"""The HTTP engine against a real speech server on 127.0.0.1 (starlette + uvicorn + espeak)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from support.cli import voxbench
from support.speech_fixtures import item
from support.speech_server import SpeechServer
from voxbench.engines.espeak import EspeakEngine
from voxbench.engines.registry import EngineSpec
from voxbench.results import Case
from voxbench.run.scenario import Settings, run_case

DELAY_MS = 30.0
KEY = "sekret-123"

pytestmark = pytest.mark.usefixtures("no_default_keys")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    # A small gap between chunks makes the rest of the body take measurably longer than its start.
    with SpeechServer(first_chunk_delay_ms=DELAY_MS, chunk_gap_ms=1.0) as endpoint:
        yield endpoint


def espeak_seconds(engine: EspeakEngine, text: str) -> float:
    out = engine.synthesize(text)
    assert out.audio is not None and out.sample_rate
    return len(out.audio) / out.sample_rate


def run(
    url: str,
    params: dict[str, object],
    workload: str = "short",
    mode: str = "in-process",
    n: int = 2,
) -> Case:
    settings = Settings(mode=mode, iterations=n, warmup=1, save_audio=False)
    return run_case(EngineSpec(url, params), "http", workload, item(workload), settings).case


def assert_ok(case: Case) -> None:
    assert case.error_count == 0, case.errors
    assert case.latency_ms is not None and case.audio_seconds


@pytest.mark.parametrize("workload", ["short", "long"])
def test_streaming_through_the_harness(url: str, espeak: EspeakEngine, workload: str) -> None:
    case = run(url, {"voice": "x"}, workload, mode="worker", n=5)
    assert_ok(case)
    assert case.streamed and case.ttfa_ms is not None and case.latency_ms is not None
    assert DELAY_MS <= case.ttfa_ms.median < case.latency_ms.median
    expected = espeak_seconds(espeak, item(workload).payload())  # type: ignore[arg-type]
    assert case.audio_seconds == pytest.approx(expected, rel=0.05)
    assert case.chunks and case.chunks > 1
    assert {"ttfb", "server.synth"} <= set(case.stages)
    assert "server.cache" not in case.stages  # no dur: ignored
    assert case.engine_info["server"] == "uvicorn"
    assert case.engine_info["http_version"] == "HTTP/1.1"


def test_request_body() -> None:
    server = SpeechServer()
    with server as endpoint:
        params = {"model": "m1", "voice": "v1", "speed": 1.5, "extra": {"seed": 7}}
        assert_ok(run(endpoint, params, n=1))
    assert server.requests[-1] == {
        "model": "m1",
        "voice": "v1",
        "input": item("short").text,
        "response_format": "wav",
        "stream": True,
        "speed": 1.5,
        "seed": 7,
    }


def test_whole_body_without_streaming(url: str, espeak: EspeakEngine) -> None:
    case = run(url, {"stream": False}, mode="worker")
    assert_ok(case)
    assert not case.streamed and case.ttfa_ms is None
    expected = espeak_seconds(espeak, item("short").payload())  # type: ignore[arg-type]
    assert case.audio_seconds == pytest.approx(expected, rel=0.05)
    assert {"ttfb", "server.synth", "decode"} <= set(case.stages)
    assert case.engine_info["stream"] is False


def test_pcm_streaming(url: str, espeak: EspeakEngine) -> None:
    case = run(url, {"response_format": "pcm", "pcm_sample_rate": 22050})
    assert_ok(case)
    assert case.streamed and case.ttfa_ms is not None and case.ttfa_ms.median >= DELAY_MS
    expected = espeak_seconds(espeak, item("short").payload())  # type: ignore[arg-type]
    assert case.audio_seconds == pytest.approx(expected, rel=0.05)
    assert case.engine_info["pcm_sample_rate"] == 22050
    assert case.engine_info["pcm_sample_rate_source"] == "option"


@pytest.mark.parametrize("stream", [True, False])
def test_pcm_rate_announced_by_the_server(espeak: EspeakEngine, stream: bool) -> None:
    """espeak speaks at 22,050 Hz: read as the 24 kHz default its audio is 8.8% short."""
    expected = espeak_seconds(espeak, item("short").payload())  # type: ignore[arg-type]
    with SpeechServer(announce_rate=True) as endpoint:
        case = run(endpoint, {"response_format": "pcm", "stream": stream})
    assert_ok(case)
    assert case.audio_seconds == pytest.approx(expected, rel=0.005)
    with SpeechServer() as endpoint:  # no header, no option: the default, and it says so
        case = run(endpoint, {"response_format": "pcm", "stream": stream})
    assert_ok(case)
    assert case.audio_seconds == pytest.approx(expected * 22050 / 24000, rel=0.005)
    assert case.engine_info["pcm_sample_rate"] == 24000
    assert case.engine_info["pcm_sample_rate_source"] == "default"


def test_api_key_is_sent_but_never_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    with SpeechServer(api_key=KEY) as secured:
        monkeypatch.setenv("MY_TTS_KEY", KEY)
        case = run(secured, {"api_key_env": "MY_TTS_KEY"}, mode="worker")
        assert_ok(case)
        assert case.engine_info["api_key_env"] == "MY_TTS_KEY"
        assert KEY not in case.model_dump_json() and KEY not in json.dumps(case.engine_info)

        monkeypatch.setenv("VOXBENCH_API_KEY", KEY)  # the default variable works too
        case = run(secured, {})
        assert_ok(case)
        assert case.engine_info["api_key_env"] == "VOXBENCH_API_KEY"

        monkeypatch.delenv("VOXBENCH_API_KEY")
        case = run(secured, {})
        assert case.errors and case.latency_ms is None
        assert all("HTTP 401" in e.message and "VOXBENCH_API_KEY" in e.message for e in case.errors)


def test_named_key_variable_must_be_set(url: str) -> None:
    case = run(url, {"api_key_env": "MY_TTS_KEY"})
    assert case.errors[0].phase == "load"
    assert "MY_TTS_KEY" in case.errors[0].message and "not set" in case.errors[0].message


def test_server_error_is_recorded_with_status_and_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXBENCH_API_KEY", KEY)
    with SpeechServer(fail_status=500) as failing:
        case = run(failing, {})
    assert case.errors and case.latency_ms is None
    for error in case.errors:
        assert error.type == "EngineFailed"
        assert "HTTP 500" in error.message and "injected failure" in error.message
    # The server echoed the Authorization header into its error body; the key is masked.
    assert KEY not in case.model_dump_json() and "Bearer ***" in case.errors[0].message


def test_unreachable_server_fails_at_load() -> None:
    with SpeechServer() as gone:
        pass  # the port is free again, and nothing listens on it
    case = run(gone, {})
    assert (
        case.errors[0].phase == "load" and "request to http://127.0.0.1" in case.errors[0].message
    )


def test_bad_audio_is_reported(url: str) -> None:
    # A server that answers pcm where WAV was asked for: the first bytes are samples, not "RIFF".
    case = run(url, {"extra": {"response_format": "pcm"}})
    assert case.errors and all("bad audio: not a WAV stream" in e.message for e in case.errors)


def test_userinfo_is_not_recorded(url: str) -> None:
    with_userinfo = url.replace("http://", "http://user:pw@")
    case = run(with_userinfo, {}, n=1)
    assert_ok(case)
    assert case.engine_info["url"] == url


@pytest.mark.slow
def test_cli_run_against_the_server(url: str, tmp_path) -> None:
    proc = voxbench(
        "run", "--engine", url, "-w", "short", "-n", "3", "--warmup", "1",
        "-o", str(tmp_path), "--json", "-",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cases = json.loads(proc.stdout)["cases"]
    assert len(cases) == 2  # the two inputs of "short"
    for case in cases:
        assert case["error_count"] == 0, case["errors"]
        assert case["streamed"] and case["ttfa_ms"]["median"] >= DELAY_MS
        assert case["audio_seconds"] > 0.5 and "server.synth" in case["stages"]


def test_audio_is_float32_mono(url: str) -> None:
    from voxbench.engines.http import OpenAISpeechEngine

    engine = OpenAISpeechEngine(url)
    engine.load()
    try:
        chunks = list(engine.stream("Hello."))
        whole = engine.synthesize("Hello.")
    finally:
        engine.close()
    assert all(c.audio.dtype == np.float32 and c.audio.ndim == 1 for c in chunks)
    assert whole.audio is not None and whole.audio.dtype == np.float32
