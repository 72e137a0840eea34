"""SIGTERM handled like Ctrl-C: what ``voxbench`` holds while a command runs.

A run stopped by ``kill PID`` (a CI job cancelled, a cluster scheduler's pre-emption) must end
like one stopped by Ctrl-C: what was measured written, the document saying which planned cases
are incomplete, the run recorded in the store as partial. Python turns SIGINT into
KeyboardInterrupt but lets SIGTERM kill the process at once; within :func:`stop_on_signals` both
raise :class:`SignalInterrupt`, a KeyboardInterrupt that knows its signal, so that
:meth:`voxbench.results.folder.RunFolder.measuring` closes the run the same way and the exit
status is 128 + the signal (130 for SIGINT, 143 for SIGTERM). Only the standard library is
imported: ``voxbench --help`` stays fast. A Python caller can hold it too::

    from voxbench.cli.signals import stop_on_signals

    with stop_on_signals():
        api.benchmark(request)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalInterrupt(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread; ``signum`` sets the exit status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(exc: BaseException) -> int:
    """128 + the signal a KeyboardInterrupt stands for (a plain one is Ctrl-C: 130)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


class Caught:
    """The signal that stopped the block, if one did (typer turns a KeyboardInterrupt outside a
    run into a silent exit 130: the entry point reads this to say which it was)."""

    signum: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[Caught]:
    """Within the block, SIGINT and SIGTERM raise :class:`SignalInterrupt` in the main thread;
    the previous handlers come back when it ends. Outside the main thread (where Python cannot
    set handlers) it changes nothing."""
    caught = Caught()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        caught.signum = signum
        raise SignalInterrupt(signum)

    # a signal ignored when voxbench started (nohup, a background job) stays ignored
    wanted = [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
    before = {s: signal.signal(s, stop) for s in wanted}
    try:
        yield caught
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
