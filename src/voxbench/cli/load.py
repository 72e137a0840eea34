"""``serve`` (an engine behind an OpenAI-compatible endpoint) and ``load`` (drive one).

``load``'s defaults are :class:`~voxbench.load.run.LoadRequest`'s, read from the dataclass so
they are declared once; the request validates itself.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from voxbench.cli.common import (
    JsonOption,
    NoStoreOption,
    ResumeOption,
    StoreOption,
    check_json_out,
    console,
    progress_bar,
    resumed,
    write_outputs,
)
from voxbench.cli.info import EmbedAudioOption, HtmlOption

if TYPE_CHECKING:
    from rich.console import Console

    from voxbench.api import Outcome
    from voxbench.load.schedule import Level


def _load_defaults() -> dict[str, Any]:
    """LoadRequest's field defaults (its module is light: dataclasses and the schedule)."""
    from voxbench.load.run import LoadRequest

    return {
        f.name: f.default
        for f in dataclasses.fields(LoadRequest)
        if f.default is not dataclasses.MISSING
    }


D = _load_defaults()


def _seconds(value: float | None) -> str:
    return f"{value:g}s" if value is not None else "0s"


def serve(
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            "-e",
            help="Engine to serve: a name, package.module:Factory or 'cmd:PROGRAM ARGS'.",
        ),
    ],
    engine_arg: Annotated[
        list[str] | None,
        typer.Option("--engine-arg", "-a", help="Fixed engine argument name=value (repeatable)."),
    ] = None,
    device: Annotated[str, typer.Option(help="Device: cpu, cuda or cuda:N.")] = "cpu",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one.")] = 8880,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Engine calls run at once (each in its own thread).")
    ] = 1,
    queue: Annotated[
        int, typer.Option(min=0, help="Requests that may wait for a slot; the rest get 503.")
    ] = 64,
    max_body_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest JSON request body, MiB (else 413).")
    ] = 1.0,
    max_upload_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest audio upload (STT engines), MiB (else 413).")
    ] = 50.0,
    max_text_chars: Annotated[
        int, typer.Option(min=1, help="Longest input text, characters (else 400).")
    ] = 5000,
    header_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds a client has to send the request head.")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds a client has to send the request body.")
    ] = 30.0,
) -> None:
    """Serve an engine as an OpenAI-compatible /v1/audio/speech endpoint, to load-test it."""
    from voxbench.engines.devices import normalize
    from voxbench.engines.registry import EngineSpec
    from voxbench.errors import EngineUnavailable
    from voxbench.run.params import parse_args

    spec = EngineSpec(engine, dict(parse_args(engine_arg or [])), normalize(device))
    reason = spec.unavailable_reason()
    if reason:
        raise EngineUnavailable(f"engine {engine!r} is unavailable: {reason}")
    try:
        from voxbench.load.serve import serve as serve_forever
    except ImportError as exc:
        raise EngineUnavailable(
            f"voxbench serve needs starlette and uvicorn ({exc}): pip install 'voxbench[serve]'"
        ) from exc
    from voxbench.load.serve_checks import Limits

    limits = Limits(
        max_json_bytes=int(max_body_mb * 2**20),
        max_upload_bytes=int(max_upload_mb * 2**20),
        max_text_chars=max_text_chars,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
    )
    serve_forever(spec, host=host, port=port, concurrency=concurrency, queue=queue, limits=limits)


