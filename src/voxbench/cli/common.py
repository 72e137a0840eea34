"""What every command shares: option declarations, the stderr console, the progress bar, and
writing a document where ``--json`` asks.

Only typer is imported at start-up; rich and the library load inside the functions, so
``voxbench --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from voxbench.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from voxbench.api import Outcome, Resume

STORE_HELP = (
    "Results store: a SQLite file or postgresql://... "
    "[$VOXBENCH_STORE, else ~/.local/share/voxbench/results.sqlite]."
)
StoreOption = Annotated[str | None, typer.Option("--store", help=STORE_HELP)]
NoStoreOption = Annotated[
    bool, typer.Option("--no-store", help="Do not record the run in the store.")
]
JsonOption = Annotated[
    str | None,
    typer.Option("--json", help="Also write the result document to this path; '-' for stdout."),
]
MachineOption = Annotated[
    str | None,
    typer.Option(help="Name of this machine in the results folder (default: host name)."),
]
# Shared by `run --quality` and `quality`: one declaration, one help text.
MetricOption = Annotated[
    list[str] | None,
    typer.Option(
        "--metric", help="Quality metrics or families to compute (repeat/comma); default all."
    ),
]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=1,
        help="Worker processes for the quality metric families (default: one per CPU; 1: all "
        "in this process). Scores are the same whatever the number.",
    ),
]
TargetOption = Annotated[
    list[str] | None,
    typer.Option("--target", help="Quality target NAME<=VALUE, NAME>=VALUE or NAME=off."),
]


ResumeOption = Annotated[
    Path | None,
    typer.Option(
        "--resume",
        metavar="RUN_DIR",
        help="Finish an interrupted or killed run in RUN_DIR: its recorded settings, only what "
        "is missing, one complete document in the same folder (and the store). Takes no "
        "measuring options.",
    ),
]
RESUME_KEEPS = frozenset(
    {"resume", "store", "no_store", "json_out", "html", "embed_audio", "quality", "metric",
     "jobs", "target"}
)  # fmt: skip
"""The options --resume takes: where things go and what is judged after, never what is measured."""


def refuse_with_resume(ctx: typer.Context, keeps: frozenset[str] = RESUME_KEEPS) -> None:
    """With --resume the run's recorded settings decide what is measured: a one-line
    ConfigError naming every other option of the command ``ctx`` that was given on the command
    line (or from the environment)."""
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name not in keeps
        and getattr(ctx.get_parameter_source(param.name or ""), "name", "")
        in ("COMMANDLINE", "ENVIRONMENT")
    ]
    if given:
        raise ConfigError(
            f"--resume measures with the settings the run recorded; drop {', '.join(given)}"
        )


def resumed(
    ctx: typer.Context,
    run: Path | None,
    read: Callable[[Path], Resume],
    store: str | None = None,
    record: bool = True,
) -> Resume | None:
    """``--resume RUN_DIR`` given: the unfinished run ``read`` (one of ``api.resume_*``) found
    there, after refusing any measuring option. A complete one ends the command (status 0)
    once its report and its place in the store are made sure of (:func:`voxbench.api.settle`:
    the run may have been killed between its last case and recording it)."""
    if run is None:
        return None
    refuse_with_resume(ctx)
    job = read(run)
    if job.request is None:
        from voxbench import api

        api.settle(job.folder, store, record)
        console().print(f"nothing to resume: {job.folder.path} is complete")
        raise typer.Exit(0)
    return job


def split(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated values as one list."""
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def console(stderr: bool = True) -> Console:
    """A rich console; in a log or CI, 200 columns wide instead of squeezing tables into 80."""
    from rich.console import Console

    out = Console(stderr=stderr)
    if not out.is_terminal:
        out = Console(stderr=stderr, width=200)
    return out


def progress_bar(out: Console, remaining: bool = False) -> Progress:
    """The one progress bar style: description, bar, done/total, elapsed (and time left)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[ProgressColumn] = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=out, transient=True)


def check_json_out(json_out: str | None) -> None:
    """Fail before minutes of measuring, not after, when --json names a missing folder."""
    if json_out and json_out != "-" and not Path(json_out).resolve().parent.is_dir():
        raise ConfigError(f"--json: folder {Path(json_out).parent} does not exist")


def write_outputs(outcome: Outcome, json_out: str | None, out: Console, data: TextIO) -> None:
    """Where the run folder is, where the run was stored, and the document on stdout
    (``data``) or in a file when --json asks."""
    out.print(f"results: {outcome.path / 'results.json'}\nreport:  {outcome.path / 'report.md'}")
    if outcome.stored:
        out.print(f"store:   {outcome.stored}")
    text = outcome.doc.model_dump_json(indent=2) + "\n"
    if json_out == "-":
        data.write(text)
    elif json_out:
        Path(json_out).write_text(text, encoding="utf-8")


def print_errors(doc: Any, out: Console) -> None:
    """One line per case that recorded errors: how many, and the first."""
    for c in doc.cases:
        if c.error_count:
            first = c.errors[0]
            out.print(
                f"[red]errors[/] {c.id}: {c.error_count} "
                f"({first.phase}: {first.type}: {first.message})"
            )
