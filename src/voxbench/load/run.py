"""``voxbench load``: run every level against the target and write one result document.

:class:`LoadRequest` validates itself (built directly from Python or with
:meth:`LoadRequest.from_text` from a command line's strings); :func:`run_load` measures level
after level into a :class:`~voxbench.results.folder.RunFolder`, saving after each level, and
closes it as interrupted on Ctrl-C, like ``voxbench run``. :func:`resume_request` reads the
request back from a document's ``load.settings`` for ``voxbench load --resume``, and
:func:`measure_load` then measures only the levels the folder lacks.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxbench.errors import ConfigError
from voxbench.load.schedule import Arrivals, Level, intended_offsets, parse_duration

if TYPE_CHECKING:
    from voxbench.results.document import LoadResult
    from voxbench.workloads.base import Workload

API_KEY_ENVS = ("VOXBENCH_API_KEY", "OPENAI_API_KEY")
RESPONSE_FORMATS = ("wav", "pcm")


@dataclass
class LoadRequest:
    """What to load-test and how; everything here is stored in the document but the key.
    Construction validates: a bad value is a one-line ConfigError before any request is sent."""

    target: str
    levels: list[Level]
    duration_s: float | None = 20.0
    requests: int | None = None
    warmup_s: float = 2.0
    arrivals: Arrivals = "poisson"
    seed: int = 1
    # None: "prompts" for a chat target, "spoken-short" for a transcription target, else "short"
    workload: str | None = None
    # None: a chat server's first model (GET /v1/models); whisper-1 (transcription); else tts-1
    model: str | None = None
    voice: str = "alloy"
    stream: bool = True
    response_format: str = "wav"
    api_key_env: str | None = None
    timeout_s: float = 60.0
    slo: str | None = None
    buffer_ms: float = 0.0
    max_lag_ms: float = 5.0
    pcm_sample_rate: int | None = None
    stall_threshold_ms: float = 10.0
    startup_ms: float | None = None  # None: the SLO's ttfa bound, else 1 s
    max_error_rate: float | None = None  # None: results.validity.MAX_ERROR_RATE
    min_duration_s: float = 5.0
    cost_per_hour: float | None = None
    hardware_price: float | None = None
    running_per_month: float = 0.0
    max_tokens: int = 128  # chat targets: max_tokens of each request
    pause_s: float = 1.0
    # where the generator runs: this process ("local"), or ``workers`` Ray actors sharing one
    # schedule ("ray", voxbench.load.ray_workers) on the cluster at ``ray_address`` (None:
    # RAY_ADDRESS when set, else a local Ray started for the run)
    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None
    ray_runtime_env: dict[str, Any] | None = None  # Ray's runtime_env (--ray-runtime-env)
    output: Path = Path("results")
    machine_id: str | None = None
    argv: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.target.startswith("llm:"):  # the engine registry's llm:http://host:port/v1
            self.target = self.target[4:].rstrip("/") + "/chat/completions"
        if self.workload is None:
            self.workload = (
                "prompts" if self.chat else "spoken-short" if self.transcription else "short"
            )
        if self.model is None and not self.chat:  # a chat server's is asked for in start_load
            self.model = "whisper-1" if self.transcription else "tts-1"
        self.validate()

    @property
    def chat(self) -> bool:
        """Whether the target is an OpenAI chat endpoint (its path ends in /chat/completions):
        the requests are chat completions and the answers streamed text."""
        return is_chat_url(self.target)

    @property
    def transcription(self) -> bool:
        """Whether the target is an OpenAI transcription endpoint (its path ends in
        /audio/transcriptions): the requests upload audio and the answers are transcripts."""
        return is_transcription_url(self.target)

    @classmethod
    def from_text(
        cls,
        target: str,
        *,
        rate: str | None = None,
        concurrency: str | None = None,
        duration: str | None = None,
        warmup: str | None = None,
        **options: Any,
    ) -> LoadRequest:
        """Levels and durations as a command line writes them (``rate="1,2,4"``,
        ``duration="20s"``); every other keyword is a field of the request."""
        from voxbench.run.params import parse_list

        if (rate is None) == (concurrency is None):
            raise ConfigError("give exactly one of --rate or --concurrency")
        levels = (
            [Level("rate", v) for v in parse_list(rate, "--rate", float)]
            if rate is not None
            else [
                Level("concurrency", v) for v in parse_list(concurrency or "", "--concurrency", int)
            ]
        )
        if options.get("requests") is not None:
            options["duration_s"] = None
        elif duration is not None:
            options["duration_s"] = parse_duration(duration)
        if warmup is not None:
            options["warmup_s"] = parse_duration(warmup)
        return cls(target=target, levels=levels, **options)

    def validate(self) -> None:
        """Check every field; ConfigError names the option."""
        from voxbench.load.capacity import parse_slo

        if not self.target.startswith(("http://", "https://")):
            raise ConfigError(f"--target must be an http(s):// URL, not {self.target!r}")
        if not self.levels:
            raise ConfigError("give at least one load level (--rate or --concurrency)")
        if any(lv.value <= 0 for lv in self.levels):
            raise ConfigError("load levels must be above 0")
        if len({lv.kind for lv in self.levels}) > 1:
            raise ConfigError("give exactly one of --rate or --concurrency")
        if self.arrivals not in ("poisson", "constant"):
            raise ConfigError("--arrivals must be poisson or constant")
        if self.response_format not in RESPONSE_FORMATS:
            raise ConfigError(f"--response-format must be wav or pcm, not {self.response_format!r}")
        if self.max_tokens < 1:
            raise ConfigError("--max-tokens must be at least 1")
        if self.requests is not None and self.requests < 1:
            raise ConfigError("--requests must be at least 1")
        if self.requests is None and not self.duration_s:
            raise ConfigError("--duration must be above 0 (or give --requests)")
        for name, value in (
            ("--warmup", self.warmup_s),
            ("--buffer-ms", self.buffer_ms),
            ("--stall-threshold-ms", self.stall_threshold_ms),
            ("--min-duration", self.min_duration_s),
        ):
            if value < 0:
                raise ConfigError(f"{name} cannot be negative")
        for name, limit in (
            ("--timeout", self.timeout_s),
            ("--max-lag-ms", self.max_lag_ms),
            ("--pcm-sample-rate", self.pcm_sample_rate),
            ("--startup-ms", self.startup_ms),
        ):
            if limit is not None and limit <= 0:
                raise ConfigError(f"{name} must be above 0")
        if self.max_error_rate is not None and not 0 <= self.max_error_rate < 1:
            raise ConfigError("--max-error-rate must be a fraction from 0 to below 1")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"--executor must be local or ray, not {self.executor!r}")
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1")
        if self.executor == "local" and (self.workers > 1 or self.ray_address):
            raise ConfigError("--workers and --ray-address need --executor ray")
        if self.executor == "local" and self.ray_runtime_env is not None:
            raise ConfigError("--ray-runtime-env needs --executor ray")
        if self.executor == "ray" and self.levels[0].kind != "rate":
            raise ConfigError("--executor ray runs open-loop --rate levels, not --concurrency")
        if self.slo:
            parse_slo(self.slo)  # a bad SLO fails before minutes of load, not after


def is_chat_url(url: str) -> bool:
    """Whether ``url`` names an OpenAI chat-completions endpoint."""
    from urllib.parse import urlsplit

    return urlsplit(url).path.rstrip("/").endswith("/chat/completions")


def is_transcription_url(url: str) -> bool:
    """Whether ``url`` names an OpenAI transcription endpoint (``…/audio/transcriptions``)."""
    from urllib.parse import urlsplit

    return urlsplit(url).path.rstrip("/").endswith("/audio/transcriptions")


def first_model(url: str, headers: dict[str, str], timeout_s: float) -> str:
    """The first model a chat server lists (``GET …/models`` beside ``…/chat/completions``);
    ConfigError saying to give --model when it lists none or cannot be asked."""
    import json
    import urllib.request

    from voxbench.engines.registry import redact

    base = url.rstrip("/").removesuffix("/chat/completions")
    where = f"{base}/models"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(where, headers=headers), timeout=timeout_s
        ) as answer:
            listed = json.loads(answer.read())
        return str(listed["data"][0]["id"])
    except Exception as exc:
        raise ConfigError(
            f"cannot read the model from {redact(where)} ({type(exc).__name__}: {exc}); "
            "give --model"
        ) from None


def _headers(req: LoadRequest) -> dict[str, str]:
    names = [req.api_key_env] if req.api_key_env else list(API_KEY_ENVS)
    for name in names:
        if os.environ.get(name):
            return {"Authorization": f"Bearer {os.environ[name]}"}
    if req.api_key_env:
        raise ConfigError(f"environment variable {req.api_key_env} (--api-key-env) is not set")
    return {}


def _workload(req: LoadRequest) -> Workload:
    """The request's workload, of the kind its target takes (audio for a transcription target,
    text otherwise); a one-line ConfigError when it is not."""
    from voxbench.workloads import resolve_workload

    work = resolve_workload(req.workload or "short")
    if req.transcription:
        if work.kind != "audio":
            raise ConfigError(
                f"workload {req.workload!r} is {work.kind}; a transcription target needs audio "
                "(e.g. spoken-short, a folder of name.wav + name.txt, or a .jsonl of audio lines)"
            )
    elif work.kind == "audio":
        kind = "a chat" if req.chat else "a speech"
        raise ConfigError(
            f"workload {req.workload!r} is audio; {kind} target takes text (audio goes to a "
            ".../v1/audio/transcriptions target)"
        )
    elif work.kind != "text":
        raise ConfigError(f"workload {req.workload!r} is {work.kind}; load needs text inputs")
    return work


def _bodies(req: LoadRequest, work: Workload | None = None) -> tuple[dict[str, Any], ...]:
    """The JSON bodies of a speech or chat target, one per workload item."""
    work = work or _workload(req)
    if req.chat:
        streamed: dict[str, Any] = (
            {"stream": True, "stream_options": {"include_usage": True}}
            if req.stream
            else {"stream": False}
        )
        return tuple(
            {
                "model": req.model,
                "messages": [{"role": "user", "content": item.text}],
                "max_tokens": req.max_tokens,
                **streamed,
                "temperature": 0,
            }
            for item in work.items
        )
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
    out["chat"] = req.chat
    out["transcription"] = req.transcription
    out["levels"] = [asdict(lv) for lv in req.levels]
    out["output"] = str(req.output)
    out["target"] = redact(req.target)
    if req.ray_address:
        out["ray_address"] = redact(req.ray_address)
    if req.ray_runtime_env is not None:
        from voxbench.run.request import runtime_env_record

        out["ray_runtime_env"] = runtime_env_record(req.ray_runtime_env)
    out["argv"] = [redact(a) for a in req.argv]
    return out


def resume_request(folder: Any) -> LoadRequest:
    """The request a load run was made with, from its ``load.settings``, writing into the same
    folder; one-line ConfigError when a credential in it was redacted."""
    from dataclasses import fields

    load = folder.doc.load
    if load is None:
        raise ConfigError(f"--resume: {folder.path} holds no load run")
    recorded = dict(load.settings)
    for name in ("target", "ray_address"):
        if "***@" in str(recorded.get(name) or ""):
            raise ConfigError(
                f"--resume: the run recorded --{name.replace('_', '-')} with its credentials "
                "redacted; run it again instead"
            )
    env = recorded.get("ray_runtime_env")
    if isinstance(env, dict) and env.get("env_vars"):
        raise ConfigError(
            "--resume: the run recorded its --ray-runtime-env env_vars hidden (credentials are "
            "never written); run it again instead"
        )
    known = {f.name for f in fields(LoadRequest)} - {"levels", "output", "machine_id"}
    options = {k: v for k, v in recorded.items() if k in known}
    return LoadRequest(
        levels=[Level(lv["kind"], lv["value"]) for lv in recorded["levels"]],
        output=folder.path.parent.parent,
        machine_id=folder.doc.environment.machine_id,
        **options,
    )


def run_load(
    req: LoadRequest,
    progress: Callable[[int, Level, float], None] = lambda i, lv, s: None,
) -> tuple[Any, Path]:
    """Run the levels in order, summarise each, find the capacity; write the run folder.
    Ctrl-C closes the folder with the levels measured so far and raises Interrupted."""
    folder = start_load(req)
    return measure_load(folder, req, progress), folder.path


def start_load(req: LoadRequest) -> Any:
    """Validate, capture the machine and create the run folder with an empty load document."""
    from voxbench import __version__
    from voxbench.engines.registry import redact
    from voxbench.results.document import LoadResult, ResultDocument
    from voxbench.results.folder import RunFolder, new_run_id, now_iso
    from voxbench.run import environment

    req.validate()
    _workload(req)  # a workload of the wrong kind fails before the run folder exists
    if req.executor == "ray":
        from voxbench.load.ray_workers import import_ray

        import_ray()  # without Ray: one line saying how to install it, before the run folder
    if req.chat and req.model is None:
        req.model = first_model(req.target, _headers(req), min(req.timeout_s, 10.0))
    doc = ResultDocument(
        scenario="load",
        run_id=new_run_id(),
        created_at=now_iso(),
        voxbench_version=__version__,
        environment=environment.capture(req.machine_id),
        load=LoadResult(target=redact(req.target), settings=_settings(req)),
    )
    return RunFolder.create(req.output, doc)


def measure_load(
    folder: Any, req: LoadRequest, progress: Callable[[int, Level, float], None]
) -> Any:
    """Every level ``folder``'s document lacks into it (all for a new run; the missing ones on
    ``--resume``), saved after each, in the request's order; then capacity and cost."""
    from voxbench.load.capacity import cost, evaluate, parse_slo, startup_bound_ms
    from voxbench.load.client import Target, run_level
    from voxbench.load.metrics import STARTUP_BOUND_MS, summarize_level
    from voxbench.load.records import Form
    from voxbench.load.transcriptions import transcription_bodies
    from voxbench.results.validity import MAX_ERROR_RATE

    clauses = parse_slo(req.slo) if req.slo else []
    max_error_rate = MAX_ERROR_RATE if req.max_error_rate is None else req.max_error_rate
    startup = req.startup_ms or startup_bound_ms(clauses, STARTUP_BOUND_MS)
    work = _workload(req)
    bodies: tuple[dict[str, Any] | Form, ...]
    corpus = None
    if req.transcription:  # uploads encoded here, once: encoding is in no latency
        bodies, corpus = transcription_bodies(work, req.model or "whisper-1")
    else:
        bodies = _bodies(req, work)
    target = Target(
        url=req.target,
        bodies=bodies,
        headers=_headers(req),
        timeout_s=req.timeout_s,
        pcm_sample_rate=req.pcm_sample_rate,
        chat=req.chat,
        transcription=req.transcription,
    )
    load = folder.doc.load
    pool: Any = contextlib.nullcontext()
    if req.executor == "ray":
        from voxbench.load.ray_workers import RayLoad, judge_workers, merge

        pool = RayLoad(req.workers, req.ray_address, req.ray_runtime_env)
    order = {lv.label: i for i, lv in enumerate(req.levels)}
    folder.track(list(order), lambda: (lv.label for lv in load.levels))
    done = {lv.label for lv in load.levels}
    todo = [(i, lv) for i, lv in enumerate(req.levels) if lv.label not in done]
    folder.save()  # the plan on disk before the first level: a kill now says what is missing
    measuring = folder.measuring(len(req.levels), lambda: len(load.levels), unit="levels")
    with pool as ray_load, measuring:
        for step, (i, level) in enumerate(todo):
            total = req.warmup_s + (req.duration_s or 0)
            offsets = None
            if level.kind == "rate":
                n = (
                    None
                    if req.requests is None
                    else req.requests + round(req.warmup_s * level.value)
                )
                offsets = intended_offsets(
                    level.value,
                    duration_s=total,
                    requests=n,
                    arrivals=req.arrivals,
                    seed=req.seed + i,
                )
            progress(i, level, total)
            runs = None
            if ray_load is not None:  # N workers' shares of the one schedule, merged
                assert offsets is not None
                runs, wall = ray_load.run_level(target, offsets, timeout_s=req.timeout_s)
                records = merge(runs)
            else:
                records, wall = run_level(
                    target, level, offsets, duration_s=total, requests=req.requests
                )
            load.levels.append(
                summarize_level(
                    level,
                    records,
                    warmup_s=req.warmup_s,
                    wall_s=wall,
                    buffer_ms=req.buffer_ms,
                    max_lag_ms=req.max_lag_ms,
                    stall_threshold_ms=req.stall_threshold_ms,
                    startup_bound_ms=startup,
                    max_error_rate=max_error_rate,
                    min_duration_s=req.min_duration_s,
                    timeout_s=req.timeout_s,
                    corpus=corpus,
                )
            )
            if runs is not None:
                judge_workers(
                    load.levels[-1],
                    runs,
                    warmup_s=req.warmup_s,
                    max_lag_ms=req.max_lag_ms,
                    max_error_rate=max_error_rate,
                    min_duration_s=req.min_duration_s,
                )
            load.levels.sort(key=lambda lv: order.get(lv.label, len(order)))
            folder.save()
            if step < len(todo) - 1:
                time.sleep(req.pause_s)  # let the server drain before the next level
        load.capacity = evaluate(load.levels, clauses, max_error_rate)
        if req.cost_per_hour is not None:
            load.cost = cost(
                load.capacity, req.cost_per_hour, req.hardware_price, req.running_per_month
            )
    return folder.doc


def failures(load: LoadResult) -> list[str]:
    """Why a finished load run's result fails (one line each; none: it passes): every request
    failed, a level is invalid, or an SLO was given and no level meets it. ``voxbench load``
    exits 1 when there is any."""
    out = []
    requests = sum(lv.requests for lv in load.levels)
    if requests and not any(lv.ok for lv in load.levels):
        out.append(f"every request failed ({requests} of {requests})")
    for lv in load.levels:
        if lv.validity is not None and not lv.validity.valid:
            out.append(f"level {lv.label} is invalid: {'; '.join(lv.validity.reasons)}")
    if load.capacity.get("slo") and not load.capacity.get("level"):
        out.append(f"no level meets the SLO {', '.join(load.capacity['slo'])}")
    return out
