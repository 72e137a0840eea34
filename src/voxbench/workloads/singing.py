"""A deterministic synthetic singing voice, generated on demand and cached as a ``.wav`` file.

The workloads ``singing30`` and ``singing5`` are one 30 s (5 s) clip each, at 22,050 Hz, with the
sung melody as ground truth in ``item.meta["melody"]`` (``[onset_s, duration_s, midi_pitch]``).
They are the input of audio-to-audio engines (voice conversion, pitch shifting) and the target a
pitch metric can check the output against.

How the voice is made (a source-filter model, as in Klatt's formant synthesis, J. Acoust. Soc. Am.
67(3), 1980, and Sundberg's account of the singing voice, "The Science of the Singing Voice", 1987):

* a melody of phrases of 3-6 legato notes in A3-E5 (MIDI 57-76), taken from a major or minor
  scale by a stepwise random walk, note lengths 0.3-1.2 s, a breath between phrases; only
  ``random.Random(seed)`` drives the choices, so a seed names one melody on every machine;
* an F0 contour: the notes, joined by 50 ms raised-cosine glides, with vibrato (5.5 Hz, ±30 cents)
  that fades in from 0.2 s into each note;
* a band-limited glottal source: the sum of harmonics ``k`` of F0 with amplitude ``k**-2``
  (-12 dB/octave, the mean slope of a glottal flow derivative spectrum), faded out between 0.8 and
  0.9 of Nyquist so nothing aliases, computed with the Chebyshev recurrence
  ``sin(k φ) = 2 cos φ sin((k-1) φ) - sin((k-2) φ)`` rather than one ``sin`` per harmonic; plus
  aspiration noise pulsed at the glottal rate;
* attack and release envelopes per note (a dip at legato joints, silence between phrases);
* a parallel bank of five two-pole formant resonators per vowel, the vowels cycling a/e/i/o/u
  note by note and cross-faded at the joints (alto formant frequencies, bandwidths and levels
  from the Csound manual's "Formant values" table), then lip radiation (a first difference,
  +6 dB/octave, so the radiated spectrum falls at -6 dB/octave under the formants);
* a soft band-passed inhalation noise in each gap between phrases;
* peak normalisation to -3 dBFS, written as 16-bit PCM.

All of it is vectorised numpy (the only loops are over notes, harmonics and formants), and the
noise comes from ``numpy.random.default_rng(seed)``, so equal arguments give bit-identical audio.
"""

from __future__ import annotations

import io
import itertools
import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbench.workloads.base import Workload, WorkloadItem
from voxbench.workloads.midi import _write_if_changed, cache_dir

if TYPE_CHECKING:
    import numpy as np  # imported where used: listing workloads must not pay for numpy

SAMPLE_RATE = 22_050
PEAK_DBFS = -3.0
GENERATOR_VERSION = 1  # part of the cache file name: bump it when the audio changes

BUILTIN_SINGING: dict[str, float] = {"singing30": 30.0, "singing5": 5.0}
BUILTIN_SINGING_DESCRIPTIONS: dict[str, str] = {
    "singing30": "generated singing voice: 30 s melody with vibrato and vowels, 22.05 kHz",
    "singing5": "generated singing voice: 5 s melody with vibrato and vowels (quick runs, tests)",
}

LOWEST, HIGHEST = 57, 76  # A3 and E5: a range an alto or mezzo sings comfortably
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_KEYS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (60, _MAJOR), (57, _MINOR), (62, _MAJOR), (64, _MINOR), (65, _MAJOR), (67, _MAJOR),
)  # fmt: skip
# Scale steps between notes: mostly stepwise, never a repeated note.
_STEPS = (-3, -2, -1, -1, -1, 1, 1, 1, 2, 3)
_LENGTHS = (0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1.2)  # seconds, inside a phrase
_FINAL_LENGTHS = (0.75, 0.9, 1.2)  # the held last note of a phrase
_BREATHS = (0.25, 0.35, 0.45, 0.6)  # seconds between phrases
LEAD_IN_S = 0.25
TAIL_S = 0.3
MIN_NOTE_S = 0.3


