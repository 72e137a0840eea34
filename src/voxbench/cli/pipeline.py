"""``voxbench pipeline``: a voice-assistant chain, STT → LLM → TTS, from the end of the user's
speech to the first audible answer (the library: :mod:`voxbench.pipeline`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from voxbench.cli.common import (
    JsonOption,
    NoStoreOption,
    StoreOption,
    check_json_out,
    console,
    progress_bar,
    split,
    write_outputs,
)
from voxbench.cli.info import EmbedAudioOption, HtmlOption
from voxbench.cli.measure import (
    ExecutorOption,
    RayAddressOption,
    RayResourcesOption,
    RayRetriesOption,
    RayRuntimeEnvOption,
)

if TYPE_CHECKING:
    from rich.console import Console

    from voxbench.api import Outcome
    from voxbench.pipeline.run import PipelineRequest

ArgOption = Annotated[list[str] | None, typer.Option(help="name=value (repeatable).")]


def _request(
    config: Path | None, given: dict[str, Any], args: dict[str, list[str] | None]
) -> PipelineRequest:
    """Defaults < ``[pipeline]`` of the config file < options."""
    from voxbench.pipeline.run import PipelineRequest
    from voxbench.run.config import load_config
    from voxbench.run.params import parse_args

    fields: dict[str, Any] = {}
    targets: list[str] = []
    if config is not None:
        table = load_config(config)[0].pipeline
        if table is not None:
            for name in ("stt", "llm", "tts", "workload", "iterations", "warmup"):
                if getattr(table, name) is not None:
                    fields[name] = getattr(table, name)
            for role in ("stt", "llm", "tts"):
                fields[f"{role}_params"] = dict(getattr(table, f"{role}_args"))
            if table.modes:
                fields["modes"] = tuple(table.modes)
            targets = list(table.targets)
    fields.update({k: v for k, v in given.items() if v is not None and not k.startswith("_")})
    for role, raw in args.items():
        for item in raw or ():
            if not item.partition("=")[1] or not item.partition("=")[0].strip():
                # parse_args would name --engine-arg, which this command does not have
                from voxbench.errors import ConfigError

                raise ConfigError(f"--{role}-arg {item!r} must look like name=value")
        if raw:
            fields[f"{role}_params"] = {**fields.get(f"{role}_params", {}), **parse_args(raw)}
    return PipelineRequest(**fields, targets=(*targets, *given.get("_targets", ())))


def pipeline(
    stt: Annotated[
        str | None, typer.Option("--stt", help="Speech recogniser (default: whisper).")
    ] = None,
    llm: Annotated[
        str | None,
        typer.Option(
            "--llm",
            help="LLM: smollm2 (default, local), http://host:port/v1 (any OpenAI-compatible "
            "chat endpoint), or echo (no LLM: measures STT → TTS).",
        ),
    ] = None,
    tts: Annotated[str | None, typer.Option("--tts", help="TTS engine (default: piper).")] = None,
    stt_arg: ArgOption = None,
    llm_arg: ArgOption = None,
    tts_arg: ArgOption = None,
    workload: Annotated[
        str | None,
        typer.Option(
            "--workload",
            "-w",
            help="Spoken prompts (default: assistant; or a folder of name.wav + name.txt).",
        ),
    ] = None,
    mode: Annotated[
        list[str] | None,
        typer.Option(help="sequential, streaming, or both (default), comma-separated."),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            "--iterations", "-n", min=1, help="Measured conversations per prompt and mode (10)."
        ),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(min=0, help="Conversations before measuring, not counted (1).")
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help="NAME<=N or NAME>=N (NAME:p95<=N for a percentile), overriding a default: "
            "stt_ms<=500, tokens_per_second>=60, tts_first_audio_ms<=2000, "
            "end_to_end_ms<=5000, first_audio_ms<=1000.",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N prompts.")] = None,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="Only these prompts (item ids, repeatable)."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(help="Under load: conversations/s, open loop, comma-separated (e.g. 0.5,1)."),
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(help="Under load: users talking at once, closed loop, comma-separated."),
    ] = None,
    duration: Annotated[
        str, typer.Option(help="Under load: time per level, e.g. 30s, 2m.")
    ] = "30s",
    arrivals: Annotated[str, typer.Option(help="Under load: poisson or constant.")] = "poisson",
    seed: Annotated[int, typer.Option(help="Under load: seed of the Poisson schedule.")] = 0,
    slo: Annotated[
        str,
        typer.Option(help="Under load: the SLO, targets' syntax, comma-separated."),
    ] = "first_audio_ms:p95<=1000",
    max_lag_ms: Annotated[
        float, typer.Option(help="Under load: schedule lag p99 above which a level is invalid.")
    ] = 20.0,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="voxbench.toml with a [pipeline] table.")
    ] = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Do not save the answers.")] = False,
    output: Annotated[Path, typer.Option("--output", "-o", help="Results root folder.")] = Path(
        "results"
    ),
    json_out: JsonOption = None,
    machine_id: Annotated[str | None, typer.Option(help="Name of this machine.")] = None,
    store: StoreOption = None,
    no_store: NoStoreOption = False,
    html: HtmlOption = False,
    embed_audio: EmbedAudioOption = False,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    ray_retries: RayRetriesOption = None,
    ray_resources: RayResourcesOption = None,
    ray_runtime_env: RayRuntimeEnvOption = None,
) -> None:
    """Time a voice assistant — STT → LLM → TTS — from the end of the user's speech to the first
    audible answer, sequential and streaming, per stage, against targets.

    Exit status: 0 every conversation succeeded and every target passed; 1 measured, but a
    conversation failed or a target failed (results.json and report.md are written first);
    2 a usage or configuration error; 130 interrupted."""
    from voxbench import api
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.pipeline.run import failures
    from voxbench.run.request import RayOptions

    kind = executor.value if executor is not None else None
    ray = RayOptions.parse(
        kind,
        address=ray_address,
        retries=ray_retries,
        resources=ray_resources,
        runtime_env=ray_runtime_env,
    )
    modes = tuple(split(mode)) or None
    plan = _load_plan(rate, concurrency, duration, arrivals, seed, slo, max_lag_ms)
    request = _request(
        config,
        {
            "stt": stt,
            "llm": llm,
            "tts": tts,
            "workload": workload,
            "modes": modes,
            "iterations": iterations,
            "warmup": warmup,
            "limit": limit,
            "prompts": tuple(split(prompt)) or None,
            "output": output,
            "machine_id": machine_id,
            "save_audio": False if no_audio else None,
            "load": plan,
            "executor": kind,
            "ray": ray,
            "argv": sys.argv[1:],
            "_targets": tuple(split(target)),
        },
        {"stt": stt_arg, "llm": llm_arg, "tts": tts_arg},
    )
    request.check()  # before the progress bar: a bad engine or workload is one clean line
    check_json_out(json_out)
    if html or embed_audio:
        api.check_html()
    with reserved_stdout(json_out == "-") as data:
        out = console()
        with progress_bar(out, remaining=True) as bar:
            task = bar.add_task("starting the components", total=None)

            def progress(what: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=what)

            outcome = api.pipeline_run(request, store=store, record=not no_store, progress=progress)
        _print(outcome, json_out, out, data)
        if html or embed_audio:
            page = api.write_html_report(outcome.doc, outcome.path, embed_audio=embed_audio)
            out.print(f"html:    {page}")
    failed = failures(outcome.doc)
    for line in failed:
        out.print(f"[red]fails:[/red] {line}", markup=True, highlight=False)
    if failed:
        raise typer.Exit(1)


def _load_plan(
    rate: str | None,
    concurrency: str | None,
    duration: str,
    arrivals: str,
    seed: int,
    slo: str,
    max_lag_ms: float,
) -> Any:
    """The load plan when --rate or --concurrency asks for one, else None."""
    if rate is None and concurrency is None:
        return None
    from voxbench.errors import ConfigError
    from voxbench.load.schedule import Level, parse_duration
    from voxbench.pipeline.load import LoadPlan

    levels = []
    for kind, text in (("rate", rate), ("concurrency", concurrency)):
        for part in split([text] if text else []):
            try:
                value = float(part)
            except ValueError:
                raise ConfigError(f"--{kind}: {part!r} is not a number") from None
            if value <= 0 or (kind == "concurrency" and value != int(value)):
                raise ConfigError(f"--{kind}: {part!r} must be a positive {kind} value")
            levels.append(Level(kind, value))  # type: ignore[arg-type]
    if arrivals not in ("poisson", "constant"):
        raise ConfigError(f"--arrivals {arrivals!r}: use poisson or constant")
    return LoadPlan(
        levels=tuple(levels),
        duration_s=parse_duration(duration),
        arrivals=arrivals,  # type: ignore[arg-type]
        seed=seed,
        slo=slo,
        max_lag_ms=max_lag_ms,
    )


def _print(outcome: Outcome, json_out: str | None, out: Console, data: TextIO) -> None:
    from voxbench.report.pipeline import pipeline_sections
    from voxbench.report.terminal import section_table

    for section in pipeline_sections(outcome.doc):
        out.print(section_table(section))
        if section.note and section.title == "Pipeline targets":
            out.print(section.note.replace("`", ""), highlight=False)
    write_outputs(outcome, json_out, out, data)
