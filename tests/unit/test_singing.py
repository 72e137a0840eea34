"""The generated singing voice: deterministic, the requested length and rate, and it sings the
melody its ground truth says (F0 measured with Praat through parselmouth)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import soundfile as sf

from voxbench.workloads import builtin_workloads, resolve_workload
from voxbench.workloads.singing import (
    BUILTIN_SINGING,
    HIGHEST,
    LEAD_IN_S,
    LOWEST,
    MIN_NOTE_S,
    PEAK_DBFS,
    SAMPLE_RATE,
    TAIL_S,
    VIBRATO,
    compose,
    generate,
    singing_item,
    wav_bytes,
)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("VOXBENCH_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def singing30(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VOXBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        return resolve_workload("singing30").items[0]


def test_same_seed_same_audio_and_bytes_other_seed_other_audio() -> None:
    a, notes_a = generate(5.0, 11)
    b, notes_b = generate(5.0, 11)
    assert notes_a == notes_b
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert wav_bytes(a, SAMPLE_RATE) == wav_bytes(b, SAMPLE_RATE)
    c, _ = generate(5.0, 12)
    assert not np.array_equal(a, c)


def test_cached_file_is_bit_identical_and_not_rewritten(cache) -> None:
    first = singing_item(5.0)
    data, mtime = first.path.read_bytes(), first.path.stat().st_mtime_ns
    second = singing_item(5.0)
    assert second.path == first.path and first.path.parent == cache / "singing"
    assert second.path.read_bytes() == data
    assert second.path.stat().st_mtime_ns == mtime  # equal content: left alone
    assert second.meta == first.meta


def test_generation_is_fast() -> None:
    generate(1.0, 1)  # imports (scipy) and first-call costs outside the clock
    start = time.perf_counter()
    generate(30.0, 1)
    elapsed = time.perf_counter() - start
    print(f"\n30 s of singing generated in {elapsed:.3f} s")
    assert elapsed < 3.0  # the target is < 1 s; slack for a loaded CI machine


@pytest.mark.parametrize("name", sorted(BUILTIN_SINGING))
def test_builtin_workloads_are_audio_files_of_the_right_length(cache, name: str) -> None:
    assert name in builtin_workloads()
    workload = resolve_workload(name)
    assert workload.kind == "audio" and len(workload.items) == 1
    item = workload.items[0]
    assert item.kind == "audio" and item.payload() == item.path and item.path.is_file()
    info = sf.info(str(item.path))
    seconds = BUILTIN_SINGING[name]
    assert info.samplerate == SAMPLE_RATE == item.meta["sample_rate"]
    assert info.channels == 1 and info.subtype == "PCM_16"
    assert info.frames == round(seconds * SAMPLE_RATE)
    assert item.meta["duration_s"] == seconds
    audio, _ = sf.read(str(item.path))
    peak_db = 20 * np.log10(np.abs(audio).max())
    assert abs(peak_db - PEAK_DBFS) < 0.05


@pytest.mark.parametrize("seconds", [5.0, 30.0, 61.3])
def test_melody_is_singable_ordered_and_inside_the_clip(seconds: float) -> None:
    notes = compose(seconds, 3)
    melody = [n.as_melody(SAMPLE_RATE) for n in notes]
    assert len(melody) >= 3
    assert melody[0][0] >= LEAD_IN_S - 1 / SAMPLE_RATE
    for onset, duration, pitch in melody:
        assert LOWEST <= pitch <= HIGHEST and pitch == int(pitch)
        assert MIN_NOTE_S - 1e-3 <= duration <= 1.2 + 1e-3
        assert onset + duration <= seconds - TAIL_S + 1e-3
    for (on1, dur1, p1), (on2, _, p2) in itertools.pairwise(melody):
        assert on2 >= on1 + dur1 - 1e-9  # monophonic
        assert p1 != p2  # no repeated notes: every onset is a pitch change
    assert {n.vowel for n in notes} == set("aeiou") or len(notes) < 5
    if seconds >= 30:
        gaps = [on2 - (on1 + d1) for (on1, d1, _), (on2, _, _) in itertools.pairwise(melody)]
        assert any(g >= 0.2 for g in gaps), "no breath between phrases"


def test_meta_describes_the_clip(singing30) -> None:
    meta = singing30.meta
    assert meta["notes"] == len(meta["melody"]) > 20
    assert all(len(row) == 3 and all(isinstance(v, float) for v in row) for row in meta["melody"])
    assert meta["vibrato"] == {"rate_hz": VIBRATO.rate_hz, "depth_cents": VIBRATO.depth_cents,
                               "onset_s": VIBRATO.onset_s, "ramp_s": VIBRATO.ramp_s}  # fmt: skip
    assert len(meta["vowels"]) == meta["notes"]


def test_sung_pitch_matches_the_melody(singing30) -> None:
    """The median F0 over each note's middle is the note's pitch, well inside the vibrato depth."""
    parselmouth = pytest.importorskip("parselmouth")
    audio, rate = sf.read(str(singing30.path))
    pitch = parselmouth.Sound(audio, rate).to_pitch_ac(
        time_step=0.01, pitch_floor=75.0, pitch_ceiling=1000.0
    )
    hz, times = pitch.selected_array["frequency"], pitch.xs()
    errors = []
    for onset, duration, note in singing30.meta["melody"]:
        middle = (times > onset + 0.1) & (times < onset + duration - 0.1) & (hz > 0)
        assert middle.sum() >= 5, f"note at {onset:.2f} s is not voiced"
        target = 440.0 * 2 ** ((note - 69) / 12)
        errors.append(1200 * np.log2(np.median(hz[middle]) / target))
    worst = float(np.max(np.abs(errors)))
    print(f"\nworst median F0 error over {len(errors)} notes: {worst:.2f} cents")
    assert worst < VIBRATO.depth_cents / 2
    # Between phrases the voice is silent (a breath is noise, unvoiced).
    melody = singing30.meta["melody"]
    for (on1, d1, _), (on2, _, _) in itertools.pairwise(melody):
        if on2 - (on1 + d1) >= 0.3:
            gap = (times > on1 + d1 + 0.1) & (times < on2 - 0.05)
            assert not (hz[gap] > 0).any()


def test_user_audio_files_are_audio_workloads(tmp_path) -> None:
    audio, _ = generate(1.0, 5)
    for suffix in ("wav", "flac", "ogg"):
        sf.write(str(tmp_path / f"clip.{suffix}"), audio, SAMPLE_RATE)
        workload = resolve_workload(str(tmp_path / f"clip.{suffix}"))
        assert workload.kind == "audio" and workload.items[0].kind == "audio"
        assert workload.items[0].path == (tmp_path / f"clip.{suffix}").resolve()
    folder = resolve_workload(str(tmp_path))
    assert folder.kind == "audio" and len(folder.items) == 3
