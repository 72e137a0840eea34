"""``voxbench run --executor ray`` on a local Ray cluster (2 CPUs and one custom resource
``gpu_type:H100`` standing in for a GPU type), against the same run done locally.

Known answers: the same case ids in the same order as the local run; the calibration engine of
KNOWN timing (sleeps 20 ms a call) at 20-23 ms on both paths and within 10% of each other, so Ray
adds nothing to a latency (the engine is timed in its own worker process on both paths); espeak's
~2 ms medians within a factor of three (they range 1.2-3.5 ms between two runs of one path on this
shared 2-core machine); a case asking for ``gpu_type:A100``, which no node has, recorded at once
with that reason, and so is a ``cuda`` case (planned on Ray whatever the driver has) on a
cluster without GPUs; a task whose Ray worker is killed mid-case (the FAULT INJECTOR of
tests/support/fault_engines.py) run ``retries + 1`` times and then recorded with the reason, or
measured normally when the retry survives.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxbench.results.document import ResultDocument
from voxbench.run.planner import plan
from voxbench.run.request import RunOptions, RunRequest
from voxbench.run.runner import execute

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

FAULT = "support.fault_engines:KillsRayWorker"
CUDA_ENGINE = "support.gpu_engines:CudaSleepEngine"


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray for the module (4-6 s to start), its session folder removed after."""
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ.pop("RAY_ADDRESS", None)
    temp = tempfile.mkdtemp(prefix="vxrt-")
    tests_dir = str(Path(__file__).resolve().parents[1])  # support.* for the Ray workers
    ray.init(
        num_cpus=2,
        num_gpus=0,  # a cluster without GPUs, even on a machine that has one
        resources={"gpu_type:H100": 1},
        include_dashboard=False,
        _temp_dir=temp,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([tests_dir, *sys.path])}},
    )
    # Ray starts its worker processes in the background after init: let them settle first, so
    # their start-up does not run beside the local run that the Ray run is compared with.
    ray.get([ray.remote(_settle).remote() for _ in range(4)])
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _settle() -> None:
    time.sleep(0.5)


@pytest.fixture
def two_texts(tmp_path: Path) -> Path:
    path = tmp_path / "two.txt"
    path.write_text("Hello there.\nThe quick brown fox jumps over the lazy dog.\n")
    return path


def _run(
    tmp_path: Path, name: str, config: Path | None = None, **options: object
) -> ResultDocument:
    opts = RunOptions(iterations=5, warmup=1, save_audio=False, output=tmp_path / name)
    for key, value in options.items():
        setattr(opts, key, value)
    request = RunRequest.from_sources(config, opts)
    doc, _ = execute(request, plan(request))
    return doc


SLEEP_MS = 20.0


@pytest.mark.timeout(240)
def test_ray_matrix_equals_the_local_run(tmp_path: Path, two_texts: Path) -> None:
    """espeak and the calibration engine of KNOWN timing (sleeps 20 ms a call) × 2 inputs."""
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(
        f'workloads = ["{two_texts}"]\n'
        '[[engine]]\nref = "espeak"\n'
        '[[engine]]\nref = "voxbench.engines.calibration:SleepEngine"\n'
        f"args = {{ call_ms = {SLEEP_MS}, audio_seconds = 0.1 }}\n"
    )
    # Both CPUs per case: one case at a time, as locally (side by side, two ~3 ms cases on a
    # 2-core machine share its cores and caches: docs/distributed.md, concurrency and noise).
    ray_options = {"executor": "ray", "ray_resources": '{"CPU": 2}'}
    counts = {"iterations": 10, "warmup": 3}
    _run(tmp_path, "ray-warm", matrix, **ray_options)  # Ray starts the workers it will reuse
    local = _run(tmp_path, "local", matrix, **counts)
    on_ray = _run(tmp_path, "ray", matrix, **ray_options, **counts)

    assert [c.id for c in on_ray.cases] == [c.id for c in local.cases]
    assert [c.engine for c in on_ray.cases] == ["espeak", "espeak", "sleep", "sleep"]
    for here, there in zip(local.cases, on_ray.cases, strict=True):
        assert there.errors == [] and here.errors == []
        assert there.mode == "worker" and len(there.samples.latency_ms) == 10
        assert here.latency_ms is not None and there.latency_ms is not None
        a, b = here.latency_ms.median, there.latency_ms.median
        if there.engine == "sleep":  # known: 20 ms and what a sleep oversleeps, on both paths
            assert SLEEP_MS <= a <= SLEEP_MS + 3 and SLEEP_MS <= b <= SLEEP_MS + 3, (a, b)
            assert 0.9 <= b / a <= 1.1, (there.id, a, b)
        else:  # espeak's ~2 ms medians range 1.2-3.5 ms between runs of one path here
            assert 1 / 3 <= b / a <= 3, (there.id, a, b)
        node = there.meta["node"]
        assert node["hostname"] == socket.gethostname()
        assert node["ray_node_ip"] == ray.nodes()[0]["NodeManagerAddress"]
        assert node["cpu_model"] == on_ray.environment.cpu_model
        assert there.meta["ray"] == {"resources": {"CPU": 2.0}}
        # Ray gives a 2-CPU task two OpenMP threads unless the environment says otherwise
        assert node["env"]["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS", "2")
        assert "node" not in here.meta


