"""measure_call on calibration engines in this process (sleeps of a few ms)."""

from voxbench.engines.calibration import (
    FailingEngine,
    SleepEngine,
    StagedSleepEngine,
    StreamingSleepEngine,
)
from voxbench.run.measure import measure_call


def _loaded(engine):
    engine.load()
    return engine


def test_whole_call_timing_and_audio_length():
    rec = measure_call(
        _loaded(SleepEngine(call_ms=5, audio_seconds=0.5)), "x", use_stream=False, keep_audio=True
    )
    assert rec.error is None
    assert 5.0 <= rec.wall_ns / 1e6 < 15.0
    assert rec.audio_seconds == 0.5 and len(rec.audio) == 8000
    assert rec.ttfa_ns is None and rec.chunks == 0


def test_stream_records_ttfa_and_gaps():
    eng = _loaded(StreamingSleepEngine(first_chunk_ms=6, gap_ms=3, chunks=3, audio_seconds=0.3))
    rec = measure_call(eng, "x", use_stream=True, keep_audio=False)
    assert rec.chunks == 3 and len(rec.chunk_gaps_ns) == 2
    assert 6.0 <= rec.ttfa_ns / 1e6 < rec.wall_ns / 1e6
    assert all(g / 1e6 >= 3.0 for g in rec.chunk_gaps_ns)
    assert rec.audio is None and abs(rec.audio_seconds - 0.3) < 1e-3


def test_stages_from_context_manager_and_from_output_are_merged():
    rec = measure_call(
        _loaded(StagedSleepEngine(call_ms=10)), "x", use_stream=False, keep_audio=False
    )
    assert set(rec.stages) == {"prefill", "decode", "vocoder"}
    assert rec.stages["decode"] > rec.stages["prefill"]
    assert sum(rec.stages.values()) <= rec.wall_ns / 1e6


def test_engine_exception_is_recorded_not_raised():
    rec = measure_call(_loaded(FailingEngine()), "x", use_stream=False, keep_audio=False)
    assert rec.error["type"] == "RuntimeError"
    assert "calibration failure" in rec.error["message"]


# --- GPU memory: two figures, two names (fakes stand for torch and pynvml on this CPU machine) ---

MiB = 2**20


class FakeTorchCuda:
    """Stands for ``torch.cuda`` with two devices whose allocator peaks are 100 and 50 MiB."""

    def __init__(self, initialized: bool = True) -> None:
        self.initialized = initialized

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return self.initialized

    def device_count(self) -> int:
        return 2

    def max_memory_allocated(self, i: int) -> int:
        return [100 * MiB, 50 * MiB][i]


class FakeTorch:
    def __init__(self, initialized: bool = True) -> None:
        self.cuda = FakeTorchCuda(initialized)


class FakeNvml:
    """Stands for ``pynvml``: device 0 runs this process (700 MiB) and another; device 1 this
    process again (124 MiB)."""

    def __init__(self, pid: int, fail_init: bool = False) -> None:
        self.pid, self.fail_init, self.shut = pid, fail_init, False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list:
        from types import SimpleNamespace as P

        if handle == 0:
            return [P(pid=self.pid, usedGpuMemory=700 * MiB), P(pid=1, usedGpuMemory=9000 * MiB)]
        return [P(pid=self.pid, usedGpuMemory=124 * MiB)]


def test_torch_allocator_peak_is_summed_over_devices():
    from voxbench.run.measure import gpu_allocated_mb

    assert gpu_allocated_mb(FakeTorch()) == 150.0
    assert gpu_allocated_mb(FakeTorch(initialized=False)) is None  # CUDA never used here
    assert gpu_allocated_mb(None) is None


def test_nvml_figure_is_this_process_only():
    from voxbench.run.measure import gpu_nvml_mb

    nvml = FakeNvml(pid=4242)
    assert gpu_nvml_mb(nvml, 4242) == 824.0 and nvml.shut
    assert gpu_nvml_mb(nvml, 7) is None  # no memory held by that process
    assert gpu_nvml_mb(FakeNvml(pid=4242, fail_init=True), 4242) is None


def test_memory_report_keeps_both_gpu_figures_apart(monkeypatch):
    import os
    import sys

    from voxbench.run import measure

    monkeypatch.setitem(sys.modules, "torch", FakeTorch())
    monkeypatch.setattr(measure, "_pynvml", lambda: FakeNvml(pid=os.getpid()))
    usage = measure.memory_report()
    assert usage.gpu_allocated_mb == 150.0 and usage.gpu_nvml_mb == 824.0
