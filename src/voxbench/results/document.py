"""The result document: one versioned JSON file per run, validated with pydantic.

Every other command (report, and later compare/history) reads this document and never re-measures.
The schema is described field by field in docs/results-schema.md; bump ``SCHEMA_VERSION`` on any
change that older readers would misread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from voxbench.errors import ConfigError
from voxbench.results.validity import Validity

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
    validity: Validity | None = Field(
        None, description="valid, or not and why (docs/methodology.md, Validity)"
    )
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


class _LevelPart(_Model):
    """A part of a load level. Levels were plain dicts before they were typed, so two things stay
    as they were: the JSON holds exactly the keys that were given or assigned (a level written
    before its SLO was evaluated has no ``slo``; one without streamed responses has no
    ``stalls``), and ``level["latency_ms"]["p95"]`` still reads like the dict did."""

    @model_serializer(mode="wrap")
    def _given_keys_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set}

    def __getitem__(self, key: str) -> Any:
        """The value under ``key`` as the JSON holds it; KeyError when the JSON has no such key."""
        if key not in self.model_fields_set:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]``, or ``default`` when the JSON has no such key."""
        return self[key] if key in self.model_fields_set else default


class Percentiles(_LevelPart):
    """A distribution over one level's requests or streams (milliseconds when the field name of
    the level ends in ``_ms``): count, mean, percentiles by linear interpolation between order
    statistics, maximum. ``p99_9`` is the 99.9th percentile. A field is None when not kept."""

    n: int | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p99_9: float | None = None
    max: float | None = None

    def percentile(self, pct: str) -> float | None:
        """The ``pct`` percentile (``"95"``, ``"99.9"``); None when this distribution does not
        keep it."""
        name = f"p{pct}".replace(".", "_")
        return getattr(self, name) if name in type(self).model_fields else None


class Stalls(_LevelPart):
    """Playback of a level's streamed responses by a listener with a jitter buffer."""

    buffer_ms: float = Field(description="audio the listener buffers before playing, ms")
    streams: int = Field(description="streamed responses played")
    streams_with_stalls: int
    stall_rate: float = Field(description="streams_with_stalls / streams")
    count: Percentiles = Field(description="stalls per stream")
    stall_ms: Percentiles = Field(description="total stalled time per stream, ms")
    startup_ms: Percentiles = Field(description="from asking to the first sound, ms")


class LevelSamples(_LevelPart):
    """Raw per-request figures of a level's measured requests, in ms, in send order."""

    latency_ms: list[float] = []
    ttfa_ms: list[float] = []
    lag_ms: list[float] = []


class LoadLevel(_LevelPart):
    """One load level of ``voxbench load`` (docs/results-schema.md). Rates are per second;
    latency, ttfa and ttfb count from each request's *intended* send time, so queueing is in
    them; lag is how late the generator sent (sent − intended); rtf is wall / audio per stream."""

    label: str
    kind: Literal["rate", "concurrency"]
    value: float = Field(description="requests/s (rate) or clients (concurrency)")
    requests: int = Field(0, description="measured requests (after the warm-up)")
    warmup_requests: int = 0
    ok: int = Field(0, description="measured requests answered without error")
    offered_rate: float | None = Field(None, description="the open-loop rate asked for")
    sent_rate: float | None = None
    achieved_rate: float | None = Field(None, description="successful responses per second")
    audio_seconds_per_second: float | None = None
    in_flight_mean: float | None = Field(None, description="mean requests in flight")
    error_rate: float | None = Field(None, description="failed / measured requests")
    errors: dict[str, int] = Field({}, description="error kind -> count")
    error_examples: dict[str, str] = Field({}, description="error kind -> first message")
    latency_ms: Percentiles | None = None
    ttfa_ms: Percentiles | None = None
    ttfb_ms: Percentiles | None = None
    lag_ms: Percentiles | None = None
    rtf: Percentiles | None = None
    saturated: bool = Field(False, description="the generator, not the server, set the pace")
    wall_s: float | None = None
    samples: LevelSamples = LevelSamples()
    stalls: Stalls | None = Field(None, description="streamed responses only")
    slo: dict[str, bool] = Field({}, description="SLO clause -> held at this level")
    meets_slo: bool | None = Field(None, description="every clause held, not saturated")
    validity: Validity | None = Field(
        None, description="valid, or not and why (docs/methodology.md, Validity)"
    )


class LoadResult(_Model):
    """An open- or closed-loop load run against an endpoint (``voxbench load``)."""

    target: str
    settings: dict[str, Any]
    levels: list[LoadLevel] = Field(
        default=[],
        description="per load level: rates, latency/ttfa/lag distributions, errors, "
        "stalls, SLO verdicts, raw samples (docs/results-schema.md)",
    )
    capacity: dict[str, Any] = {}
    cost: dict[str, Any] | None = None

    @property
    def workload(self) -> str:
        """The workload the levels sent (``settings["workload"]``; ``load`` when not recorded)."""
        return str(self.settings.get("workload", "load"))


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
