"""Spoken assistant requests: what a user says to a voice assistant, as speech, for a voice pipeline.

``assistant`` is :data:`ASSISTANT_PROMPTS` spoken by piper (en_US "joe"), ``assistant-espeak`` by
espeak-ng and ``assistant-flite`` by flite, exactly as the spoken corpora are made
(:mod:`voxbench.workloads.spoken`: the same speakers, the same deterministic settings, the same
cache, keyed by a hash of the TTS, its version and the text). Each item is a WAV file whose
``text`` is the request as written, the reference transcript a recogniser is scored against, and
whose ``meta`` carries what the spoken corpora's do plus ``"role": "assistant-request"`` (what a
pipeline answers, not a sentence to be read back).

The requests range from a few words to one asking for a three-sentence story, so a pipeline is
measured on a short command and on an answer long enough to stream.
"""

from __future__ import annotations

from voxbench.errors import ConfigError
from voxbench.workloads.base import Workload
from voxbench.workloads.spoken import VOICES, spoken_item

ASSISTANT_PROMPTS: dict[str, str] = {
    "time": "What time is it?",
    "timer": "Set a timer for ten minutes.",
    "capital": "What is the capital of France?",
    "lights": "Turn off the lights in the kitchen.",
    "story": "Tell me a short story about a lighthouse keeper, in three sentences.",
}
"""Item id → the request as written (the reference transcript of its speech)."""

ROLE = "assistant-request"

ASSISTANT: dict[str, str] = {
    ("assistant" if tts == "piper" else f"assistant-{tts}"): tts
    for tts in ("piper", "espeak", "flite")
}
"""Workload name → the TTS that speaks it."""

ASSISTANT_DESCRIPTIONS: dict[str, str] = {
    name: f"five voice-assistant requests spoken by {tts} ({VOICES[tts]}), transcript as the "
    "reference (for voxbench pipeline)"
    for name, tts in ASSISTANT.items()
}


def assistant_workload(name: str) -> Workload:
    """One of :data:`ASSISTANT` as an audio :class:`Workload` (speech generated into the cache).

    Raises ConfigError for an unknown name, or with the fix when its TTS is not installed.
    """
    if name not in ASSISTANT:
        raise ConfigError(f"unknown assistant workload {name!r} (known: {', '.join(ASSISTANT)})")
    tts = ASSISTANT[name]
    items = tuple(
        spoken_item(item_id, text, tts, role=ROLE) for item_id, text in ASSISTANT_PROMPTS.items()
    )
    return Workload(name=name, kind="audio", items=items, description=ASSISTANT_DESCRIPTIONS[name])