@dataclass(frozen=True)
class Vibrato:
    """Periodic F0 modulation: ``rate_hz``, ±``depth_cents``, fading in over ``ramp_s`` from
    ``onset_s`` into each note (a trained singer's vibrato is 5-7 Hz, ±20-100 cents)."""

    rate_hz: float = 5.5
    depth_cents: float = 30.0
    onset_s: float = 0.2
    ramp_s: float = 0.2

    def as_meta(self) -> dict[str, float]:
        return {"rate_hz": self.rate_hz, "depth_cents": self.depth_cents,
                "onset_s": self.onset_s, "ramp_s": self.ramp_s}  # fmt: skip


VIBRATO = Vibrato()
GLIDE_S = 0.05  # pitch glide and vowel cross-fade at a legato joint, centred on it
ATTACK_S = 0.06  # phrase start: from silence
RELEASE_S = 0.1  # phrase end: to silence
JOINT_S = 0.03  # each side of a legato joint
JOINT_LEVEL = 0.8  # the amplitude dip at a legato joint
HARMONIC_TILT = 2.0  # amplitude k**-2: -12 dB per octave
MAX_HARMONICS = 48
_BLOCK = 8192  # samples per block of the harmonic sum
RADIATION = 0.97  # first difference y[n] - 0.97 y[n-1] at the lips
ASPIRATION = 0.04  # breath noise in the voice, relative to the harmonic source
INHALE_LEVEL = 0.02  # breath between phrases, relative to the -3 dBFS peak

VOWELS = ("a", "e", "i", "o", "u")
# Alto formants F1-F5: (Hz, bandwidth Hz, level dB), from the Csound manual's "Formant values".
_FORMANTS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "a": ((800, 80, 0), (1150, 90, -4), (2800, 120, -20), (3500, 130, -36), (4950, 140, -60)),
    "e": ((400, 60, 0), (1600, 80, -24), (2700, 120, -30), (3300, 150, -35), (4950, 200, -60)),
    "i": ((350, 50, 0), (1700, 100, -20), (2700, 120, -30), (3700, 150, -36), (4950, 200, -60)),
    "o": ((450, 70, 0), (800, 80, -9), (2830, 100, -16), (3500, 130, -28), (4950, 135, -55)),
    "u": ((325, 50, 0), (700, 60, -12), (2530, 170, -30), (3500, 180, -40), (4950, 200, -64)),
}


@dataclass(frozen=True)
class SungNote:
    """One note: first and last-plus-one sample, MIDI pitch, vowel, and whether it is joined
    (legato) to the note before and after it."""

    start: int
    end: int
    pitch: int
    vowel: str
    joined_before: bool
    joined_after: bool

    def as_melody(self, sample_rate: int) -> list[float]:
        """``[onset_s, duration_s, midi_pitch]``, the ground-truth row."""
        return [self.start / sample_rate, (self.end - self.start) / sample_rate, float(self.pitch)]


def compose(seconds: float, seed: int, sample_rate: int = SAMPLE_RATE) -> tuple[SungNote, ...]:
    """The melody of a ``seconds`` long clip: phrases of legato notes with breaths between.

    Only ``random.Random(seed)`` decides, so equal arguments give equal melodies everywhere.
    """
    if seconds < LEAD_IN_S + MIN_NOTE_S + TAIL_S:
        raise ValueError(f"seconds must be at least {LEAD_IN_S + MIN_NOTE_S + TAIL_S:g}")
    rng = random.Random(seed)
    root, steps = rng.choice(_KEYS)
    scale = [p for p in range(LOWEST, HIGHEST + 1) if (p - root) % 12 in steps]
    index = len(scale) // 2
    limit = seconds - TAIL_S
    plan: list[list[tuple[float, float, int]]] = []
    t = LEAD_IN_S
    while t + MIN_NOTE_S <= limit:
        phrase: list[tuple[float, float, int]] = []
        size = rng.randint(3, 6)
        for i in range(size):
            length = rng.choice(_FINAL_LENGTHS if i == size - 1 else _LENGTHS)
            length = min(length, limit - t)
            if length < MIN_NOTE_S:
                break
            step = rng.choice(_STEPS)
            if not 0 <= index + step < len(scale):
                step = -step  # reflect at the edges of the range
            index += step
            phrase.append((t, length, scale[index]))
            t += length
        plan.append(phrase)
        t += rng.choice(_BREATHS)
    notes: list[SungNote] = []
    count = 0
    for phrase in plan:
        for i, (onset, length, pitch) in enumerate(phrase):
            start = round(onset * sample_rate)
            end = round((onset + length) * sample_rate)
            vowel = VOWELS[count % len(VOWELS)]
            notes.append(SungNote(start, end, pitch, vowel, i > 0, i < len(phrase) - 1))
            count += 1
    return tuple(notes)


