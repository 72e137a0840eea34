"""Targets: the value a quality metric should reach, and the PASS/FAIL verdict against it.

Defaults follow common practice in TTS and voice-conversion papers and model cards; every one can
be overridden in ``voxbench.toml``::

    [targets]
    wer = 0.05                 # the direction comes from the metric (lower is better)
    speaker_similarity = ">= 0.9"
    mcd_db = "off"             # no target, no verdict

or on the command line with ``--target wer<=0.05``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from voxbench.errors import ConfigError

Op = Literal["<=", ">="]


@dataclass(frozen=True)
class Target:
    value: float
    op: Op
    why: str = ""

    def check(self, actual: float) -> bool:
        return actual <= self.value if self.op == "<=" else actual >= self.value

    def text(self) -> str:
        return f"{self.op} {self.value:g}"


DEFAULT_TARGETS: dict[str, Target] = {
    "f0_rmse_hz": Target(10.0, "<=", "pitch accuracy: under 10 Hz RMSE"),
    "speaker_similarity": Target(0.85, ">=", "same speaker: cosine over 0.85"),
    "wer": Target(0.10, "<=", "intelligible: under 10% word errors"),
    "cer": Target(0.05, "<=", "intelligible: under 5% character errors"),
    "pesq_wb": Target(3.0, ">=", "PESQ wide band 3.0: 'fair' to 'good'"),
    "stoi": Target(0.90, ">=", "STOI 0.9: near-full intelligibility"),
    "dnsmos_ovrl": Target(3.0, ">=", "DNSMOS overall 3.0: 'fair' or better"),
    # SPTK-convention MCD (the RMS dB difference of the warped spectra): the target passes the
    # same voice and fails another (tests/integration/test_quality_models.py)
    "mcd_db": Target(6.0, "<=", "MCD under 6 dB: same voice, typical of good TTS/VC"),
}

_SPEC = re.compile(
    r"^\s*(?P<name>[A-Za-z_][\w]*)?\s*(?P<op><=|>=|<|>)?\s*(?P<value>[-+\d.eE]+)\s*$"
)


def _parse(name: str, spec: Any, higher_is_better: bool | None) -> Target | None:
    """``0.05`` (direction from the metric), ``"<= 0.05"``, or ``"off"`` (None)."""
    if isinstance(spec, str) and spec.strip().lower() in ("off", "none", ""):
        return None
    if isinstance(spec, bool) or not isinstance(spec, int | float | str):
        raise ConfigError(
            f"target for {name!r}: expected a number or '<= N' / '>= N', got {spec!r}"
        )
    if isinstance(spec, int | float):
        op: str | None = None
        value = float(spec)
    else:
        match = _SPEC.match(spec)
        if not match or match["name"]:
            raise ConfigError(f"target for {name!r}: expected '<= N' or '>= N', got {spec!r}")
        op, value = match["op"], float(match["value"])
    if op is None:
        default = DEFAULT_TARGETS.get(name)
        if default is not None:
            op = default.op
        elif higher_is_better is not None:
            op = ">=" if higher_is_better else "<="
        else:
            raise ConfigError(f"target for {name!r}: say '<= N' or '>= N' (unknown direction)")
    op = {"<": "<=", ">": ">="}.get(op, op)
    return Target(value, op, "configured")  # type: ignore[arg-type]


def parse_target_option(text: str) -> tuple[str, Target | None]:
    """``wer<=0.05`` or ``mcd_db=off`` from ``--target``."""
    match = re.match(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|<|>|=)\s*(.+)$", text)
    if not match:
        raise ConfigError(f"--target {text!r}: expected NAME<=VALUE, NAME>=VALUE or NAME=off")
    name, op, rest = match.groups()
    spec: Any = rest if op == "=" else f"{op} {rest}"
    if op == "=":
        try:
            spec = float(rest)
        except ValueError:
            spec = rest
    return name, _parse(name, spec, None)


def resolve_targets(
    configured: dict[str, Any] | None = None,
    options: list[str] | None = None,
    directions: dict[str, bool] | None = None,
) -> dict[str, Target]:
    """Defaults, then the config file's ``[targets]``, then ``--target`` options (last wins)."""
    targets: dict[str, Target | None] = dict(DEFAULT_TARGETS)
    for name, spec in (configured or {}).items():
        targets[name] = _parse(name, spec, (directions or {}).get(name))
    for text in options or []:
        name, target = parse_target_option(text)
        targets[name] = target
    return {k: v for k, v in targets.items() if v is not None}
