"""Deterministic piano MIDI pieces, generated on demand and cached as ``.mid`` files.

A piece is fully determined by ``(seconds, polyphony, seed)``: the same arguments give
byte-identical files on every machine, so MIDI workloads need no data download and results stay
comparable across runs.
"""

from __future__ import annotations

import io
import os
import random
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voxbench.workloads.base import Workload, WorkloadItem

if TYPE_CHECKING:
    import mido  # imported where used: listing workloads (and --help) must not pay for it

POLYPHONIES: tuple[str, ...] = ("simple", "chords", "dense")

TICKS_PER_BEAT = 480
TEMPO_US = 500_000  # 120 bpm: one beat is 0.5 s
TICKS_PER_SECOND = TICKS_PER_BEAT * 1_000_000 // TEMPO_US
BAR = 4 * TICKS_PER_BEAT
PIANO_PROGRAM = 0

BUILTIN_MIDI: dict[str, list[tuple[float, str]]] = {
    "piano": [(10, "simple"), (30, "chords")],
    "piano-dense": [(30, "dense"), (60, "dense")],
    "piano-long": [(300, "chords")],
}
BUILTIN_MIDI_DESCRIPTIONS: dict[str, str] = {
    "piano": "generated piano: a 10 s melody and 30 s of melody with chords",
    "piano-dense": "generated piano, 8-12 voices: arpeggios, sustained chords, pedal (30 s, 60 s)",
    "piano-long": "generated piano: 5 minutes of melody with chords (sustained rendering)",
}

# C major, A minor, F major, G major, D minor, E minor: root (MIDI key) and scale steps.
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_KEYS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (60, _MAJOR), (57, _MINOR), (65, _MAJOR), (67, _MAJOR), (62, _MINOR), (64, _MINOR),
)  # fmt: skip
_CHORD_DEGREES = (0, 3, 4, 0, 5, 3, 4, 0)  # I IV V I vi IV V I: a cadence that loops


@dataclass(frozen=True)
class _Note:
    start: int
    end: int
    key: int
    velocity: int
    channel: int = 0


class _Scale:
    """Pitches of one key, addressed by scale degree (degree 7 is an octave above degree 0)."""

    def __init__(self, root: int, steps: tuple[int, ...]) -> None:
        self.root = root
        self.steps = steps

    def pitch(self, degree: int, octave_shift: int = 0) -> int:
        octave, step = divmod(degree, len(self.steps))
        return self.root + 12 * (octave + octave_shift) + self.steps[step]

    def triad(self, degree: int, octave_shift: int) -> list[int]:
        return [self.pitch(degree + i, octave_shift) for i in (0, 2, 4)]


def _melody(
    rng: random.Random, scale: _Scale, total: int, octave: int, lengths: Sequence[int]
) -> list[_Note]:
    """A stepwise random walk; each note ends before the next starts, so it is monophonic."""
    notes: list[_Note] = []
    degree, tick = 0, 0
    while tick < total:
        length = rng.choice(lengths)
        degree = max(-3, min(10, degree + rng.choice((-2, -1, -1, 0, 1, 1, 2, 3))))
        key = scale.pitch(degree, octave)
        notes.append(_Note(tick, min(tick + length, total), key, rng.randint(70, 100)))
        tick += length
    return notes


def _chords(rng: random.Random, scale: _Scale, total: int, span: int, octave: int) -> list[_Note]:
    """Three-note triads following the cadence, each held for ``span`` ticks."""
    notes: list[_Note] = []
    for i, tick in enumerate(range(0, total, span)):
        end = min(tick + span, total)
        velocity = rng.randint(55, 80)
        for key in scale.triad(_CHORD_DEGREES[i % len(_CHORD_DEGREES)], octave):
            notes.append(_Note(tick, end, key, velocity))
    return notes


