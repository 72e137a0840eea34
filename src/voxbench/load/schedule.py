"""When each request should be sent: constant or Poisson arrivals at a rate, or a closed loop."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from voxbench.errors import ConfigError

Arrivals = Literal["poisson", "constant"]


@dataclass(frozen=True)
class Level:
    """One load level: an open-loop ``rate`` (requests/s) or a closed-loop ``concurrency``."""

    kind: Literal["rate", "concurrency"]
    value: float

    @property
    def label(self) -> str:
        v = f"{self.value:g}"
        return f"{v} req/s" if self.kind == "rate" else f"{v} concurrent"


def intended_offsets(
    rate: float, *, duration_s: float | None, requests: int | None, arrivals: Arrivals, seed: int
) -> list[float]:
    """Seconds from the level's start at which each request is due.

    Poisson arrivals draw exponential gaps of mean 1/rate from a seeded generator, so a run can be
    repeated exactly; constant arrivals are evenly spaced. Stops at ``duration_s`` or after
    ``requests``, whichever is given (requests wins when both are).
    """
    if rate <= 0:
        raise ConfigError("--rate values must be above 0")
    if duration_s is None and requests is None:
        raise ConfigError("give --duration or --requests")
    rng = random.Random(seed)
    offsets: list[float] = []
    t = 0.0
    while True:
        if requests is not None and len(offsets) >= requests:
            break
        if requests is None and duration_s is not None and t >= duration_s:
            break
        offsets.append(t)
        t += rng.expovariate(rate) if arrivals == "poisson" else 1.0 / rate
    return offsets


def parse_duration(text: str) -> float:
    """``"20s"``, ``"2m"``, ``"500ms"`` or a bare number of seconds → seconds."""
    raw = text.strip().lower()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if raw.endswith(suffix):
            raw, factor = raw[: -len(suffix)], scale
            break
    else:
        factor = 1.0
    try:
        value = float(raw) * factor
    except ValueError:
        raise ConfigError(f"cannot read duration {text!r} (e.g. 20s, 2m, 500ms)") from None
    if value < 0:
        raise ConfigError(f"duration {text!r} is negative")
    return value
