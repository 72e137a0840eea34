"""The result document: one versioned JSON file per run, validated with pydantic.

Every other command (report, and later compare/history) reads this document and never re-measures.
The schema is described field by field in docs/results-schema.md; bump ``SCHEMA_VERSION`` on any
change that older readers would misread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from voxbench.errors import ConfigError
from voxbench.results.model_base import MODEL_CONFIG, Summary
from voxbench.results.pipeline_doc import PipelineCase, PipelineResult
from voxbench.results.validity import Validity

SCHEMA_VERSION = "1.7"


class _Model(BaseModel):
    model_config = MODEL_CONFIG


class ColdStart(_Model):
    """From asking for the engine to its first output; ``process_ms`` only in worker mode."""

    total_ms: float
    process_ms: float | None = None
    import_ms: float
    load_ms: float
    first_call_ms: float
    kind: Literal["cold", "warm-process"] = Field(
        "cold",
        description="cold: the engine's first start in its process; warm-process: the process had "
        "started an engine, or held the engine's module, before (then cold_start_ms is null)",
    )


class StageSummary(_Model):
    median_ms: float
    share: float | None = Field(None, description="median stage time / median call latency")


class ErrorRecord(_Model):
    phase: Literal["load", "cold", "warmup", "measure", "case"]
    iteration: int | None = None
    type: str
    message: str
    where: str = ""
    kind: str | None = Field(
        None,
        description="exception (the engine raised), output (a bad answer: see rule), timeout, "
        "crash (the worker died) or memory (over --max-memory); null: not said",
    )
    rule: str | None = Field(
        None, description="kind output: the output check broken (voxbench.run.output_checks)"
    )


class Samples(_Model):
    """Raw per-iteration figures of the measured (warm) iterations, in order."""

    latency_ms: list[float] = []
    cpu_s: list[float] = []
    audio_seconds: list[float] = []
    ttfa_ms: list[float] = []
    chunk_gap_ms: list[float] = []
    stages_ms: dict[str, list[float]] = {}
    output_tokens: list[float] = Field([], description="tokens a text-generating call produced")
    tokens_per_second: list[float] = Field(
        [], description="per call: output tokens after the first / time after the first token"
    )


class Accuracy(_Model):
    """What a speech recogniser heard against the reference transcript (normalised, jiwer).

    Counts, so a corpus WER sums errors over reference words (docs/methodology.md, Speech
    recognition); from the transcript of the last measured call.
    """

    wer: float
    cer: float
    exact: bool = Field(description="the normalised transcript equals the normalised reference")
    reference_words: int
    hits: int
    substitutions: int
    deletions: int
    insertions: int
    reference_chars: int
    char_errors: int
    reference: str = Field(description="the reference, normalised")
    hypothesis: str = Field(description="the transcript, normalised")


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
    output_kind: Literal["audio", "text"] | None = Field(
        None, description="what the engine answered; text: a recogniser or an LLM"
    )
    input_audio_seconds: float | None = Field(
        None, description="length of the input audio (speech recognition: rtf and rtfx use it)"
    )
    ttft_ms: Summary | None = Field(
        None, description="time to the first text piece of a streamed text answer (LLM: token)"
    )
    itl_ms: Summary | None = Field(
        None, description="inter-token latency: gaps between the streamed text pieces"
    )
    output_tokens: float | None = Field(None, description="median output tokens per call")
    input_tokens: float | None = Field(None, description="median prompt tokens per call")
    tokens_source: Literal["usage", "counted"] | None = Field(
        None, description="usage: the server's own token count; counted: streamed pieces"
    )
    tokens_per_second: float | None = Field(
        None,
        description="median per call: streamed, tokens after the first / time after the first "
        "token (decode rate); not streamed, tokens / wall time",
    )
    accuracy: Accuracy | None = Field(
        None, description="speech recognition: transcript against the reference"
    )
    cold_start_ms: float | None = None
    cold_start: ColdStart | None = None
    peak_rss_mb: float | None = None
    peak_rss_scope: Literal["worker", "process"] | None = None
    peak_child_rss_mb: float | None = Field(
        None,
        description="largest peak RSS of a child process the engine's process waited for "
        "(ru_maxrss); only above peak_rss_mb is it the child's own (docs/methodology.md)",
    )
    peak_gpu_allocated_mb: float | None = Field(
        None, description="torch's CUDA allocator peak, torch.cuda.max_memory_allocated"
    )
    gpu_nvml_mb: float | None = Field(
        None, description="GPU memory NVML sees the process hold at the end of the case"
    )
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
    pipeline: PipelineCase | None = Field(
        None, description="scenario pipeline: the chain's figures for this prompt and mode"
    )

    @model_validator(mode="before")
    @classmethod
    def _gpu_figures_by_name(cls, data: Any) -> Any:
        """Documents of schema 1.3 and before held one ``peak_gpu_mb`` and, in
        ``peak_gpu_scope``, which figure it was: it becomes the field of that figure."""
        if not isinstance(data, dict) or (
            "peak_gpu_mb" not in data and "peak_gpu_scope" not in data
        ):
            return data
        data = dict(data)
        value, scope = data.pop("peak_gpu_mb", None), data.pop("peak_gpu_scope", None) or ""
        if value is not None:
            name = "gpu_nvml_mb" if "nvml" in scope else "peak_gpu_allocated_mb"
            data.setdefault(name, value)
        return data


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
    request: dict[str, Any] | None = Field(
        None,
        description="the request as the library took it (engines, workload references, "
        "settings, executor): what --resume re-plans the run with (schema 1.7)",
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
    stall_threshold_ms: float | None = Field(
        None, description="an underrun this long or shorter is jitter, not a stall"
    )
    worst_underrun_ms: Percentiles | None = Field(
        None, description="the longest underrun of each stream, ms (0: none)"
    )
    continuity_100ms: float | None = Field(
        None, description="share of streams whose longest underrun is at most 100 ms"
    )
    continuity_200ms: float | None = Field(
        None, description="share of streams whose longest underrun is at most 200 ms"
    )
    startup_bound_ms: float | None = Field(
        None, description="start-up delay a real-time stream may take (the SLO's ttfa, else 1 s)"
    )
    realtime_streams: int | None = Field(
        None, description="streams that started within startup_bound_ms and never stalled"
    )
    realtime_concurrent: float | None = Field(
        None,
        description="real-time listeners fed at once: audio seconds of those streams per second "
        "of the window (never above audio_seconds_per_second)",
    )


class LevelSamples(_LevelPart):
    """Raw per-request figures of a level's measured requests, in ms, in send order."""

    latency_ms: list[float] = []
    ttfa_ms: list[float] = []
    lag_ms: list[float] = []
    latency_all_ms: list[float] = Field(
        [], description="every measured request: a failure at the time it took to fail"
    )
    ttft_ms: list[float] = Field([], description="chat requests: time to the first token")
    tokens_per_second: list[float] = Field(
        [], description="chat requests: tokens after the first / time after the first token"
    )


