"""The micro timing loop and the micro planner: calibration, samples, speed-ups, bad input."""

from __future__ import annotations

import time

import pytest

from voxbench.errors import ConfigError
from voxbench.micro.runner import (
    MicroRequest,
    backend_reason,
    fill_speedups,
    plan_micro,
    resolve_kernels,
    timing_case,
)
from voxbench.micro.timing import autorange, measure
from voxbench.results import ResultDocument


def test_autorange_loops_a_tiny_call_until_a_sample_is_long_enough():
    calls = []
    loops, calibration, result = autorange(lambda: calls.append(1) or 7, min_sample_ns=1_000_000)
    assert result == 7
    assert loops > 1  # an append takes well under a millisecond
    assert loops in {n * m for n in (1, 10, 100, 1000, 10_000, 100_000) for m in (1, 2, 5)}
    assert calibration == len(calls)


def test_autorange_takes_one_call_for_a_slow_function():
    loops, calibration, _ = autorange(lambda: time.sleep(0.003), min_sample_ns=2_000_000)
    assert (loops, calibration) == (1, 1)


def test_measure_reports_time_per_call_and_counts_calls():
    calls = []

    def fn() -> int:
        calls.append(1)
        time.sleep(0.002)
        return len(calls)

    t = measure(fn, samples=6, warmup=2, min_sample_ns=1_000_000)
    assert len(t.per_call_ms) == 6 and len(t.cpu_per_call_s) == 6
    assert all(ms >= 2.0 for ms in t.per_call_ms)  # sleep(2 ms) never returns early
    assert t.loops == 1 and t.warmup_calls == 2
    assert len(calls) == t.calibration_calls + t.warmup_calls + 6 * t.loops
    assert t.result == len(calls)


def test_measure_stops_after_max_seconds_once_min_samples_are_in():
    t = measure(lambda: time.sleep(0.01), samples=1000, warmup=0, max_seconds=0.05, min_samples=3)
    assert 3 <= len(t.per_call_ms) < 20


def test_measure_calls_sync_around_every_sample():
    events: list[str] = []
    measure(lambda: events.append("call"), samples=3, warmup=1, sync=lambda: events.append("sync"))
    assert events[0] == "sync" and events[-1] == "sync"
    assert events.count("sync") >= 2 * (3 + 1)


def test_timing_case_is_a_valid_case_with_raw_samples_and_rtfx():
    t = measure(lambda: time.sleep(0.002), samples=5, warmup=0)
    case = timing_case(
        case_id="x", engine="micro:x", workload="2s", input_id="a", input_kind="audio",
        timing=t, audio_seconds=2.0, params={"backend": "numpy"},
    )  # fmt: skip
    assert case.samples.latency_ms == t.per_call_ms
    assert case.latency_ms is not None and case.latency_ms.n == 5
    assert case.latency_ms.ci95 is not None
    assert case.rtfx is not None and case.rtfx == pytest.approx(2000 / case.latency_ms.median, 0.2)
    assert case.mode == "in-process"


def _case(engine, backend, median, device="cpu", reference="librosa"):  # type: ignore[no-untyped-def]
    from voxbench.micro.timing import Timing

    c = timing_case(
        case_id=f"{engine}/{backend}/{device}", engine=engine, workload="2s", input_id="a",
        input_kind="audio", timing=Timing(per_call_ms=[median] * 3, cpu_per_call_s=[0.0] * 3),
        params={"backend": backend}, device=device, meta={"reference": reference},
    )  # fmt: skip
    return c


def test_speedups_are_reference_median_over_own_median():
    cases = [
        _case("micro:mel", "librosa", 10.0),
        _case("micro:mel", "numpy", 5.0),
        _case("micro:mel", "torch", 1.0, device="cuda"),
        _case("micro:stft", "numpy", 2.0),  # no reference measured for stft
    ]
    fill_speedups(cases)
    speed = [c.meta["speedup_vs_reference"] for c in cases]
    assert speed == [1.0, 2.0, 10.0, None]


def test_kernel_names_and_families_resolve():
    assert [k.name for k in resolve_kernels(["codes"])] == ["pack", "unpack"]
    assert [k.name for k in resolve_kernels(["mel", "mel", "repetition-penalty"])] == [
        "mel",
        "repetition_penalty",
    ]
    with pytest.raises(ConfigError, match="unknown kernel 'melody'"):
        resolve_kernels(["melody"])


