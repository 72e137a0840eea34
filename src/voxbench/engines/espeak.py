"""espeak-ng, the formant synthesizer, driven in-process through libespeak-ng and ctypes.

The library is called directly (not the ``espeak-ng`` command) so that a measurement holds the
synthesis alone, without a process start, and so that audio can be streamed as espeak makes it.
libespeak-ng keeps all of its state in globals: one process-wide :class:`_Library` serialises every
call with a lock and remembers which voice and rate it was last set to.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from voxbench.engine import BaseEngine, Chunk, InputKind, Output
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

if TYPE_CHECKING:
    import numpy as np  # imported where used: listing engines must not pay for numpy

LIBRARY_ENV = "VOXBENCH_ESPEAK_LIBRARY"
_INSTALL_HINT = "apt-get install espeak-ng"

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data folder instead of calling exit()
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_RATE_NORMAL = 175
_EE_OK = 0

# int SynthCallback(short *wav, int numsamples, espeak_EVENT *events): non-zero aborts synthesis.
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
# A sink receives one buffer of int16 samples and returns True to abort the synthesis.
_Sink = Callable[[bytes], bool]


def library_path() -> str:
    """The libespeak-ng to load: ``$VOXBENCH_ESPEAK_LIBRARY``, else the system's."""
    return (
        os.environ.get(LIBRARY_ENV) or ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    )


class _Voice(ctypes.Structure):
    """espeak_VOICE, to select a voice by language."""

    _fields_: ClassVar[list[tuple[str, Any]]] = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


def _declare(cdll: ctypes.CDLL) -> None:
    """Set the C signatures, so ctypes neither truncates pointers nor guesses argument types."""
    c = ctypes
    cdll.espeak_Initialize.argtypes = [c.c_int, c.c_int, c.c_char_p, c.c_int]
    cdll.espeak_Initialize.restype = c.c_int
    cdll.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    cdll.espeak_SetSynthCallback.restype = None
    cdll.espeak_SetVoiceByName.argtypes = [c.c_char_p]
    cdll.espeak_SetVoiceByProperties.argtypes = [c.POINTER(_Voice)]
    cdll.espeak_SetParameter.argtypes = [c.c_int, c.c_int, c.c_int]
    cdll.espeak_Synth.argtypes = [
        c.c_char_p,
        c.c_size_t,
        c.c_uint,
        c.c_int,
        c.c_uint,
        c.c_uint,
        c.POINTER(c.c_uint),
        c.c_void_p,
    ]
    cdll.espeak_Synchronize.argtypes = []
    cdll.espeak_Info.argtypes = [c.POINTER(c.c_char_p)]
    cdll.espeak_Info.restype = c.c_char_p
    returning_error = (
        "espeak_SetVoiceByName",
        "espeak_SetVoiceByProperties",
        "espeak_SetParameter",
        "espeak_Synth",
        "espeak_Synchronize",
    )
    for name in returning_error:
        getattr(cdll, name).restype = c.c_int


