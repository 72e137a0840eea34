"""What to run, built and validated in one place for every caller.

A :class:`RunRequest` comes from three sources, each overriding the one before: the defaults
(:class:`~voxbench.run.settings.Settings` and the dataclass defaults here, declared once), a
``voxbench.toml`` (:mod:`voxbench.run.config`), and :class:`RunOptions` — what a command line or
a Python caller says, ``None`` meaning "not given". ``voxbench run`` is
``RunRequest.from_sources(config, RunOptions(...))``; a Python user gets the same checks::

    from voxbench.run import RunOptions, RunRequest
    request = RunRequest.from_sources(None, RunOptions(engines=["espeak"], workloads=["short"]))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

from voxbench.engines import devices
from voxbench.errors import ConfigError
from voxbench.run.config import ConfigFile, load_config
from voxbench.run.params import parse_args, parse_list, parse_sweep
from voxbench.run.settings import DEFAULT_OUTPUT, Settings

EXECUTORS = ("local", "ray")
"""Where a run's cases are placed: here one after another, or as Ray tasks (:mod:`voxbench.run.ray_executor`)."""

RAY_HINT = "--executor ray needs Ray: pip install 'voxbench[ray]'"


def split_values(values: list[str] | str | None) -> list[str] | None:
    """``["a,b", "c"]`` → ``["a", "b", "c"]``; None (not given) when nothing is left."""
    if not values:
        return None
    raw = [values] if isinstance(values, str) else values
    out = [v.strip() for item in raw for v in item.split(",") if v.strip()]
    return out or None


def split_engine_refs(values: list[str] | None) -> list[str] | None:
    """Like :func:`split_values`, but a ``cmd:`` template or a URL is kept whole (commas are
    part of a command line or a query string)."""
    if not values:
        return None
    out: list[str] = []
    for raw in values:
        if raw.startswith(("cmd:", "http://", "https://")):
            out.append(raw)
        else:
            out.extend(split_values([raw]) or [])
    return out or None


@dataclass
class EngineChoice:
    """One engine as asked for: its reference, fixed arguments and swept parameters."""

    ref: str
    args: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=dict)  # --executor ray: what a case asks


@dataclass
class RayOptions:
    """How ``--executor ray`` places cases (docs/distributed.md).

    ``address`` None: ``$RAY_ADDRESS`` when set, else a local Ray started for the run.
    ``resources`` (Ray's names: ``CPU``, ``GPU``, custom ones such as ``gpu_type:H100``) apply to
    every case, over its engine entry's; ``retries``: how often a task whose worker died or that
    raised is run again before its case is recorded as failed.
    """

    address: str | None = None
    retries: int = 1
    resources: dict[str, float] = field(default_factory=dict)
    runtime_env: dict[str, Any] | None = None


@dataclass
class RunOptions:
    """What a caller says about a run, as text the way a command line gives it; ``None``: not
    given (the config file's value, else the default, applies)."""

    engines: list[str] | None = None
    workloads: list[str] | None = None
    engine_args: list[str] | None = None  # name=value, fixed
    params: list[str] | None = None  # name=v1,v2, swept and crossed
    devices: str | None = None  # "cpu,cuda"
    batch_sizes: str | None = None  # "1,4,16"
    iterations: int | None = None
    warmup: int | None = None
    output: Path | None = None
    in_process: bool | None = None
    timeout_s: float | None = None
    stream: Literal["auto", "on", "off"] | None = None
    save_audio: bool | None = None
    machine_id: str | None = None
    executor: str | None = None  # "local" or "ray"
    ray_address: str | None = None
    ray_retries: int | None = None
    ray_resources: str | None = None  # JSON: '{"gpu_type:H100": 1}'
    argv: list[str] = field(default_factory=list)


