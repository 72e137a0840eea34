"""``voxbench serve``: engines behind a real uvicorn on 127.0.0.1, driven by real HTTP clients."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from conftest import CAL
from support.cli import assert_one_line_error, voxbench
from support.speech_fixtures import item
from voxbench.engine import BaseEngine, Chunk, InputKind, Output
from voxbench.engines.espeak import EspeakEngine
from voxbench.engines.http import WavStreamDecoder, parse_server_timing
from voxbench.engines.registry import EngineSpec
from voxbench.errors import ConfigError
from voxbench.load.serve import ServerThread
from voxbench.results import Case
from voxbench.run.scenario import Settings, run_case

SLEEP = f"{CAL}:SleepEngine"
CALL_MS = 200.0

pytestmark = pytest.mark.usefixtures("no_default_keys")


class StreamFailsEngine(BaseEngine):
    """Streams one chunk and then raises, or raises before any chunk (``at=0``)."""

    name: ClassVar[str] = "stream-fails"
    input_kind: ClassVar[InputKind] = "text"

    def __init__(self, at: int = 1) -> None:
        self.at = at

    def synthesize(self, inp: Any) -> Output:
        raise NotImplementedError

    def stream(self, inp: Any) -> Iterator[Chunk]:
        import numpy as np

        for _ in range(self.at):
            yield Chunk(audio=np.zeros(1600, dtype=np.float32), sample_rate=16000)
        raise ValueError("broken vocoder\nsecond line stays on the server")


@pytest.fixture(scope="module")
def espeak_server() -> Iterator[ServerThread]:
    with ServerThread(EngineSpec("espeak")) as server:
        yield server


def bench(url: str, params: dict[str, object], workload: str = "short", n: int = 3) -> Case:
    settings = Settings(mode="in-process", iterations=n, warmup=1, save_audio=False)
    return run_case(EngineSpec(url, params), "http", workload, item(workload), settings).case


def timing(response: httpx.Response) -> dict[str, float]:
    return parse_server_timing(response.headers.get_list("server-timing"))


def decode(response: httpx.Response) -> tuple[int, int]:
    """(sample rate, samples) of a WAV body."""
    decoder = WavStreamDecoder()
    decoder.feed(response.content)
    decoder.finish()
    assert decoder.sample_rate
    return decoder.sample_rate, decoder.samples


# --- espeak behind serve, benchmarked through voxbench's own HTTP engine ------------------------


@pytest.mark.parametrize("workload", ["short", "long"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_espeak_served_matches_in_process(
    espeak_server: ServerThread, espeak: EspeakEngine, stream: bool, workload: str
) -> None:
    case = bench(espeak_server.url, {"stream": stream}, workload)
    assert case.error_count == 0, case.errors
    assert case.streamed is stream
    assert (case.ttfa_ms is not None) is stream
    if stream:
        assert case.latency_ms and case.ttfa_ms and case.ttfa_ms.median <= case.latency_ms.median
        assert case.chunks and case.chunks > 1
    out = espeak.synthesize(item(workload).text)
    assert out.audio is not None and out.sample_rate
    assert case.audio_seconds == pytest.approx(len(out.audio) / out.sample_rate, rel=0.05)
    assert "server.queue" in case.stages
    assert ("server.first_chunk" if stream else "server.synth") in case.stages


def test_whole_answers_wav_and_pcm(espeak_server: ServerThread) -> None:
    text = item("short").text
    wav = httpx.post(espeak_server.url, json={"input": text, "model": "x", "voice": "y"})
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    rate, samples = decode(wav)
    assert float(wav.headers["x-audio-seconds"]) == pytest.approx(samples / rate, abs=1e-5)
    assert {"queue", "synth"} <= set(timing(wav))

    pcm = httpx.post(espeak_server.url, json={"input": text, "response_format": "pcm"})
    assert pcm.status_code == 200 and pcm.headers["content-type"] == "audio/pcm"
    assert int(pcm.headers["x-sample-rate"]) == rate == 22050
    # espeak's length varies by a few samples from call to call: compare with this answer's own.
    assert len(pcm.content) == 2 * round(float(pcm.headers["x-audio-seconds"]) * rate)
    assert len(pcm.content) == pytest.approx(2 * samples, rel=0.01)


def test_health_and_models(espeak_server: ServerThread) -> None:
    health = httpx.get(espeak_server.base_url + "/health")
    assert health.json() == {
        "status": "ok",
        "engine": "espeak",
        "concurrency": 1,
        "in_flight": 0,
        "queued": 0,
    }
    models = httpx.get(espeak_server.base_url + "/v1/models").json()
    assert models["data"] == [{"id": "espeak", "object": "model"}]


@pytest.mark.parametrize(
    "body",
    [
        {"input": ""},
        {"input": "   "},
        {"model": "tts-1"},
        {"input": 3},
        {"input": "hi", "response_format": "mp3"},
        {"input": "hi", "stream": "yes"},
        ["hi"],
    ],
)
def test_bad_requests_are_400(espeak_server: ServerThread, body: object) -> None:
    response = httpx.post(espeak_server.url, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_body_that_is_not_json_is_400(espeak_server: ServerThread) -> None:
    response = httpx.post(espeak_server.url, content=b"{not json")
    assert response.status_code == 400 and "not JSON" in response.json()["error"]["message"]


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_engine_that_raises_is_500_with_its_type(stream: bool) -> None:
    with ServerThread(EngineSpec(f"{CAL}:FailingEngine")) as server:
        response = httpx.post(server.url, json={"input": "hello", "stream": stream})
        assert response.status_code == 500
        error = response.json()["error"]
        assert error == {
            "message": "RuntimeError: calibration failure on call 1",
            "type": "engine_error",
        }
        assert "Traceback" not in response.text
        assert httpx.get(server.base_url + "/health").json()["in_flight"] == 0


def test_stream_failing_before_audio_is_500() -> None:
    with ServerThread(EngineSpec(f"{__name__}:StreamFailsEngine", {"at": 0})) as server:
        response = httpx.post(server.url, json={"input": "hello", "stream": True})
        assert response.status_code == 500
        assert response.json()["error"]["message"] == "ValueError: broken vocoder"
        assert httpx.get(server.base_url + "/health").json()["in_flight"] == 0


def test_stream_failing_midway_cuts_the_connection() -> None:
    with ServerThread(EngineSpec(f"{__name__}:StreamFailsEngine", {"at": 2})) as server:
        body = {"input": "hi", "stream": True}
        # No clean end of the body: the client knows the answer is broken.
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("POST", server.url, json=body) as r,
        ):
            assert r.status_code == 200
            for _ in r.iter_bytes():
                pass
        assert httpx.get(server.base_url + "/health").json()["in_flight"] == 0
        # The benchmark records it as an error, not as a short answer.
        case = bench(server.url, {}, n=1)
        assert case.error_count and case.latency_ms is None


def test_a_speech_endpoint_needs_a_text_engine() -> None:
    midi = EngineSpec("cmd:cp {in} {out}", {"input_kind": "midi"})
    with pytest.raises(ConfigError, match="takes midi"), ServerThread(midi):
        pass


# --- concurrency and queue -----------------------------------------------------------------------


async def _post_all(url: str, n: int, health_at_s: float | None = None) -> tuple[list[Any], Any]:
    """``n`` simultaneous requests; each answer with its wall time, plus /health mid-way."""
    limits = httpx.Limits(max_connections=n + 1)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def one() -> tuple[httpx.Response, float]:
            start = time.perf_counter()
            response = await client.post(url, json={"input": "hello"})
            return response, (time.perf_counter() - start) * 1000

        async def health() -> Any:
            assert health_at_s is not None
            await asyncio.sleep(health_at_s)
            return (await client.get(url.replace("/v1/audio/speech", "/health"))).json()

        calls = [one() for _ in range(n)]
        if health_at_s is None:
            return list(await asyncio.gather(*calls)), None
        *answers, seen = await asyncio.gather(*calls, health())
        return answers, seen


def test_two_slots_one_waiting_and_the_rest_refused() -> None:
    spec = EngineSpec(SLEEP, {"call_ms": CALL_MS})
    with ServerThread(spec, concurrency=2, queue=1) as server:
        answers, seen = asyncio.run(_post_all(server.url, 6, health_at_s=CALL_MS / 2000))
    ok = [(r, ms) for r, ms in answers if r.status_code == 200]
    refused = [(r, ms) for r, ms in answers if r.status_code == 503]
    assert len(ok) == 3 and len(refused) == 3, [r.status_code for r, _ in answers]
    assert seen == {
        "status": "ok",
        "engine": "sleep",
        "concurrency": 2,
        "in_flight": 2,
        "queued": 1,
    }
    for response, ms in refused:
        assert response.json() == {"error": {"message": "queue full", "type": "overloaded"}}
        assert response.headers["retry-after"] == "1"
        assert ms < CALL_MS * 0.75  # refused at once, not after waiting
    waits = sorted(timing(r)["queue"] for r, _ in ok)
    assert waits[0] < 50 and waits[1] < 50
    assert waits[2] >= CALL_MS * 0.75
    assert all(timing(r)["synth"] >= CALL_MS * 0.95 for r, _ in ok)


def test_two_slots_run_two_calls_at_a_time() -> None:
    with ServerThread(EngineSpec(SLEEP, {"call_ms": CALL_MS}), concurrency=2) as server:
        start = time.perf_counter()
        answers, _ = asyncio.run(_post_all(server.url, 4))
        wall_ms = (time.perf_counter() - start) * 1000
    assert all(r.status_code == 200 for r, _ in answers)
    assert 2 * CALL_MS <= wall_ms < 3 * CALL_MS  # two rounds: not one (200), not four (800)


def test_streaming_client_that_leaves_early_frees_its_slot() -> None:
    # A 2-second stream; the client reads its first piece and hangs up.
    params = {"first_chunk_ms": 10, "gap_ms": 20, "chunks": 100, "audio_seconds": 2.0}
    body = {"input": "hi", "stream": True}
    with ServerThread(EngineSpec(f"{CAL}:StreamingSleepEngine", params)) as server:
        with httpx.stream("POST", server.url, json=body) as first:
            assert first.status_code == 200
            next(first.iter_bytes())
        left = time.perf_counter()
        # The next stream starts at once: the engine iteration stopped at the hang-up, and the
        # slot was freed, instead of being held for the 2 s the first stream had left.
        with httpx.stream("POST", server.url, json=body, timeout=10) as second:
            head_ms = (time.perf_counter() - left) * 1000
            assert second.status_code == 200
            assert timing(second)["queue"] < 300 and head_ms < 500
            second.read()
        assert decode(second)[1] == 32000
        assert httpx.get(server.base_url + "/health").json()["in_flight"] == 0


def test_espeak_stream_abandoned_mid_way(espeak_server: ServerThread) -> None:
    for _ in range(3):
        with httpx.stream(
            "POST", espeak_server.url, json={"input": item("long").text, "stream": True}
        ) as r:
            next(r.iter_bytes())
    assert httpx.post(espeak_server.url, json={"input": "still here"}).status_code == 200


# --- the command line ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cli_server(port: int, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voxbench",
            "serve",
            "--engine",
            "espeak",
            "--port",
            str(port),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"voxbench serve did not come up: {proc.communicate()[1]}")


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[str, float]:
    """Send ``sig``; the server's stderr and how long it took to exit."""
    start = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("voxbench serve did not stop within 10 s")
    return err, time.monotonic() - start


