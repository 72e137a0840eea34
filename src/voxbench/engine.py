"""The engine protocol: what voxbench drives, and what an engine hands back.

An engine is any object with ``load()``, ``synthesize(input) -> Output`` and ``close()``; it may add
``stream(input) -> Iterator[Chunk]`` (then time to first audio is measured) and report stage timings,
either by returning ``Output(stages={...})`` or by wrapping parts of its work in :func:`stage`.

Inputs are plain values: ``str`` for text engines, a :class:`pathlib.Path` for MIDI and audio files.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

InputKind = Literal["text", "midi", "audio"]
OutputKind = Literal["audio", "text"]


@dataclass
class Output:
    """What one engine call produced: float32 mono ``audio`` at ``sample_rate``, or ``text``.

    ``stages`` maps a stage name to milliseconds the engine measured itself (merged with :func:`stage`).
    """

    audio: np.ndarray | None = None
    sample_rate: int | None = None
    text: str | None = None
    stages: dict[str, float] = field(default_factory=dict)


@dataclass
class Chunk:
    """One piece of a streamed answer: float32 mono ``audio`` at ``sample_rate``."""

    audio: np.ndarray
    sample_rate: int


@runtime_checkable
class Engine(Protocol):
    """What voxbench calls. ``load()`` is timed as the cold start; ``close()`` frees resources."""

    name: ClassVar[str]
    input_kind: ClassVar[InputKind]

    def load(self) -> None: ...

    def synthesize(self, inp: Any) -> Output: ...

    def close(self) -> None: ...


class BaseEngine:
    """Convenience base class: no-op ``load``/``close``, and a ``stream`` left to subclasses.

    Subclasses set ``name``, ``input_kind``, ``output_kind``, ``description``, and implement
    ``synthesize``; a streaming engine also implements ``stream``; an engine that takes batches
    implements ``synthesize_batch(inputs) -> list[Output]``; a GPU engine lists ``devices``, takes
    a ``device`` argument and implements ``synchronize()`` (e.g. ``torch.cuda.synchronize()``), which
    voxbench calls before it stops the clock. ``check()`` returns ``None`` when
    the engine can run here, else a one-line reason with the fix (shown by ``voxbench engines``).
    """

    name: ClassVar[str] = "engine"
    input_kind: ClassVar[InputKind] = "text"
    output_kind: ClassVar[OutputKind] = "audio"
    description: ClassVar[str] = ""
    default_workloads: ClassVar[tuple[str, ...]] = ()
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    @classmethod
    def check(cls) -> str | None:
        return None

    def load(self) -> None:
        return None

    def synthesize(self, inp: Any) -> Output:
        raise NotImplementedError

    def close(self) -> None:
        return None

    def info(self) -> dict[str, Any]:
        """Settings worth recording in the result document (model, voice, threads...).

        An engine that may silently fall back to another device (an ONNX Runtime session without
        its CUDA provider, say) reports the one it really runs on as ``device_actual``.
        """
        return {}


def can_stream(engine: object) -> bool:
    """True when the engine implements ``stream`` (not the abstract placeholder)."""
    return callable(getattr(engine, "stream", None))


# --- stage timing --------------------------------------------------------------------------------

_stages: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "voxbench_stages", default=None
)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a named part of one engine call (``with voxbench.stage("decode"): ...``).

    Milliseconds add up when a stage is entered several times in one call. Outside a voxbench
    measurement this costs two clock reads and records nothing.
    """
    start = time.perf_counter_ns()
    try:
        yield
    finally:
        record_stage(name, (time.perf_counter_ns() - start) / 1e6)


def record_stage(name: str, ms: float) -> None:
    """Add ``ms`` milliseconds to stage ``name`` of the call being measured.

    For times a ``with`` block cannot frame: one that spans a ``yield`` of a streaming engine, or one
    a server reported. Outside a voxbench measurement it records nothing.
    """
    sink = _stages.get()
    if sink is not None:
        sink[name] = sink.get(name, 0.0) + ms


@contextmanager
def collect_stages() -> Iterator[dict[str, float]]:
    """Collect the :func:`stage` timings made inside the block into the yielded dict."""
    sink: dict[str, float] = {}
    token = _stages.set(sink)
    try:
        yield sink
    finally:
        _stages.reset(token)