def _arpeggios(rng: random.Random, scale: _Scale, total: int) -> list[_Note]:
    """Sixteenth-note arpeggios over two octaves; each note rings 5-7 steps, so 5-7 overlap."""
    step = TICKS_PER_BEAT // 4
    notes: list[_Note] = []
    for bar, bar_start in enumerate(range(0, total, BAR)):
        chord = scale.triad(_CHORD_DEGREES[bar % len(_CHORD_DEGREES)], 0)
        pattern = chord + [k + 12 for k in chord] + [chord[0] + 24]
        pattern += pattern[-2:0:-1]  # up and back down: 12 steps
        for i, tick in enumerate(range(bar_start, min(bar_start + BAR, total), step)):
            end = min(tick + step * rng.randint(5, 7), total)
            notes.append(_Note(tick, end, pattern[i % len(pattern)], rng.randint(50, 85), 1))
    return notes


def _notes_for(polyphony: str, rng: random.Random, total: int) -> list[_Note]:
    root, steps = rng.choice(_KEYS)
    scale = _Scale(root, steps)
    beat = TICKS_PER_BEAT
    if polyphony == "simple":
        return _melody(rng, scale, total, 0, (beat // 2, beat, beat, 2 * beat))
    if polyphony == "chords":
        melody = _melody(rng, scale, total, 1, (beat // 2, beat, beat, 2 * beat))
        return melody + _chords(rng, scale, total, 2 * beat, -1)
    if polyphony == "dense":
        melody = _melody(rng, scale, total, 2, (beat // 2, beat))
        # Four-note sustained chords: a triad plus its bass an octave down.
        chords = _chords(rng, scale, total, BAR, -1)
        basses = [_Note(n.start, n.end, n.key - 12, n.velocity) for n in chords[::3]]
        return melody + chords + basses + _arpeggios(rng, scale, total)
    raise ValueError(f"polyphony must be one of {', '.join(POLYPHONIES)}, not {polyphony!r}")


def _untangle(notes: Iterable[_Note]) -> list[_Note]:
    """Cut a note short where the same key restarts on its channel, so no key is struck twice."""
    by_key: dict[tuple[int, int], list[_Note]] = {}
    for note in notes:
        by_key.setdefault((note.channel, note.key), []).append(note)
    result: list[_Note] = []
    for group in by_key.values():
        group.sort(key=lambda n: n.start)
        for note, following in zip(group, [*group[1:], None], strict=True):
            end = note.end if following is None else min(note.end, following.start)
            if end > note.start:
                result.append(_Note(note.start, end, note.key, note.velocity, note.channel))
    return result


_Event = tuple[int, int, "mido.Message"]  # (tick, rank at that tick, message)
# At one tick: note-offs and pedal-up (rank 0) first, then pedal-down (2), then note-ons (3).
_OFF, _PEDAL_DOWN, _ON = 0, 2, 3


def _pedal_events(total: int) -> list[_Event]:
    """Sustain pedal down for each bar, lifted and pressed again at the bar line."""
    import mido

    events: list[_Event] = []
    for tick in range(0, total, BAR):
        for ch in (0, 1):
            down = mido.Message("control_change", channel=ch, control=64, value=127)
            up = mido.Message("control_change", channel=ch, control=64, value=0)
            events += [(tick, _PEDAL_DOWN, down), (min(tick + BAR, total), _OFF, up)]
    return events


def _note_events(notes: Iterable[_Note]) -> list[_Event]:
    import mido

    events: list[_Event] = []
    for n in notes:
        on = mido.Message("note_on", channel=n.channel, note=n.key, velocity=n.velocity)
        off = mido.Message("note_off", channel=n.channel, note=n.key, velocity=64)
        events += [(n.start, _ON, on), (n.end, _OFF, off)]
    return events


def generate_piece(seconds: float, polyphony: str, seed: int) -> mido.MidiFile:
    """A piano piece of ``seconds`` at 120 bpm; ``polyphony`` is "simple", "chords" or "dense".

    Only ``random.Random(seed)`` drives the choices, so equal arguments give equal files.
    """
    import mido

    if seconds <= 0:
        raise ValueError(f"seconds must be positive, not {seconds}")
    rng = random.Random(seed)
    total = round(seconds * TICKS_PER_SECOND)
    events = _note_events(_untangle(_notes_for(polyphony, rng, total)))
    if polyphony == "dense":
        events += _pedal_events(total)
    # A total order (bytes break ties), so the file never depends on how the notes were gathered.
    events.sort(key=lambda e: (e[0], e[1], e[2].bytes()))

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0))
    for channel in (0, 1):
        track.append(mido.Message("program_change", channel=channel, program=PIANO_PROGRAM, time=0))
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=total - last))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    return midi


def piece_bytes(seconds: float, polyphony: str, seed: int) -> bytes:
    """The standard MIDI file bytes of :func:`generate_piece`."""
    buffer = io.BytesIO()
    generate_piece(seconds, polyphony, seed).save(file=buffer)
    return buffer.getvalue()


def write_piece(path: str | os.PathLike[str], seconds: float, polyphony: str, seed: int) -> Path:
    """Write the piece to ``path`` (parents created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(piece_bytes(seconds, polyphony, seed))
    return target


def measure(midi: mido.MidiFile) -> tuple[int, int]:
    """``(notes, max_polyphony)``: note-ons, and the most keys held down at once (pedal ignored)."""
    import mido

    held: set[tuple[int, int]] = set()
    notes = peak = 0
    for msg in mido.merge_tracks(midi.tracks):
        if msg.type == "note_on" and msg.velocity > 0:
            notes += 1
            held.add((msg.channel, msg.note))
            peak = max(peak, len(held))
        elif msg.type in ("note_on", "note_off"):
            held.discard((msg.channel, msg.note))
    return notes, peak


def cache_dir() -> Path:
    """Where generated inputs live: ``$VOXBENCH_CACHE``, else the XDG cache folder."""
    if explicit := os.environ.get("VOXBENCH_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "voxbench"


def _write_if_changed(path: Path, data: bytes) -> None:
    """Write when missing or different; atomic, so parallel workers never read half a file."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def item_id(seconds: float, polyphony: str) -> str:
    """The workload item id of a piece, e.g. ``piano-10s-simple``."""
    return f"piano-{seconds:g}s-{polyphony}"


def midi_items(specs: Iterable[Sequence[float | str | int]]) -> tuple[WorkloadItem, ...]:
    """Materialise ``(seconds, polyphony[, seed])`` specs as cached ``.mid`` files.

    Without a seed, one is derived from the item id (CRC-32, stable across Python versions), so a
    spec always names the same piece.
    """
    import mido

    folder = cache_dir() / "midi"
    items: list[WorkloadItem] = []
    for spec in specs:
        seconds, polyphony = float(spec[0]), str(spec[1])
        ident = item_id(seconds, polyphony)
        seed = int(spec[2]) if len(spec) > 2 else zlib.crc32(ident.encode())
        data = piece_bytes(seconds, polyphony, seed)
        path = folder / f"{ident}-seed{seed}.mid"
        _write_if_changed(path, data)
        notes, peak = measure(mido.MidiFile(file=io.BytesIO(data)))
        meta = {"seconds": seconds, "polyphony": polyphony, "seed": seed, "notes": notes,
                "max_polyphony": peak}  # fmt: skip
        items.append(WorkloadItem(id=ident, kind="midi", path=path, meta=meta))
    return tuple(items)


def builtin_midi_workload(name: str) -> Workload:
    """One of :data:`BUILTIN_MIDI` as a :class:`Workload` (files generated into the cache)."""
    if name not in BUILTIN_MIDI:
        raise KeyError(name)
    return Workload(name=name, kind="midi", items=midi_items(BUILTIN_MIDI[name]),
                    description=BUILTIN_MIDI_DESCRIPTIONS[name])  # fmt: skip
