"""Keep stdout clean for machine-readable output.

``--json -`` promises a parseable document on stdout, but engines share the process (or its file
descriptors, in workers): pyfluidsynth prints where it found its library when ``CI`` is set, C
libraries write warnings to fd 1. While such a command runs, fd 1 and ``sys.stdout`` point at
stderr, and the data is written to the real stdout at the end.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def reserved_stdout(active: bool = True) -> Iterator[TextIO]:
    """Yield a stream on the real stdout; everything else written to stdout meanwhile goes to stderr."""
    if not active:
        yield sys.stdout
        return
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        fd = None  # a replaced sys.stdout (a test runner's buffer): redirect at the Python level only
    original = sys.stdout
    original.flush()
    if fd is None:
        with contextlib.redirect_stdout(sys.stderr):
            yield original
        return
    saved = os.dup(fd)
    sys.stderr.flush()
    os.dup2(sys.stderr.fileno(), fd)
    sys.stdout = sys.stderr
    data = os.fdopen(os.dup(saved), "w", encoding="utf-8")
    try:
        yield data
    finally:
        with contextlib.suppress(OSError):
            data.flush()
        data.close()
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        sys.stdout = original
