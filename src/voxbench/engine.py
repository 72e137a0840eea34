"""The engine protocol: what voxbench drives, and what an engine hands back.

An engine is any object with ``synthesize(input)``. Everything else is optional: ``load()`` (timed
as the cold start), ``close()``, ``stream(input)`` (then time to first audio is measured), a
``sample_rate`` attribute, stage timings (``Output(stages={...})`` or :func:`stage` blocks).

``synthesize`` may return an :class:`Output`, an ``(audio, sample_rate)`` tuple, or a bare float
array when the engine has an int ``sample_rate`` attribute; ``stream`` may yield :class:`Chunk`\\ s,
such tuples or bare arrays; an engine that answers text (speech recognition, an LLM) streams
:class:`TextChunk`\\ s or plain ``str`` pieces instead. :func:`as_output` and :func:`as_chunk`
are the one place these forms become ``Output`` and ``Chunk``: the timing code calls them once the clock is read, and
:class:`Adapted` (made by :func:`adapt`) puts any engine behind the full protocol with them, for
the executors and ``voxbench serve``.

Inputs are plain values: ``str`` for text engines, a :class:`pathlib.Path` for MIDI and audio files.
"""

from __future__ import annotations

import contextvars
import numbers
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeAlias, runtime_checkable

from voxbench.errors import EngineFailed

if TYPE_CHECKING:
    import numpy as np

InputKind = Literal["text", "midi", "audio"]
OutputKind = Literal["audio", "text"]


TokensSource = Literal["usage", "counted"]


@dataclass
class Output:
    """What one engine call produced: float32 mono ``audio`` at ``sample_rate``, or ``text``.

    ``stages`` maps a stage name to milliseconds the engine measured itself (merged with :func:`stage`).
    A text-generating engine (an LLM) says how many ``tokens`` it produced (and ``input_tokens``)
    and where the count comes from: ``"usage"`` (the server's own count) or ``"counted"`` (the
    pieces of its stream, when the server sends no usage).
    """

    audio: np.ndarray | None = None
    sample_rate: int | None = None
    text: str | None = None
    stages: dict[str, float] = field(default_factory=dict)
    tokens: int | None = None
    input_tokens: int | None = None
    tokens_source: TokensSource | None = None


@dataclass
class Chunk:
    """One piece of a streamed answer: float32 mono ``audio`` at ``sample_rate``."""

    audio: np.ndarray
    sample_rate: int


@dataclass
class TextChunk:
    """One piece of a streamed text answer: an LLM's delta or a recogniser's partial result.

    ``tokens`` is how many tokens the piece holds when the engine knows (None: one piece, counted
    as one token when no usage figure arrives). ``final`` marks a recogniser's final transcript;
    ``usage_tokens`` carries a server's total output count, sent once, usually with the last piece.
    ``partial`` is True for a recogniser's running hypothesis (which the next one replaces).
    """

    text: str
    tokens: int | None = None
    partial: bool = False
    usage_tokens: int | None = None
    input_tokens: int | None = None


SynthesisResult: TypeAlias = "Output | tuple[np.ndarray, int] | np.ndarray"
"""What ``synthesize`` may return (a bare array needs the engine's ``sample_rate``)."""

StreamItem: TypeAlias = "Chunk | TextChunk | str | tuple[np.ndarray, int] | np.ndarray"
"""What ``stream`` may yield (a bare array needs the engine's ``sample_rate``)."""


