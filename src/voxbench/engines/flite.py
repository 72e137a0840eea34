"""Flite (CMU Festival-lite), the small diphone/clustergen synthesizer, run as one process per call.

``flite -voice slt -t TEXT -o out.wav`` writes 16 kHz 16-bit mono (8 kHz for ``kal``). A measured
call includes the process start, as a user running the program pays it; its peak memory is the
child's (``RUSAGE_CHILDREN``, read by the timing code). Flite writes its file only when the
whole utterance is synthesized, so there is no stream: time to first audio is the call.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from voxbench.engine import BaseEngine, InputKind, Output
from voxbench.engines.footprint import footprint
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

_INSTALL_HINT = "apt-get install flite"
VOICES: tuple[str, ...] = ("kal", "kal16", "awb", "rms", "slt")
_MESSAGE_CHARS = 300


class FliteEngine(BaseEngine):
    """Flite via its command-line program, one of its built-in voices (default ``slt``)."""

    name: ClassVar[str] = "flite"
    input_kind: ClassVar[InputKind] = "text"
    description: ClassVar[str] = "CMU Flite TTS (flite command, one process per call), 16 kHz"
    default_workloads: ClassVar[tuple[str, ...]] = ("short", "medium", "long")

    def __init__(self, voice: str = "slt", timeout_s: float = 120.0) -> None:
        if voice not in VOICES and not Path(voice).suffix == ".flitevox":
            raise ConfigError(
                f"flite has no built-in voice {voice!r} (built in: {', '.join(VOICES)}; "
                "or give a .flitevox file)"
            )
        self.voice = voice
        self.timeout_s = timeout_s
        self._program: str | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def check(cls) -> str | None:
        """None when the flite program is on PATH, else the reason and the fix."""
        if shutil.which("flite") is None:
            return f"the flite program is not installed ({_INSTALL_HINT})"
        return None

    def load(self) -> None:
        """Find the program and make a scratch folder; one tiny synthesis warms the page cache."""
        if self._program is not None:
            return
        program = shutil.which("flite")
        if program is None:
            raise EngineUnavailable(f"the flite program is not installed ({_INSTALL_HINT})")
        self._program = program
        self._folder = tempfile.TemporaryDirectory(prefix="voxbench-flite-")

    def synthesize(self, inp: str) -> Output:
        """Run flite once; the WAV it wrote as float32 mono."""
        from voxbench.wav import WavDecoder

        if self._program is None or self._folder is None:
            raise EngineFailed("flite engine used before load() or after close()")
        out = Path(self._folder.name) / "out.wav"
        out.unlink(missing_ok=True)  # a stale file must not pass for this call's audio
        args = [self._program, "-voice", self.voice, "-t", inp, "-o", str(out)]
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise EngineFailed(f"flite took longer than {self.timeout_s:g} s") from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            last = message[-1][:_MESSAGE_CHARS] if message else "no message"
            raise EngineFailed(f"flite exited with status {done.returncode}: {last}")
        if not out.is_file() or out.stat().st_size == 0:
            raise EngineFailed(f"flite wrote no audio to {out}")
        decoder = WavDecoder(context=f"flite's WAV {out}")
        audio = decoder.feed(out.read_bytes())
        decoder.finish()
        rate = decoder.sample_rate
        if rate is None or len(audio) == 0:
            raise EngineFailed(f"flite wrote no audio samples to {out}")
        return Output(audio=audio, sample_rate=int(rate))

    def close(self) -> None:
        """Remove the scratch folder."""
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self._program = None

    def info(self) -> dict[str, Any]:
        """Voice, program path, flite version and the footprint of the package."""
        result: dict[str, Any] = {"voice": self.voice, "program": shutil.which("flite")}
        version = _flite_version(result["program"])
        if version:
            result["flite_version"] = version
        result["footprint"] = footprint([], _flite_files(self.voice))
        return result


def _flite_version(program: str | None) -> str | None:
    if program is None:
        return None
    try:
        done = subprocess.run([program, "--version"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        if "version:" in line:
            return line.split("version:", 1)[1].strip().split()[0]
    return None


def _flite_files(voice: str) -> list[Path]:
    """What a call with ``voice`` loads: the program, libflite, the US English lexicon and
    language libraries, and the voice's own library (voices are compiled into libflite_cmu_us_*)."""
    program = shutil.which("flite")
    files: list[Path] = [Path(program).resolve()] if program else []
    if Path(voice).suffix == ".flitevox":
        files.append(Path(voice))
    names = (
        "libflite.so.*",
        "libflite_usenglish.so.*",
        "libflite_cmulex.so.*",
        f"libflite_cmu_us_{voice}.so.*",
    )
    for folder in (
        Path("/usr/lib/x86_64-linux-gnu"),
        Path("/usr/lib/aarch64-linux-gnu"),
        Path("/usr/lib"),
    ):
        for pattern in names:
            files.extend(p.resolve() for p in folder.glob(pattern))
    return sorted(set(files))
