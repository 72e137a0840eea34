"""Commands that look without measuring: ``engines``, ``workloads``, ``report`` and ``site``;
and the ``--html`` / ``--embed-audio`` options the measuring commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxbench.cli.common import StoreOption

HtmlOption = Annotated[
    bool,
    typer.Option("--html", help="Also write report.html: plots, tables, a listen gallery."),
]
EmbedAudioOption = Annotated[
    bool,
    typer.Option(
        "--embed-audio",
        help="Embed the audio in the HTML page (one file to share) instead of linking audio/ "
        "(implies --html).",
    ),
]
HtmlFileOption = Annotated[
    Path | None,
    typer.Option("--html", help="Also write the result as a self-contained HTML page here."),
]


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
    html: HtmlOption = False,
    embed_audio: EmbedAudioOption = False,
) -> None:
    """Re-render report.md (and with --html report.html) from a run's results.json; print
    report.md."""
    from voxbench import api
    from voxbench.report import write_report
    from voxbench.results.folder import RunFolder

    if html or embed_audio:
        api.check_html()
    folder = RunFolder.open(run_dir)
    path = write_report(folder.doc, folder.report_path)
    typer.echo(path.read_text(encoding="utf-8"), nl=False)
    if html or embed_audio:
        page = api.write_html_report(folder.doc, folder.path, embed_audio=embed_audio)
        typer.echo(f"html: {page}", err=True)


def site(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the site to.")],
    store: StoreOption = None,
) -> None:
    """A static HTML site over the whole store: engines, machines, workloads, trends, audio."""
    from voxbench import api

    typer.echo(str(api.build_site(store, output)))
