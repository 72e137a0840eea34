"""The commands that measure or judge: ``run``, ``micro`` and ``quality``.

Each parses its options into the library's request, calls one :mod:`voxbench.api` function
inside a progress bar, and prints what comes back.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from voxbench.cli.common import (
    JobsOption,
    JsonOption,
    MachineOption,
    MetricOption,
    NoStoreOption,
    ResumeOption,
    StoreOption,
    TargetOption,
    check_json_out,
    console,
    print_errors,
    progress_bar,
    resumed,
    split,
    write_outputs,
)
from voxbench.cli.info import EmbedAudioOption, HtmlOption
from voxbench.run.settings import DEFAULT_OUTPUT, Settings

if TYPE_CHECKING:
    from rich.console import Console

    from voxbench.api import Outcome
    from voxbench.micro.runner import MicroCase
    from voxbench.run.planner import PlannedCase


DEFAULTS = Settings()


class ExecutorKind(StrEnum):
    local = "local"
    ray = "ray"


class StreamMode(StrEnum):
    auto = "auto"
    on = "on"
    off = "off"


ExecutorOption = Annotated[
    ExecutorKind | None,
    typer.Option(
        help="local: cases one after another here; ray: each case a Ray task, placed by "
        "its resources (docs/distributed.md) [local]."
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="--executor ray: the cluster (ray://host:10001, auto); default $RAY_ADDRESS, "
        "else a local Ray on every core."
    ),
]
RayRetriesOption = Annotated[
    int | None,
    typer.Option(
        min=0, help="--executor ray: reruns of a task that failed or whose worker died [1]."
    ),
]
RayResourcesOption = Annotated[
    str | None,
    typer.Option(
        help="--executor ray: what every case asks of a node, JSON: '{\"gpu_type:H100\": 1}', "
        "CPU and GPU too (over the config's engine resources)."
    ),
]
RayRuntimeEnvOption = Annotated[
    str | None,
    typer.Option(
        help="--executor ray: Ray's runtime_env for the tasks, inline JSON or a .json file: "
        '\'{"pip": ["voxbench[ray]"]}\'.'
    ),
]


def run(
    ctx: typer.Context,
    engine: Annotated[
        list[str] | None,
        typer.Option(
            "--engine",
            "-e",
            help="Engine: a name, package.module:Factory, 'cmd:PROGRAM ARGS', an "
            "OpenAI-compatible http(s):// endpoint (…/v1/audio/speech, …/v1/audio/transcriptions, "
            "…/v1/chat/completions or llm:http://host:port/v1) or wyoming://host:port; repeat "
            "or comma-separate (not cmd:). Default: every available built-in TTS and MIDI engine.",
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
        typer.Option(
            "--iterations",
            "-n",
            min=1,
            help=f"Measured iterations per case [{DEFAULTS.iterations}].",
        ),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(min=0, help=f"Warm-up calls per case [{DEFAULTS.warmup}].")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help=f"Results root folder [{DEFAULT_OUTPUT}]; the run goes in OUTPUT/<machine-id>/<run-id>/.",
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
        typer.Option(
            help=f"Per-call timeout in seconds, worker mode [{DEFAULTS.timeout_s:g}]; 0 for none."
        ),
    ] = None,
    case_timeout: Annotated[
        float | None,
        typer.Option(
            "--case-timeout",
            help="Per-case limit in seconds (start, load and every call); a case past it is "
            "stopped and recorded, the run goes on. Default: none.",
        ),
    ] = None,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
            help="Kill a worker whose resident memory passes this size (500M, 2G) and record it "
            "in its case; worker mode only. Default: no limit.",
        ),
    ] = None,
    stream: Annotated[
        StreamMode | None,
        typer.Option(
            help="auto: stream when the engine can "
            f"(measures ttfa); off: whole-answer calls only [{DEFAULTS.stream}]."
        ),
    ] = None,
    json_out: JsonOption = None,
    no_audio: Annotated[
        bool, typer.Option("--no-audio", help="Do not save generated audio.")
    ] = False,
    machine_id: MachineOption = None,
    quality: Annotated[
        bool | None,
        typer.Option(
            "--quality/--no-quality",
            help="After measuring, judge the saved audio: pitch, WER, DNSMOS, PESQ/STOI, ...",
        ),
    ] = None,
    metric: MetricOption = None,
    jobs: JobsOption = None,
    target: TargetOption = None,
    store: StoreOption = None,
    no_store: NoStoreOption = False,
    html: HtmlOption = False,
    embed_audio: EmbedAudioOption = False,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    ray_retries: RayRetriesOption = None,
    ray_resources: RayResourcesOption = None,
    ray_runtime_env: RayRuntimeEnvOption = None,
    resume: ResumeOption = None,
) -> None:
    """Benchmark engines on workloads: cold start, then warm single requests."""
    from voxbench import api
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.results.skips import skip_text
    from voxbench.run.planner import plan
    from voxbench.run.request import RunOptions, RunRequest

    job = resumed(ctx, resume, api.resume_run, store, not no_store)
    request = job.request if job is not None else None
    if request is None:
        request = RunRequest.from_sources(
            config,
            RunOptions(
                engines=engine,
                workloads=workload,
                engine_args=engine_arg,
                params=param,
                devices=device,
                batch_sizes=batch_size,
                iterations=iterations,
                warmup=warmup,
                output=output,
                in_process=in_process or None,
                timeout_s=timeout,
                case_timeout_s=case_timeout,
                max_memory=max_memory,
                stream=stream.value if stream is not None else None,
                save_audio=False if no_audio else None,
                machine_id=machine_id,
                executor=executor.value if executor is not None else None,
                ray_address=ray_address,
                ray_retries=ray_retries,
                ray_resources=ray_resources,
                ray_runtime_env=ray_runtime_env,
                argv=sys.argv[1:],
            ),
        )
    judge = api.quality_plan(config, quality, metric, target, jobs=jobs)
    api.check_benchmark(request, judge)
    check_json_out(json_out)
    if html or embed_audio:
        api.check_html()
    with reserved_stdout(json_out == "-") as data:
        the_plan = job.plan if job is not None else plan(request)
        out = console()
        for s in the_plan.skipped:
            out.print(f"[yellow]skipped[/] {skip_text(s)}")
        with progress_bar(out, remaining=True) as bar:
            cases = job.remaining if job is not None else len(the_plan.cases)
            task = bar.add_task("starting", total=cases * request.calls_per_case)

            def progress(case: PlannedCase, n: int) -> None:
                if n == 0:
                    bar.update(
                        task, description=f"{case.engine} · {case.workload} · {case.item.id}"
                    )
                else:
                    bar.advance(task, n)

            def judging(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=f"quality · {label}")

            outcome = api.benchmark(
                request,
                the_plan,
                quality=judge,
                store=store,
                record=not no_store,
                progress=progress,
                quality_progress=judging,
                resume=job.folder if job is not None else None,
            )
        _print_run(outcome, json_out, out, data)
        _write_html(outcome, html or embed_audio, embed_audio, out)
    if outcome.failed:
        raise typer.Exit(1)


def _write_html(outcome: Outcome, html: bool, embed_audio: bool, out: Console) -> None:
    """``--html``: report.html beside report.md, from the finished run's document."""
    from voxbench import api

    if html:
        out.print(
            f"html:    {api.write_html_report(outcome.doc, outcome.path, embed_audio=embed_audio)}"
        )


