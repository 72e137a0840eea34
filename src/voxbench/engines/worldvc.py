"""Voice conversion on the WORLD vocoder (pyworld): F0 shift and formant shift of an audio file.

WORLD (M. Morise, F. Yokomori, K. Ozawa, "WORLD: a vocoder-based high-quality speech synthesis
system for real-time applications", IEICE Trans. Inf. & Syst. E99-D(7), 2016) analyses speech into
an F0 contour (DIO, or Harvest: Morise, Interspeech 2017; refined by StoneMask), a smooth spectral
envelope (CheapTrick, Morise, Speech Communication 67, 2015) and a band aperiodicity (D4C,
Morise, Speech Communication 84, 2016), and synthesises a waveform back from the three.

The conversion is the one of WORLD's own test program (``test/test.cpp``, ``ParameterModification``):

* F0 multiplied by ``2 ** (shift / 12)`` (unvoiced frames stay 0);
* the envelope warped along the frequency axis by ``warp``: the new envelope at ``f`` is the old
  one at ``f / warp``, interpolated on log power, so ``warp > 1`` moves the formants up; above
  the old Nyquist mapped down (``warp < 1``) the last value is held;
* the aperiodicity kept as it is.

Presets trade accuracy for time, following how WORLD's test program uses each estimator:

======== ============================================ ============
preset   F0                                           frame period
======== ============================================ ============
fast     DIO on the input decimated to ~8 kHz          10 ms
balanced DIO (full rate) + StoneMask                   5 ms
quality  Harvest (WORLD runs no StoneMask after it)    5 ms
======== ============================================ ============

``stonemask=`` and ``frame_period_ms=`` override a preset's choice. Each call reads the file and
runs the whole analysis and synthesis: nothing is cached between calls, so equal inputs cost the
same every time. The output has the input's length and rate; it is scaled down (never clipped)
only when the synthesis overshoots full scale.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from voxbench.engine import BaseEngine, InputKind, Output, stage
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable

if TYPE_CHECKING:
    import numpy as np  # imported where used: listing engines must not pay for numpy

_PIP_HINT = "pip install 'voxbench[worldvc]'"
DIO_TARGET_RATE = 8000.0  # the "fast" preset decimates DIO's input to about this rate (as Harvest)


@dataclass(frozen=True)
class Preset:
    """One analysis setting: the F0 estimator, whether StoneMask refines it, the frame period,
    and whether DIO decimates its input (``coarse``)."""

    estimator: Literal["dio", "harvest"]
    stonemask: bool
    frame_period_ms: float
    coarse: bool = False


PRESETS: dict[str, Preset] = {
    "fast": Preset("dio", stonemask=False, frame_period_ms=10.0, coarse=True),
    "balanced": Preset("dio", stonemask=True, frame_period_ms=5.0),
    "quality": Preset("harvest", stonemask=False, frame_period_ms=5.0),
}


def _import_pyworld() -> Any:
    """pyworld, without the pkg_resources deprecation warning some builds print on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyworld

    return pyworld


def _version() -> str | None:
    try:
        return metadata.version("pyworld")
    except metadata.PackageNotFoundError:
        return None


def warp_envelope(envelope: np.ndarray, ratio: float) -> np.ndarray:
    """Envelope frames (``frames × bins``, power) with the frequency axis stretched by ``ratio``.

    Bin ``j`` of the result is the old envelope at bin ``j / ratio``, linearly interpolated on
    log power; positions past the last bin hold its value. Vectorised: one gather per side.
    """
    import numpy as np

    if ratio == 1.0:
        return envelope.copy()
    bins = envelope.shape[1]
    position = np.minimum(np.arange(bins) / ratio, bins - 1)
    left = np.floor(position).astype(np.intp)
    right = np.minimum(left + 1, bins - 1)
    frac = position - left
    log_env = np.log(np.maximum(envelope, np.finfo(np.float64).tiny))
    warped = log_env[:, left] * (1.0 - frac) + log_env[:, right] * frac
    return np.ascontiguousarray(np.exp(warped))  # pyworld takes C-contiguous arrays only


