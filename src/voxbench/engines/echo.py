"""``echo``: a text-to-text engine that answers with its input. It is not a language model.

It stands in the LLM's place of a voice pipeline (``voxbench pipeline --llm echo``), so the chain
speech → STT → TTS is measured without a model's time: what the recogniser heard goes to the
speech synthesizer as it is. ``synthesize(text)`` answers the text with its word count as the
token count (``tokens_source="counted"``); ``stream(text)`` yields the words one at a time, each
one token, the second and later with their leading space (as an LLM's deltas), so joining the
pieces gives the words back. No clock, no sleep: an echo takes microseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from voxbench.engine import BaseEngine, InputKind, Output, OutputKind, TextChunk


class EchoEngine(BaseEngine):
    """Answers with its input: the LLM left out of an STT → LLM → TTS chain."""

    name: ClassVar[str] = "echo"
    input_kind: ClassVar[InputKind] = "text"
    output_kind: ClassVar[OutputKind] = "text"
    description: ClassVar[str] = (
        "echo: answers with its input — measures STT → TTS without an LLM (not a language model)"
    )
    default_workloads: ClassVar[tuple[str, ...]] = ("prompts",)

    def synthesize(self, inp: str) -> Output:
        """The text itself; its words counted as tokens."""
        text = str(inp)
        return Output(text=text, tokens=len(text.split()), tokens_source="counted")

    def stream(self, inp: str) -> Iterator[TextChunk]:
        """The words, one token each; pieces after the first carry their leading space."""
        for n, word in enumerate(str(inp).split()):
            yield TextChunk(text=word if n == 0 else f" {word}", tokens=1)

    def info(self) -> dict[str, Any]:
        """What the engine is; its footprint is nothing (no model, no packages of its own)."""
        from voxbench.engines.footprint import footprint

        return {
            "model": None,
            "kind": "echo (not a language model)",
            "batch_size": 1,
            "footprint": footprint([], []),
        }
