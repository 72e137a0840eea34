"""FluidSynth, the SoundFont synthesizer, rendering MIDI files offline through pyfluidsynth.

The MIDI file is parsed with mido and played into the synth by sample position: audio is rendered
in blocks between events, never sample by sample. Output is taken as float32 from
``fluid_synth_write_float`` rather than pyfluidsynth's int16 ``get_samples``: the int16 path adds
dither from a table whose position carries over between calls, so two renders of one file differ
(by about 1 LSB, measured), and it clips inside the synth where float output lets us clip once.

Every call starts from the same state (see :meth:`FluidSynthEngine._reset`), so equal inputs give
bit-identical audio whatever was rendered before."""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from voxbench.engine import BaseEngine, Chunk, InputKind, Output, stage
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

if TYPE_CHECKING:
    import numpy as np  # imported where used: listing engines must not pay for numpy

SOUNDFONT_ENV = "VOXBENCH_SOUNDFONT"
DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
_PIP_HINT = "pip install 'voxbench[fluidsynth]'"
_LIB_HINT = f"apt-get install fluidsynth; {_PIP_HINT}"
CHUNK_SECONDS = 0.5
_FLUID_BUFSIZE = 64  # FluidSynth's internal block, fixed at compile time
_SETTLE_FRAMES = _FLUID_BUFSIZE
TAIL_SECONDS = 1.0  # rendered after the last event, so releases and reverb die away


def soundfont_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The soundfont to use: the argument, else ``$VOXBENCH_SOUNDFONT``, else Debian's GM font."""
    return Path(explicit or os.environ.get(SOUNDFONT_ENV) or DEFAULT_SOUNDFONT)


def _soundfont_reason(path: Path) -> str | None:
    if path.is_file():
        return None
    return (
        f"soundfont {path} not found (apt-get install fluid-soundfont-gm, or set {SOUNDFONT_ENV})"
    )


def _import_fluidsynth() -> Any:
    """pyfluidsynth; its import dlopens libfluidsynth, raising ImportError/OSError without it."""
    with contextlib.redirect_stdout(
        io.StringIO()
    ):  # it prints where it found the library when CI is set
        import fluidsynth

    if not hasattr(fluidsynth, "Synth"):
        raise ImportError(f"module {fluidsynth.__name__!r} is not pyfluidsynth")
    return fluidsynth


