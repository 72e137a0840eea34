"""Commands that look without measuring: ``engines``, ``workloads`` and ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def engines(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
) -> None:
    """List engines, whether each can run here, and the fix when it cannot."""
    from voxbench import api
    from voxbench.cli.stdio import reserved_stdout

    with reserved_stdout(json_out) as data:
        rows = api.describe_engines()
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


def workloads() -> None:
    """List built-in workloads."""
    from voxbench.workloads import builtin_workloads

    found = builtin_workloads()
    width = max(map(len, found), default=0)
    for name, text in found.items():
        typer.echo(f"{name:{width}}  {text}")


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder or its results.json.")],
) -> None:
    """Re-render report.md from a run's results.json and print it."""
    from voxbench.report import write_report
    from voxbench.results.folder import RunFolder

    folder = RunFolder.open(run_dir)
    path = write_report(folder.doc, folder.report_path)
    typer.echo(path.read_text(encoding="utf-8"), nl=False)
