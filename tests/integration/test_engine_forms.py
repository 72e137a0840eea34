"""Engines in the friendly forms run through run_case, in a worker and in this process.

The engines are defined here; a worker imports this module by name (spawn passes sys.path on).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from voxbench.engines.registry import EngineSpec
from voxbench.run.scenario import Settings, run_case
from voxbench.workloads import resolve_workload

MODES = ["in-process", "worker"]
HERE = __name__


class TupleEngine:
    """Only synthesize, answering (audio, sample_rate): no base class, no load, no close."""

    waive_output_checks = ("silent",)  # answers digital silence on purpose

    def synthesize(self, text):
        time.sleep(0.005)
        return np.zeros(len(text) * 100, dtype=np.float32), 8000


class ArrayStreamEngine:
    """Declares sample_rate; synthesize gives a bare array, stream yields bare arrays."""

    sample_rate = 16000
    waive_output_checks = ("silent",)  # answers digital silence on purpose

    def synthesize(self, text):
        return np.zeros(1600, dtype=np.float32)

    def stream(self, text):
        for _ in range(4):
            time.sleep(0.002)
            yield np.zeros(400, dtype=np.float32)


class NoRateEngine:
    """A bare array and no sample_rate: every call is an error, the case still ends."""

    waive_output_checks = ("silent",)  # answers digital silence on purpose

    def synthesize(self, text):
        return np.zeros(1600, dtype=np.float32)


@pytest.fixture(scope="module")
def item():
    return resolve_workload("short").items[0]


@pytest.mark.parametrize("mode", MODES)
def test_a_class_with_only_synthesize_returning_a_tuple(mode, item):
    spec = EngineSpec(f"{HERE}:TupleEngine")
    outcome = run_case(spec, spec.name, "short", item, Settings(mode=mode, iterations=5, warmup=1))
    case = outcome.case
    assert case.errors == [] and case.error_count == 0
    assert case.engine == "TupleEngine" and not case.streamed
    assert case.audio_seconds == pytest.approx(len(item.text) * 100 / 8000)
    assert len(case.samples.latency_ms) == 5 and case.latency_ms.median >= 5.0
    assert case.cold_start.load_ms < 50.0  # nothing to load
    assert outcome.sample_rate == 8000 and len(outcome.audio) == len(item.text) * 100


@pytest.mark.parametrize("mode", MODES)
def test_an_engine_streaming_bare_arrays(mode, item):
    spec = EngineSpec(f"{HERE}:ArrayStreamEngine")
    case = run_case(spec, "arrays", "short", item, Settings(mode=mode, iterations=3)).case
    assert case.errors == [] and case.streamed and case.chunks == 4
    assert case.audio_seconds == pytest.approx(0.1)
    assert case.ttfa_ms.median < case.latency_ms.median


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_answer_is_one_line_per_call(mode, item):
    spec = EngineSpec(f"{HERE}:NoRateEngine")
    settings = Settings(mode=mode, iterations=3, warmup=1)
    case = run_case(spec, "norate", "short", item, settings).case
    assert case.error_count == 1 + 1 + 3 and case.latency_ms is None
    assert [e.phase for e in case.errors] == ["cold", "warmup", "measure", "measure", "measure"]
    for error in case.errors:
        assert error.type == "EngineFailed" and "\n" not in error.message
        assert error.message == (
            "synthesize() returned a bare array, but the engine has no int sample_rate "
            "attribute (got None): set one, or return (audio, sample_rate)"
        )


# --- voxbench serve puts the same forms behind HTTP -------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_serve_answers_for_engines_in_the_friendly_forms(stream):
    httpx = pytest.importorskip("httpx")
    serve = pytest.importorskip("voxbench.load.serve")
    for ref, seconds in (
        (f"{HERE}:TupleEngine", 5 * 100 / 8000),
        (f"{HERE}:ArrayStreamEngine", 0.1),
    ):
        with serve.ServerThread(EngineSpec(ref)) as server:
            body = {"input": "hello", "response_format": "pcm", "stream": stream}
            response = httpx.post(server.url, json=body)
            assert response.status_code == 200, response.text
            rate = int(response.headers["x-sample-rate"])
            assert len(response.content) / 2 / rate == pytest.approx(seconds)


def test_serve_reports_a_wrong_answer_as_one_line():
    httpx = pytest.importorskip("httpx")
    serve = pytest.importorskip("voxbench.load.serve")
    with serve.ServerThread(EngineSpec(f"{HERE}:NoRateEngine")) as server:
        response = httpx.post(server.url, json={"input": "hello"})
        assert response.status_code == 500
        message = response.json()["error"]["message"]
        assert message.startswith("EngineFailed: synthesize() returned a bare array")
