"""Small synthetic result documents for unit tests: cases with chosen latency samples."""

from __future__ import annotations

import numpy as np

from voxbench.results import Case, Environment, ResultDocument, Samples, Summary
from voxbench.results.stats import summarize

ENV = Environment(
    machine_id="box", hostname="box", cpu_model="cpu", cpu_cores_logical=2,
    cpu_cores_physical=2, ram_gb=4.0, os="linux", python="3.11", python_implementation="CPython",
    git_commit="0123456789abcdef",
)  # fmt: skip


def make_case(latency: list[float], *, input_id: str = "a", errors: int = 0, **params) -> Case:
    lat = Summary(**summarize(latency)) if latency else None  # type: ignore[arg-type]
    return Case(
        id=f"eng/w/{input_id}/cpu",
        engine="eng",
        workload="w",
        input_id=input_id,
        input_kind="text",
        params=params,
        mode="in-process",
        iterations=len(latency),
        warmup=1,
        latency_ms=lat,
        rtf=float(np.median(latency)) / 1000 if latency else None,
        peak_rss_mb=100.0,
        error_count=errors,
        samples=Samples(latency_ms=latency, audio_seconds=[1.0] * len(latency)),
    )


def make_doc(
    run_id: str, *cases: Case, created_at: str = "2026-01-01T00:00:00+00:00", **env: object
) -> ResultDocument:
    return ResultDocument(
        run_id=run_id,
        created_at=created_at,
        voxbench_version="0",
        environment=ENV.model_copy(update=env),
        cases=list(cases),
    )


def noise(center: float, n: int = 30, sd: float = 0.01, seed: int = 0) -> list[float]:
    """Latencies around ``center`` with relative noise ``sd``."""
    rng = np.random.default_rng(seed)
    return list(center * (1 + rng.normal(0, sd, n)))