@runtime_checkable
class Engine(Protocol):
    """What voxbench calls: ``synthesize`` is the one required method.

    Optional, read when present: ``name``, ``input_kind``, ``output_kind``, ``sample_rate``,
    ``load()``, ``close()``, ``stream(input)``, ``synthesize_batch(inputs)``, ``synchronize()``,
    ``info()`` and the classmethod ``check()`` (see docs/engines.md).

    A recogniser may also take live input: ``listen(blocks, sample_rate) -> Iterator[TextChunk]``
    is handed an iterable of float32 mono blocks (typically 100 ms) that voxbench yields at the
    real-time pace of a microphone; it feeds each block to its decoder as it arrives, yields
    ``TextChunk(text, partial=True)`` whenever its running hypothesis changes, and once the
    iterable is exhausted (the end of speech) yields the final ``TextChunk(text)``. The time from
    the last block to that final is what the recogniser adds to a voice pipeline. With
    ``listen`` an engine may declare ``input_sample_rate`` (an int, e.g. 16000): voxbench then
    resamples the whole utterance to that rate once, before pacing, so the blocks arrive at the
    engine's own rate (see :func:`can_listen`).
    """

    def synthesize(self, inp: Any) -> SynthesisResult: ...


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
        """``None`` when the engine can run here, else a one-line reason with the fix."""
        return None

    def load(self) -> None:
        """Nothing to load."""
        return None

    def synthesize(self, inp: Any) -> SynthesisResult:
        """Answer one input; subclasses implement it."""
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to free."""
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


def can_listen(engine: object) -> bool:
    """True when the engine takes live input: ``listen(blocks, sample_rate)`` (see :class:`Engine`)."""
    return callable(getattr(engine, "listen", None))


# --- the one place where the friendly forms become Output and Chunk ------------------------------

_FORMS = "Output, (audio, sample_rate) or a float array (with the engine's sample_rate attribute)"


def as_output(result: object, engine: object, method: str = "synthesize") -> Output:
    """``engine.<method>()``'s return value as an :class:`Output`; one-line EngineFailed if wrong.

    Takes an ``Output`` as it is (the fast path: one isinstance check), an ``(audio, sample_rate)``
    tuple, or a bare float array at the engine's ``sample_rate``.
    """
    if isinstance(result, Output):
        return result
    audio, rate = _audio_and_rate(result, engine, f"{method}() returned", _FORMS)
    return Output(audio=audio, sample_rate=rate)


def as_chunk(item: object, engine: object) -> Chunk | TextChunk:
    """One item ``engine.stream()`` yielded as a :class:`Chunk` or :class:`TextChunk`.

    Takes a ``Chunk`` or ``TextChunk`` as it is, a ``str`` (a text piece), an ``(audio,
    sample_rate)`` tuple, or a bare float array at the engine's ``sample_rate``; a one-line
    EngineFailed if wrong.
    """
    if isinstance(item, (Chunk, TextChunk)):
        return item
    if isinstance(item, str):
        return TextChunk(text=item)
    forms = _FORMS.replace("Output", "Chunk")
    audio, rate = _audio_and_rate(item, engine, "stream() yielded", forms)
    return Chunk(audio=audio, sample_rate=rate)


def _audio_and_rate(value: object, engine: object, said: str, forms: str) -> tuple[Any, int]:
    """Audio and sample rate of a tuple or bare-array answer; ``said`` starts the error message."""
    import numpy as np

    if isinstance(value, np.ndarray):
        declared = getattr(engine, "sample_rate", None)
        rate = _rate(declared)
        if rate is None:
            raise EngineFailed(
                f"{said} a bare array, but the engine has no int sample_rate attribute "
                f"(got {declared!r}): set one, or return (audio, sample_rate)"
            )
        return _mono_float(value, said), rate
    if not (isinstance(value, tuple) and len(value) == 2):
        raise EngineFailed(f"{said} {_kind(value)}; expected {forms}")
    audio, declared = value
    if _rate(audio) and isinstance(declared, np.ndarray):  # scipy.io.wavfile's order
        raise EngineFailed(f"{said} (sample_rate, audio); expected (audio, sample_rate)")
    if not isinstance(audio, np.ndarray):
        raise EngineFailed(f"{said} a tuple whose audio is {_kind(audio)}; expected {forms}")
    rate = _rate(declared)
    if rate is None:
        raise EngineFailed(f"{said} (audio, {declared!r}); the sample rate must be a positive int")
    return _mono_float(audio, said), rate


def _rate(value: object) -> int | None:
    """``value`` as a sample rate, or None when it is not a positive int."""
    # numbers.Integral takes numpy integers too; bool is an Integral but never a sample rate.
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) > 0:
        return int(value)
    return None


def _mono_float(audio: np.ndarray, said: str) -> np.ndarray:
    if audio.ndim != 1:
        raise EngineFailed(f"{said} audio of shape {audio.shape}; expected mono (one dimension)")
    if audio.dtype.kind != "f":
        raise EngineFailed(f"{said} {audio.dtype} audio; expected float samples in [-1, 1]")
    return audio


def _kind(value: object) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} items"
    return "None" if value is None else f"a {type(value).__name__}"


class Adapted:
    """Any engine behind the full protocol: what the executors and ``voxbench serve`` hold.

    ``load()``/``close()`` do nothing when the engine lacks them, ``synthesize`` and
    ``synthesize_batch`` answer :class:`Output`, ``stream`` (``None`` when the engine cannot
    stream, so :func:`can_stream` tells) yields :class:`Chunk`; ``listen`` (``None`` when the
    engine takes no live input, so :func:`can_listen` tells) yields :class:`TextChunk`, and
    ``input_sample_rate`` is the engine's (``None`` when it declares none); every other attribute
    (``name``, ``sample_rate``, ``synchronize``...) is the engine's own.
    """

    def __init__(self, engine: object) -> None:
        self.engine: Any = engine

    def __getattr__(self, name: str) -> Any:
        if name == "engine":  # not set yet (unpickling, copying): no recursion
            raise AttributeError(name)
        return getattr(self.engine, name)

    def __repr__(self) -> str:
        return f"Adapted({self.engine!r})"

    def load(self) -> None:
        """The engine's ``load()``, if it has one."""
        _call_if_present(self.engine, "load")

    def close(self) -> None:
        """The engine's ``close()``, if it has one."""
        _call_if_present(self.engine, "close")

    def info(self) -> dict[str, Any]:
        """The engine's ``info()``, or ``{}``."""
        return dict(_call_if_present(self.engine, "info") or {})

    def synthesize(self, inp: Any) -> Output:
        """One call, its answer as an :class:`Output`."""
        return as_output(self.engine.synthesize(inp), self.engine)

    def synthesize_batch(self, inputs: list[Any]) -> list[Output]:
        """One batched call, each answer as an :class:`Output`."""
        outs: Iterable[object] = self.engine.synthesize_batch(inputs)
        return [as_output(out, self.engine, "synthesize_batch") for out in outs]

    @property
    def stream(self) -> Callable[[Any], Iterator[Chunk | TextChunk]] | None:
        """``stream(input)`` yielding :class:`Chunk`\\ s (or :class:`TextChunk`\\ s), or ``None``
        when the engine cannot stream."""
        inner = getattr(self.engine, "stream", None)
        if not callable(inner):
            return None
        return lambda inp: _chunks(inner(inp), self.engine)

    @property
    def listen(
        self,
    ) -> Callable[[Iterable[np.ndarray], int], Iterator[TextChunk]] | None:
        """``listen(blocks, sample_rate)`` yielding :class:`TextChunk`\\ s, or ``None`` when the
        engine takes no live input."""
        inner = getattr(self.engine, "listen", None)
        if not callable(inner):
            return None
        return lambda blocks, rate: _heard(inner(blocks, rate))

    @property
    def input_sample_rate(self) -> int | None:
        """The rate the engine wants ``listen``'s blocks at, or ``None`` when it declares none.

        EngineFailed (one line) when it declares something that is not a positive int.
        """
        declared = getattr(self.engine, "input_sample_rate", None)
        if declared is None:
            return None
        rate = _rate(declared)
        if rate is None:
            raise EngineFailed(
                f"the engine's input_sample_rate is {declared!r}; it must be a positive int"
            )
        return rate


def _heard(items: Iterable[object]) -> Iterator[TextChunk]:
    """``listen()``'s items as :class:`TextChunk`\\ s (a ``str`` is one); others: EngineFailed."""
    try:
        for item in items:
            if isinstance(item, TextChunk):
                yield item
            elif isinstance(item, str):
                yield TextChunk(text=item)
            else:
                raise EngineFailed(f"listen() yielded {_kind(item)}; expected TextChunk or str")
    finally:
        # Closing this generator (the pipeline stopped early) must stop the engine's one as well.
        close = getattr(items, "close", None)
        if callable(close):
            close()


def _chunks(items: Iterable[object], engine: object) -> Iterator[Chunk | TextChunk]:
    try:
        for item in items:
            yield as_chunk(item, engine)
    finally:
        # Closing this generator (a client gone, a timeout) must stop the engine's one as well.
        close = getattr(items, "close", None)
        if callable(close):
            close()


def _call_if_present(engine: object, method: str) -> Any:
    fn = getattr(engine, method, None)
    return fn() if callable(fn) else None


def adapt(engine: object) -> Adapted:
    """``engine`` behind the full protocol (the same object when it already is)."""
    return engine if isinstance(engine, Adapted) else Adapted(engine)


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
