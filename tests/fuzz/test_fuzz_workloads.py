"""Workload files: generated .txt, .jsonl, WAV, MIDI files and folders give a workload or a
one-line ConfigError; the streaming WAV decoder gives samples or a one-line WavError."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from support.fuzzing import (
    ACCEPTED,
    REJECTED,
    _wav,
    check_wav_stream,
    check_workload,
    wav_bytes,
    workload_files,
)


@given(workload_files)
def test_generated_workload_files(file: tuple[str, bytes]) -> None:
    assert check_workload(*file) in (ACCEPTED, REJECTED)


@given(wav_bytes, st.lists(st.integers(0, 300), max_size=5))
def test_wav_stream_decoder(data: bytes, cuts: list[int]) -> None:
    assert check_wav_stream(data, cuts) in (ACCEPTED, REJECTED)


def test_known_answers() -> None:
    assert check_workload(".txt", b"Hello there.\nSecond line.\n") == ACCEPTED
    assert check_workload(".jsonl", b'{"text": "Hi", "id": "a"}\n{"text": "Yo"}') == ACCEPTED
    assert check_workload(".jsonl", b'{"audio": "clip.wav", "text": "ref"}') == ACCEPTED
    assert check_workload(".wav", _wav(16000, 1, 16, 100)) == ACCEPTED
    for suffix, bad in ((".txt", b"\xff\xfe\x00"), (".jsonl", b"[" * 5000), (".wav", b"RIFF"),
                        (".mid", b"MThd"), (".jsonl", b'{"text": "a\\u0000"}'),
                        (".jsonl", b'{"text": "x", "id": {"a": 1}}'), (".txt", b"  \n\n"),
                        (".jsonl", b'{"text": "x", "reference": "bad.wav"}'),
                        (".wav", _wav(16000, 1, 16, 0))):  # fmt: skip
        assert check_workload(suffix, bad) == REJECTED, (suffix, bad)
    assert check_wav_stream(_wav(16000, 1, 16, 100), [7, 50]) == ACCEPTED
    assert check_wav_stream(b"RIFX" + bytes(40), []) == REJECTED
