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


class StreamMode(StrEnum):
    auto = "auto"
    on = "on"
    off = "off"


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [v.strip() for raw in values for v in raw.split(",") if v.strip()]
    return out or None


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
            help="Engine name or package.module:Factory; repeat or comma-separate. "
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
    iterations: Annotated[
        int, typer.Option("--iterations", "-n", min=1, help="Measured iterations per case.")
    ] = 10,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up calls per case, not measured.")] = 3,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Results root folder; the run goes in OUTPUT/<machine-id>/<run-id>/.",
        ),
    ] = Path("results"),
    in_process: Annotated[
        bool,
        typer.Option(
            "--in-process",
            help="Run engines in this process (least overhead; no isolation, no timeout).",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Per-call timeout in seconds (worker mode); 0 for none.")
    ] = 120.0,
    stream: Annotated[
        StreamMode,
        typer.Option(
            help="auto: stream when the engine can (measures ttfa); off: whole-answer calls only."
        ),
    ] = StreamMode.auto,
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
) -> None:
    """Benchmark engines on workloads: cold start, then warm single requests."""
    from voxbench.registry import EngineSpec
    from voxbench.runner import RunRequest, calls_per_case, plan
    from voxbench.scenario import Settings

    if timeout < 0:
        raise ConfigError("--timeout cannot be negative")
    if json_out and json_out != "-" and not Path(json_out).resolve().parent.is_dir():
        raise ConfigError(f"--json: folder {Path(json_out).parent} does not exist")
    engines = _split(engine)
    request = RunRequest(
        engines=[EngineSpec(e) for e in engines] if engines else None,
        workloads=_split(workload),
        settings=Settings(
            iterations=iterations,
            warmup=warmup,
            mode="in-process" if in_process else "worker",
            timeout_s=timeout or None,
            stream=stream.value,
            save_audio=not no_audio,
        ),
        output=output,
        machine_id=machine_id,
        argv=sys.argv[1:],
    )
    the_plan = plan(request)
    console = _stderr_console()
    for s in the_plan.skipped:
        console.print(f"[yellow]skipped[/] {s['engine']}: {s['reason']}")
    doc, run_dir = _run_with_progress(request, the_plan, console, calls_per_case(request.settings))
    _print_summary(doc, run_dir, json_out, console)
    if any(c.error_count for c in doc.cases):
        raise typer.Exit(1)


def _run_with_progress(request, the_plan, console, per_case):  # type: ignore[no-untyped-def]
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from voxbench.runner import execute

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=len(the_plan.cases) * per_case)

        def progress(case, n):  # type: ignore[no-untyped-def]
            if n == 0:
                bar.update(task, description=f"{case.engine} · {case.workload} · {case.item.id}")
            else:
                bar.advance(task, n)

        return execute(request, the_plan, progress=progress)


def _print_summary(doc, run_dir, json_out, console) -> None:  # type: ignore[no-untyped-def]
    from voxbench.report import rich_table

    console.print(rich_table(doc, width=console.width))
    failed = [c for c in doc.cases if c.error_count]
    for c in failed:
        first = c.errors[0]
        console.print(
            f"[red]errors[/] {c.id}: {c.error_count} ({first.phase}: {first.type}: {first.message})"
        )
    console.print(f"results: {run_dir / 'results.json'}\nreport:  {run_dir / 'report.md'}")
    if json_out == "-":
        sys.stdout.write(doc.model_dump_json(indent=2) + "\n")
    elif json_out:
        Path(json_out).write_text(doc.model_dump_json(indent=2) + "\n", encoding="utf-8")


@app.command()
def engines(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
) -> None:
    """List engines, whether each can run here, and the fix when it cannot."""
    from voxbench.registry import describe, known_engines

    rows = [describe(name) for name in known_engines()]
    if json_out:
        import json

        typer.echo(json.dumps(rows, indent=2))
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
    from voxbench.report import write_report
    from voxbench.results import load_document

    doc = load_document(run_dir)
    folder = run_dir if run_dir.is_dir() else run_dir.parent
    path = write_report(doc, folder / "report.md")
    typer.echo(path.read_text(encoding="utf-8"), nl=False)


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