def test_plan_rejects_unknown_backends_and_runs_the_reference_anyway():
    with pytest.raises(ConfigError, match="unknown backend 'jax'"):
        plan_micro(MicroRequest(backends=["jax"]))
    plan = plan_micro(
        MicroRequest(kernels=["topk"], backends=["torch"], devices=["cpu"], quick=True)
    )
    backends = {c.backend for c in plan.cases}
    assert "numpy" in backends  # the reference, for the speed-up
    assert plan.cases[0].is_reference


def test_cuda_is_planned_only_where_torch_has_it_and_skipped_with_the_reason():
    plan = plan_micro(MicroRequest(kernels=["temperature"], devices=["cpu", "cuda"], quick=True))
    why = backend_reason("torch", "cuda")
    cuda_cases = [c for c in plan.cases if c.device == "cuda"]
    if why is None:
        assert cuda_cases and all(c.backend in ("torch", "torchaudio") for c in cuda_cases)
    else:
        assert not cuda_cases
        assert {"engine": "micro (torch)", "device": "cuda", "reason": why} in plan.skipped


def test_settings_reject_bad_values():
    with pytest.raises(ConfigError, match="--iterations"):
        MicroRequest(samples=0).settings()
    with pytest.raises(ConfigError, match="--min-sample-ms"):
        MicroRequest(min_sample_ms=0).settings()


def test_micro_document_round_trips():
    from voxbench.micro.runner import MicroSettings, new_document
    from voxbench.run.environment import capture

    doc = new_document(
        engines=["micro:mel"], workloads=["2s"], settings=MicroSettings(), devices=["cpu"],
        batch_sizes=[1], argv=[], environment=capture("m"),
    )  # fmt: skip
    doc.cases.append(_case("micro:mel", "numpy", 1.0))
    again = ResultDocument.model_validate_json(doc.model_dump_json())
    assert again.scenario == "micro" and again.cases[0].meta["reference"] == "librosa"


def test_a_kernel_that_raises_is_recorded_in_its_case_not_raised():
    from voxbench.micro.kernels import KERNELS, Kernel, Prepared
    from voxbench.micro.runner import MicroCase, MicroSettings, measure_micro_case

    def boom() -> None:
        raise RuntimeError("kernel exploded\nsecond line")

    base = KERNELS["temperature"]
    size = base.sizes(True)[0]
    broken_call = Kernel(
        "broken", "sampling", "raises", "numpy", ("numpy",), base.sizes,
        lambda backend, device, s: Prepared(boom, lambda x: x),
    )  # fmt: skip
    broken_build = Kernel(
        "broken", "sampling", "raises", "numpy", ("numpy",), base.sizes,
        lambda backend, device, s: boom(),
    )  # fmt: skip
    settings = MicroSettings(samples=3, warmup=0)
    for kernel, phase in ((broken_call, "measure"), (broken_build, "load")):
        case, output = measure_micro_case(
            MicroCase(kernel, size, "numpy", "cpu", "numpy"), settings, None
        )
        assert output is None and case.latency_ms is None
        assert case.error_count == 1 and case.errors[0].phase == phase
        assert case.errors[0].message == "kernel exploded"
        assert case.id == "micro:broken/vocab32k-b8/fp32/numpy/cpu"


def test_thread_limits_hold_every_pool_and_restore_them():
    torch = pytest.importorskip("torch")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from voxbench.micro.runner import thread_limits

    before = torch.get_num_threads()
    with thread_limits(1, {"numpy", "torch"}) as info:
        assert info == {"threads": 1}
        assert torch.get_num_threads() == 1
        assert {p["num_threads"] for p in threadpoolctl.threadpool_info()} == {1}
    assert torch.get_num_threads() == before
    with thread_limits(0, {"torch"}) as info:
        assert info == {"threads": "library default"}
        assert torch.get_num_threads() == before


def test_only_an_unusable_device_is_a_one_line_error():
    why = backend_reason("torch", "cuda")
    if why is None:
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="nothing to run on cuda: micro \\(torch\\) on cuda"):
        plan_micro(MicroRequest(kernels=["topk"], devices=["cuda"], quick=True))
