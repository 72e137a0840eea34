"""Run the voxbench CLI as a user would: a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def voxbench(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "voxbench", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("voxbench: error: ")
    for needle in needles:
        assert needle in lines[0]


def terminal_like_sigint() -> None:
    """``preexec_fn`` giving a child the SIGINT a terminal gives: default handling, not blocked.
    Children inherit an ignored disposition and a blocked mask from this pytest process; in
    full-suite runs on CI the signal was once never delivered (the run finished all cases, exit 0),
    which says nothing about voxbench's own Ctrl-C handling."""
    import signal

    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
