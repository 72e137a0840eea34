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
from voxbench.run.settings import DEFAULT_OUTPUT, Settings, parse_size

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

    @classmethod
    def parse(
        cls,
        executor: str | None,
        *,
        address: str | None = None,
        retries: int | None = None,
        resources: str | None = None,
        runtime_env: str | None = None,
    ) -> RayOptions:
        """The Ray options as a command line gives them (None: not given), checked the same way
        for ``run``, ``micro`` and ``pipeline``: each needs ``--executor ray``; one-line
        ConfigError for bad JSON or a negative retry count."""
        given = [
            name
            for name, value in (
                ("--ray-address", address),
                ("--ray-retries", retries),
                ("--ray-resources", resources),
                ("--ray-runtime-env", runtime_env),
            )
            if value is not None
        ]
        if given and executor != "ray":
            raise ConfigError(f"{given[0]} needs --executor ray")
        if retries is not None and retries < 0:
            raise ConfigError("--ray-retries cannot be negative")
        return cls(
            address=address,
            retries=cls.retries if retries is None else retries,
            resources=parse_resources(resources, "--ray-resources"),
            runtime_env=parse_runtime_env(runtime_env),
        )

    def record(self) -> dict[str, Any]:
        """The options as a document keeps them for ``--resume``: the address's credentials
        and the runtime_env's ``env_vars`` values hidden (they may be tokens)."""
        from voxbench.engines.registry import redact

        return {
            "address": redact(self.address) if self.address else None,
            "retries": self.retries,
            "resources": dict(self.resources),
            "runtime_env": runtime_env_record(self.runtime_env),
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any] | None) -> RayOptions:
        """The options :meth:`record` kept; a one-line ConfigError when a hidden value would
        be needed (the run cannot be resumed as it was made)."""
        rec = rec or {}
        env = rec.get("runtime_env")
        if "***@" in (rec.get("address") or "") or (
            isinstance(env, dict) and isinstance(env.get("env_vars"), dict) and env["env_vars"]
        ):
            what = "--ray-address" if "***@" in (rec.get("address") or "") else "env_vars"
            raise ConfigError(
                f"--resume: the run recorded its {what} hidden (credentials are never written); "
                "run it again instead"
            )
        return cls(
            address=rec.get("address"),
            retries=int(rec.get("retries", cls.retries)),
            resources=dict(rec.get("resources") or {}),
            runtime_env=env,
        )


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
    case_timeout_s: float | None = None
    max_memory: str | None = None  # "500M", "2G": worker mode only
    stream: Literal["auto", "on", "off"] | None = None
    save_audio: bool | None = None
    machine_id: str | None = None
    executor: str | None = None  # "local" or "ray"
    ray_address: str | None = None
    ray_retries: int | None = None
    ray_resources: str | None = None  # JSON: '{"gpu_type:H100": 1}'
    ray_runtime_env: str | None = None  # JSON, inline or a .json file: Ray's runtime_env
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
            case_timeout_s=_pick(opt.case_timeout_s, cfg.case_timeout, base.case_timeout_s),
            max_memory=_pick(opt.max_memory, cfg.max_memory, base.max_memory),
        )
        device_list = (
            parse_list(opt.devices, "--device") if opt.devices else (cfg.devices or ["cpu"])
        )
        batches = (
            parse_list(opt.batch_sizes, "--batch-size", int)
            if opt.batch_sizes
            else (cfg.batch_sizes or [1])
        )
        ray = RayOptions.parse(
            opt.executor,
            address=opt.ray_address,
            retries=opt.ray_retries,
            resources=opt.ray_resources,
            runtime_env=opt.ray_runtime_env,
        )
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
            ray=ray,
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
            self.settings = s = replace(s, timeout_s=None)
        if s.case_timeout_s is not None and s.case_timeout_s < 0:
            raise ConfigError("--case-timeout cannot be negative")
        if s.case_timeout_s == 0:
            self.settings = s = replace(s, case_timeout_s=None)
        if s.max_memory is not None:
            parse_size(s.max_memory)
            if s.mode == "in-process":
                raise ConfigError("--max-memory needs worker mode (drop --in-process)")
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


def parse_runtime_env(text: str | None, where: str = "--ray-runtime-env") -> dict[str, Any] | None:
    """Ray's ``runtime_env`` from inline JSON (``'{"pip": ["voxbench[ray]"]}'``) or the path of
    a JSON file holding it; None when not given. One-line ConfigError for a missing file, bad
    JSON or anything but an object (JSON only: no code is run to read it)."""
    if text is None or not text.strip():
        return None
    source = text.strip()
    if not source.startswith("{"):
        path = Path(source).expanduser()
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{where}: give inline JSON or a JSON file; cannot read {path}: "
                f"{exc.strerror or exc}"
            ) from None
    try:
        raw = json.loads(source)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            'e.g. \'{"env_vars": {"OMP_NUM_THREADS": "1"}}\''
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: give a JSON object (Ray's runtime_env), not {type(raw).__name__}"
        )
    return raw


def runtime_env_record(env: dict[str, Any] | None) -> dict[str, Any] | None:
    """``runtime_env`` as a document keeps it: ``env_vars`` values hidden (they may be tokens)."""
    if env is None:
        return None
    out = dict(env)
    if isinstance(out.get("env_vars"), dict):
        out["env_vars"] = {k: "***" for k in out["env_vars"]}
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