def _ramp(length: int) -> np.ndarray:
    """A raised-cosine rise from 0 to 1 over ``length`` samples (both ends excluded)."""
    import numpy as np

    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)


def _segments(notes: Sequence[SungNote], n: int) -> list[tuple[int, int]]:
    """The span each note owns for pitch and vowel: from its onset (or the middle of the breath
    before it) to the next one's; the first starts at 0, the last ends at ``n``."""
    starts = [0]
    for prev, note in itertools.pairwise(notes):
        starts.append(note.start if note.joined_before else (prev.end + note.start) // 2)
    return list(zip(starts, [*starts[1:], n], strict=True))


def _pitch_contour(
    notes: Sequence[SungNote], spans: list[tuple[int, int]], n: int, sample_rate: int
) -> np.ndarray:
    """MIDI pitch per sample: the notes, raised-cosine glides at the joins, and vibrato."""
    import numpy as np

    pitch = np.repeat(np.array([float(x.pitch) for x in notes]), [b - a for a, b in spans])
    half = round(GLIDE_S * sample_rate / 2)
    ramp = _ramp(2 * half)
    for (start, _), prev, note in zip(spans[1:], notes[:-1], notes[1:], strict=True):
        lo, hi = max(0, start - half), min(n, start + half)
        glide = prev.pitch + (note.pitch - prev.pitch) * ramp
        pitch[lo:hi] = glide[lo - (start - half) : hi - (start - half)]
    v = VIBRATO
    rise, fall = round(v.ramp_s * sample_rate), round(2 * JOINT_S * sample_rate)
    for note in notes:
        begin = note.start + round(v.onset_s * sample_rate)
        if begin >= note.end:
            continue
        t = np.arange(note.end - begin) / sample_rate
        depth = np.ones(note.end - begin)
        head = min(rise, len(depth))
        depth[:head] = _ramp(rise)[:head]
        if note.joined_after:  # vibrato ends at the joint, so the glide starts from the note
            tail = min(fall, len(depth))
            depth[-tail:] *= _ramp(fall)[::-1][-tail:]
        pitch[begin : note.end] += v.depth_cents / 100 * depth * np.sin(2 * np.pi * v.rate_hz * t)
    return pitch


def _envelope(notes: Sequence[SungNote], n: int, sample_rate: int) -> np.ndarray:
    """Amplitude per sample: attacks, releases, the dips at legato joints, silence between."""
    import numpy as np

    env = np.zeros(n)
    attack, release = round(ATTACK_S * sample_rate), round(RELEASE_S * sample_rate)
    joint = round(JOINT_S * sample_rate)
    for note in notes:
        seg = np.ones(note.end - note.start)
        rise = min(joint if note.joined_before else attack, len(seg) // 2)
        fall = min(joint if note.joined_after else release, len(seg) // 2)
        floor_in = JOINT_LEVEL if note.joined_before else 0.0
        floor_out = JOINT_LEVEL if note.joined_after else 0.0
        seg[:rise] = floor_in + (1 - floor_in) * _ramp(rise)
        seg[len(seg) - fall :] = floor_out + (1 - floor_out) * _ramp(fall)[::-1]
        env[note.start : note.end] = seg
    return env


def _glottal_source(f0: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Band-limited harmonic source ``Σ k**-2 sin(k φ)`` and the glottal phase ``φ``."""
    import numpy as np

    phase = np.cumsum(f0 * (2 * np.pi / sample_rate))
    np.mod(phase, 2 * np.pi, out=phase)
    nyquist = sample_rate / 2
    fade_lo, fade_hi = 0.8 * nyquist, 0.9 * nyquist
    out = np.empty_like(phase)
    # Blocks small enough to stay in cache; each stops at the last harmonic it can hold.
    for lo in range(0, len(phase), _BLOCK):
        ph, f = phase[lo : lo + _BLOCK], f0[lo : lo + _BLOCK]
        low, high = float(f.min()), float(f.max())
        top = min(MAX_HARMONICS, math.floor(fade_hi / low))
        two_cos = 2 * np.cos(ph)
        prev, cur = np.zeros_like(ph), np.sin(ph)
        acc = out[lo : lo + _BLOCK]
        acc[:] = cur
        scratch, term = np.empty_like(ph), np.empty_like(ph)
        for k in range(2, top + 1):
            np.multiply(two_cos, cur, out=scratch)
            scratch -= prev
            prev, cur, scratch = cur, scratch, prev
            np.multiply(cur, k**-HARMONIC_TILT, out=term)
            if k * high > fade_lo:  # the harmonic reaches the fade band here: weight it
                term *= np.clip((fade_hi - k * f) / (fade_hi - fade_lo), 0.0, 1.0)
            acc += term
    return out, phase


def _resonator(freq: float, bandwidth: float, sample_rate: int) -> tuple[list[float], list[float]]:
    """A two-pole resonator with unit gain at ``freq``: ``(b, a)`` for ``scipy.signal.lfilter``."""
    r = math.exp(-math.pi * bandwidth / sample_rate)
    theta = 2 * math.pi * freq / sample_rate
    a = [1.0, -2 * r * math.cos(theta), r * r]
    z = complex(math.cos(theta), -math.sin(theta))  # e^{-jθ}
    return [abs(a[0] + a[1] * z + a[2] * z * z)], a


def _formant_filter(
    source: np.ndarray, notes: Sequence[SungNote], spans: list[tuple[int, int]], sample_rate: int
) -> np.ndarray:
    """Each note's span through its vowel's parallel resonator bank, cross-faded at the joins.

    A span is filtered from a settling margin before its cross-fade, so the resonators have
    reached their steady state when its weight rises.
    """
    import numpy as np
    from scipy.signal import lfilter

    n = len(source)
    out = np.zeros(n)
    half = round(GLIDE_S * sample_rate / 2)
    settle = round(0.05 * sample_rate)
    ramp = _ramp(2 * half)
    banks = {
        vowel: [(*_resonator(f, bw, sample_rate), 10 ** (db / 20)) for f, bw, db in formants]
        for vowel, formants in _FORMANTS.items()
    }
    for (start, end), note in zip(spans, notes, strict=True):
        lo, hi = max(0, start - half - settle), min(n, end + half)
        chunk = source[lo:hi]
        voiced = np.zeros(hi - lo)
        for b, a, gain in banks[note.vowel]:
            voiced += gain * lfilter(b, a, chunk)
        weight = np.ones(hi - lo)
        if start > 0:
            weight[: start - half - lo] = 0.0
            weight[start - half - lo : start + half - lo] = ramp
        if end < n:
            weight[end - half - lo :] = ramp[::-1]
        out[lo:hi] += weight * voiced
    return out


def _inhalations(
    notes: Sequence[SungNote], n: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Band-passed noise (0.6-5 kHz) under a Hann window in each gap between phrases."""
    import numpy as np
    from scipy.signal import butter, sosfilt

    out = np.zeros(n)
    sos = butter(2, (600, 5000), btype="bandpass", fs=sample_rate, output="sos")
    for prev, note in itertools.pairwise(notes):
        if note.joined_before:
            continue
        gap = note.start - prev.end
        lo = prev.end + round(0.1 * gap)
        length = round(0.7 * gap)
        noise = sosfilt(sos, rng.standard_normal(length))
        out[lo : lo + length] = noise / (np.abs(noise).max() or 1.0) * np.hanning(length)
    return out


def render(
    notes: Sequence[SungNote], seconds: float, seed: int, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """The singing voice for ``notes``: float32 mono, ``round(seconds * sample_rate)`` samples,
    peak at :data:`PEAK_DBFS`."""
    import numpy as np

    if not notes:
        raise ValueError("no notes to sing")
    n = round(seconds * sample_rate)
    spans = _segments(notes, n)
    f0 = 440.0 * 2.0 ** ((_pitch_contour(notes, spans, n, sample_rate) - 69.0) / 12.0)
    harmonics, phase = _glottal_source(f0, sample_rate)
    rng = np.random.default_rng(seed)
    pulsed = rng.standard_normal(n) * (0.5 + 0.5 * np.cos(phase))  # noise bursts with each cycle
    source = _envelope(notes, n, sample_rate) * (harmonics + ASPIRATION * pulsed)
    voice = _formant_filter(source, notes, spans, sample_rate)
    voice[1:] -= RADIATION * voice[:-1].copy()  # lip radiation: +6 dB/octave
    peak = 10 ** (PEAK_DBFS / 20)
    voice *= peak / np.abs(voice).max()
    voice += INHALE_LEVEL * peak * _inhalations(notes, n, sample_rate, rng)
    voice *= peak / np.abs(voice).max()
    return voice.astype(np.float32)


def generate(
    seconds: float, seed: int, sample_rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, tuple[SungNote, ...]]:
    """``(audio, notes)``: a clip of ``seconds`` and the melody it sings."""
    notes = compose(seconds, seed, sample_rate)
    return render(notes, seconds, seed, sample_rate), notes


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV bytes (no PEAK chunk or timestamp, so equal audio gives equal bytes)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def item_id(seconds: float) -> str:
    """The workload item id of a clip, e.g. ``singing-30s``."""
    return f"singing-{seconds:g}s"


def melody_meta(
    notes: Sequence[SungNote], seconds: float, seed: int, sample_rate: int
) -> dict[str, Any]:
    """What the item records: the melody as ground truth, and how the clip was made."""
    return {
        "melody": [note.as_melody(sample_rate) for note in notes],
        "sample_rate": sample_rate,
        "duration_s": seconds,
        "notes": len(notes),
        "seed": seed,
        "vibrato": VIBRATO.as_meta(),
        "vowels": [note.vowel for note in notes],
        "pitch_range": [LOWEST, HIGHEST],
        "peak_dbfs": PEAK_DBFS,
        "generator_version": GENERATOR_VERSION,
    }


def singing_item(seconds: float, seed: int | None = None) -> WorkloadItem:
    """A clip of ``seconds`` as a cached ``.wav`` file (written only when missing or changed).

    Without a seed, one is derived from the item id (CRC-32, stable across Python versions).
    """
    ident = item_id(seconds)
    seed = zlib.crc32(ident.encode()) if seed is None else int(seed)
    audio, notes = generate(seconds, seed)
    data = wav_bytes(audio, SAMPLE_RATE)
    path = cache_dir() / "singing" / f"{ident}-seed{seed}-v{GENERATOR_VERSION}.wav"
    _write_if_changed(path, data)
    meta = melody_meta(notes, seconds, seed, SAMPLE_RATE)
    return WorkloadItem(id=ident, kind="audio", path=Path(path), meta=meta)


def builtin_singing_workload(name: str) -> Workload:
    """One of :data:`BUILTIN_SINGING` as a :class:`Workload` (the file generated into the cache)."""
    if name not in BUILTIN_SINGING:
        raise KeyError(name)
    item = singing_item(BUILTIN_SINGING[name])
    return Workload(name=name, kind="audio", items=(item,),
                    description=BUILTIN_SINGING_DESCRIPTIONS[name])  # fmt: skip
