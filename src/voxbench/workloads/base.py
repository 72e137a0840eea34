"""A workload is a named list of inputs; each :class:`WorkloadItem` is one input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxbench.engine import InputKind


@dataclass(frozen=True)
class WorkloadItem:
    """One input: ``text`` for text workloads, ``path`` for MIDI or audio files.

    ``meta`` carries what is known about the input (e.g. the intended duration and polyphony of a
    generated MIDI piece) and is copied into the result document.
    """

    id: str
    kind: InputKind
    text: str | None = None
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> str | Path:
        """The value handed to ``engine.synthesize``: the text, or the file path."""
        if self.kind == "text":
            assert self.text is not None
            return self.text
        assert self.path is not None
        return self.path

    @property
    def chars(self) -> int | None:
        return len(self.text) if self.text is not None else None


@dataclass(frozen=True)
class Workload:
    name: str
    kind: InputKind
    items: tuple[WorkloadItem, ...]
    description: str = ""
