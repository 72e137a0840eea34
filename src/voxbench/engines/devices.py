"""Devices a case runs on: ``cpu``, ``cuda`` or ``cuda:N``, and whether an engine takes them.

Whether this machine has a device is :func:`voxbench.run.environment.machine_reason`."""

from __future__ import annotations

import inspect
import re
from typing import Any

from voxbench.errors import ConfigError

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def normalize(device: str) -> str:
    """Check a device name; one-line ConfigError for anything but cpu, cuda, cuda:N."""
    name = device.strip().lower()
    if not _DEVICE.match(name):
        raise ConfigError(f"unknown device {device!r} (use cpu, cuda or cuda:N)")
    return name


def accepts_device(factory: Any) -> bool:
    """True when the engine factory takes a ``device`` keyword argument."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "device" in params


def engine_reason(factory: Any, device: str) -> str | None:
    """None when the engine can be asked to run on ``device``, else why not."""
    if device == "cpu":
        return None
    declared = getattr(factory, "devices", None)
    if declared is not None:
        family = device.split(":", 1)[0]
        return None if family in declared else f"runs on {', '.join(declared)} only"
    return None if accepts_device(factory) else "takes no device argument (runs on cpu only)"
