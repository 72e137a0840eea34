"""The echo engine: the input back, its words as tokens; registered by name, and says it is no LLM."""

from __future__ import annotations

from voxbench.engine import TextChunk, adapt, can_stream
from voxbench.engines.echo import EchoEngine
from voxbench.engines.registry import EngineSpec, describe
from voxbench.run.measure import measure_call

PROMPT = "What is the capital of France?"


def test_synthesize_answers_the_input_with_its_word_count() -> None:
    out = EchoEngine().synthesize(PROMPT)
    assert out.text == PROMPT
    assert (out.tokens, out.tokens_source) == (6, "counted")
    assert out.audio is None
    empty = EchoEngine().synthesize("")
    assert (empty.text, empty.tokens) == ("", 0)


def test_stream_yields_the_words_one_token_each() -> None:
    pieces = list(EchoEngine().stream("Set a timer  for\nten minutes."))
    assert [p.text for p in pieces] == ["Set", " a", " timer", " for", " ten", " minutes."]
    assert all(isinstance(p, TextChunk) and p.tokens == 1 and not p.partial for p in pieces)
    assert "".join(p.text for p in pieces) == "Set a timer for ten minutes."
    assert list(EchoEngine().stream("   ")) == []


def test_registered_as_echo_and_described_as_not_a_language_model() -> None:
    engine = EngineSpec("echo").create()
    assert isinstance(engine, EchoEngine) and can_stream(engine)
    row = describe("echo")
    assert (row["input"], row["output"], row["streaming"], row["available"]) == (
        "text",
        "text",
        True,
        True,
    )
    assert row["description"].startswith(
        "echo: answers with its input — measures STT → TTS without an LLM"
    )
    assert "not a language model" in row["description"]
    info = adapt(engine).info()
    assert info["model"] is None and info["footprint"]["packages_mib"] == 0


def test_a_measured_stream_counts_the_words_as_tokens() -> None:
    """Through the timing code, as ``voxbench run -e echo`` measures it."""
    record = measure_call(adapt(EchoEngine()), PROMPT, use_stream=True, keep_audio=False)
    assert record.error is None
    assert record.text == PROMPT
    assert record.tokens == 6
    assert record.ttfa_ns is not None and record.ttfa_ns <= record.wall_ns
