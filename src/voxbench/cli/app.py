"""The ``voxbench`` command. Thin: parse, call one library function, print.

Only typer is imported at start-up; everything else loads inside the command that needs it, so
``voxbench --help`` stays fast.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from voxbench.errors import ConfigError, VoxbenchError

app = typer.Typer(
    name="voxbench",
    help="Honest speed benchmarks for speech and audio engines.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from voxbench import __version__

        typer.echo(f"voxbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Honest speed benchmarks for speech and audio engines."""
    _state["debug"] = debug


STORE_HELP = (
    "Results store: a SQLite file or postgresql://... "
    "[$VOXBENCH_STORE, else ~/.local/share/voxbench/results.sqlite]."
)


class StreamMode(StrEnum):
    auto = "auto"
    on = "on"
    off = "off"


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [v.strip() for raw in values for v in raw.split(",") if v.strip()]
    return out or None


# Shared by `run --quality` and `quality`: one declaration, one help text.
MetricOption = Annotated[
    list[str] | None,
    typer.Option(
        "--metric", help="Quality metrics or families to compute (repeat/comma); default all."
    ),
]
TargetOption = Annotated[
    list[str] | None,
    typer.Option("--target", help="Quality target NAME<=VALUE, NAME>=VALUE or NAME=off."),
]


