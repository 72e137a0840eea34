"""Engine arguments and parameter sweeps from the command line (``k=v``, ``k=v1,v2,v3``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from voxbench.errors import ConfigError

Scalar = str | int | float | bool | None


def parse_value(text: str) -> Scalar:
    """``"3"`` → 3, ``"0.8"`` → 0.8, ``"true"`` → True, ``"none"`` → None, anything else a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text.strip()


def _split_pair(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{flag} {item!r} must look like name=value")
    return key.strip(), value


def parse_args(items: Iterable[str]) -> dict[str, Scalar]:
    """``--engine-arg k=v`` options: one value each (a comma stays part of the value)."""
    return {k: parse_value(v) for k, v in (_split_pair(i, "--engine-arg") for i in items)}


def parse_sweep(items: Iterable[str]) -> dict[str, list[Scalar]]:
    """``--param k=v1,v2`` options: each name with the values to sweep, in the order given."""
    sweep: dict[str, list[Scalar]] = {}
    for item in items:
        key, raw = _split_pair(item, "--param")
        values = [parse_value(v) for v in raw.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--param {item!r} has no values")
        sweep.setdefault(key, [])
        sweep[key].extend(v for v in values if v not in sweep[key])
    return sweep


def combinations(sweep: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cross product of a sweep, as one dict per combination (one empty dict for no sweep)."""
    if not sweep:
        return [{}]
    keys = list(sweep)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*sweep.values())]


def parse_list(text: str, flag: str, kind: type = str) -> list[Any]:
    """A comma-separated option value (``--device cpu,cuda``, ``--batch-size 1,4``)."""
    out = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        try:
            out.append(kind(raw.strip()))
        except ValueError:
            raise ConfigError(f"{flag}: {raw.strip()!r} is not a valid value") from None
    if not out:
        raise ConfigError(f"{flag} needs at least one value")
    return out
