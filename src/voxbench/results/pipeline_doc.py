"""The result-document models of a voice-assistant pipeline run (``voxbench pipeline``):
figures per prompt and mode (:class:`PipelineCase`, on a Case), the run's settings, components and
targets, and its load levels (:class:`PipelineResult`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from voxbench.results.model_base import MODEL_CONFIG, Summary
from voxbench.results.validity import Validity


class _Model(BaseModel):
    model_config = MODEL_CONFIG


class TargetCheck(_Model):
    """One row of a pipeline's target table: a figure against its target, PASS or FAIL."""

    name: str = Field(description="the figure, e.g. first_audio_ms, stt_ms, tokens_per_second")
    label: str = Field(description="what the row says in a table")
    op: Literal["<=", ">="]
    target: float
    unit: str = ""
    stat: str = Field("median", description="which statistic of the figure is judged")
    actual: float | None = Field(None, description="None: not measured (then passed is None)")
    passed: bool | None = None
    mode: str | None = Field(None, description="the pipeline mode the row judges")
    note: str = ""


class PipelineCase(_Model):
    """A voice-assistant chain's figures for one spoken prompt in one mode (``voxbench pipeline``).

    Times are from the end of the user's speech. The case's own ``ttfa_ms`` is the time to the
    first *audible* sample of the answer, its ``latency_ms`` the time until the whole answer's
    audio was produced; ``ttft_ms``, ``tokens_per_second`` and ``accuracy`` are the LLM's and the
    recogniser's (docs/methodology.md, Pipelines).
    """

    mode: Literal["sequential", "streaming"]
    stt: str
    llm: str
    tts: str
    llm_is_echo: bool = Field(False, description="the LLM stage is `echo`: no language model ran")
    stt_listened: bool = Field(
        False, description="the recogniser was fed the utterance at real-time pace (listen)"
    )
    llm_streamed: bool = False
    tts_streamed: bool = False
    first_byte_ms: Summary | None = Field(
        None, description="end of speech to the first audio byte of the answer"
    )
    stt_ms: Summary | None = Field(None, description="end of speech to the final transcript")
    stt_first_partial_ms: Summary | None = Field(
        None, description="start of speech to the recogniser's first partial result"
    )
    llm_ms: Summary | None = Field(None, description="request to the complete answer text")
    llm_first_sentence_ms: Summary | None = Field(
        None, description="request to the first complete sentence of the answer"
    )
    tts_first_audio_ms: Summary | None = Field(
        None,
        description="text handed to TTS to its first audio: sequential the whole answer, "
        "streaming the first sentence",
    )
    tts_ms: Summary | None = Field(None, description="TTS busy time over the whole answer")
    tts_rtf: float | None = Field(None, description="median TTS busy time / answer audio time")
    handoff_ms: Summary | None = Field(
        None,
        description="first_byte − (stt + llm + tts to first audio): time the chain loses "
        "between its stages",
    )
    stage_sum_ms: float | None = Field(
        None, description="median sum of the stage figures that lead to the first audio byte"
    )
    shares: dict[str, float] = Field(
        {}, description="stage → its median share of the median first-byte time"
    )
    bottleneck: str | None = Field(None, description="the stage with the largest share")
    stall_ms: float | None = Field(
        None, description="median total playback stall of the answer (streaming)"
    )
    stalled: int = Field(0, description="conversations whose answer stalled in playback")
    leading_silence_ms: float | None = Field(
        None, description="median silence before the answer's first audible sample"
    )
    answer_audio_seconds: float | None = None
    sentences: float | None = Field(None, description="median sentences the answer was cut into")
    transcript: str | None = Field(None, description="the recogniser's last transcript")
    answer: str | None = Field(None, description="the LLM's last answer")
    samples: dict[str, list[float]] = Field(
        {}, description="figure → raw per-conversation values, in order"
    )
    targets: list[TargetCheck] = []


class ComponentStart(_Model):
    """How long one pipeline component took to get ready (its cold start), and what it is."""

    role: Literal["stt", "llm", "tts"]
    engine: str
    import_ms: float | None = None
    load_ms: float | None = None
    total_ms: float | None = None
    streams: bool = False
    listens: bool = False
    engine_info: dict[str, Any] = {}
    error: str | None = None


class PipelineLevel(_Model):
    """Many conversations at once (``voxbench pipeline --rate/--concurrency``): one load level.

    Each conversation starts when its user starts speaking (open loop: at its scheduled time,
    late or not; closed loop: when the previous one of its slot ended); times are from the end
    of that speech. ``*_all_ms`` count every conversation, a failed one at the time it took to
    fail; the others count the successful ones.
    """

    label: str
    mode: Literal["sequential", "streaming"]
    kind: Literal["rate", "concurrency"]
    value: float
    duration_s: float
    window_s: float | None = Field(None, description="first to last scheduled start (open loop)")
    conversations: int
    failed: int
    error_rate: float
    errors_by_kind: dict[str, int] = {}
    achieved_rate: float | None = Field(
        None, description="conversations completed inside the window per second of it"
    )
    first_audio_ms: Summary | None = None
    first_audio_all_ms: Summary | None = None
    first_byte_ms: Summary | None = None
    end_to_end_ms: Summary | None = None
    stt_ms: Summary | None = None
    llm_ttft_ms: Summary | None = None
    tts_first_audio_ms: Summary | None = None
    tokens_per_second: Summary | None = None
    lag_ms: Summary | None = Field(None, description="thread start − scheduled start")
    stall_ms: Summary | None = None
    samples: dict[str, list[float]] = Field({}, description="figure → raw per-conversation values")
    slo: dict[str, bool | None] = {}
    meets_slo: bool | None = None
    validity: Validity | None = None


class PipelineResult(_Model):
    """A ``voxbench pipeline`` run: its settings, the components' starts, the target table."""

    settings: dict[str, Any] = {}
    components: list[ComponentStart] = []
    targets: list[TargetCheck] = Field(
        [], description="per mode, over all its conversations: figure against target"
    )
    levels: list[PipelineLevel] = Field(
        [], description="under load (--rate/--concurrency): one entry per level"
    )
    capacity: dict[str, Any] = Field(
        {}, description="the highest valid open-loop rate that met the SLO, and the SLO"
    )