def _progress(console, remaining: bool = False):  # type: ignore[no-untyped-def]
    """The one progress bar style: description, bar, done/total, elapsed (and time left)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()] if remaining else [TimeElapsedColumn()]
    return Progress(*columns, console=console, transient=True)


def _stderr_console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:  # a log or CI: do not squeeze the table into 80 columns
        console = Console(stderr=True, width=200)
    return console


@app.command()
def run(
    engine: Annotated[
        list[str] | None,
        typer.Option(
            "--engine",
            "-e",
            help="Engine: a name, package.module:Factory, 'cmd:PROGRAM ARGS' or "
            "an http(s):// speech endpoint; repeat or comma-separate (not cmd:). "
            "Default: every available built-in engine.",
        ),
    ] = None,
    workload: Annotated[
        list[str] | None,
        typer.Option(
            "--workload",
            "-w",
            help="Built-in workload (short, medium, long, piano...) or a .txt/"
            ".jsonl/.mid path; repeat or comma-separate. Default: each engine's own.",
        ),
    ] = None,
    engine_arg: Annotated[
        list[str] | None,
        typer.Option("--engine-arg", "-a", help="Fixed engine argument name=value (repeatable)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Swept engine parameter name=v1,v2,... (repeatable; crossed)."
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="Devices, comma-separated: cpu, cuda, cuda:N. Default: cpu.")
    ] = None,
    batch_size: Annotated[
        str | None,
        typer.Option(help="Batch sizes to sweep, comma-separated, for engines that take batches."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="A voxbench.toml; options given here override it."),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option("--iterations", "-n", min=1, help="Measured iterations per case [10]."),
    ] = None,
    warmup: Annotated[int | None, typer.Option(min=0, help="Warm-up calls per case [3].")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Results root folder [results]; the run goes in OUTPUT/<machine-id>/<run-id>/.",
        ),
    ] = None,
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="Run engines in this process (least overhead; no isolation, no timeout).",
        ),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(help="Per-call timeout in seconds, worker mode [120]; 0 for none."),
    ] = None,
    stream: Annotated[
        StreamMode | None,
        typer.Option(
            help="auto: stream when the engine can "
            "(measures ttfa); off: whole-answer calls only [auto]."
        ),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Also write the result document to this path; '-' for stdout."),
    ] = None,
    no_audio: Annotated[
        bool, typer.Option("--no-audio", help="Do not save generated audio.")
    ] = False,
    machine_id: Annotated[
        str | None,
        typer.Option(help="Name of this machine in the results folder (default: host name)."),
    ] = None,
    quality: Annotated[
        bool | None,
        typer.Option(
            "--quality/--no-quality",
            help="After measuring, judge the saved audio: pitch, WER, DNSMOS, PESQ/STOI, ...",
        ),
    ] = None,
    metric: MetricOption = None,
    target: TargetOption = None,
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not record the run in the store.")
    ] = False,
) -> None:
    """Benchmark engines on workloads: cold start, then warm single requests."""
    from voxbench.run.runner import calls_per_case, plan

    request = _build_request(
        engine=engine,
        workload=workload,
        engine_arg=engine_arg,
        param=param,
        device=device,
        batch_size=batch_size,
        config=config,
        iterations=iterations,
        warmup=warmup,
        output=output,
        in_process=in_process,
        timeout=timeout,
        stream=stream,
        no_audio=no_audio,
        machine_id=machine_id,
    )
    _check_json_out(json_out)
    judge = _quality_choice(config, quality, metric, target)
    if judge and not request.settings.save_audio:
        raise ConfigError("--quality judges the saved audio; drop --no-audio")
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.report.views import skip_text

    with reserved_stdout(json_out == "-") as data:
        the_plan = plan(request)
        console = _stderr_console()
        for s in the_plan.skipped:
            console.print(f"[yellow]skipped[/] {skip_text(s)}")
        doc, run_dir = _run_with_progress(
            request, the_plan, console, calls_per_case(request.settings)
        )
        if judge:
            doc = _judge_with_progress(doc, run_dir, *judge, console)
        _print_summary(doc, run_dir, json_out, console, data)
        _record(doc, run_dir, store, no_store, console)
    if any(c.error_count for c in doc.cases):
        raise typer.Exit(1)


def _engine_refs(values: list[str] | None) -> list[str] | None:
    """Split comma-separated engine names, but keep a cmd: template or a URL whole."""
    if not values:
        return None
    out: list[str] = []
    for raw in values:
        if raw.startswith(("cmd:", "http://", "https://")):
            out.append(raw)
        else:
            out.extend(v.strip() for v in raw.split(",") if v.strip())
    return out or None


def _build_request(**opt):  # type: ignore[no-untyped-def]
    """Merge the command line over the config file over the defaults into a RunRequest."""
    from voxbench import devices as dev
    from voxbench.run.config import ConfigFile, load_config
    from voxbench.run.params import parse_args, parse_list, parse_sweep
    from voxbench.run.runner import EngineChoice, RunRequest
    from voxbench.run.scenario import Settings

    cfg, raw = load_config(opt["config"]) if opt["config"] else (ConfigFile(), None)

    def pick(name: str, file_value, default):  # type: ignore[no-untyped-def]
        value = opt[name]
        return value if value is not None else (file_value if file_value is not None else default)

    args = parse_args(opt["engine_arg"] or [])
    refs = _engine_refs(opt["engine"])
    if refs:
        engines = [EngineChoice(r, dict(args)) for r in refs]
    elif cfg.engine:
        engines = [EngineChoice(e.ref, {**e.args, **args}, dict(e.params)) for e in cfg.engine]
    else:
        engines = None
        if args:
            raise ConfigError("--engine-arg needs --engine (or engines in --config)")
    timeout = pick("timeout", cfg.timeout, 120.0)
    if timeout < 0:
        raise ConfigError("--timeout cannot be negative")
    device_list = (
        parse_list(opt["device"], "--device") if opt["device"] else (cfg.devices or ["cpu"])
    )
    batches = (
        parse_list(opt["batch_size"], "--batch-size", int)
        if opt["batch_size"]
        else (cfg.batch_sizes or [1])
    )
    if any(b < 1 for b in batches):
        raise ConfigError("--batch-size values must be at least 1")
    stream = opt["stream"].value if opt["stream"] is not None else (cfg.stream or "auto")
    mode = "in-process" if opt["in_process"] else (cfg.mode or "worker")
    save_audio = not opt["no_audio"] and (cfg.save_audio if cfg.save_audio is not None else True)
    return RunRequest(
        engines=engines,
        workloads=_split(opt["workload"]) or cfg.workloads,
        settings=Settings(
            iterations=pick("iterations", cfg.iterations, 10),
            warmup=pick("warmup", cfg.warmup, 3),
            mode=mode,
            timeout_s=timeout or None,
            stream=stream,
            save_audio=save_audio,
        ),
        sweep={**cfg.params, **parse_sweep(opt["param"] or [])},
        devices=list(dict.fromkeys(dev.normalize(d) for d in device_list)),
        batch_sizes=list(dict.fromkeys(batches)),
        output=pick("output", Path(cfg.output) if cfg.output else None, Path("results")),
        machine_id=pick("machine_id", cfg.machine_id, None),
        argv=sys.argv[1:],
        config_file=raw,
    )


def _quality_choice(config, quality, metric, target):  # type: ignore[no-untyped-def]
    """(metrics, targets) when quality is asked for (here or in the config file), else None.

    Resolved before measuring, so a misspelt metric or target fails at once."""
    from voxbench.run.config import ConfigFile, load_config

    cfg = load_config(config)[0] if config else ConfigFile()
    names = _split(metric) or cfg.metrics
    wanted = quality if quality is not None else (bool(cfg.quality) or bool(metric or target))
    if not wanted:
        return None
    return _resolve_quality(names, cfg.targets, target)


def _resolve_quality(names, configured, options):  # type: ignore[no-untyped-def]
    from voxbench.quality.registry import select_metrics
    from voxbench.quality.targets import resolve_targets

    metrics = select_metrics(names)
    directions = {v.name: v.higher_is_better for m in metrics for v in m.values}
    return metrics, resolve_targets(configured, options, directions)


def _judge_with_progress(doc, run_dir, metrics, targets, console):  # type: ignore[no-untyped-def]
    """Quality of every case's saved audio; results.json and report.md are rewritten with it."""
    from voxbench.quality.evaluate import evaluate_document
    from voxbench.report.markdown import write_report
    from voxbench.run.runner import write_json

    with _progress(console) as bar:
        task = bar.add_task("quality", total=None)

        def progress(done, total, label):  # type: ignore[no-untyped-def]
            bar.update(task, completed=done, total=total, description=f"quality · {label}")

        doc = evaluate_document(doc, run_dir, metrics, targets, progress=progress)
    write_json(doc, run_dir / "results.json")
    write_report(doc, run_dir / "report.md")
    return doc


