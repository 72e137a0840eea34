"""The generated piano pieces: deterministic, the requested length, the requested polyphony."""

from __future__ import annotations

import io

import mido
import pytest

from voxbench.workloads.midi import (
    BUILTIN_MIDI,
    BUILTIN_MIDI_DESCRIPTIONS,
    builtin_midi_workload,
    generate_piece,
    measure,
    midi_items,
    piece_bytes,
    write_piece,
)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path) -> None:
    a = write_piece(tmp_path / "a.mid", 10, "chords", seed=7).read_bytes()
    b = write_piece(tmp_path / "b.mid", 10, "chords", seed=7).read_bytes()
    assert a == b
    assert a != piece_bytes(10, "chords", 8)


@pytest.mark.parametrize("polyphony", ["simple", "chords", "dense"])
@pytest.mark.parametrize("secs", [3, 10, 30.5])
def test_duration_matches_the_request(secs: float, polyphony: str) -> None:
    midi = mido.MidiFile(file=io.BytesIO(piece_bytes(secs, polyphony, 1)))
    assert abs(midi.length - secs) <= 0.5
    assert midi.tracks[0][0].type == "set_tempo" and midi.tracks[0][0].tempo == 500_000
    programs = {m.program for m in midi.tracks[0] if m.type == "program_change"}
    assert programs == {0}


def test_polyphony_levels() -> None:
    peaks = {p: measure(generate_piece(30, p, 3))[1] for p in ("simple", "chords", "dense")}
    assert peaks["simple"] == 1
    assert peaks["chords"] == 4
    assert 8 <= peaks["dense"] <= 12
    assert peaks["dense"] > peaks["chords"] > peaks["simple"]


def test_dense_uses_the_sustain_pedal() -> None:
    msgs = generate_piece(10, "dense", 1).tracks[0]
    assert any(m.type == "control_change" and m.control == 64 for m in msgs)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="polyphony"):
        generate_piece(10, "orchestral", 1)
    with pytest.raises(ValueError, match="positive"):
        generate_piece(0, "simple", 1)


def test_midi_items_cache_files_and_meta(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VOXBENCH_CACHE", str(tmp_path))
    items = midi_items([(10, "simple"), (30, "chords")])
    assert [i.id for i in items] == ["piano-10s-simple", "piano-30s-chords"]
    first = items[0]
    assert first.kind == "midi" and first.path and first.path.parent == tmp_path / "midi"
    assert first.meta["seconds"] == 10 and first.meta["polyphony"] == "simple"
    assert first.meta["max_polyphony"] == 1 and first.meta["notes"] > 5
    assert items[1].meta["max_polyphony"] == 4

    stamp = first.path.stat().st_mtime_ns
    again = midi_items([(10, "simple")])[0]
    assert again.path == first.path and first.path.stat().st_mtime_ns == stamp  # not rewritten

    good = first.path.read_bytes()
    first.path.write_bytes(b"corrupt")
    midi_items([(10, "simple")])
    assert first.path.read_bytes() == good


def test_builtin_workloads_are_described(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("VOXBENCH_CACHE", str(tmp_path))
    assert (
        set(BUILTIN_MIDI)
        == set(BUILTIN_MIDI_DESCRIPTIONS)
        == {
            "piano",
            "piano-dense",
            "piano-long",
        }
    )
    workload = builtin_midi_workload("piano")
    assert workload.kind == "midi" and len(workload.items) == 2
    assert all(item.path and item.path.is_file() for item in workload.items)