class _Library:
    """One loaded libespeak-ng: initialised while at least one engine holds it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cdll = ctypes.CDLL(path)
        _declare(self.cdll)
        # One lock for every call: libespeak-ng keeps its state in globals and is not thread safe.
        self.lock = threading.Lock()
        self.users = 0
        self.sample_rate = 0
        self.settings: tuple[str, int] | None = None
        self.sink: _Sink | None = None
        # Kept on the instance for the library's lifetime: ctypes would free a temporary callback
        # while espeak still holds its address.
        self.callback = _SynthCallback(self._on_audio)

    def _on_audio(self, wav: Any, numsamples: int, _events: Any) -> int:
        # Runs inside espeak_Synth, in the synthesizing thread. An exception cannot cross the C
        # frame, so any failure aborts the synthesis instead.
        try:
            sink = self.sink
            if sink is None:
                return 1
            if numsamples > 0 and wav:
                return 1 if sink(ctypes.string_at(wav, numsamples * 2)) else 0
            return 0
        except BaseException:
            return 1

    def acquire(self) -> None:
        """Initialise the library for one more user; the first one pays the start-up."""
        with self.lock:
            if self.users == 0:
                rate = self.cdll.espeak_Initialize(
                    _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_DONT_EXIT
                )
                if rate <= 0:
                    raise EngineUnavailable(
                        f"espeak_Initialize failed in {self.path} (is espeak-ng-data installed? "
                        f"{_INSTALL_HINT})"
                    )
                self.cdll.espeak_SetSynthCallback(self.callback)
                self.sample_rate = rate
                self.settings = None
            self.users += 1

    def release(self) -> None:
        """Drop one user; the library stays initialised.

        Never espeak_Terminate: libespeak-ng 1.51 hangs in espeak_Synth after espeak_Terminate +
        espeak_Initialize, while a second espeak_Initialize alone works (and leaks ~8 KB), so the
        next first user simply initialises it again.
        """
        with self.lock:
            self.users = max(0, self.users - 1)

    def _set_voice(self, voice: str) -> bool:
        """By voice file name ("en-us"), else by language ("en-gb") as the espeak-ng CLI does."""
        if self.cdll.espeak_SetVoiceByName(voice.encode()) == _EE_OK:
            return True
        spec = _Voice(languages=voice.encode())
        return bool(self.cdll.espeak_SetVoiceByProperties(ctypes.byref(spec)) == _EE_OK)

    def select(self, voice: str, rate: int | None) -> None:
        """Select voice and rate unless they are already current (they are process-global)."""
        wanted = (voice, rate or _RATE_NORMAL)
        if self.settings == wanted:
            return
        self.settings = None
        if not self._set_voice(voice):
            raise ConfigError(f"espeak-ng has no voice {voice!r} (list them: espeak-ng --voices)")
        if self.cdll.espeak_SetParameter(_PARAM_RATE, wanted[1], 0) != _EE_OK:
            raise ConfigError(f"espeak-ng rejected rate {wanted[1]} (words per minute)")
        self.settings = wanted

    def synth(self, text: str, voice: str, rate: int | None, sink: _Sink) -> None:
        """Synthesize ``text`` in the calling thread, handing each buffer to ``sink``."""
        data = text.encode("utf-8")
        with self.lock:
            if self.users == 0:
                raise EngineFailed("espeak engine used before load() or after close()")
            self.select(voice, rate)
            self.sink = sink
            try:
                code = self.cdll.espeak_Synth(
                    data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                self.cdll.espeak_Synchronize()
            finally:
                self.sink = None
        if code != _EE_OK:
            raise EngineFailed(f"espeak_Synth failed with code {code}")

    def info(self) -> tuple[str, str]:
        """``(version, data folder)`` as libespeak-ng reports them."""
        data_path = ctypes.c_char_p()
        version = self.cdll.espeak_Info(ctypes.byref(data_path)) or b""
        return version.decode(errors="replace"), (data_path.value or b"").decode(errors="replace")


_libraries: dict[str, _Library] = {}
_libraries_lock = threading.Lock()


def _library(path: str) -> _Library:
    with _libraries_lock:
        if path not in _libraries:
            _libraries[path] = _Library(path)
        return _libraries[path]


_DONE = object()


def _to_float(pcm: bytes) -> np.ndarray:
    """Native-endian int16 samples as float32 in [-1, 1)."""
    import numpy as np

    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


class EspeakEngine(BaseEngine):
    """espeak-ng through libespeak-ng: rule-based, tiny, fast; the baseline of text engines."""

    name: ClassVar[str] = "espeak"
    input_kind: ClassVar[InputKind] = "text"
    description: ClassVar[str] = "espeak-ng formant TTS via libespeak-ng (in-process, streaming)"
    default_workloads: ClassVar[tuple[str, ...]] = ("short", "medium", "long")

    def __init__(self, voice: str = "en-us", rate: int | None = None) -> None:
        self.voice = voice
        self.rate = rate
        self._lib: _Library | None = None

    @classmethod
    def check(cls) -> str | None:
        """None when libespeak-ng loads, else the reason and the fix."""
        path = library_path()
        try:
            ctypes.CDLL(path)
        except OSError:
            return f"libespeak-ng not found at {path!r} ({_INSTALL_HINT})"
        return None

    def load(self) -> None:
        """Initialise libespeak-ng (retrieval mode, 22,050 Hz) and select the voice."""
        if self._lib is not None:
            return
        try:
            lib = _library(library_path())
        except OSError as exc:
            raise EngineUnavailable(f"libespeak-ng not found ({_INSTALL_HINT}): {exc}") from exc
        lib.acquire()
        try:
            with lib.lock:
                lib.select(self.voice, self.rate)
        except BaseException:
            lib.release()
            raise
        self._lib = lib

    def _loaded(self) -> _Library:
        if self._lib is None:
            raise EngineFailed("espeak engine used before load() or after close()")
        return self._lib

    def synthesize(self, inp: str) -> Output:
        """The whole utterance as float32 mono in [-1, 1]."""
        lib = self._loaded()
        buffers: list[bytes] = []

        def collect(data: bytes) -> bool:
            buffers.append(data)
            return False

        lib.synth(inp, self.voice, self.rate, collect)
        audio = _to_float(b"".join(buffers))
        return Output(audio=audio, sample_rate=lib.sample_rate)

    def stream(self, inp: str) -> Iterator[Chunk]:
        """Yield each buffer as espeak produces it (about 50 ms of audio each)."""
        lib = self._loaded()
        # Unbounded, so the producer never blocks: an abandoned stream cannot hold the lock.
        pending: queue.SimpleQueue[Any] = queue.SimpleQueue()
        cancel = threading.Event()

        def feed(data: bytes) -> bool:
            pending.put(data)
            return cancel.is_set()

        def work() -> None:
            try:
                lib.synth(inp, self.voice, self.rate, feed)
            except BaseException as exc:
                pending.put(exc)
            else:
                pending.put(_DONE)

        worker = threading.Thread(target=work, name="voxbench-espeak", daemon=True)
        worker.start()
        try:
            while (item := pending.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield Chunk(audio=_to_float(item), sample_rate=lib.sample_rate)
        finally:
            cancel.set()  # makes the next callback abort espeak_Synth
            worker.join()

    def close(self) -> None:
        """Let go of libespeak-ng (it stays loaded: see :meth:`_Library.release`)."""
        if self._lib is not None:
            self._lib.release()
            self._lib = None

    def info(self) -> dict[str, Any]:
        """Voice, rate, library path and espeak-ng version."""
        result: dict[str, Any] = {
            "voice": self.voice,
            "rate": self.rate or _RATE_NORMAL,
            "library": library_path(),
        }
        try:
            lib = self._lib or _library(library_path())
        except OSError:
            return result
        version, data_path = lib.info()
        result.update(library=lib.path, espeak_version=version, espeak_data=data_path)
        from pathlib import Path

        from voxbench.engines.footprint import footprint

        # the voice data; the library itself only when it was found by path (not a soname)
        files = [Path(p) for p in (lib.path, data_path) if p and os.path.isabs(p)]
        result["footprint"] = footprint([], files)
        return result