def _run_with_progress(request, the_plan, console, per_case):  # type: ignore[no-untyped-def]
    from voxbench.run.runner import execute

    with _progress(console, remaining=True) as bar:
        task = bar.add_task("starting", total=len(the_plan.cases) * per_case)

        def progress(case, n):  # type: ignore[no-untyped-def]
            if n == 0:
                bar.update(task, description=f"{case.engine} · {case.workload} · {case.item.id}")
            else:
                bar.advance(task, n)

        return execute(request, the_plan, progress=progress)


def _check_json_out(json_out: str | None) -> None:
    """Fail before minutes of measuring, not after, when --json names a missing folder."""
    if json_out and json_out != "-" and not Path(json_out).resolve().parent.is_dir():
        raise ConfigError(f"--json: folder {Path(json_out).parent} does not exist")


def _write_outputs(doc, run_dir, json_out, console, data) -> None:  # type: ignore[no-untyped-def]
    """Where the run folder is, and the document on stdout (``data``) or in a file when --json asks."""
    console.print(f"results: {run_dir / 'results.json'}\nreport:  {run_dir / 'report.md'}")
    if json_out == "-":
        data.write(doc.model_dump_json(indent=2) + "\n")
    elif json_out:
        Path(json_out).write_text(doc.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _record(doc, run_dir, store, no_store, console) -> None:  # type: ignore[no-untyped-def]
    """Add the run to the store; a failure warns on stderr and never loses the written folder."""
    if no_store:
        return
    from voxbench.results.store import record, resolve_url
    from voxbench.results.store.dialects import redact_url

    url = resolve_url(store)
    if url and record(doc, url, source=str(run_dir.resolve())):
        console.print(f"store:   {redact_url(url)}")


def _print_summary(doc, run_dir, json_out, console, data) -> None:  # type: ignore[no-untyped-def]
    from voxbench.report.markdown import rich_table, terminal_sections

    console.print(rich_table(doc, width=console.width))
    for table in terminal_sections(doc):
        console.print(table)
    failed = [c for c in doc.cases if c.error_count]
    for c in failed:
        first = c.errors[0]
        console.print(
            f"[red]errors[/] {c.id}: {c.error_count} ({first.phase}: {first.type}: {first.message})"
        )
    _write_outputs(doc, run_dir, json_out, console, data)


@app.command()
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
    serve_forever(spec, host=host, port=port, concurrency=concurrency, queue=queue)


@app.command()
def load(
    target: Annotated[
        str,
        typer.Option(
            "--target", "-t", help="URL of an OpenAI-compatible /v1/audio/speech endpoint."
        ),
    ],
    rate: Annotated[
        str | None,
        typer.Option(help="Open-loop levels in requests/s, comma-separated, e.g. 1,2,4."),
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(help="Closed-loop levels (clients), comma-separated; for comparison."),
    ] = None,
    duration: Annotated[str, typer.Option(help="Measured time per level, e.g. 20s, 2m.")] = "20s",
    requests: Annotated[
        int | None, typer.Option(min=1, help="Measured requests per level (instead of --duration).")
    ] = None,
    warmup: Annotated[str, typer.Option(help="Time per level sent but not measured.")] = "2s",
    arrivals: Annotated[str, typer.Option(help="poisson or constant.")] = "poisson",
    workload: Annotated[
        str, typer.Option("--workload", "-w", help="Texts to send, in turn.")
    ] = "short",
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Ask for streamed audio.")
    ] = True,
    response_format: Annotated[str, typer.Option(help="wav or pcm.")] = "wav",
    model: Annotated[str, typer.Option(help="model field of the request.")] = "tts-1",
    voice: Annotated[str, typer.Option(help="voice field of the request.")] = "alloy",
    slo: Annotated[str | None, typer.Option(help="e.g. 'ttfa_p95<300ms,error_rate<0.1%'.")] = None,
    buffer_ms: Annotated[
        float, typer.Option(help="Listener jitter buffer for the stall analysis, ms.")
    ] = 0.0,
    cost_per_hour: Annotated[
        float | None, typer.Option(help="Price of the serving machine per hour.")
    ] = None,
    hardware_price: Annotated[
        float | None, typer.Option(help="Buying price of the hardware, for the break-even month.")
    ] = None,
    running_cost: Annotated[
        float, typer.Option(help="Monthly running cost of owned hardware.")
    ] = 0.0,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the environment variable holding the API key.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Per-request timeout, s.")] = 60.0,
    max_lag_ms: Annotated[
        float,
        typer.Option(help="Schedule lag p99 above which a level is marked saturated (invalid)."),
    ] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the Poisson schedule.")] = 1,
    output: Annotated[Path, typer.Option("--output", "-o", help="Results root folder.")] = Path(
        "results"
    ),
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Also write the document to this path; '-' for stdout."),
    ] = None,
    machine_id: Annotated[str | None, typer.Option(help="Name of this machine.")] = None,
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not record the run in the store.")
    ] = False,
) -> None:
    """Load-test a speech endpoint: open-loop rates or closed-loop concurrency, per-level
    percentiles, errors, stalls, capacity and cost."""
    from voxbench.load.run import LoadRequest, run_load
    from voxbench.load.schedule import Level, parse_duration
    from voxbench.run.params import parse_list

    if not target.startswith(("http://", "https://")):
        raise ConfigError(f"--target must be an http(s):// URL, not {target!r}")
    if (rate is None) == (concurrency is None):
        raise ConfigError("give exactly one of --rate or --concurrency")
    if arrivals not in ("poisson", "constant"):
        raise ConfigError("--arrivals must be poisson or constant")
    levels = (
        [Level("rate", v) for v in parse_list(rate, "--rate", float)]
        if rate
        else [Level("concurrency", v) for v in parse_list(concurrency, "--concurrency", int)]
    )  # type: ignore[arg-type]
    if any(lv.value <= 0 for lv in levels):
        raise ConfigError("load levels must be above 0")
    request = LoadRequest(
        target=target,
        levels=levels,
        duration_s=None if requests else parse_duration(duration),
        requests=requests,
        warmup_s=parse_duration(warmup),
        arrivals=arrivals,
        seed=seed,
        workload=workload,  # type: ignore[arg-type]
        model=model,
        voice=voice,
        stream=stream,
        response_format=response_format,
        api_key_env=api_key_env,
        timeout_s=timeout,
        slo=slo,
        buffer_ms=buffer_ms,
        max_lag_ms=max_lag_ms,
        cost_per_hour=cost_per_hour,
        hardware_price=hardware_price,
        running_per_month=running_cost,
        output=output,
        machine_id=machine_id,
        argv=sys.argv[1:],
    )
    from voxbench.load.capacity import parse_slo

    if slo:
        parse_slo(slo)  # a bad SLO fails before minutes of load, not after
    _check_json_out(json_out)
    from voxbench.cli.stdio import reserved_stdout

    with reserved_stdout(json_out == "-") as data:
        console = _stderr_console()
        doc, run_dir = _load_with_progress(request, console, run_load)
        _print_load_summary(doc, run_dir, json_out, console, data)
        _record(doc, run_dir, store, no_store, console)


