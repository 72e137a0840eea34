"""The messages a :class:`~voxbench.run.executors.WorkerExecutor` and its worker process exchange.

One frozen, picklable dataclass per kind, so both ends of the pipe agree on fields by name, and
mypy checks them. The conversation, parent → worker and back::

    (worker starts)                 ──►  Ready
    Start(spec)                     ──►  Started(start) | Failed(kind, message)
    Call(payload, ...)              ──►  Result(record)           (once per engine call)
    ReadMemory()                    ──►  MemoryReport(usage)
    Close()                         ──►  (the worker closes the engine and exits)

Calls are the hot path, thousands per case: :class:`Call` and :class:`Result` pickle as one
reference and a tuple of values (see their ``__reduce__``), so typing them costs the round trip
nothing measurable (``benchmarks/overhead.py``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable, VoxbenchError
from voxbench.run.measure import CallRecord, MemoryUsage, StartInfo

if TYPE_CHECKING:
    # Only a type: the worker imports the registry when it unpickles its first Start.
    from voxbench.engines.registry import EngineSpec

# --- parent → worker -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """Build the engine from ``spec`` and load it; answered by Started or Failed."""

    spec: EngineSpec


@dataclass(frozen=True)
class Call:
    """Time one engine call on ``payload``; answered by Result."""

    payload: Any
    use_stream: bool
    keep_audio: bool
    batch: int = 1

    def __reduce__(self) -> tuple[Any, ...]:
        # The class and a tuple: no field names on the wire, a faster load than the default's.
        return (Call, (self.payload, self.use_stream, self.keep_audio, self.batch))


@dataclass(frozen=True)
class ReadMemory:
    """Report this process's peak memory; answered by MemoryReport."""


@dataclass(frozen=True)
class Close:
    """Close the engine and exit; not answered."""


# --- worker → parent -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The worker process is up and waits for its Start (the end of ``process_ms``)."""


@dataclass(frozen=True)
class Started:
    """The engine is loaded; ``start.process_ms`` is left for the parent to fill in."""

    start: StartInfo


ErrorKind = Literal["unavailable", "config", "failed"]
_KINDS: dict[ErrorKind, type[VoxbenchError]] = {
    "unavailable": EngineUnavailable,
    "config": ConfigError,
    "failed": EngineFailed,
}


@dataclass(frozen=True)
class Failed:
    """The engine could not be built or loaded: which VoxbenchError it was, and its one line."""

    kind: ErrorKind
    message: str

    @classmethod
    def of(cls, exc: VoxbenchError) -> Failed:
        """The message for ``exc`` (its own class is not sent: it may not unpickle in the parent)."""
        for kind, error_type in _KINDS.items():
            if isinstance(exc, error_type):
                return cls(kind, str(exc))
        return cls("failed", str(exc))

    def error(self) -> VoxbenchError:
        """The exception to raise in the parent."""
        return _KINDS[self.kind](self.message)


@dataclass(frozen=True)
class Result:
    """What one Call measured (errors of the engine included: measure_call never raises)."""

    record: CallRecord

    def __reduce__(self) -> tuple[Any, ...]:
        # Each class a pickle names costs an import lookup at both ends (~5 µs a call): send the
        # record's values under one name, not Result and CallRecord with their field names.
        return (_result, _record_values(self.record))


# Every CallRecord field is an __init__ argument, so its values in field order rebuild it.
_record_values = operator.attrgetter(*(f.name for f in fields(CallRecord)))


def _result(*values: Any) -> Result:
    """Unpickles a Result: the record's values in field order."""
    return Result(CallRecord(*values))


@dataclass(frozen=True)
class MemoryReport:
    """The worker's peak memory, read at the end of a case."""

    usage: MemoryUsage


ToWorker: TypeAlias = Start | Call | ReadMemory | Close
FromWorker: TypeAlias = Ready | Started | Failed | Result | MemoryReport
