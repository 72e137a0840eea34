"""What a run did not measure: the document's ``skipped`` entries and their one-line text."""

from __future__ import annotations


def skip_text(skip: dict[str, str]) -> str:
    """One line for an engine, device or batch size that was not run, and why."""
    where = " on " + skip["device"] if "device" in skip else ""
    if "batch_size" in skip:
        where += f" at batch size {skip['batch_size']}"
    return f"{skip.get('engine', '?')}{where}: {skip.get('reason', '')}"
