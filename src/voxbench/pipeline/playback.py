"""Play an answer as it arrives, as a listener's speaker would, and see what they hear.

Each audio chunk is scheduled at its arrival or when the audio before it ends, whichever is
later; playback starts with the first chunk (no jitter buffer). A chunk that arrives after the
audio before it has run out leaves the listener in silence: a *stall*, counted when it is longer
than ``stall_threshold_ms`` (10 ms, as for streamed load: sub-millisecond jitter is not a stall).

The first *audible* sample is the first whose magnitude reaches ``audible_dbfs`` (-40 dBFS by
default): leading silence a TTS engine puts before its speech is time the listener waits too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AUDIBLE_DBFS = -40.0
STALL_THRESHOLD_MS = 10.0


@dataclass
class Playback:
    """The timeline of one answer's audio, from chunk arrivals (``perf_counter_ns`` times)."""

    audible_dbfs: float = AUDIBLE_DBFS
    stall_threshold_ms: float = STALL_THRESHOLD_MS
    first_byte_ns: int | None = None
    first_audible_ns: int | None = None
    end_ns: int | None = None  # when the last scheduled sample finishes playing
    last_arrival_ns: int | None = None
    samples: int = 0
    sample_rate: int | None = None
    stalls_ms: list[float] = field(default_factory=list)
    leading_silence_s: float = 0.0
    _silent_so_far: bool = True

    def add(self, arrival_ns: int, audio: np.ndarray, sample_rate: int) -> None:
        """Schedule one chunk that arrived at ``arrival_ns``."""
        n = int(audio.shape[0])
        if n == 0:
            return
        if self.sample_rate is None:
            self.sample_rate = sample_rate
        elif sample_rate != self.sample_rate:
            raise ValueError(f"answer changed sample rate ({self.sample_rate} → {sample_rate})")
        if self.first_byte_ns is None:
            self.first_byte_ns = arrival_ns
            start = arrival_ns
        else:
            assert self.end_ns is not None
            gap_ms = (arrival_ns - self.end_ns) / 1e6
            if gap_ms > self.stall_threshold_ms:
                self.stalls_ms.append(gap_ms)
            start = max(arrival_ns, self.end_ns)
        if self._silent_so_far:
            level = 10.0 ** (self.audible_dbfs / 20.0)
            loud = np.flatnonzero(np.abs(audio) >= level)
            if loud.size:
                self._silent_so_far = False
                offset = int(loud[0])
                self.first_audible_ns = start + round(offset * 1e9 / sample_rate)
                self.leading_silence_s += offset / sample_rate
            else:
                self.leading_silence_s += n / sample_rate
        self.end_ns = start + round(n * 1e9 / sample_rate)
        self.last_arrival_ns = arrival_ns
        self.samples += n

    @property
    def audio_seconds(self) -> float:
        """Length of the answer's audio."""
        return self.samples / self.sample_rate if self.sample_rate else 0.0

    @property
    def stall_ms(self) -> float:
        """Total time the listener waited in silence after playback began."""
        return float(sum(self.stalls_ms))
