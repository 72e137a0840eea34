"""``voxbench load``: run every level against the target and write one result document."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voxbench.errors import ConfigError
from voxbench.load.schedule import Arrivals, Level, intended_offsets

API_KEY_ENVS = ("VOXBENCH_API_KEY", "OPENAI_API_KEY")


@dataclass
class LoadRequest:
    """What to load-test and how; everything here is stored in the document but the key."""

    target: str
    levels: list[Level]
    duration_s: float | None = 20.0
    requests: int | None = None
    warmup_s: float = 2.0
    arrivals: Arrivals = "poisson"
    seed: int = 1
    workload: str = "short"
    model: str = "tts-1"
    voice: str = "alloy"
    stream: bool = True
    response_format: str = "wav"
    api_key_env: str | None = None
    timeout_s: float = 60.0
    slo: str | None = None
    buffer_ms: float = 0.0
    max_lag_ms: float = 5.0
    cost_per_hour: float | None = None
    hardware_price: float | None = None
    running_per_month: float = 0.0
    pause_s: float = 1.0
    output: Path = Path("results")
    machine_id: str | None = None
    argv: list[str] = field(default_factory=list)


def _headers(req: LoadRequest) -> dict[str, str]:
    names = [req.api_key_env] if req.api_key_env else list(API_KEY_ENVS)
    for name in names:
        if os.environ.get(name):
            return {"Authorization": f"Bearer {os.environ[name]}"}
    if req.api_key_env:
        raise ConfigError(f"environment variable {req.api_key_env} (--api-key-env) is not set")
    return {}


def _bodies(req: LoadRequest) -> tuple[dict[str, Any], ...]:
    from voxbench.workloads import resolve_workload

    work = resolve_workload(req.workload)
    if work.kind != "text":
        raise ConfigError(f"workload {req.workload!r} is {work.kind}; load needs text inputs")
    return tuple(
        {
            "model": req.model,
            "voice": req.voice,
            "input": item.text,
            "response_format": req.response_format,
            "stream": req.stream,
        }
        for item in work.items
    )


def _settings(req: LoadRequest) -> dict[str, Any]:
    from voxbench.engines.registry import redact

    out = asdict(req)
    out["levels"] = [asdict(lv) for lv in req.levels]
    out["output"] = str(req.output)
    out["target"] = redact(req.target)
    out["argv"] = [redact(a) for a in req.argv]
    return out


def run_load(
    req: LoadRequest, progress: Callable[[int, Level, float], None] = lambda i, lv, s: None
) -> tuple[Any, Path]:
    """Run the levels in order, summarise each, find the capacity; write the run folder."""
    from voxbench import __version__
    from voxbench.engines.registry import redact
    from voxbench.load.capacity import cost, evaluate, parse_slo
    from voxbench.load.client import Target, run_level
    from voxbench.load.metrics import summarize_level
    from voxbench.report.markdown import write_report
    from voxbench.results.document import LoadResult, ResultDocument
    from voxbench.run import environment
    from voxbench.run.runner import new_run_id, now_iso, write_json

    clauses = parse_slo(req.slo) if req.slo else []
    target = Target(
        url=req.target, bodies=_bodies(req), headers=_headers(req), timeout_s=req.timeout_s
    )
    env = environment.capture(req.machine_id)
    run_id = new_run_id()
    run_dir = req.output / env.machine_id / run_id
    try:
        run_dir.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the results folder {run_dir}: {exc.strerror}") from None
    load = LoadResult(target=redact(req.target), settings=_settings(req))
    doc = ResultDocument(
        scenario="load",
        run_id=run_id,
        created_at=now_iso(),
        voxbench_version=__version__,
        environment=env,
        load=load,
    )
    started = time.monotonic()
    for i, level in enumerate(req.levels):
        total = req.warmup_s + (req.duration_s or 0)
        offsets = None
        if level.kind == "rate":
            n = None if req.requests is None else req.requests + round(req.warmup_s * level.value)
            offsets = intended_offsets(
                level.value, duration_s=total, requests=n, arrivals=req.arrivals, seed=req.seed + i
            )
        progress(i, level, total)
        records, wall = run_level(target, level, offsets, duration_s=total, requests=req.requests)
        load.levels.append(
            summarize_level(
                level,
                records,
                warmup_s=req.warmup_s,
                wall_s=wall,
                buffer_ms=req.buffer_ms,
                max_lag_ms=req.max_lag_ms,
            )
        )
        write_json(doc, run_dir / "results.json")
        if i < len(req.levels) - 1:
            time.sleep(req.pause_s)  # let the server drain before the next level
    load.capacity = evaluate(load.levels, clauses)
    if req.cost_per_hour is not None:
        load.cost = cost(
            load.capacity, req.cost_per_hour, req.hardware_price, req.running_per_month
        )
    doc.finished_at = now_iso()
    doc.duration_s = time.monotonic() - started
    write_json(doc, run_dir / "results.json")
    write_report(doc, run_dir / "report.md")
    return doc, run_dir
