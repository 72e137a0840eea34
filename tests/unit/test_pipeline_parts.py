"""The pipeline's parts with known answers: sentence cutting, playback of arriving audio, targets."""

from __future__ import annotations

import numpy as np
import pytest

from voxbench.errors import ConfigError
from voxbench.pipeline.playback import Playback
from voxbench.pipeline.sentences import SentenceSplitter, split_sentences
from voxbench.pipeline.targets import DEFAULT_TARGETS, check, parse_targets, statistic

MS = 1_000_000
RATE = 1000  # one sample per millisecond: times are easy to read


def test_sentences_end_at_punctuation_followed_by_space() -> None:
    s = SentenceSplitter()
    assert s.feed("It is 3.5 degrees") == []
    assert s.feed(". Dr. Smith says hi! Ok") == ["It is 3.5 degrees.", "Dr. Smith says hi!"]
    assert s.feed("?") == []  # no space yet: the stream may go on ("?!")
    assert s.flush() == ["Ok?"]
    assert s.flush() == []


def test_sentences_of_a_whole_text_and_quotes() -> None:
    assert split_sentences('He said "stop." Then left.  ') == ['He said "stop."', "Then left."]
    assert split_sentences("   ") == []
    assert split_sentences("e.g. this one") == ["e.g. this one"]


def test_sentences_fed_piece_by_piece_equal_the_whole() -> None:
    text = "First one. Second, longer one! Third? And the end"
    s = SentenceSplitter()
    pieces = [s.feed(ch) for ch in text]
    assert [x for p in pieces for x in p] + s.flush() == split_sentences(text)


def _tone(n: int, silent: int = 0) -> np.ndarray:
    a = np.full(n, 0.5, dtype=np.float32)
    a[:silent] = 0.0
    return a


def test_playback_schedules_chunks_and_counts_stalls() -> None:
    p = Playback()
    p.add(100 * MS, _tone(50, silent=20), RATE)  # plays 100..150 ms, audible from 120 ms
    p.add(120 * MS, _tone(30), RATE)  # early: queued behind, 150..180 ms
    p.add(200 * MS, _tone(10), RATE)  # 20 ms after the audio ran out: a stall
    p.add(215 * MS, _tone(10), RATE)  # 5 ms late: jitter, not a stall (threshold 10 ms)
    assert p.first_byte_ns == 100 * MS
    assert p.first_audible_ns == 120 * MS
    assert p.leading_silence_s == pytest.approx(0.020)
    assert p.stalls_ms == [pytest.approx(20.0)]
    assert p.end_ns == 225 * MS
    assert p.audio_seconds == pytest.approx(0.100)


def test_playback_leading_silence_across_chunks() -> None:
    p = Playback()
    p.add(0, np.zeros(40, dtype=np.float32), RATE)
    p.add(10 * MS, _tone(10, silent=5), RATE)  # plays from 40 ms: audible at 45 ms
    assert p.first_audible_ns == 45 * MS
    assert p.leading_silence_s == pytest.approx(0.045)
    q = Playback()
    q.add(0, np.zeros(10, dtype=np.float32), RATE)
    assert q.first_audible_ns is None  # silence only: nothing was heard
    with pytest.raises(ValueError, match="sample rate"):
        q.add(MS, _tone(5), 2000)


def test_targets_parse_override_and_check() -> None:
    targets = parse_targets([*DEFAULT_TARGETS, "stt_ms<=300", "first_audio_ms:p95<=1500"])
    by = {(t.name, t.stat): t for t in targets}
    assert by[("stt_ms", "median")].bound == 300  # the later one wins
    assert by[("first_audio_ms", "p95")].op == "<="
    rows = check(targets, {"stt_ms": [100, 200, 400], "tokens_per_second": [50.0]}, mode="x")
    row = {(r.name, r.stat): r for r in rows}
    assert row[("stt_ms", "median")].actual == 200 and row[("stt_ms", "median")].passed
    assert row[("tokens_per_second", "median")].passed is False
    assert row[("first_audio_ms", "median")].passed is None  # not measured: no verdict
    echo = check(targets, {"tokens_per_second": [1e6]}, mode="x", echo=True)
    assert next(r for r in echo if r.name == "tokens_per_second").passed is None
    assert statistic([1, 2, 3, 4], "p90") == pytest.approx(3.7)
    for bad in ("stt_ms<500", "nope<=3", "stt_ms:p42<=1", "stt_ms<=x"):
        with pytest.raises(ConfigError):
            parse_targets([bad])


def test_a_failed_conversation_counts_in_first_audio_over_all() -> None:
    from voxbench.load.schedule import Level
    from voxbench.pipeline.chain import Conversation
    from voxbench.pipeline.load import LoadPlan, _Run, level_figures

    runs = []
    for n in range(10):
        due = n * 1000 * MS
        conv = Conversation(mode="sequential", end_of_speech_ns=due + 500 * MS)
        if n == 3:
            conv.error = {"stage": "llm", "type": "HTTPError", "message": "503"}
            conv.ended_ns = conv.end_of_speech_ns + 300 * MS  # failed 300 ms after speech
        else:
            conv.playback.add(conv.end_of_speech_ns + 800 * MS, _tone(100, silent=50), RATE)
            conv.ended_ns = conv.end_of_speech_ns + 900 * MS
        runs.append(_Run(due_ns=due, started_ns=due + 2 * MS, conv=conv))
    runs.append(_Run(due_ns=10_000 * MS, started_ns=10_000 * MS))  # never finished: a timeout
    plan = LoadPlan(levels=(Level("rate", 1.0),), duration_s=11, timeout_s=60)
    lv = level_figures(runs, level=Level("rate", 1.0), mode="sequential", plan=plan, window_s=10)
    assert lv.conversations == 11 and lv.failed == 2
    assert lv.errors_by_kind == {"llm: HTTPError": 1, "timeout": 1}
    assert lv.first_audio_ms is not None and lv.first_audio_ms.median == pytest.approx(850)
    assert sorted(lv.samples["first_audio_all_ms"]) == [300.0] + [850.0] * 9 + [60_000.0]
    assert lv.lag_ms is not None and lv.lag_ms.max == pytest.approx(2.0)
    assert lv.validity is not None and not lv.validity.valid  # 9 successes, 18% failed
    assert lv.meets_slo is False and lv.slo == {"first_audio_ms:p95<=1000": False}