class WorldVCEngine(BaseEngine):
    """WORLD vocoder voice conversion (pyworld): F0 shift in semitones plus formant warp."""

    name: ClassVar[str] = "worldvc"
    input_kind: ClassVar[InputKind] = "audio"
    description: ClassVar[str] = "WORLD vocoder voice conversion (pyworld): pitch + formant shift"
    default_workloads: ClassVar[tuple[str, ...]] = ("singing5",)  # singing30 by name: ~8 s a call

    def __init__(
        self,
        preset: str = "balanced",
        shift: float = 2.0,
        warp: float = 1.1,
        f0_floor: float = 71.0,
        f0_ceil: float = 800.0,
        frame_period_ms: float | None = None,
        stonemask: bool | None = None,
        fft_size: int | None = None,
    ) -> None:
        if preset not in PRESETS:
            raise ConfigError(
                f"worldvc: preset must be one of {', '.join(PRESETS)}, not {preset!r}"
            )
        base = PRESETS[preset]
        self.preset = preset
        self.shift = float(shift)
        self.warp = float(warp)
        self.f0_floor = float(f0_floor)
        self.f0_ceil = float(f0_ceil)
        self.frame_period_ms = float(frame_period_ms or base.frame_period_ms)
        self.stonemask = base.stonemask if stonemask is None else bool(stonemask)
        self.estimator = base.estimator
        self.coarse = base.coarse
        self.fft_size = int(fft_size) if fft_size else None
        if not (math.isfinite(self.warp) and self.warp > 0):
            raise ConfigError(f"worldvc: warp must be a positive ratio, not {warp!r}")
        if not math.isfinite(self.shift):
            raise ConfigError(f"worldvc: shift must be a number of semitones, not {shift!r}")
        if not 0 < self.f0_floor < self.f0_ceil:
            raise ConfigError("worldvc: need 0 < f0_floor < f0_ceil")
        if self.frame_period_ms <= 0:
            raise ConfigError("worldvc: frame_period_ms must be positive")
        self._pw: Any = None
        self._last_fft_size: int | None = None

    @classmethod
    def check(cls) -> str | None:
        """None when pyworld is installed, else the fix."""
        if importlib.util.find_spec("pyworld") is None:
            return f"pyworld not installed ({_PIP_HINT})"
        return None

    def load(self) -> None:
        """Import pyworld (and numpy, soundfile): the whole of this engine's setup."""
        if self._pw is not None:
            return
        try:
            self._pw = _import_pyworld()
        except ImportError as exc:
            raise EngineUnavailable(f"pyworld cannot be imported ({_PIP_HINT}): {exc}") from exc
        import soundfile  # noqa: F401  (its import loads libsndfile: part of the cold start)

    def _loaded(self) -> Any:
        if self._pw is None:
            raise EngineFailed("worldvc engine used before load() or after close()")
        return self._pw

    def _f0(self, x: np.ndarray, fs: int) -> tuple[np.ndarray, np.ndarray]:
        """F0 per frame and the frame times, with the preset's estimator."""
        pw = self._pw
        period = self.frame_period_ms
        if self.estimator == "harvest":
            f0, times = pw.harvest(
                x, fs, f0_floor=self.f0_floor, f0_ceil=self.f0_ceil, frame_period=period
            )
        else:
            speed = max(1, min(12, round(fs / DIO_TARGET_RATE))) if self.coarse else 1
            f0, times = pw.dio(
                x, fs, f0_floor=self.f0_floor, f0_ceil=self.f0_ceil, frame_period=period,
                speed=speed,
            )  # fmt: skip
        if self.stonemask:
            f0 = pw.stonemask(x, f0, times, fs)
        return f0, times

    def synthesize(self, inp: Path) -> Output:
        """Convert the audio file ``inp``: float32 mono at its own rate and length."""
        import numpy as np
        import soundfile as sf

        pw = self._loaded()
        with stage("read"):
            try:
                data, fs = sf.read(str(inp), dtype="float64", always_2d=True)
            except (OSError, RuntimeError) as exc:  # soundfile.LibsndfileError is a RuntimeError
                raise ConfigError(f"worldvc cannot read audio file {inp}: {exc}") from exc
            x = np.ascontiguousarray(data.mean(axis=1))
        if len(x) == 0:
            return Output(audio=np.zeros(0, dtype=np.float32), sample_rate=int(fs))
        fft_size = self.fft_size or pw.get_cheaptrick_fft_size(fs, self.f0_floor)
        self._last_fft_size = int(fft_size)
        with stage("f0"):
            f0, times = self._f0(x, fs)
        with stage("envelope"):
            sp = pw.cheaptrick(x, f0, times, fs, f0_floor=self.f0_floor, fft_size=fft_size)
        with stage("aperiodicity"):
            ap = pw.d4c(x, f0, times, fs, fft_size=fft_size)
        with stage("convert"):
            f0 = f0 * 2.0 ** (self.shift / 12.0)
            sp = warp_envelope(sp, self.warp)
        with stage("synthesis"):
            y = pw.synthesize(f0, sp, ap, fs, self.frame_period_ms)
            # WORLD renders whole frames past the end: keep the input's length.
            y = y[: len(x)] if len(y) >= len(x) else np.concatenate([y, np.zeros(len(x) - len(y))])
            y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
            peak = float(np.abs(y).max())
            if peak > 1.0:
                y /= peak
        return Output(audio=y.astype(np.float32), sample_rate=int(fs))

    def close(self) -> None:
        self._pw = None

    def info(self) -> dict[str, Any]:
        """The conversion (``pitch_shift_semitones`` transposes a target melody) and analysis."""
        return {
            "pitch_shift_semitones": self.shift,
            "warp": self.warp,
            "preset": self.preset,
            "f0_estimator": self.estimator,
            "stonemask": self.stonemask,
            "dio_decimated": self.coarse and self.estimator == "dio",
            "frame_period_ms": self.frame_period_ms,
            "f0_floor_hz": self.f0_floor,
            "f0_ceil_hz": self.f0_ceil,
            "fft_size": self.fft_size or self._last_fft_size or "auto",
            "threads": 1,
            "pyworld_version": _version(),
            "footprint": _footprint(),
        }


def _footprint() -> dict[str, Any]:
    """No model files: the analysis and synthesis are pyworld's."""
    from voxbench.engines.footprint import footprint

    return footprint(["pyworld"], [])
