"""One rule for figures measured against servers and engines of KNOWN timing.

A measured interval is the known time plus what the client, the event loop and the operating system
add. It can never be shorter than the known time (that would be a clock read too early, or a
stage counted twice), and on a loaded 2-core CI machine, with a compiler running beside the
tests, it can be some tens of milliseconds longer. A relative tolerance alone is wrong both ways:
5 % of 200 ms is too tight for scheduling noise, and it also lets a figure come out *below* the
known time."""

from __future__ import annotations

# scheduling noise we accept on top of the known time: 5 % of it, and at least this many ms
MIN_SLACK_MS = 40.0
# clock granularity: two monotonic reads around a sleep can come out this much short of it
EARLY_MS = 1.0


def assert_took(measured_ms: float, known_ms: float, *, slack_ms: float | None = None) -> None:
    """``known_ms <= measured_ms <= known_ms + slack``, with the numbers in the message."""
    slack = max(0.05 * known_ms, MIN_SLACK_MS) if slack_ms is None else slack_ms
    assert known_ms - EARLY_MS <= measured_ms <= known_ms + slack, (
        f"measured {measured_ms:.1f} ms, known {known_ms:.1f} ms (+{slack:.0f} ms allowed)"
    )