def _print_run(outcome: Outcome, json_out: str | None, out: Console, data: TextIO) -> None:
    from voxbench.report.terminal import rich_table, terminal_sections

    out.print(rich_table(outcome.doc, width=out.width))
    for table in terminal_sections(outcome.doc):
        out.print(table)
    print_errors(outcome.doc, out)
    write_outputs(outcome, json_out, out, data)


def micro(
    ctx: typer.Context,
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
    json_out: JsonOption = None,
    machine_id: MachineOption = None,
    store: StoreOption = None,
    no_store: NoStoreOption = False,
    html: HtmlOption = False,
    embed_audio: EmbedAudioOption = False,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    ray_retries: RayRetriesOption = None,
    ray_resources: RayResourcesOption = None,
    ray_runtime_env: RayRuntimeEnvOption = None,
    resume: ResumeOption = None,
) -> None:
    """Micro-benchmark kernels speech engines spend time in (no model weights): mel/STFT,
    resampling, logits sampling, codec-code packing, on numpy/scipy/torch against librosa."""
    from voxbench import api
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.engines.devices import normalize
    from voxbench.micro.runner import MicroRequest, plan_micro
    from voxbench.results.skips import skip_text
    from voxbench.run.params import parse_list
    from voxbench.run.request import RayOptions

    job = resumed(ctx, resume, api.resume_micro, store, not no_store)
    request = job.request if job is not None else None
    if request is None:
        request = MicroRequest(
            kernels=split(kernel) or None,
            backends=split(backend) or None,
            devices=list(dict.fromkeys(normalize(d) for d in parse_list(device, "--device"))),
            quick=quick,
            samples=iterations,
            warmup=warmup,
            min_sample_ms=min_sample_ms,
            threads=threads,
            output=output,
            machine_id=machine_id,
            argv=sys.argv[1:],
            executor=executor.value if executor is not None else "local",
            ray=RayOptions.parse(
                executor.value if executor is not None else None,
                address=ray_address,
                retries=ray_retries,
                resources=ray_resources,
                runtime_env=ray_runtime_env,
            ),
        )
    request.settings()  # bad values fail before any measuring
    check_json_out(json_out)
    if html or embed_audio:
        api.check_html()
    with reserved_stdout(json_out == "-") as data:
        the_plan = job.plan if job is not None else plan_micro(request)
        out = console()
        for s in the_plan.skipped:
            out.print(f"[yellow]skipped[/] {skip_text(s)}")
        with progress_bar(out) as bar:
            task = bar.add_task(
                "starting", total=job.remaining if job is not None else len(the_plan.cases)
            )

            def progress(case: MicroCase, done: bool) -> None:
                if done:
                    bar.advance(task)
                else:
                    bar.update(task, description=case.id)

            outcome = api.micro_bench(
                request,
                the_plan,
                store=store,
                record=not no_store,
                progress=progress,
                resume=job.folder if job is not None else None,
            )
        from voxbench.report.micro import micro_rich_table

        out.print(micro_rich_table(outcome.doc, width=out.width))
        print_errors(outcome.doc, out)
        write_outputs(outcome, json_out, out, data)
        _write_html(outcome, html or embed_audio, embed_audio, out)
    if outcome.failed:
        raise typer.Exit(1)


def quality(
    run_dir: Annotated[Path, typer.Argument(help="A run folder or its results.json.")],
    metric: MetricOption = None,
    jobs: JobsOption = None,
    target: TargetOption = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="A voxbench.toml with [targets].")
    ] = None,
    json_out: JsonOption = None,
) -> None:
    """Judge the audio a finished run saved: pitch, speaker, WER/CER, PESQ/STOI, DNSMOS, MCD..."""
    from voxbench import api
    from voxbench.cli.stdio import reserved_stdout
    from voxbench.report import all_sections
    from voxbench.report.terminal import section_table
    from voxbench.results.folder import RunFolder

    RunFolder.open(run_dir)  # a missing or broken document fails before the metrics load
    judge = api.quality_plan(config, True, metric, target, always=True, jobs=jobs)
    assert judge is not None
    check_json_out(json_out)
    with reserved_stdout(json_out == "-") as data:
        out = console()
        with progress_bar(out) as bar:
            task = bar.add_task("quality", total=None)

            def judging(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=f"quality · {label}")

            outcome = api.judge(run_dir, judge, judging)
        for section in all_sections(outcome.doc):
            if section.title.startswith("Quality"):
                out.print(section_table(section))
        write_outputs(outcome, json_out, out, data)
