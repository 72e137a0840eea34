"""The result document: one versioned JSON file per run, validated with pydantic.

Every other command (report, and later compare/history) reads this document and never re-measures.
The schema is described field by field in docs/results-schema.md; bump ``SCHEMA_VERSION`` on any
change that older readers would misread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voxbench.errors import ConfigError

SCHEMA_VERSION = "1.3"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Summary(_Model):
    """A distribution of raw samples (milliseconds unless the field name says otherwise)."""

    n: int
    min: float
    median: float
    mean: float
    p90: float
    p95: float
    p99: float
    max: float
    stdev: float
    ci95: tuple[float, float] | None = Field(
        None, description="percentile-bootstrap 95% confidence interval of the median"
    )


class ColdStart(_Model):
    """From asking for the engine to its first output; ``process_ms`` only in worker mode."""

    total_ms: float
    process_ms: float | None = None
    import_ms: float
    load_ms: float
    first_call_ms: float


class StageSummary(_Model):
    median_ms: float
    share: float | None = Field(None, description="median stage time / median call latency")


class ErrorRecord(_Model):
    phase: Literal["load", "cold", "warmup", "measure", "case"]
    iteration: int | None = None
    type: str
    message: str
    where: str = ""


class Samples(_Model):
    """Raw per-iteration figures of the measured (warm) iterations, in order."""

    latency_ms: list[float] = []
    cpu_s: list[float] = []
    audio_seconds: list[float] = []
    ttfa_ms: list[float] = []
    chunk_gap_ms: list[float] = []
    stages_ms: dict[str, list[float]] = {}


class QualityScore(_Model):
    """One quality value of a case (e.g. ``f0_rmse_hz``), with its target and verdict.

    ``value`` is None exactly when ``available`` is False, and ``reason`` says why: a metric that
    cannot run is never reported as 0.
    """

    metric: str = Field(description="the metric (family computation) that produced the value")
    family: str
    value: float | None = None
    unit: str = ""
    higher_is_better: bool = True
    available: bool = True
    reason: str = ""
    target: float | None = None
    target_op: Literal["<=", ">="] | None = None
    passed: bool | None = Field(None, description="value meets the target; None without a target")
    judged_against: str = Field(
        "", description="reference audio, target melody, input text or none"
    )
    compute_s: float | None = Field(None, description="seconds the metric took for this case")
    details: dict[str, Any] = Field({}, description="e.g. the transcript and recognizer for WER")


class Case(_Model):
    id: str
    engine: str
    workload: str
    input_id: str
    input_kind: str
    input_chars: int | None = None
    input_meta: dict[str, Any] = {}
    params: dict[str, Any] = {}
    device: str = "cpu"
    device_actual: str | None = Field(
        None, description="the device the engine reports it really ran on, when it says"
    )
    device_fallback: bool = Field(False, description="asked for one device, ran on another")
    batch_size: int = 1
    mode: Literal["worker", "in-process"]
    streamed: bool = False
    iterations: int
    warmup: int
    latency_ms: Summary | None = None
    audio_seconds: float | None = None
    rtf: float | None = Field(None, description="wall time / audio time, median; lower is better")
    rtfx: float | None = Field(None, description="audio time / wall time, median; higher is better")
    ms_per_audio_second: float | None = None
    chars_per_second: float | None = None
    items_per_second: float | None = Field(None, description="batch_size / median latency")
    ttfa_ms: Summary | None = None
    chunk_gap_ms: Summary | None = None
    chunks: int | None = None
    cold_start_ms: float | None = None
    cold_start: ColdStart | None = None
    peak_rss_mb: float | None = None
    peak_rss_scope: Literal["worker", "process"] | None = None
    peak_gpu_mb: float | None = None
    peak_gpu_scope: str | None = None
    cpu_utilization: float | None = Field(None, description="median CPU seconds / wall seconds")
    stages: dict[str, StageSummary] = {}
    errors: list[ErrorRecord] = []
    error_count: int = 0
    engine_info: dict[str, Any] = {}
    audio_file: str | None = None
    output_text: str | None = None
    input_text: str | None = Field(None, description="the text input, kept for WER and reruns")
    quality: dict[str, QualityScore] = Field(
        {}, description="quality values by name, computed on the case's saved audio"
    )
    meta: dict[str, Any] = Field(
        {},
        description="scenario-specific figures; micro: reference backend, speedup_vs_reference, "
        "max_abs_error, max_rel_error, loops_per_sample",
    )
    samples: Samples = Samples()


class Gpu(_Model):
    index: int
    name: str
    driver: str | None = None
    cuda: str | None = None
    compute_capability: str | None = None
    memory_total_mb: float | None = None


class Environment(_Model):
    machine_id: str
    hostname: str
    cpu_model: str
    cpu_cores_logical: int | None
    cpu_cores_physical: int | None
    ram_gb: float | None
    os: str
    python: str
    python_implementation: str
    packages: dict[str, str] = {}
    tools: dict[str, str] = {}
    git_commit: str | None = None
    git_dirty: bool | None = None
    gpus: list[Gpu] = []
    gpu_note: str | None = None


class EngineRef(_Model):
    ref: str
    args: dict[str, Any] = Field({}, description="fixed keyword arguments")
    sweep: dict[str, list[Any]] = Field({}, description="swept parameters, crossed")


class RunConfig(_Model):
    """Everything needed to repeat the run."""

    engines: list[EngineRef]
    workloads: list[str]
    iterations: int
    warmup: int
    mode: Literal["worker", "in-process"]
    timeout_s: float | None
    stream: Literal["auto", "on", "off"] = "auto"
    devices: list[str] = ["cpu"]
    batch_sizes: list[int] = [1]
    save_audio: bool = True
    argv: list[str] = []
    config_file: dict[str, Any] | None = Field(
        None, description="the voxbench.toml the run read, as parsed"
    )


class LoadResult(_Model):
    """An open- or closed-loop load run against an endpoint (``voxbench load``)."""

    target: str
    settings: dict[str, Any]
    levels: list[dict[str, Any]] = Field(
        default=[],
        description="per load level: rates, latency/ttfa/lag distributions, errors, "
        "stalls, SLO verdicts, raw samples (docs/results-schema.md)",
    )
    capacity: dict[str, Any] = {}
    cost: dict[str, Any] | None = None


class QualitySettings(_Model):
    metrics: list[str] = Field(description="metric names evaluated")
    targets: dict[str, str] = Field({}, description="value name → '<= N' or '>= N'")
    evaluated_at: str
    compute_s: float = Field(description="seconds spent computing metrics, all cases")
    unavailable: dict[str, str] = Field({}, description="metric → why it could not run here")


class ResultDocument(_Model):
    schema_version: str = SCHEMA_VERSION
    scenario: Literal["single", "load", "micro"] = "single"
    run_id: str
    created_at: str
    finished_at: str | None = None
    duration_s: float | None = None
    voxbench_version: str
    config: RunConfig | None = None
    environment: Environment
    cases: list[Case] = []
    skipped: list[dict[str, str]] = Field(
        default=[], description="engines or cases not run, each with the reason"
    )
    load: LoadResult | None = None
    quality: QualitySettings | None = Field(
        None, description="how quality was evaluated (voxbench run --quality, voxbench quality)"
    )


def load_document(path: Path) -> ResultDocument:
    """Read ``results.json`` (or a run folder holding one); one-line error when it is not valid."""
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise ConfigError(f"no result document at {path}")
    from pydantic import ValidationError

    try:
        return ResultDocument.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"{path} is not a voxbench result document: {where}: {first['msg']}"
        ) from None
