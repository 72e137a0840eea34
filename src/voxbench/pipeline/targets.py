"""Targets of a voice-assistant chain: each figure against a bound, PASS or FAIL.

The defaults are the voice-assistant seed's: STT under 500 ms after the end of speech, the LLM at
60 tokens/s or more (its 60–120 band's lower edge), TTS's first audio within 2 s, the whole answer
produced within 5 s and its first audible sample within 1 s of the end of speech. A target is
``NAME<=N`` or ``NAME>=N``, optionally ``NAME:STAT`` (``median`` unless told: ``p90``, ``p95``,
``p99``, ``mean``, ``max``), judged on the raw per-conversation values pooled over the prompts of
one mode (and, per case, over that case's conversations).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from voxbench.errors import ConfigError
from voxbench.results.pipeline_doc import TargetCheck

LABELS: dict[str, tuple[str, str]] = {
    "first_audio_ms": ("end of speech → first audible answer", "ms"),
    "first_byte_ms": ("end of speech → first audio byte", "ms"),
    "end_to_end_ms": ("end of speech → whole answer produced", "ms"),
    "stt_ms": ("STT latency after end of speech", "ms"),
    "llm_ttft_ms": ("LLM time to first token", "ms"),
    "llm_ms": ("LLM whole answer", "ms"),
    "tokens_per_second": ("LLM tokens/s", "tok/s"),
    "tts_first_audio_ms": ("TTS time to first audio", "ms"),
    "tts_rtf": ("TTS rtf (wall / audio)", ""),
    "handoff_ms": ("time lost between stages", "ms"),
    "stall_ms": ("playback stalls of the answer", "ms"),
}
DEFAULT_TARGETS = (
    "stt_ms<=500",
    "tokens_per_second>=60",
    "tts_first_audio_ms<=2000",
    "end_to_end_ms<=5000",
    "first_audio_ms<=1000",
)
STATS = ("median", "mean", "p90", "p95", "p99", "max")
_FORM = re.compile(r"^\s*([a-z_]+)(?::([a-z0-9]+))?\s*(<=|>=)\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Target:
    """One parsed target."""

    name: str
    stat: str
    op: str
    bound: float

    def text(self) -> str:
        """How the target is written back."""
        stat = "" if self.stat == "median" else f":{self.stat}"
        return f"{self.name}{stat}{self.op}{self.bound:g}"


def parse_targets(texts: Iterable[str]) -> list[Target]:
    """Parse ``NAME[:STAT]<=N`` / ``>=N``; a name given twice keeps the last. ConfigError names
    the bad one."""
    found: dict[tuple[str, str], Target] = {}
    for text in texts:
        m = _FORM.match(text)
        if m is None:
            raise ConfigError(f"bad target {text!r}: write NAME<=N or NAME>=N (e.g. stt_ms<=500)")
        name, stat, op, bound = m.group(1), m.group(2) or "median", m.group(3), m.group(4)
        if name not in LABELS:
            raise ConfigError(f"unknown target {name!r} (known: {', '.join(LABELS)})")
        if stat not in STATS:
            raise ConfigError(f"unknown statistic {stat!r} in {text!r} (use {', '.join(STATS)})")
        try:
            value = float(bound)
        except ValueError:
            raise ConfigError(f"bad number {bound!r} in target {text!r}") from None
        found[(name, stat)] = Target(name, stat, op, value)
    return list(found.values())


def statistic(values: Sequence[float], stat: str) -> float | None:
    """``stat`` of the values; None for none."""
    if not values:
        return None
    data = np.asarray(values, dtype=float)
    if stat == "mean":
        return float(data.mean())
    if stat == "max":
        return float(data.max())
    pct = 50.0 if stat == "median" else float(stat[1:])
    return float(np.percentile(data, pct))


def check(
    targets: Sequence[Target],
    samples: dict[str, list[float]],
    *,
    mode: str | None,
    echo: bool = False,
) -> list[TargetCheck]:
    """Each target against the pooled samples: a row with the actual value and PASS/FAIL."""
    rows = []
    for t in targets:
        label, unit = LABELS[t.name]
        actual = statistic(samples.get(t.name, []), t.stat)
        note = ""
        if actual is None:
            note = "not measured"
        if echo and t.name in ("tokens_per_second", "llm_ttft_ms", "llm_ms"):
            actual, note = None, "echo: no language model ran"
        passed = None
        if actual is not None:
            passed = actual <= t.bound if t.op == "<=" else actual >= t.bound
        rows.append(
            TargetCheck(
                name=t.name,
                label=label,
                op=t.op,
                target=t.bound,
                unit=unit,
                stat=t.stat,
                actual=actual,
                passed=passed,
                mode=mode,
                note=note,
            )
        )
    return rows
