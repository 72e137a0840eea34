"""Reading a result document from a file the user names, before pydantic sees it.

A file is refused, each time in one line, when it is larger than :func:`max_document_bytes`
(checked on its size before a byte is read), cannot be read, is not JSON, is not a JSON object,
or carries a ``schema_version`` this voxbench cannot read: another major version, or a newer
minor one whose new fields the models here do not know. Parsing is ``pydantic_core.from_json``
(no code is ever run from a document: no pickle, no eval).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import ValidationError

MAX_DOCUMENT_MB = 512
"""Default limit on a result document's size (a large load run is tens of MB)."""
LIMIT_ENV = "VOXBENCH_MAX_DOCUMENT_MB"
_VERSION = re.compile(r"(\d{1,6})\.(\d{1,6})")


def max_document_bytes() -> int:
    """The largest document read: ``$VOXBENCH_MAX_DOCUMENT_MB`` MiB, else 512 MiB."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    if not raw:
        return MAX_DOCUMENT_MB * 2**20
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not 0 < mb < 2**40:
        raise ConfigError(f"{LIMIT_ENV}={raw!r} is not a positive number of MiB")
    return int(mb * 2**20)


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def read_capped(path: Path, limit: int, what: str, hint: str = "") -> bytes:
    """The bytes of ``path``, refused in one line (ConfigError) when it is a folder, cannot be
    read, or is larger than ``limit``: by its size before a byte is read, and again as read (a
    file still growing is cut at ``limit + 1`` bytes, then refused). ``what`` names the kind of
    file in the message (``"result document"``), ``hint`` ends it (how to lift the limit)."""
    try:
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a {what}")
        size = path.stat().st_size
        if size <= limit:
            with path.open("rb") as f:
                data = f.read(limit + 1)
            size = len(data)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > limit:
        raise ConfigError(
            f"{path} is {_size(size)}, more than the {_size(limit)} a {what} may be{hint}"
        )
    return data


def read_json(path: Path, what: str = "result document") -> Any:
    """The JSON value in ``path``; ConfigError when it is too large, unreadable or not JSON."""
    import pydantic_core

    data = read_capped(path, max_document_bytes(), what, f" (set {LIMIT_ENV} to read it)")
    try:
        return pydantic_core.from_json(data, allow_inf_nan=True)
    except (ValueError, RecursionError) as exc:
        reason = (str(exc).splitlines() or ["invalid"])[0][:200]
        raise ConfigError(f"{path} is not JSON ({reason})") from None


def parse_version(version: str) -> tuple[int, int] | None:
    """``(major, minor)`` of ``"1.7"``; None for anything else."""
    m = _VERSION.fullmatch(version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_version(data: Any, where: str, ours: str) -> bool:
    """Refuse what cannot be a document this voxbench reads; True when ``data`` says it is of a
    newer minor version than ``ours`` (it may still validate: the caller says so if not)."""
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a JSON {type(data).__name__}"
        raise ConfigError(f"{where} is not a voxbench result document: it holds {kind}")
    version = data.get("schema_version")
    if version is None:  # the models' default: validation decides
        return False
    theirs = parse_version(version) if isinstance(version, str) else None
    mine = parse_version(ours)
    assert mine is not None
    if theirs is None:
        shown = repr(version) if len(repr(version)) <= 40 else repr(version)[:39] + "…"
        raise ConfigError(
            f"{where} has schema_version {shown}, not a version voxbench writes "
            f"(MAJOR.MINOR, this one writes {ours})"
        )
    if theirs[0] > mine[0]:
        raise ConfigError(
            f"{where} is schema {version}, this voxbench reads up to {mine[0]}.x: upgrade voxbench"
        )
    if theirs[0] < mine[0]:
        raise ConfigError(
            f"{where} is schema {version}, older than this voxbench reads ({mine[0]}.x)"
        )
    return theirs[1] > mine[1]


def invalid(exc: ValidationError, where: str, newer: str | None, ours: str) -> ConfigError:
    """The one line for a document that failed validation (its first error), saying "upgrade"
    when the document is of a newer minor version, whose fields may be the reason."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    reason = " ".join(f"{loc}: {first['msg']}".split())[:300]
    if newer:
        return ConfigError(
            f"{where} is schema {newer}, this voxbench reads up to {ours}: upgrade voxbench "
            f"({reason})"
        )
    return ConfigError(f"{where} is not a voxbench result document: {reason}")
