"""``voxbench micro`` and ``voxbench pipeline`` with ``--executor ray``, on a local Ray started
by voxbench's own start-up helper (run/ray_cluster.connected, 2 CPUs on this machine), against
the same runs done locally.

Known answers: the Ray started here listens on 127.0.0.1 only and its tasks see the
``--ray-runtime-env`` variables; the micro matrix gives the same case ids in the same order as
locally, each with its node's environment, the same numerical agreement with the reference
(the kernels are deterministic: equal to the last bit), the speed-ups filled, and medians within
a factor of three (micro kernels of microseconds range about 2x between runs on this shared
2-core machine); one pipeline case against parts of KNOWN timing (the chat server of
tests/support/chat_server.py, the recogniser and TTS of tests/support/known_timing.py) gives
on Ray what it gives locally: first audio byte = STT 100 ms + LLM 600 ms + TTS 155 ms, within
the rule of tests/support/timing.py, and within 5% of the local figure.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.chat_server import ChatServer
from support.timing import assert_took
from voxbench import api
from voxbench.errors import ConfigError
from voxbench.micro.runner import MicroRequest
from voxbench.pipeline.run import PipelineRequest
from voxbench.run.request import RayOptions

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

MARK = "VOXBENCH_RAY_TEST_MARK"


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """The Ray voxbench starts for a command (run/ray_cluster.connected), kept for the module;
    the runtime_env puts tests/ on the workers' path (support.*) and sets a marker."""
    from voxbench.run.ray_cluster import connected

    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ.pop("RAY_ADDRESS", None)
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join([tests_dir, *sys.path]), MARK: "seen"}}
    try:
        with connected(RayOptions(runtime_env=env)):
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _mark() -> str | None:
    return os.environ.get(MARK)


def test_the_local_ray_is_bound_to_loopback_and_gets_the_runtime_env() -> None:
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
    assert ray.get(ray.remote(_mark).remote()) == "seen"


def _micro(tmp_path: Path, name: str, **options: object):
    request = MicroRequest(
        kernels=["pack"], devices=["cpu"], quick=True, output=tmp_path / name, **options
    )
    return api.micro_bench(request, record=False).doc


@pytest.mark.timeout(240)
def test_a_micro_matrix_on_ray_equals_the_local_one(tmp_path: Path) -> None:
    _micro(tmp_path, "warm", executor="ray")  # Ray starts the workers it will reuse
    local = _micro(tmp_path, "local")
    on_ray = _micro(tmp_path, "ray", executor="ray")
    assert len(local.cases) >= 2
    assert [c.id for c in on_ray.cases] == [c.id for c in local.cases]
    for here, there in zip(local.cases, on_ray.cases, strict=True):
        assert here.errors == [] and there.errors == []
        assert there.latency_ms is not None and here.latency_ms is not None
        ratio = there.latency_ms.median / here.latency_ms.median
        assert 1 / 3 <= ratio <= 3, (there.id, here.latency_ms.median, there.latency_ms.median)
        for key in ("max_abs_error", "max_rel_error", "mismatched"):
            assert there.meta[key] == here.meta[key], (there.id, key)
        assert there.meta["speedup_vs_reference"] is not None
        assert there.engine_info["threads"] == here.engine_info["threads"] == 1
        node = there.meta["node"]
        assert node["machine_id"] == local.environment.machine_id
        assert node["hostname"] == socket.gethostname()
        assert node["packages"]["numpy"] == local.environment.packages["numpy"]
        assert there.meta["ray"] == {"resources": {"CPU": 1.0}}
    # one machine: only the one document
    assert [p.name for p in (tmp_path / "ray").iterdir()] == [local.environment.machine_id]


def test_micro_options_on_ray_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_ray(name: str, *args: object, **kwargs: object) -> object:
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError) as err:
        MicroRequest(executor="ray").settings()
    assert str(err.value) == "--executor ray needs Ray: pip install 'voxbench[ray]'"


FIRST_MS, RATE, TOKENS = 200.0, 50.0, 21  # the LLM's whole answer: 200 + 20 × 20 = 600 ms
STT_MS, TTS_MS = 100.0, 50.0  # TTS + 5 ms per word: 21 words → 155 ms


@pytest.fixture(scope="module")
def chat() -> Iterator[str]:
    with ChatServer(first_token_ms=FIRST_MS, tokens_per_second=RATE, tokens=TOKENS) as url:
        yield url


def _pipeline(chat: str, tmp: Path, **options: object) -> PipelineRequest:
    return PipelineRequest(
        stt="support.known_timing:KnownSTT",
        llm=chat,
        tts="support.known_timing:KnownTTS",
        stt_params={"delay_ms": STT_MS},
        workload="assistant",
        modes=("sequential",),
        iterations=3,
        warmup=1,
        output=tmp,
        limit=1,
        save_audio=True,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.timeout(180)
@pytest.mark.usefixtures("no_default_keys")
def test_a_pipeline_case_on_ray_equals_the_local_one(chat: str, tmp_path: Path) -> None:
    local = api.pipeline_run(_pipeline(chat, tmp_path / "local"), record=False).doc
    outcome = api.pipeline_run(_pipeline(chat, tmp_path / "ray", executor="ray"), record=False)
    on_ray = outcome.doc
    assert on_ray.finished_at and [c.id for c in on_ray.cases] == [c.id for c in local.cases]
    (here,), (there,) = local.cases, on_ray.cases
    assert here.error_count == 0 and there.error_count == 0, there.errors
    expected = STT_MS + FIRST_MS + (TOKENS - 1) * 1000 / RATE + TTS_MS + 5.0 * TOKENS
    assert here.pipeline and there.pipeline
    a = here.pipeline.first_byte_ms.median  # type: ignore[union-attr]
    b = there.pipeline.first_byte_ms.median  # type: ignore[union-attr]
    assert_took(a, expected)
    assert_took(b, expected)
    assert abs(b - a) <= 0.05 * a, (a, b)
    assert there.tokens_per_second == pytest.approx(RATE, rel=0.05)
    assert [s["role"] for s in there.meta["components"]] == ["stt", "llm", "tts"]
    assert [s.role for s in on_ray.pipeline.components] == ["stt", "llm", "tts"]  # type: ignore[union-attr]
    assert there.meta["node"]["hostname"] == socket.gethostname()
    assert there.audio_file and (outcome.path / there.audio_file).is_file()
    assert [t.label for t in on_ray.pipeline.targets] == [t.label for t in local.pipeline.targets]  # type: ignore[union-attr]


def test_pipeline_load_levels_are_refused_on_ray() -> None:
    from voxbench.load.schedule import Level
    from voxbench.pipeline.load import LoadPlan

    req = PipelineRequest(
        llm="echo", executor="ray", load=LoadPlan(levels=(Level("rate", 1.0),), duration_s=5.0)
    )
    with pytest.raises(ConfigError) as err:
        req.validate()
    assert str(err.value) == (
        "--executor ray runs the prompt × mode cases; load levels (--rate, --concurrency) run "
        "on this machine: drop --executor ray or the levels"
    )
