"""Prompts for text-to-text engines (LLMs): what a user says to a voice assistant.

``prompts`` holds four short requests, each asking for a short answer, so that an answer fits in
the default ``max_tokens`` (64) and a call measures time to first token and a decode run of tens of
tokens. The texts are fixed: the same workload on every machine.
"""

from __future__ import annotations

from voxbench.errors import ConfigError
from voxbench.workloads.base import Workload, WorkloadItem

PROMPTS: dict[str, dict[str, str]] = {
    "prompts": {
        "prompt-1": "What is the capital of France? Answer in one sentence.",
        "prompt-2": "Set a reminder for my dentist appointment tomorrow at nine.",
        "prompt-3": "Give me one tip for sleeping better tonight.",
        "prompt-4": "Tell me a short fact about the moon.",
    },
}

PROMPT_DESCRIPTIONS: dict[str, str] = {
    "prompts": "four short voice-assistant requests for a chat LLM (text in, text out)",
}


def prompt_workload(name: str) -> Workload:
    """The built-in prompt workload ``name``."""
    if name not in PROMPTS:
        known = ", ".join(sorted(PROMPTS))
        raise ConfigError(f"unknown prompt workload {name!r} (built-in: {known})")
    items = tuple(
        WorkloadItem(id=item_id, kind="text", text=text) for item_id, text in PROMPTS[name].items()
    )
    return Workload(name=name, kind="text", items=items, description=PROMPT_DESCRIPTIONS[name])
