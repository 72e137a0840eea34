"""Workloads: the built-in text corpus, generated piano pieces and singing, spoken corpora and
assistant requests, LLM prompts, and the user's files."""

from __future__ import annotations

from pathlib import Path

from voxbench.errors import ConfigError
from voxbench.workloads.base import Workload, WorkloadItem
from voxbench.workloads.corpus import CORPUS, DESCRIPTIONS

__all__ = ["Workload", "WorkloadItem", "builtin_workloads", "resolve_workload"]


def builtin_workloads() -> dict[str, str]:
    """Name → description of every built-in workload."""
    from voxbench.workloads.assistant import ASSISTANT_DESCRIPTIONS
    from voxbench.workloads.midi import BUILTIN_MIDI_DESCRIPTIONS
    from voxbench.workloads.prompts import PROMPT_DESCRIPTIONS
    from voxbench.workloads.singing import BUILTIN_SINGING_DESCRIPTIONS
    from voxbench.workloads.spoken import SPOKEN_DESCRIPTIONS

    return {
        **DESCRIPTIONS,
        **BUILTIN_MIDI_DESCRIPTIONS,
        **BUILTIN_SINGING_DESCRIPTIONS,
        **SPOKEN_DESCRIPTIONS,
        **ASSISTANT_DESCRIPTIONS,
        **PROMPT_DESCRIPTIONS,
    }


def resolve_workload(ref: str) -> Workload:
    """A built-in workload by name, or the user's file or folder at path ``ref``."""
    if ref in CORPUS:
        items = tuple(
            WorkloadItem(id=item_id, kind="text", text=text)
            for item_id, text in CORPUS[ref].items()
        )
        return Workload(name=ref, kind="text", items=items, description=DESCRIPTIONS[ref])
    from voxbench.workloads.midi import BUILTIN_MIDI, builtin_midi_workload

    if ref in BUILTIN_MIDI:
        return builtin_midi_workload(ref)
    from voxbench.workloads.singing import BUILTIN_SINGING, builtin_singing_workload

    if ref in BUILTIN_SINGING:
        return builtin_singing_workload(ref)
    from voxbench.workloads.spoken import SPOKEN_DESCRIPTIONS, spoken_workload

    if ref in SPOKEN_DESCRIPTIONS:
        return spoken_workload(ref)
    from voxbench.workloads.assistant import ASSISTANT, assistant_workload

    if ref in ASSISTANT:
        return assistant_workload(ref)
    from voxbench.workloads.prompts import PROMPT_DESCRIPTIONS, prompt_workload

    if ref in PROMPT_DESCRIPTIONS:
        return prompt_workload(ref)
    try:
        path = Path(ref).expanduser()
    except RuntimeError:  # ~user that does not exist
        path = Path(ref)
    if path.exists() or path.suffix:
        from voxbench.workloads.files import load_path

        return load_path(path)
    known = ", ".join(sorted(builtin_workloads()))
    raise ConfigError(
        f"unknown workload {ref!r} (built-in: {known}; or a path to a .txt/.jsonl/.mid/.wav)"
    )
