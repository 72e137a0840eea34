"""The friendly engine protocol: every accepted form, and a one-line error for every wrong one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from voxbench.engine import Adapted, Chunk, Output, adapt, as_chunk, as_output, can_stream
from voxbench.errors import EngineFailed
from voxbench.run.measure import measure_call

DOC = Path(__file__).resolve().parents[2] / "docs" / "engines.md"
AUDIO = np.zeros(1600, dtype=np.float32)


class Bare:
    """No attributes at all: a bare array needs a sample_rate it does not have."""


class Rated:
    sample_rate = 16000


def failure(call) -> str:
    with pytest.raises(EngineFailed) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- synthesize answers ---------------------------------------------------------------------------


def test_an_output_is_taken_as_it_is():
    out = Output(audio=AUDIO, sample_rate=8000, stages={"x": 1.0})
    assert as_output(out, Bare()) is out


def test_a_tuple_becomes_an_output():
    out = as_output((AUDIO, 22050), Bare())
    assert out.audio is AUDIO and out.sample_rate == 22050 and out.stages == {}


def test_a_numpy_integer_rate_becomes_a_python_int():
    out = as_output((AUDIO, np.int64(24000)), Bare())
    assert out.sample_rate == 24000 and type(out.sample_rate) is int


def test_a_bare_array_takes_the_engines_sample_rate():
    out = as_output(AUDIO, Rated())
    assert out.audio is AUDIO and out.sample_rate == 16000


def test_float64_audio_is_accepted_unchanged():
    audio = np.zeros(10)
    assert as_output((audio, 8000), Bare()).audio is audio


def test_a_bare_array_without_sample_rate_says_what_to_do():
    message = failure(lambda: as_output(AUDIO, Bare()))
    assert message == (
        "synthesize() returned a bare array, but the engine has no int sample_rate attribute "
        "(got None): set one, or return (audio, sample_rate)"
    )


@pytest.mark.parametrize("rate", [22050.0, "22050", True, 0, -8000, None])
def test_a_tuple_with_a_bad_rate_is_refused(rate):
    message = failure(lambda: as_output((AUDIO, rate), Bare()))
    assert (
        message
        == f"synthesize() returned (audio, {rate!r}); the sample rate must be a positive int"
    )


def test_a_bare_array_with_a_float_engine_rate_is_refused():
    class FloatRate:
        sample_rate = 16000.0

    assert "(got 16000.0)" in failure(lambda: as_output(AUDIO, FloatRate()))


def test_sample_rate_first_is_recognised():
    message = failure(lambda: as_output((16000, AUDIO), Bare()))
    assert message == "synthesize() returned (sample_rate, audio); expected (audio, sample_rate)"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (None, "None"),
        ("hello", "a str"),
        ([0.0, 0.1], "a list"),
        ((AUDIO, 16000, "x"), "a tuple of 3 items"),
        ({"audio": AUDIO}, "a dict"),
    ],
)
def test_other_answers_name_the_accepted_forms(value, said):
    message = failure(lambda: as_output(value, Rated()))
    assert message == (
        f"synthesize() returned {said}; expected Output, (audio, sample_rate) or a float array "
        "(with the engine's sample_rate attribute)"
    )


def test_a_tuple_whose_audio_is_not_an_array():
    message = failure(lambda: as_output(([0.0, 0.1], 16000), Bare()))
    assert message.startswith("synthesize() returned a tuple whose audio is a list; expected")


def test_integer_audio_is_refused():
    message = failure(lambda: as_output((np.zeros(4, dtype=np.int16), 16000), Bare()))
    assert message == "synthesize() returned int16 audio; expected float samples in [-1, 1]"


def test_audio_with_channels_is_refused():
    message = failure(lambda: as_output(np.zeros((2, 4), dtype=np.float32), Rated()))
    assert message == "synthesize() returned audio of shape (2, 4); expected mono (one dimension)"


# --- stream items ---------------------------------------------------------------------------------


def test_stream_items_become_chunks():
    chunk = Chunk(audio=AUDIO, sample_rate=8000)
    assert as_chunk(chunk, Bare()) is chunk
    chunk = as_chunk(AUDIO, Rated())
    assert chunk.audio is AUDIO and chunk.sample_rate == 16000
    assert as_chunk((AUDIO, 24000), Bare()).sample_rate == 24000


def test_a_bad_stream_item_names_stream_and_chunk():
    assert failure(lambda: as_chunk(AUDIO, Bare())).startswith("stream() yielded a bare array")
    message = failure(lambda: as_chunk(b"pcm", Rated()))
    assert message == (
        "stream() yielded a bytes; expected Chunk, (audio, sample_rate) or a float array "
        "(with the engine's sample_rate attribute)"
    )


# --- the adapter -----------------------------------------------------------------------------------


class OnlySynthesize:
    waive_output_checks = ("silent",)  # answers digital silence on purpose

    def synthesize(self, text):
        return AUDIO[: len(text)], 16000


class Streaming:
    sample_rate = 8000
    name = "streaming"
    waive_output_checks = ("silent",)  # answers digital silence on purpose

    def __init__(self):
        self.closed_stream = False
        self.loaded = False

    def load(self):
        self.loaded = True

    def synthesize(self, text):
        return AUDIO

    def stream(self, text):
        try:
            for _ in range(3):
                yield AUDIO[:100]
        finally:
            self.closed_stream = True

    def synthesize_batch(self, texts):
        return [(AUDIO, 8000) for _ in texts]


def test_load_close_and_info_are_optional():
    engine = adapt(OnlySynthesize())
    engine.load()
    engine.close()
    assert engine.info() == {}
    out = engine.synthesize("abc")
    assert isinstance(out, Output) and len(out.audio) == 3 and out.sample_rate == 16000


def test_an_engine_without_stream_cannot_stream():
    assert not can_stream(adapt(OnlySynthesize()))
    assert adapt(OnlySynthesize()).stream is None


def test_the_adapter_is_the_engine_seen_through_the_full_protocol():
    inner = Streaming()
    engine = adapt(inner)
    assert adapt(engine) is engine and isinstance(engine, Adapted)
    assert engine.name == "streaming" and engine.sample_rate == 8000  # the engine's own
    engine.load()
    assert inner.loaded
    assert can_stream(engine)
    chunks = list(engine.stream("hi"))
    assert [c.sample_rate for c in chunks] == [8000] * 3 and len(chunks[0].audio) == 100
    assert [o.sample_rate for o in engine.synthesize_batch(["a", "b"])] == [8000, 8000]


def test_closing_the_stream_closes_the_engines_generator():
    inner = Streaming()
    chunks = adapt(inner).stream("hi")
    next(chunks)
    chunks.close()
    assert inner.closed_stream


def test_a_missing_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        _ = adapt(OnlySynthesize()).sample_rate


# --- measure_call: a wrong answer is the call's error, not a traceback ---------------------------


def test_measure_call_takes_a_tuple():
    rec = measure_call(OnlySynthesize(), "abcd", use_stream=False, keep_audio=True)
    assert rec.error is None and rec.samples == 4 and rec.sample_rate == 16000
    assert rec.audio.tolist() == [0.0] * 4


def test_measure_call_streams_arrays():
    rec = measure_call(Streaming(), "x", use_stream=True, keep_audio=False)
    assert rec.error is None and rec.chunks == 3 and rec.samples == 300
    assert rec.sample_rate == 8000 and rec.ttfa_ns is not None


def test_measure_call_records_a_wrong_answer_in_one_line():
    class NoRate:
        def synthesize(self, text):
            return AUDIO

    rec = measure_call(NoRate(), "x", use_stream=False, keep_audio=False)
    assert rec.error is not None and rec.error["type"] == "EngineFailed"
    assert rec.error["message"].startswith("synthesize() returned a bare array")
    assert rec.samples == 0


# --- the minimal engine in docs/engines.md ---------------------------------------------------------


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_docs_python_examples_compile():
    assert python_blocks()
    for block in python_blocks():
        compile(block, str(DOC), "exec")


def test_the_docs_minimal_engine_answers_through_the_protocol():
    (block,) = [b for b in python_blocks() if "class Beep" in b]
    namespace: dict[str, object] = {}
    exec(block, namespace)
    out = adapt(namespace["Beep"]()).synthesize("Hello world.")
    assert out.sample_rate == 16000 and out.audio.dtype == np.float32 and len(out.audio) > 0


def test_the_docs_minimal_engine_is_the_one_in_examples():
    (block,) = [b for b in python_blocks() if "class Beep" in b]
    example = (DOC.parents[1] / "examples" / "my_engines.py").read_text(encoding="utf-8")
    assert "class Beep" + block.split("class Beep", 1)[1] in example