def load(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            "-t",
            help="URL of an OpenAI-compatible /v1/audio/speech, /v1/audio/transcriptions or "
            "/v1/chat/completions endpoint (or llm:http://host:port/v1).",
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(help="Open-loop levels in requests/s, comma-separated, e.g. 1,2,4."),
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(help="Closed-loop levels (clients), comma-separated; for comparison."),
    ] = None,
    duration: Annotated[
        str, typer.Option(help="Measured time per level, e.g. 20s, 2m.")
    ] = _seconds(D["duration_s"]),
    requests: Annotated[
        int | None, typer.Option(min=1, help="Measured requests per level (instead of --duration).")
    ] = D["requests"],
    warmup: Annotated[str, typer.Option(help="Time per level sent but not measured.")] = _seconds(
        D["warmup_s"]
    ),
    arrivals: Annotated[str, typer.Option(help="poisson or constant.")] = D["arrivals"],
    workload: Annotated[
        str | None,
        typer.Option(
            "--workload",
            "-w",
            help="Inputs to send, in turn: texts (default: short; chat: prompts), or for a "
            "transcription target an audio corpus (default: spoken-short).",
        ),
    ] = D["workload"],
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Ask for streamed audio.")
    ] = D["stream"],
    response_format: Annotated[str, typer.Option(help="wav or pcm.")] = D["response_format"],
    model: Annotated[
        str | None,
        typer.Option(
            help="model field of the request (default: tts-1; transcription: whisper-1; chat: "
            "the server's first model)."
        ),
    ] = D["model"],
    max_tokens: Annotated[
        int, typer.Option(min=1, help="Chat targets: max_tokens of each request.")
    ] = D["max_tokens"],
    voice: Annotated[str, typer.Option(help="voice field of the request.")] = D["voice"],
    slo: Annotated[
        str | None,
        typer.Option(help="e.g. 'ttfa_p95<300ms,error_rate<0.1%'; transcription: 'wer<=5%'."),
    ] = D["slo"],
    buffer_ms: Annotated[
        float, typer.Option(help="Listener jitter buffer for the stall analysis, ms.")
    ] = D["buffer_ms"],
    cost_per_hour: Annotated[
        float | None, typer.Option(help="Price of the serving machine per hour.")
    ] = D["cost_per_hour"],
    hardware_price: Annotated[
        float | None, typer.Option(help="Buying price of the hardware, for the break-even month.")
    ] = D["hardware_price"],
    running_cost: Annotated[
        float, typer.Option(help="Monthly running cost of owned hardware.")
    ] = D["running_per_month"],
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the API key.")
    ] = D["api_key_env"],
    timeout: Annotated[float, typer.Option(help="Per-request timeout, s.")] = D["timeout_s"],
    max_lag_ms: Annotated[
        float,
        typer.Option(help="Schedule lag p99 above which a level is marked saturated (invalid)."),
    ] = D["max_lag_ms"],
    max_error_rate: Annotated[
        float | None,
        typer.Option(help="Error rate above which a level is invalid (default 0.01)."),
    ] = D["max_error_rate"],
    min_duration: Annotated[
        str, typer.Option(help="Shortest measured window of a valid level, e.g. 5s.")
    ] = _seconds(D["min_duration_s"]),
    pcm_sample_rate: Annotated[
        int | None,
        typer.Option(min=1, help="Hz of audio/pcm answers without X-Sample-Rate (default 24000)."),
    ] = D["pcm_sample_rate"],
    stall_threshold_ms: Annotated[
        float, typer.Option(help="An underrun this long or shorter is jitter, not a stall, ms.")
    ] = D["stall_threshold_ms"],
    startup_ms: Annotated[
        float | None,
        typer.Option(
            help="Start-up delay a real-time stream may take, ms (default: the SLO's ttfa "
            "bound, else 1000)."
        ),
    ] = D["startup_ms"],
    seed: Annotated[int, typer.Option(help="Seed of the Poisson schedule.")] = D["seed"],
    executor: Annotated[
        str,
        typer.Option(
            help="Where the load generator runs: local (this process) or ray (--workers actors "
            "sharing one schedule, records merged)."
        ),
    ] = D["executor"],
    workers: Annotated[
        int, typer.Option(min=1, help="--executor ray: load generators (one CPU each).")
    ] = D["workers"],
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="--executor ray: the Ray cluster to use (default: RAY_ADDRESS, else start a "
            "local Ray)."
        ),
    ] = D["ray_address"],
    ray_runtime_env: Annotated[
        str | None,
        typer.Option(
            help="--executor ray: Ray's runtime_env, inline JSON or a .json file "
            "(docs/distributed.md)."
        ),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Results root folder.")] = D[
        "output"
    ],
    json_out: JsonOption = None,
    machine_id: Annotated[str | None, typer.Option(help="Name of this machine.")] = None,
    store: StoreOption = None,
    no_store: NoStoreOption = False,
    html: HtmlOption = False,
    embed_audio: EmbedAudioOption = False,
    resume: ResumeOption = None,
) -> None:
    """Load-test a speech, transcription or chat endpoint: open-loop rates or closed-loop
    concurrency, per-level percentiles (chat: time to first token, inter-token latency, tokens/s;
    transcription: input audio transcribed per second and WER), errors, stalls, capacity and cost.

    Exit status: 0 the result passes; 1 measured, but every request failed, a level is invalid or
    no level meets --slo (results.json and report.md are written first); 2 a usage or
    configuration error; 130 interrupted."""
    from voxbench import api
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.errors import ConfigError
    from voxbench.load.run import LoadRequest, failures
    from voxbench.load.schedule import parse_duration
    from voxbench.run.request import parse_runtime_env

    job = resumed(ctx, resume, api.resume_load, store, not no_store)
    if job is None and target is None:
        raise ConfigError("give --target URL (or --resume RUN_DIR)")
    request = (
        job.request
        if job is not None
        else LoadRequest.from_text(
            target or "",
            rate=rate,
            concurrency=concurrency,
            duration=duration,
            warmup=warmup,
            requests=requests,
            arrivals=arrivals,
            seed=seed,
            executor=executor,
            workers=workers,
            ray_address=ray_address,
            ray_runtime_env=parse_runtime_env(ray_runtime_env),
            workload=workload,
            model=model,
            max_tokens=max_tokens,
            voice=voice,
            stream=stream,
            response_format=response_format,
            api_key_env=api_key_env,
            timeout_s=timeout,
            slo=slo,
            buffer_ms=buffer_ms,
            max_lag_ms=max_lag_ms,
            max_error_rate=max_error_rate,
            min_duration_s=parse_duration(min_duration),
            pcm_sample_rate=pcm_sample_rate,
            stall_threshold_ms=stall_threshold_ms,
            startup_ms=startup_ms,
            cost_per_hour=cost_per_hour,
            hardware_price=hardware_price,
            running_per_month=running_cost,
            output=output,
            machine_id=machine_id,
            argv=sys.argv[1:],
        )
    )
    check_json_out(json_out)
    if html or embed_audio:
        api.check_html()
    with reserved_stdout(json_out == "-") as data:
        out = console()
        with progress_bar(out) as bar:
            task = bar.add_task("load", total=len(request.levels))

            def progress(index: int, level: Level, seconds: float) -> None:
                bar.update(
                    task, completed=index, description=f"level {level.label}, ~{seconds:g} s"
                )

            outcome = api.load_test(
                request,
                store=store,
                record=not no_store,
                progress=progress,
                resume=job.folder if job is not None else None,
            )
        _print_load(outcome, json_out, out, data)
        if html or embed_audio:
            page = api.write_html_report(outcome.doc, outcome.path, embed_audio=embed_audio)
            out.print(f"html:    {page}")
    assert outcome.doc.load is not None
    failed = failures(outcome.doc.load)
    for line in failed:
        out.print(f"[red]fails:[/red] {line}", markup=True, highlight=False)
    if failed:
        raise typer.Exit(1)


def _print_load(outcome: Outcome, json_out: str | None, out: Console, data: TextIO) -> None:
    from voxbench.report.load import capacity_lines, load_sections
    from voxbench.report.terminal import section_table

    load = outcome.doc.load
    assert load is not None
    for section in load_sections(load):
        if section.headers and section.title in (
            "Load levels",
            "Invalid levels",
            "SLO clauses",
            "Errors by kind",
            "Playback stalls",
        ):
            out.print(section_table(section))
    for line in capacity_lines(load):
        out.print(line)
    write_outputs(outcome, json_out, out, data)