@pytest.mark.timeout(120)
def test_resources_are_honoured_and_an_unmet_one_is_reported(
    tmp_path: Path, two_texts: Path
) -> None:
    common = {"engines": ["espeak"], "workloads": [str(two_texts)], "executor": "ray"}
    h100 = _run(tmp_path, "h100", ray_resources='{"gpu_type:H100": 1}', **common)
    assert [c.errors for c in h100.cases] == [[], []]
    assert h100.cases[0].meta["ray"]["resources"] == {"CPU": 1.0, "gpu_type:H100": 1.0}

    a100 = _run(tmp_path, "a100", ray_resources='{"gpu_type:A100": 1}', **common)
    assert len(a100.cases) == 2
    for case in a100.cases:
        [error] = case.errors
        assert (error.phase, error.type) == ("case", "ResourceUnavailable")
        assert error.message == (
            "no Ray node offers gpu_type:A100=1 (the most any node has: gpu_type:A100=0)"
        )
        assert case.latency_ms is None and case.validity is not None and not case.validity.valid


@pytest.mark.timeout(120)
def test_a_cuda_case_is_planned_and_reported_when_no_node_has_a_gpu(
    tmp_path: Path, two_texts: Path
) -> None:
    doc = _run(
        tmp_path,
        "cuda",
        engines=[CUDA_ENGINE],
        engine_args=["call_ms=1", "audio_seconds=0.1"],
        workloads=[str(two_texts)],
        devices="cpu,cuda",
        executor="ray",
    )
    assert doc.skipped == []  # planned for the nodes, not skipped for the driver's lack of CUDA
    assert [(c.device, c.error_count) for c in doc.cases] == [
        ("cpu", 0), ("cpu", 0), ("cuda", 1), ("cuda", 1)
    ]  # fmt: skip
    for case in doc.cases[2:]:
        [error] = case.errors
        assert (error.phase, error.type) == ("case", "ResourceUnavailable")
        assert error.message == "no Ray node offers GPU=1 (the most any node has: GPU=0)"
        assert case.meta["ray"]["resources"] == {"CPU": 1.0, "GPU": 1.0}
    assert doc.cases[0].meta["ray"]["resources"] == {"CPU": 1.0}


def test_a_numbered_gpu_is_skipped_on_ray(two_texts: Path) -> None:
    request = RunRequest.from_sources(
        None,
        RunOptions(
            engines=[CUDA_ENGINE], workloads=[str(two_texts)], devices="cpu,cuda:1", executor="ray"
        ),
    )
    the_plan = plan(request)
    assert {c.spec.device for c in the_plan.cases} == {"cpu"}
    assert the_plan.skipped == [
        {
            "engine": CUDA_ENGINE,
            "device": "cuda:1",
            "reason": "cuda:1: on Ray use --device cuda (a task sees the GPU Ray gives it as "
            "cuda:0)",
        }
    ]


@pytest.mark.timeout(180)
def test_a_killed_worker_is_retried_then_reported(tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("Hello there.\n")
    log = tmp_path / "attempts.log"
    doc = _run(
        tmp_path,
        "killed",
        engines=[FAULT],
        workloads=[str(one)],
        engine_args=["nth=3", f"log={log}"],  # call 3: the first measured one (1 cold, 1 warm-up)
        executor="ray",
        ray_retries=1,
    )
    [case] = doc.cases
    assert len(log.read_text().split()) == 2  # the first attempt and its one retry
    [error] = case.errors
    assert error.phase == "case"
    assert error.type == "WorkerCrashedError"
    assert error.message.startswith("Ray task failed after 2 attempts: ")
    assert case.latency_ms is None


@pytest.mark.timeout(180)
def test_a_retry_that_survives_measures_the_case(tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("Hello there.\n")
    log, marker = tmp_path / "attempts.log", tmp_path / "died-once"
    doc = _run(
        tmp_path,
        "once",
        engines=[FAULT],
        workloads=[str(one)],
        engine_args=["nth=3", f"log={log}", f"once={marker}"],
        executor="ray",
        ray_retries=1,
    )
    [case] = doc.cases
    assert marker.exists() and len(log.read_text().split()) == 2
    assert case.errors == []
    assert len(case.samples.latency_ms) == 5


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import voxbench.run.request as request_module
    from voxbench.errors import ConfigError

    monkeypatch.setattr(request_module, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as err:
        RunRequest.from_sources(None, RunOptions(engines=["espeak"], executor="ray"))
    assert str(err.value) == "--executor ray needs Ray: pip install 'voxbench[ray]'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "gpu_type:H100",
            "--ray-resources: not JSON (Expecting value); e.g. '{\"gpu_type:H100\": 1}'",
        ),
        ("[1]", "--ray-resources: give a JSON object of resource: amount"),
        ('{"GPU": -1}', "--ray-resources: 'GPU' must be a non-negative number, not -1"),
    ],
)
def test_bad_ray_resources_are_one_line_errors(text: str, message: str) -> None:
    from voxbench.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        RunRequest.from_sources(
            None, RunOptions(engines=["espeak"], executor="ray", ray_resources=text)
        )
    assert str(err.value) == message


def test_ray_options_need_the_ray_executor() -> None:
    from voxbench.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        RunRequest.from_sources(None, RunOptions(engines=["espeak"], ray_retries=2))
    assert str(err.value) == "--ray-retries needs --executor ray"
