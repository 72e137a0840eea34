"""The bad-output rules (voxbench.run.output_checks) on answers whose fault is known."""

from __future__ import annotations

import numpy as np
import pytest

from voxbench.engine import Chunk, Output
from voxbench.run.measure import measure_call
from voxbench.run.output_checks import (
    CLIP_SHARE,
    RULE_NAMES,
    AudioCheck,
    as_float,
    judge,
    text_fault,
    waived,
)

RATE = 16000


def tone(seconds: float = 0.1, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * RATE), dtype=np.float32) / RATE
    return (amplitude * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


class Declares:
    sample_rate = RATE


def verdict(pieces, *, payload="hello", engine=None, has_text=False):
    return judge(engine or Declares(), payload, [pieces], has_text=has_text)


def with_nan():
    audio = tone()
    audio[7] = np.nan
    return audio


def clipped(share: float) -> np.ndarray:
    audio = tone()
    audio[: round(len(audio) * share)] = 1.0
    return audio


@pytest.mark.parametrize(
    ("pieces", "rule", "says"),
    [
        ([(np.zeros(1600, np.float32), RATE)], "silent", "digital silence, below -60 dBFS"),
        ([(tone(amplitude=10 ** (-70 / 20)), RATE)], "silent", "peak -70.0 dBFS"),
        ([(with_nan(), RATE)], "nonfinite", "1 of 1,600 samples are NaN or Inf"),
        ([(clipped(0.05), RATE)], "clipped", "80 of 1,600 samples (5.0%) at full scale"),
        ([(tone(), 22050)], "sample_rate", "22050 Hz answered; the engine declares 16000 Hz"),
        ([(tone(), 0)], "sample_rate", "sample rate 0 is not a positive int"),
        ([(tone(), RATE), (tone(), 8000)], "sample_rate", "changed from 16000 to 8000 Hz"),
        ([((tone() * 2**30).astype(np.int32), RATE)], "dtype", "int32 audio"),
        ([(np.stack([tone(), tone()], 1), RATE)], "dtype", "shape (1600, 2)"),
        ([([0.1, 0.2], RATE)], "dtype", "audio is a list"),
        ([(tone()[:0], RATE)], "empty", "no audio samples and no text"),
        ([], "empty", "no audio samples and no text"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_rule_flags_its_fault(pieces, rule, says):
    error = verdict(pieces)
    assert error is not None and error["rule"] == rule and error["kind"] == "output"
    assert error["type"] == "BadOutput" and says in error["message"], error["message"]
    assert error["message"].startswith(f"bad output ({rule}): ")


def test_sound_answers_pass():
    assert verdict([(tone(), RATE)]) is None
    assert verdict([(tone(), RATE), (tone(), RATE)]) is None  # a stream, every chunk at one rate
    # int16 at full scale but not clipped: under 1 % of samples at 32767
    ints = np.round(tone() * 32767).astype(np.int16)
    assert verdict([(ints, RATE)]) is None
    assert verdict([], has_text=True) is None  # text, no audio: a text answer, not empty


def test_clipping_is_judged_against_its_threshold():
    assert CLIP_SHARE == 0.01
    assert verdict([(clipped(0.009), RATE)]) is None
    assert verdict([(clipped(0.02), RATE)])["rule"] == "clipped"
    ints = np.round(tone() * 32767).astype(np.int16)
    ints[:100] = -32768  # 6.25 % at full scale
    assert verdict([(ints, RATE)])["rule"] == "clipped"


def test_length_is_judged_per_input_character():
    # one character allows 60 s; 61 s of tone is too long, 59 s is not
    long = np.resize(tone(1.0), 61 * RATE)
    error = verdict([(long, RATE)], payload="a")
    assert error["rule"] == "length" and "61.0 s of audio, over 60 s" in error["message"]
    assert verdict([(long[: 59 * RATE], RATE)], payload="a") is None
    assert verdict([(long, RATE)], payload="ab") is None  # 120 s allowed


def test_the_first_broken_rule_is_reported():
    audio = np.zeros(1600, np.float32)
    audio[3] = np.inf
    assert verdict([(audio, RATE)])["rule"] == "nonfinite"  # not silent
    assert verdict([(np.zeros(1600, np.float32), 8000)])["rule"] == "sample_rate"


def test_an_engine_waives_rules_by_name():
    class Quiet(Declares):
        waive_output_checks = ("silent",)

    assert waived(Quiet()) == {"silent"}
    assert verdict([(np.zeros(1600, np.float32), RATE)], engine=Quiet()) is None
    # only what it names: NaN is still flagged
    assert verdict([(with_nan(), RATE)], engine=Quiet())["rule"] == "nonfinite"
    assert waived(object()) == frozenset()
    assert {"silent", "clipped", "nonfinite", "empty_text"} <= RULE_NAMES


def test_a_batch_is_judged_answer_by_answer():
    error = judge(Declares(), "hi", [[(tone(), RATE)], [(with_nan(), RATE)]], has_text=False)
    assert error["rule"] == "nonfinite"
    assert judge(Declares(), "hi", [[(tone(), RATE)], [(tone(), RATE)]], has_text=False) is None


def test_audio_check_tallies_pieces():
    check = AudioCheck(declared=None)
    check.add(tone(), RATE)
    check.add(tone(amplitude=0.9), RATE)
    assert check.verdict(chars=5, has_text=False, audio_out=True) is None
    assert check.samples == 3200 and check.peak == pytest.approx(0.9, abs=1e-3)


def test_a_fault_in_one_chunk_of_a_stream_is_found():
    check = AudioCheck(declared=None)
    for i in range(5):
        piece = tone()
        if i == 3:
            piece[7] = np.nan
        check.add(piece, RATE)
    error = check.verdict(chars=5, has_text=False, audio_out=True)
    assert error is not None and error["rule"] == "nonfinite"
    assert error["message"] == "bad output (nonfinite): 1 of 8,000 samples are NaN or Inf"


def test_empty_text_only_for_speech_with_a_reference():
    assert text_fault("", speech_input=True)["rule"] == "empty_text"
    assert text_fault("   ", speech_input=True)["rule"] == "empty_text"
    assert text_fault(None, speech_input=True)["rule"] == "empty_text"
    assert text_fault("hello", speech_input=True) is None
    assert text_fault("", speech_input=False) is None


def test_int16_is_kept_as_float():
    out = as_float(np.array([16384, -32768], dtype=np.int16))
    assert out.dtype == np.float32 and out.tolist() == [0.5, -1.0]


# --- wired into measure_call: a bad answer is the call's error, and keeps no audio -----------------


class Answers:
    """Answers what it is given, whole or streamed (a known answer per test)."""

    sample_rate = RATE

    def __init__(self, audio, rate=RATE):
        self.audio, self.rate = audio, rate

    def synthesize(self, text):
        return Output(audio=self.audio, sample_rate=self.rate)

    def stream(self, text):
        for piece in np.array_split(self.audio, 4):
            yield Chunk(audio=piece, sample_rate=self.rate)


@pytest.mark.parametrize("use_stream", [False, True])
def test_measure_call_flags_bad_output_and_drops_its_audio(use_stream):
    rec = measure_call(Answers(with_nan()), "hi", use_stream=use_stream, keep_audio=True)
    assert rec.error["rule"] == "nonfinite" and rec.audio is None
    assert rec.wall_ns > 0  # the call was timed; its time is simply not a sample
    good = measure_call(Answers(tone()), "hi", use_stream=use_stream, keep_audio=True)
    assert good.error is None and len(good.audio) == 1600


def test_measure_call_flags_a_rate_change_mid_stream():
    class Changes(Answers):
        def stream(self, text):
            yield Chunk(audio=tone(), sample_rate=RATE)
            yield Chunk(audio=tone(), sample_rate=8000)

    rec = measure_call(Changes(tone()), "hi", use_stream=True, keep_audio=False)
    assert (
        rec.error["rule"] == "sample_rate" and "changed from 16000 to 8000" in rec.error["message"]
    )


def test_measure_call_judges_each_answer_of_a_batch():
    class Batch(Answers):
        def synthesize_batch(self, texts):
            return [
                Output(audio=tone(), sample_rate=RATE),
                Output(audio=with_nan(), sample_rate=RATE),
            ]

    rec = measure_call(Batch(tone()), "hi", use_stream=False, keep_audio=False, batch=2)
    assert rec.error["rule"] == "nonfinite"