def _write_float(library: str) -> Any:
    """``fluid_synth_write_float`` of the libfluidsynth pyfluidsynth loaded (it binds no such)."""
    func = ctypes.CDLL(library).fluid_synth_write_float
    func.argtypes = [
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    func.restype = ctypes.c_int
    return func


def _set_sample_rate(library: str) -> Any:
    """``fluid_synth_set_sample_rate``, deprecated since 2.1: None where it is gone."""
    try:
        func = ctypes.CDLL(library).fluid_synth_set_sample_rate
    except AttributeError:
        return None
    func.argtypes = [ctypes.c_void_p, ctypes.c_float]
    func.restype = None
    return func


def _library_version(library: str) -> str | None:
    try:
        func = ctypes.CDLL(library).fluid_version_str
    except (OSError, AttributeError):
        return None
    func.restype = ctypes.c_char_p
    raw = func()
    return raw.decode() if raw else None


def _schedule(path: Path, sample_rate: int) -> tuple[list[tuple[int, Any]], int]:
    """Channel messages by sample position, and the position where the file ends."""
    import mido

    try:
        midi = mido.MidiFile(path)
    except (OSError, EOFError, ValueError) as exc:
        raise ConfigError(f"cannot read MIDI file {path}: {exc}") from exc
    events: list[tuple[int, Any]] = []
    seconds = 0.0
    for msg in midi:  # iteration merges tracks and gives delta times in seconds (tempo applied)
        seconds += msg.time
        if not msg.is_meta:
            events.append((round(seconds * sample_rate), msg))
    return events, round(seconds * sample_rate)


class FluidSynthEngine(BaseEngine):
    """FluidSynth rendering a MIDI file with a General MIDI soundfont (no audio driver)."""

    name: ClassVar[str] = "fluidsynth"
    input_kind: ClassVar[InputKind] = "midi"
    description: ClassVar[str] = "FluidSynth MIDI renderer (pyfluidsynth) with FluidR3_GM piano"
    default_workloads: ClassVar[tuple[str, ...]] = ("piano",)

    def __init__(
        self, soundfont: str | None = None, sample_rate: int = 44100, gain: float = 1.0
    ) -> None:
        self.soundfont = soundfont_path(soundfont)
        self.sample_rate = int(sample_rate)
        self.gain = float(gain)
        self._synth: Any = None
        self._write: Any = None
        self._set_sample_rate: Any = None
        self._library: str | None = None

    @classmethod
    def check(cls) -> str | None:
        """None when pyfluidsynth, libfluidsynth and the soundfont are all here, else the fix."""
        if importlib.util.find_spec("fluidsynth") is None:
            return f"pyfluidsynth not installed ({_PIP_HINT})"
        try:
            _import_fluidsynth()
        except (ImportError, OSError):
            return f"libfluidsynth not found ({_LIB_HINT})"
        return _soundfont_reason(soundfont_path())

    def load(self) -> None:
        """Create the synth and load the soundfont (the cold part: ~140 MB of samples)."""
        if self._synth is not None:
            return
        try:
            fluidsynth = _import_fluidsynth()
        except (ImportError, OSError) as exc:
            raise EngineUnavailable(f"libfluidsynth not found ({_LIB_HINT}): {exc}") from exc
        if reason := _soundfont_reason(self.soundfont):
            raise EngineUnavailable(reason)
        self._library = str(fluidsynth.lib)
        self._write = _write_float(self._library)
        self._set_sample_rate = _set_sample_rate(self._library)
        synth = fluidsynth.Synth(gain=self.gain, samplerate=self.sample_rate)
        if synth.sfload(str(self.soundfont), 1) < 0:
            synth.delete()
            raise EngineFailed(f"FluidSynth could not load the soundfont {self.soundfont}")
        self._synth = synth

    def _loaded(self) -> Any:
        if self._synth is None:
            raise EngineFailed("fluidsynth engine used before load() or after close()")
        return self._synth

    def _apply(self, msg: Any) -> None:
        """Send one channel message; aftertouch and SysEx are dropped (pyfluidsynth lacks them)."""
        synth = self._synth
        kind = msg.type
        if kind == "note_on":
            synth.noteon(msg.channel, msg.note, msg.velocity)  # velocity 0 is a note-off to it
        elif kind == "note_off":
            synth.noteoff(msg.channel, msg.note)
        elif kind == "control_change":
            synth.cc(msg.channel, msg.control, msg.value)
        elif kind == "program_change":
            synth.program_change(msg.channel, msg.program)
        elif kind == "pitchwheel":
            synth.pitch_bend(msg.channel, msg.pitch)

    def _render_into(self, buffer: np.ndarray, start: int, frames: int) -> None:
        # Interleaved stereo straight into the numpy buffer: offsets and strides count floats.
        address = buffer.ctypes.data
        code = self._write(
            self._synth.synth, frames, address, 2 * start, 2, address, 2 * start + 1, 2
        )
        if code != 0:
            raise EngineFailed(f"fluid_synth_write_float failed with code {code}")

    def _blocks(self, events: list[tuple[int, Any]], end: int) -> Iterator[np.ndarray]:
        """Mono float32 blocks of ``CHUNK_SECONDS``, rendered between events."""
        import numpy as np

        total = end + round(TAIL_SECONDS * self.sample_rate)
        # FluidSynth renders 64-frame blocks and keeps a partial one for the next write; ending
        # each call on a block boundary makes every call start in the same phase (independence).
        total += -total % _FLUID_BUFSIZE
        # Whole blocks per chunk too: a stream closed early then still stops on a block boundary.
        size = max(1, round(CHUNK_SECONDS * self.sample_rate / _FLUID_BUFSIZE)) * _FLUID_BUFSIZE
        position, index = 0, 0
        while position < total:
            frames = min(size, total - position)
            stereo = np.empty((frames, 2), dtype=np.float32)
            filled = 0
            while filled < frames:
                while index < len(events) and events[index][0] <= position:
                    self._apply(events[index][1])
                    index += 1
                upto = events[index][0] if index < len(events) else total
                step = min(frames - filled, upto - position)
                self._render_into(stereo, filled, step)
                filled += step
                position += step
            mono = stereo.mean(axis=1, dtype=np.float32)
            yield np.clip(mono, -1.0, 1.0, out=mono)

    def _reset(self) -> None:
        """Silence and reset the synth so that no call hears the one before it."""
        import numpy as np

        synth = self._loaded()
        # system_reset stops the voices and resets the channels, but in FluidSynth 2.3 it leaves
        # the reverb and chorus ringing, their modulators mid-phase. Re-applying the sample rate
        # rebuilds both effects from scratch; doing it again after one rendered block also
        # drops what the dying voices fed into them in their last block.
        synth.system_reset()
        self._clear_effects()
        scratch = np.empty((_SETTLE_FRAMES, 2), dtype=np.float32)
        self._render_into(scratch, 0, _SETTLE_FRAMES)
        self._clear_effects()

    def _clear_effects(self) -> None:
        if self._set_sample_rate is not None:
            self._set_sample_rate(self._synth.synth, float(self.sample_rate))

    def stream(self, inp: Path) -> Iterator[Chunk]:
        """Yield ~0.5 s chunks of mono audio as they are rendered, then a 1 s release tail."""
        self._reset()
        with stage("parse"):
            events, end = _schedule(Path(inp), self.sample_rate)
        blocks = self._blocks(events, end)
        while True:
            with stage("render"):
                block = next(blocks, None)
            if block is None:
                return
            yield Chunk(audio=block, sample_rate=self.sample_rate)

    def synthesize(self, inp: Path) -> Output:
        """The whole piece plus its tail, float32 mono in [-1, 1]."""
        import numpy as np

        parts = [chunk.audio for chunk in self.stream(inp)]
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        return Output(audio=audio, sample_rate=self.sample_rate)

    def close(self) -> None:
        """Free the synth and its soundfont."""
        if self._synth is not None:
            self._synth.delete()
            self._synth = None

    def info(self) -> dict[str, Any]:
        """Soundfont, sample rate, gain, FluidSynth version and the synth settings that matter."""
        result: dict[str, Any] = {
            "soundfont": str(self.soundfont),
            "sample_rate": self.sample_rate,
            "gain": self.gain,
            "chunk_seconds": CHUNK_SECONDS,
            "tail_seconds": TAIL_SECONDS,
        }
        if self._library:
            result["fluidsynth_version"] = _library_version(self._library)
        from voxbench.engines.footprint import footprint

        result["footprint"] = footprint([], [Path(self.soundfont)])
        if self._synth is not None:
            for key in (
                "synth.polyphony",
                "synth.cpu-cores",
                "synth.reverb.active",
                "synth.chorus.active",
            ):
                result[key.removeprefix("synth.")] = self._synth.get_setting(key)
        return result
