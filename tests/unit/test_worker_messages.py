"""Worker messages survive the pipe unchanged, and errors keep their kind across it."""

from __future__ import annotations

import pickle

import pytest

from voxbench.engines.registry import EngineSpec
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable, Interrupted
from voxbench.run.executors import EXECUTORS, InProcessExecutor, WorkerExecutor, make_executor
from voxbench.run.measure import CallRecord, MemoryUsage, StartInfo
from voxbench.run.messages import (
    Call,
    Close,
    Failed,
    MemoryReport,
    ReadMemory,
    Ready,
    Result,
    Start,
    Started,
)

RECORD = CallRecord(
    wall_ns=5,
    cpu_s=0.25,
    ttfa_ns=2,
    chunk_gaps_ns=[1, 2],
    chunks=3,
    samples=480,
    sample_rate=16000,
    text="hi",
    stages={"decode": 1.5},
    audio=[0.0, 0.1],
    error={"type": "X", "message": "m", "where": "w"},
)
MESSAGES = [
    Start(EngineSpec("espeak", {"rate": 2}, "cpu")),
    Call("payload", use_stream=True, keep_audio=False, batch=4),
    ReadMemory(),
    Close(),
    Ready(),
    Started(StartInfo(process_ms=None, import_ms=1.0, load_ms=2.0, streams=True, info={"a": 1})),
    Failed("config", "bad"),
    Result(RECORD),
    MemoryReport(
        MemoryUsage(rss_mb=10.0, child_rss_mb=300.0, gpu_allocated_mb=2.0, gpu_nvml_mb=None)
    ),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_pickles_to_an_equal_one(message):
    assert pickle.loads(pickle.dumps(message)) == message


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (EngineUnavailable("no espeak"), "unavailable"),
        (ConfigError("bad arg"), "config"),
        (EngineFailed("boom"), "failed"),
        (Interrupted("stop"), "failed"),
    ],
)
def test_failed_keeps_the_kind_of_error(error, kind):
    failed = Failed.of(error)
    assert failed.kind == kind and failed.message == str(error)
    raised = failed.error()
    assert str(raised) == str(error)
    assert type(raised) is (type(error) if kind != "failed" else EngineFailed)


def test_modes_name_their_executors():
    assert dict(EXECUTORS) == {"worker": WorkerExecutor, "in-process": InProcessExecutor}
    with pytest.raises(ConfigError, match="use worker or in-process"):
        make_executor("ray", None)