def _load_with_progress(request, console, run_load):  # type: ignore[no-untyped-def]
    with _progress(console) as bar:
        task = bar.add_task("load", total=len(request.levels))

        def progress(index, level, seconds):  # type: ignore[no-untyped-def]
            bar.update(task, completed=index, description=f"level {level.label}, ~{seconds:g} s")

        return run_load(request, progress=progress)


def _print_load_summary(doc, run_dir, json_out, console, data) -> None:  # type: ignore[no-untyped-def]
    from voxbench.report.load import capacity_lines, load_sections
    from voxbench.report.markdown import section_table

    for section in load_sections(doc.load):
        if section.headers and section.title in (
            "Load levels",
            "Errors by kind",
            "Playback stalls",
        ):
            console.print(section_table(section))
    for line in capacity_lines(doc.load):
        console.print(line)
    _write_outputs(doc, run_dir, json_out, console, data)


@app.command()
def micro(
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer sizes and samples: a CI smoke run.")
    ] = False,
    kernel: Annotated[
        list[str] | None,
        typer.Option(
            "--kernel",
            "-k",
            help="Kernels or families, comma-separated: mel, stft, resample, topk, topp, "
            "temperature, repetition_penalty, pack, unpack; audio, sampling, codes. Default: all.",
        ),
    ] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            help="Backends, comma-separated: numpy, scipy, torch, torchaudio, librosa (the "
            "reference always runs). Default: every installed one."
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="Devices, comma-separated: cpu, cuda, cuda:N (torch backends).")
    ] = "cpu,cuda",
    iterations: Annotated[
        int | None,
        typer.Option("--iterations", "-n", min=1, help="Measured samples per case [30; quick 10]."),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(min=0, help="Warm-up samples per case [3; quick 1].")
    ] = None,
    min_sample_ms: Annotated[
        float | None,
        typer.Option(help="Shortest sample; tiny kernels loop until a sample lasts this [2; 1]."),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(
            help="Threads per backend (torch, BLAS, OpenMP); 0: each library's default. "
            "One keeps libraries' idle workers from stealing each other's cores."
        ),
    ] = 1,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Results root folder; OUTPUT/<machine-id>/<run-id>/."),
    ] = Path("results"),
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Also write the result document to this path; '-' for stdout."),
    ] = None,
    machine_id: Annotated[
        str | None,
        typer.Option(help="Name of this machine in the results folder (default: host name)."),
    ] = None,
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not record the run in the store.")
    ] = False,
) -> None:
    """Micro-benchmark kernels speech engines spend time in (no model weights): mel/STFT,
    resampling, logits sampling, codec-code packing, on numpy/scipy/torch against librosa."""
    from voxbench import devices as dev
    from voxbench.micro.runner import MicroRequest, plan_micro
    from voxbench.run.params import parse_list

    request = MicroRequest(
        kernels=_split(kernel),
        backends=_split(backend),
        devices=list(dict.fromkeys(dev.normalize(d) for d in parse_list(device, "--device"))),
        quick=quick,
        samples=iterations,
        warmup=warmup,
        min_sample_ms=min_sample_ms,
        threads=threads,
        output=output,
        machine_id=machine_id,
        argv=sys.argv[1:],
    )
    request.settings()  # bad values fail before any measuring
    _check_json_out(json_out)
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.report.views import skip_text

    with reserved_stdout(json_out == "-") as data:
        the_plan = plan_micro(request)
        console = _stderr_console()
        for s in the_plan.skipped:
            console.print(f"[yellow]skipped[/] {skip_text(s)}")
        doc, run_dir = _micro_with_progress(request, the_plan, console)
        from voxbench.report.micro import micro_rich_table

        console.print(micro_rich_table(doc, width=console.width))
        for c in doc.cases:
            if c.error_count:
                first = c.errors[0]
                console.print(f"[red]error[/] {c.id}: {first.phase}: {first.type}: {first.message}")
        _write_outputs(doc, run_dir, json_out, console, data)
        _record(doc, run_dir, store, no_store, console)
    if any(c.error_count for c in doc.cases):
        raise typer.Exit(1)


