"""An engine's footprint on disk: its model files and the installed Python packages it needs.

``footprint(["piper-tts", "onnxruntime"], [model])`` gives sizes in MiB (2**20 bytes):

- ``model_files``: each file's size, by path (a folder: the files under it, e.g. a CTranslate2
  model or espeak-ng-data); ``model_mib``: their sum;
- ``packages``: each distribution's installed size, the sum of the sizes of the files its
  ``RECORD`` lists (``importlib.metadata``; the size recorded there, else the file's own, so
  ``__pycache__`` files written later count when they exist); ``packages_mib``: their sum;
- ``missing``: the distributions or files that are not there (left out of the sums).

The answer is cached per process (the same arguments are asked for by every case of an engine),
so ``info()`` may call it each time.
"""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def footprint(distributions: list[str], model_files: list[Path]) -> dict[str, Any]:
    """Model file sizes and installed package sizes in MiB (see the module's docstring)."""
    models = tuple(str(Path(p)) for p in model_files)
    result = _footprint(tuple(distributions), models)
    # A copy, so a caller editing the dict cannot change the cached answer.
    return {
        key: (
            dict(value)
            if isinstance(value, dict)
            else list(value)
            if isinstance(value, list)
            else value
        )
        for key, value in result.items()
    }


@functools.lru_cache(maxsize=256)
def _footprint(distributions: tuple[str, ...], model_files: tuple[str, ...]) -> dict[str, Any]:
    missing: list[str] = []
    files: dict[str, float] = {}
    for name in model_files:
        path = Path(name)
        try:
            size = _tree_bytes(path) if path.is_dir() else path.stat().st_size
        except OSError:
            missing.append(name)
        else:
            files[name] = _mib(size)
    packages: dict[str, float] = {}
    for dist in distributions:
        installed = distribution_bytes(dist)
        if installed is None:
            missing.append(dist)
        else:
            packages[dist] = _mib(installed)
    return {
        "model_files": files,
        "model_mib": round(float(sum(files.values())), 3),
        "packages": packages,
        "packages_mib": round(float(sum(packages.values())), 3),
        "missing": missing,
    }


@functools.lru_cache(maxsize=256)
def distribution_bytes(name: str) -> int | None:
    """The installed size of distribution ``name`` in bytes, or None when it is not installed."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    total = 0
    for entry in dist.files or []:
        recorded = entry.size
        if recorded:
            total += int(recorded)
            continue
        try:
            total += Path(str(dist.locate_file(entry))).stat().st_size
        except OSError:
            continue  # listed but absent (a RECORD line for a file removed later)
    return total


def _tree_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (links not followed: a model folder's own files)."""
    total = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def _mib(size: int) -> float:
    return round(size / MIB, 3)