class LoadWorker(_LevelPart):
    """One load generator's share of a level run by several (``voxbench load --executor ray``):
    its own schedule lag and sent rate, so a worker that fell behind shows even when the merged
    figures hide it among the others."""

    worker: int = Field(description="the worker's index: it sent requests i with i mod N = worker")
    node: str | None = Field(None, description="the machine the worker ran on (its Ray node IP)")
    requests: int = Field(0, description="measured requests it sent (after the warm-up)")
    warmup_requests: int = 0
    scheduled_rate: float | None = Field(None, description="its share of the schedule, per s")
    sent_rate: float | None = None
    lag_ms: Percentiles | None = Field(None, description="its schedule lag (sent - intended)")
    start_margin_ms: float | None = Field(
        None,
        description="how long before the common start it was told to start (negative: late)",
    )
    saturated: bool = Field(False, description="this worker, not the server, set its pace")
    reasons: list[str] = Field([], description="why it is saturated (none: it kept up)")


class LoadLevel(_LevelPart):
    """One load level of ``voxbench load`` (docs/results-schema.md). Rates are per second;
    latency, ttfa and ttfb count from each request's *intended* send time, so queueing is in
    them; lag is how late the generator sent (sent − intended); rtf is wall / audio per stream
    (a transcription target's: latency / input audio per request)."""

    label: str
    kind: Literal["rate", "concurrency"]
    value: float = Field(description="requests/s (rate) or clients (concurrency)")
    requests: int = Field(0, description="measured requests (after the warm-up)")
    warmup_requests: int = 0
    ok: int = Field(0, description="measured requests answered without error")
    offered_rate: float | None = Field(None, description="the open-loop rate asked for")
    sent_rate: float | None = None
    achieved_rate: float | None = Field(
        None, description="successful responses completed in the window, per second"
    )
    audio_seconds_per_second: float | None = Field(
        None,
        description="audio seconds of the successes completed in the window, per second: made "
        "(speech), or for a transcription target the input audio transcribed (its RTFx under load)",
    )
    in_flight_mean: float | None = Field(None, description="mean requests in flight")
    window_s: float | None = Field(
        None, description="the measured sending window the rates are over (n × mean gap)"
    )
    error_rate: float | None = Field(None, description="failed / measured requests")
    errors: dict[str, int] = Field({}, description="error kind -> count")
    error_examples: dict[str, str] = Field({}, description="error kind -> first message")
    latency_ms: Percentiles | None = Field(None, description="successful requests only")
    ttfa_ms: Percentiles | None = Field(None, description="successful requests only")
    ttfb_ms: Percentiles | None = Field(None, description="successful requests only")
    latency_all_ms: Percentiles | None = Field(
        None, description="every measured request; a failure counts at the time it took to fail"
    )
    ttfa_all_ms: Percentiles | None = Field(
        None, description="every measured request; one without audio at the time it ended"
    )
    ttfb_all_ms: Percentiles | None = Field(
        None, description="every measured request; one without a byte at the time it ended"
    )
    lag_ms: Percentiles | None = None
    rtf: Percentiles | None = None
    ttft_ms: Percentiles | None = Field(None, description="chat: time to first token, successes")
    itl_ms: Percentiles | None = Field(None, description="chat: gaps between streamed tokens")
    tokens_per_second: Percentiles | None = Field(
        None, description="chat: per-request decode rate (tokens after the first / time after it)"
    )
    output_tokens_per_second: float | None = Field(
        None, description="chat: output tokens of the successes completed in the window, per second"
    )
    tokens_source: Literal["usage", "counted"] | None = Field(
        None, description="usage: the server's own token counts; counted: streamed pieces"
    )
    wer: float | None = Field(
        None,
        description="transcription: corpus word error rate of the measured successes' "
        "transcripts against their items' references (errors summed over reference words)",
    )
    cer: float | None = Field(None, description="transcription: corpus character error rate")
    wer_requests: int | None = Field(
        None, description="transcription: the measured successes wer and cer are over"
    )
    pcm_sample_rate: int | None = Field(None, description="Hz raw PCM answers were read at")
    pcm_sample_rate_source: Literal["header", "option", "default"] | None = Field(
        None, description="X-Sample-Rate header, --pcm-sample-rate, or the 24 kHz default"
    )
    saturated: bool = Field(False, description="the generator, not the server, set the pace")
    wall_s: float | None = None
    samples: LevelSamples = LevelSamples()
    stalls: Stalls | None = Field(None, description="streamed responses only")
    slo: dict[str, bool | None] = Field(
        {}, description="SLO clause -> held at this level (null: not measured)"
    )
    slo_notes: dict[str, str] = Field(
        {}, description="SLO clause -> why its figure is not measured or not supported"
    )
    meets_slo: bool | None = Field(None, description="every clause held, and the level is valid")
    validity: Validity | None = Field(
        None, description="valid, or not and why (docs/methodology.md, Validity)"
    )
    workers: list[LoadWorker] | None = Field(
        None,
        description="several generators (--workers N): each one's lag and rate; every other "
        "figure is over all their raw records merged",
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
    scenario: Literal["single", "load", "micro", "pipeline"] = "single"
    run_id: str
    created_at: str
    finished_at: str | None = None
    duration_s: float | None = None
    status: Literal["running", "interrupted", "complete"] = Field(
        "complete",
        description="running: still being measured (or killed while it was); interrupted: "
        "stopped by SIGINT/SIGTERM; complete: every planned case or level measured (schema 1.7)",
    )
    incomplete: list[str] = Field(
        default=[],
        description="planned case ids (load: level labels) not measured yet; --resume "
        "measures them (schema 1.7)",
    )
    voxbench_version: str
    config: RunConfig | None = None
    environment: Environment
    cases: list[Case] = []
    skipped: list[dict[str, str]] = Field(
        default=[], description="engines or cases not run, each with the reason"
    )
    load: LoadResult | None = None
    pipeline: PipelineResult | None = Field(
        None, description="a voice-assistant pipeline run (voxbench pipeline)"
    )
    quality: QualitySettings | None = Field(
        None, description="how quality was evaluated (voxbench run --quality, voxbench quality)"
    )

    @model_validator(mode="before")
    @classmethod
    def _status_of_older_documents(cls, data: Any) -> Any:
        """Documents before schema 1.7 have no ``status``: finished when ``finished_at`` is set,
        else interrupted (or killed)."""
        if isinstance(data, dict) and "status" not in data and "schema_version" in data:
            data = {**data, "status": "complete" if data.get("finished_at") else "interrupted"}
        return data


def load_document(path: Path) -> ResultDocument:
    """Read ``results.json`` (or a run folder holding one); one-line error when it is not valid."""
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise ConfigError(f"no result document at {path}")
    from voxbench.results.doc_checks import read_json

    return document_from_data(read_json(path), str(path))


def document_from_data(data: Any, where: str) -> ResultDocument:
    """A document from parsed JSON, its schema version checked first (doc_checks); one-line
    ConfigError naming ``where`` when it is not one this voxbench reads."""
    from pydantic import ValidationError

    from voxbench.results.doc_checks import check_version, invalid

    newer = check_version(data, where, SCHEMA_VERSION)
    try:
        return ResultDocument.model_validate(data)
    except ValidationError as exc:
        newer_version = data["schema_version"] if newer else None
        raise invalid(exc, where, newer_version, SCHEMA_VERSION) from None