def _micro_with_progress(request, the_plan, console):  # type: ignore[no-untyped-def]
    from voxbench.micro.runner import run_micro

    with _progress(console) as bar:
        task = bar.add_task("starting", total=len(the_plan.cases))

        def progress(case, done):  # type: ignore[no-untyped-def]
            if done:
                bar.advance(task)
            else:
                bar.update(task, description=case.id)

        return run_micro(request, the_plan, progress=progress)


@app.command()
def engines(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
) -> None:
    """List engines, whether each can run here, and the fix when it cannot."""
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.engines.registry import describe, known_engines

    with reserved_stdout(json_out) as data:
        rows = [describe(name) for name in known_engines()]
        if json_out:
            import json

            data.write(json.dumps(rows, indent=2) + "\n")
            return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="voxbench engines")
    for col in ("engine", "input", "output", "streams", "available", "description / fix"):
        table.add_column(col)
    for r in rows:
        ok = "[green]yes[/]" if r["available"] else "[red]no[/]"
        table.add_row(
            r["name"],
            r["input"],
            r["output"],
            "yes" if r["streaming"] else "no",
            ok,
            r["description"] if r["available"] else r["reason"],
        )
    Console().print(table)


@app.command()
def workloads() -> None:
    """List built-in workloads."""
    from voxbench.workloads import builtin_workloads

    for name, text in builtin_workloads().items():
        typer.echo(f"{name:12} {text}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder or its results.json.")],
) -> None:
    """Re-render report.md from a run's results.json and print it."""
    from voxbench.report.markdown import write_report
    from voxbench.results.document import load_document

    doc = load_document(run_dir)
    folder = run_dir if run_dir.is_dir() else run_dir.parent
    path = write_report(doc, folder / "report.md")
    typer.echo(path.read_text(encoding="utf-8"), nl=False)