@dataclass
class RunRequest:
    """What to run. ``engines=None`` means every available built-in engine; ``workloads=None``
    means each engine's default workloads. ``sweep`` applies to every engine (crossed with each
    engine's own), and every case runs on each of ``devices`` and ``batch_sizes``."""

    engines: list[EngineChoice] | None = None
    workloads: list[str] | None = None
    settings: Settings = field(default_factory=Settings)
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    output: Path = DEFAULT_OUTPUT
    machine_id: str | None = None
    argv: list[str] = field(default_factory=list)
    config_file: dict[str, Any] | None = None
    executor: str = "local"
    ray: RayOptions = field(default_factory=RayOptions)

    @classmethod
    def from_sources(cls, config: Path | None, options: RunOptions | None = None) -> RunRequest:
        """Merge ``options`` over the config file at ``config`` over the defaults, and validate
        the result; a one-line ConfigError for anything wrong, before anything is measured."""
        opt = options or RunOptions()
        cfg, raw = load_config(config) if config else (ConfigFile(), None)
        base = Settings()
        settings = Settings(
            iterations=_pick(opt.iterations, cfg.iterations, base.iterations),
            warmup=_pick(opt.warmup, cfg.warmup, base.warmup),
            mode="in-process" if opt.in_process else (cfg.mode or base.mode),
            timeout_s=_pick(opt.timeout_s, cfg.timeout, base.timeout_s),
            stream=_pick(opt.stream, cfg.stream, base.stream),
            save_audio=_pick(opt.save_audio, cfg.save_audio, base.save_audio),
        )
        device_list = (
            parse_list(opt.devices, "--device") if opt.devices else (cfg.devices or ["cpu"])
        )
        batches = (
            parse_list(opt.batch_sizes, "--batch-size", int)
            if opt.batch_sizes
            else (cfg.batch_sizes or [1])
        )
        given = [
            name
            for name, value in (
                ("--ray-address", opt.ray_address),
                ("--ray-retries", opt.ray_retries),
                ("--ray-resources", opt.ray_resources),
            )
            if value is not None
        ]
        if given and opt.executor != "ray":
            raise ConfigError(f"{given[0]} needs --executor ray")
        request = cls(
            engines=_engine_choices(opt, cfg),
            workloads=split_values(opt.workloads) or cfg.workloads,
            settings=settings,
            sweep={**cfg.params, **parse_sweep(opt.params or [])},
            devices=list(dict.fromkeys(devices.normalize(d) for d in device_list)),
            batch_sizes=list(dict.fromkeys(batches)),
            output=_pick(opt.output, Path(cfg.output) if cfg.output else None, DEFAULT_OUTPUT),
            machine_id=_pick(opt.machine_id, cfg.machine_id, None),
            argv=list(opt.argv),
            config_file=raw,
            executor=opt.executor or "local",
            ray=RayOptions(
                address=opt.ray_address,
                retries=_pick(opt.ray_retries, None, RayOptions.retries),
                resources=parse_resources(opt.ray_resources, "--ray-resources"),
            ),
        )
        request.validate()
        return request

    def validate(self) -> RunRequest:
        """Check values a caller may have set by hand; ConfigError names the option."""
        s = self.settings
        if s.iterations < 1:
            raise ConfigError("--iterations must be at least 1")
        if s.warmup < 0:
            raise ConfigError("--warmup cannot be negative")
        if s.timeout_s is not None and s.timeout_s < 0:
            raise ConfigError("--timeout cannot be negative")
        if s.timeout_s == 0:  # 0 on the command line or in the file: no timeout
            self.settings = replace(s, timeout_s=None)
        if s.mode not in ("worker", "in-process"):
            raise ConfigError(f"unknown mode {s.mode!r} (use worker or in-process)")
        if s.stream not in ("auto", "on", "off"):
            raise ConfigError(f"--stream must be auto, on or off, not {s.stream!r}")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ConfigError("--batch-size values must be at least 1")
        if not self.devices:
            raise ConfigError("--device: give at least one device")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor must be local or ray, not {self.executor!r}")
        if self.ray.retries < 0:
            raise ConfigError("--ray-retries cannot be negative")
        if self.executor == "ray" and find_spec("ray") is None:
            raise ConfigError(RAY_HINT)
        return self

    @property
    def calls_per_case(self) -> int:
        """Engine calls each case makes: the cold one, the warm-ups and the measured ones."""
        return 1 + self.settings.warmup + self.settings.iterations


def parse_resources(text: str | None, where: str) -> dict[str, float]:
    """``'{"gpu_type:H100": 1, "CPU": 2}'`` → a dict of Ray resource amounts; one-line
    ConfigError for anything that is not an object of non-negative numbers."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: not JSON ({exc.msg}); e.g. '{{\"gpu_type:H100\": 1}}'"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: give a JSON object of resource: amount")
    out: dict[str, float] = {}
    for name, amount in raw.items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise ConfigError(f"{where}: {name!r} must be a non-negative number, not {amount!r}")
        out[str(name)] = float(amount)
    return out


def _pick(given: Any, from_file: Any, default: Any) -> Any:
    """The first of (option, config file, default) that is set."""
    if given is not None:
        return given
    return from_file if from_file is not None else default


def _engine_choices(opt: RunOptions, cfg: ConfigFile) -> list[EngineChoice] | None:
    args = parse_args(opt.engine_args or [])
    refs = split_engine_refs(opt.engines)
    if refs:
        return [EngineChoice(r, dict(args)) for r in refs]
    if cfg.engine:
        return [
            EngineChoice(e.ref, {**e.args, **args}, dict(e.params), dict(e.resources))
            for e in cfg.engine
        ]
    if args:
        raise ConfigError("--engine-arg needs --engine (or engines in --config)")
    return None