@pytest.mark.slow
def test_cli_serve_then_benchmark_it(tmp_path: Path) -> None:
    port = free_port()
    proc = start_cli_server(port, "--concurrency", "1", "--queue", "8")
    try:
        url = f"http://127.0.0.1:{port}/v1/audio/speech"
        run = voxbench(
            "run", "--engine", url, "-w", "short", "-n", "3", "--warmup", "1", "-o", str(tmp_path),
            "--json", "-",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        doc = json.loads(run.stdout)
        assert doc["cases"] and all(c["error_count"] == 0 for c in doc["cases"])
        assert all(c["streamed"] and c["ttfa_ms"] for c in doc["cases"])
        assert all("server.queue" in c["stages"] for c in doc["cases"])
    finally:
        err, took = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, err
    assert took < 5
    assert f"voxbench serve: espeak on {url} (concurrency 1, queue 8)" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_cli_serve_stops_cleanly_on_sigterm() -> None:
    proc = start_cli_server(free_port())
    err, took = stop(proc, signal.SIGTERM)
    assert proc.returncode == 0 and took < 5, err
    assert "Traceback" not in err


def test_cli_serve_unknown_engine() -> None:
    assert_one_line_error(voxbench("serve", "--engine", "nope"), "unknown engine 'nope'")


def test_cli_serve_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = voxbench("serve", "--engine", f"{CAL}:SleepEngine", "--port", str(port), timeout=60)
    assert_one_line_error(proc, f"cannot listen on 127.0.0.1:{port}")