@app.command("quality")
def quality_command(
    run_dir: Annotated[Path, typer.Argument(help="A run folder or its results.json.")],
    metric: MetricOption = None,
    target: TargetOption = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="A voxbench.toml with [targets].")
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option("--json", help="Also write the result document to this path; '-' for stdout."),
    ] = None,
) -> None:
    """Judge the audio a finished run saved: pitch, speaker, WER/CER, PESQ/STOI, DNSMOS, MCD..."""
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.results.document import load_document
    from voxbench.run.config import ConfigFile, load_config

    folder = run_dir.parent if run_dir.name == "results.json" else run_dir
    doc = load_document(folder)
    if doc.scenario != "single":
        raise ConfigError(f"{folder}: a {doc.scenario} run has no saved audio to judge")
    cfg = load_config(config)[0] if config else ConfigFile()
    metrics, targets = _resolve_quality(_split(metric) or cfg.metrics, cfg.targets, target)
    _check_json_out(json_out)
    with reserved_stdout(json_out == "-") as data:
        console = _stderr_console()
        doc = _judge_with_progress(doc, folder, metrics, targets, console)
        from voxbench.report.markdown import section_table
        from voxbench.report.views import all_sections

        for section in all_sections(doc):
            if section.title.startswith("Quality"):
                console.print(section_table(section))
        _write_outputs(doc, folder, json_out, console, data)


def _register_results() -> None:
    from voxbench.cli.results import register

    register(app)


_register_results()


def main() -> None:
    """Console entry point: one line and a non-zero exit for every expected failure."""
    try:
        app()
    except VoxbenchError as exc:
        if _state["debug"]:
            raise
        print(f"voxbench: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("voxbench: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as exc:  # disk full, permissions: still one line, the traceback with --debug
        if _state["debug"]:
            raise
        print(f"voxbench: error: {exc}", file=sys.stderr)
        sys.exit(1)
