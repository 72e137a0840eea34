"""Errors voxbench raises. Every message is one line a user can act on.

The CLI prints ``str(error)`` and exits non-zero; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations


class VoxbenchError(Exception):
    """Base of every error voxbench raises on purpose; its message is one user-facing line."""

    exit_code = 2


class ConfigError(VoxbenchError):
    """Bad input from the user: unknown engine or workload, empty corpus, bad option value."""


class EngineUnavailable(VoxbenchError):
    """An engine cannot run here: a system or Python package is missing. The message names the fix."""


class EngineFailed(VoxbenchError):
    """An engine raised, hung past its timeout, or its worker process died."""


class Interrupted(VoxbenchError):
    """The user stopped a run (Ctrl-C, SIGTERM); what was measured is written, the message says where."""

    exit_code = 130
