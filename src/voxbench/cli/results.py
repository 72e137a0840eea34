"""Commands that read results after the fact: store, compare, history, aggregate, export.

Registered on the main app by :func:`register`; like the rest of the CLI they import only typer
at start-up and load the library inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from voxbench.cli.common import StoreOption, console, split
from voxbench.cli.info import EmbedAudioOption, HtmlFileOption
from voxbench.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from voxbench.analysis.compare import RunNoise
    from voxbench.results.document import ResultDocument

StoreOpt = StoreOption


def _console(stderr: bool = False) -> Console:
    return console(stderr=stderr)


def _split(values: list[str] | None) -> list[str]:
    return split(values)


def _write_text(target: str, text: str) -> None:
    """Write ``text`` to a file, or to stdout for ``-``; a missing folder is a one-line error."""
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    if not path.resolve().parent.is_dir():
        raise ConfigError(f"folder {path.parent} does not exist")
    path.write_text(text, encoding="utf-8")


# -- store ------------------------------------------------------------------------------------

store_app = typer.Typer(
    name="store",
    help="The results store: import result folders, export a selection, list runs.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@store_app.command("import")
def store_import(
    paths: Annotated[
        list[Path], typer.Argument(help="Result folders (searched recursively) or JSON files.")
    ],
    store: StoreOpt = None,
) -> None:
    """Add result documents to the store; runs already there are left as they are."""
    from voxbench.results.store import open_store
    from voxbench.results.store.io import import_paths

    with open_store(store) as s:
        summary = import_paths(s, paths)
        url = s.url
    typer.echo(
        f"{len(summary.added)} added, {len(summary.replaced)} replaced, "
        f"{len(summary.unchanged)} already there: {url}"
    )


@store_app.command("export")
def store_export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="json, csv or parquet.")] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write [stdout].")
    ] = None,
    engine: Annotated[str | None, typer.Option(help="Only runs (rows) of this engine.")] = None,
    machine: Annotated[str | None, typer.Option(help="Only runs of this machine id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs from this time: YYYY-MM-DD, ISO time or 7d.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only runs up to this time.")] = None,
    run: Annotated[
        list[str] | None, typer.Option("--run", help="Only these run ids (repeatable).")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Export runs: JSON (whole documents, re-importable), CSV or Parquet (one row per case)."""
    from voxbench.results.store import open_store
    from voxbench.results.store.io import EXPORT_FORMATS, export

    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}: choose from {', '.join(EXPORT_FORMATS)}")
    if output is not None and not output.resolve().parent.is_dir():
        raise ConfigError(f"-o: folder {output.parent} does not exist")
    with open_store(store) as s:
        runs, rows = export(
            s, fmt, output, engine=engine, machine=machine, since=since, until=until,
            run_ids=_split(run) or None,
        )  # fmt: skip
    if output is not None:
        typer.echo(f"{runs} runs, {rows} cases -> {output}", err=True)


@store_app.command("list")
def store_list(
    engine: Annotated[str | None, typer.Option(help="Only runs with this engine.")] = None,
    machine: Annotated[str | None, typer.Option(help="Only runs of this machine id.")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD, ISO time or an age: 7d.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (newest first).")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    store: StoreOpt = None,
) -> None:
    """List stored runs, newest first."""
    from dataclasses import asdict

    from voxbench.results.store import open_store

    with open_store(store) as s:
        infos = s.runs(engine=engine, machine=machine, since=since, limit=limit)
        url, backend, version = s.url, s.backend, s.schema_version
    if json_out:
        import json

        typer.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{url} ({backend}, schema {version})")
    for col in ("run", "created", "machine", "commit", "scenario", "status", "cases", "engines"):
        table.add_column(col)
    for i in infos:  # status: complete, or partial (interrupted, killed): --resume finishes it
        table.add_row(
            i.run_id, i.created_at[:19].replace("T", " "), i.machine_id, (i.git_commit or "")[:10],
            i.scenario, i.status, str(i.cases), ", ".join(i.engines),
        )  # fmt: skip
    _console().print(table)


# -- compare ----------------------------------------------------------------------------------


def compare(
    base: Annotated[str, typer.Argument(help="Run folder, results.json, run id, or latest~1.")],
    candidate: Annotated[str, typer.Argument(help="Run folder, results.json, run id, or latest.")],
    threshold: Annotated[
        str, typer.Option(help="Smallest change that counts: 5%, 5 or 0.05.")
    ] = "5%",
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="Metrics (repeat/comma): latency_ms, rtf, ttfa_ms, errors, "
            "peak_rss_mb, peak_child_rss_mb, peak_gpu_allocated_mb, gpu_nvml_mb, "
            "cold_start_ms [all].",
        ),
    ] = None,
    ignore_param: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-param",
            help="Leave this engine parameter out of case matching (compare two settings).",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="What goes to stdout: table, markdown, json.")
    ] = "table",
    markdown_out: Annotated[
        str | None, typer.Option("--markdown", help="Also write Markdown here ('-': stdout).")
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Also write JSON here ('-': stdout).")
    ] = None,
    run_noise: Annotated[
        bool,
        typer.Option(
            "--run-noise/--no-run-noise",
            help="Widen intervals by the between-run noise of each case, estimated from its "
            "stored runs on the base's machine (3 or more).",
        ),
    ] = True,
    html: HtmlFileOption = None,
    embed_audio: EmbedAudioOption = False,
    store: StoreOpt = None,
) -> None:
    """Compare two runs case by case; exit status 1 when anything regressed, 3 when nothing
    did but a case is invalid on either side (the gate cannot decide), 2 on bad input."""
    from voxbench.analysis import compare as cmp_mod
    from voxbench.results.store.io import resolve_run

    if fmt not in ("table", "markdown", "json"):
        raise ConfigError(f"unknown --format {fmt!r}: choose from table, markdown, json")
    if json_out == "-":
        fmt = "json"
    elif markdown_out == "-":
        fmt = "markdown"
    limit = cmp_mod.parse_threshold(threshold)
    metrics = tuple(_split(metric)) or cmp_mod.DEFAULT_METRICS
    for target in (markdown_out, json_out):
        if target and target != "-" and not Path(target).resolve().parent.is_dir():
            raise ConfigError(f"folder {Path(target).parent} does not exist")
    if embed_audio and html is None:
        raise ConfigError("--embed-audio: name the page with --html FILE")
    if html is not None:
        from voxbench import api

        api.check_html_target(html)
    b_doc, b_label = resolve_run(base, store)
    c_doc, c_label = resolve_run(candidate, store)
    noise = _run_noise(store, b_doc, c_doc, metrics) if run_noise else None
    result = cmp_mod.compare(
        b_doc, c_doc, threshold=limit, metrics=metrics,
        ignore_params=frozenset(_split(ignore_param)), labels=(b_label, c_label), noise=noise,
    )  # fmt: skip
    if markdown_out and markdown_out != "-":
        _write_text(markdown_out, cmp_mod.markdown(result))
    if json_out and json_out != "-":
        _write_text(json_out, cmp_mod.to_json(result))
    if html is not None:
        from voxbench import api

        pair = ((b_doc, b_label), (c_doc, c_label))
        api.write_compare_html(result, *pair, html, embed_audio=embed_audio, store=store)
        _console(stderr=True).print(f"html: {html}")
    if fmt == "json":
        sys.stdout.write(cmp_mod.to_json(result))
    elif fmt == "markdown":
        sys.stdout.write(cmp_mod.markdown(result))
    else:
        console = _console()
        console.print(cmp_mod.rich_table(result))
        for title, keys in (("only in base", result.only_base), ("only in candidate", result.only_candidate)):  # fmt: skip
            for k in keys:
                console.print(f"[yellow]{title}[/] {k}")
        for inv in result.invalid:
            console.print(f"[yellow]invalid, not compared[/] {inv.key}: {inv.text()}")
        for c in result.cases:
            for why in c.not_compared:
                console.print(f"[dim]{c.key} {why}[/]")
    if result.exit_status():
        raise typer.Exit(result.exit_status())


def _run_noise(
    store: str | None, base: ResultDocument, candidate: ResultDocument, metrics: tuple[str, ...]
) -> dict[tuple[str, str], RunNoise] | None:
    """Between-run noise per base case from the store; none when there is no usable store (an
    explicit --store that fails is an error)."""
    from voxbench.analysis.compare import noise_from_store
    from voxbench.errors import VoxbenchError
    from voxbench.results.store import open_store, resolve_url

    url = resolve_url(store)
    if url is None or (store is None and "://" not in url and not Path(url).exists()):
        return None  # no store: do not create one just to read it
    try:
        with open_store(store) as s:
            return noise_from_store(s, base, {candidate.run_id}, metrics)
    except VoxbenchError:
        if store:
            raise
        return None


# -- history ----------------------------------------------------------------------------------


def history(
    engine: Annotated[str, typer.Option("--engine", "-e", help="Engine name as stored.")],
    workload: Annotated[str | None, typer.Option("--workload", "-w", help="Workload.")] = None,
    metric: Annotated[
        str,
        typer.Option(
            help="latency_ms, latency_p95_ms, rtf, rtfx, ttfa_ms, peak_rss_mb, peak_child_rss_mb, "
            "peak_gpu_allocated_mb, gpu_nvml_mb, "
            "cold_start_ms, items_per_second, chars_per_second."
        ),
    ] = "latency_ms",
    case: Annotated[str | None, typer.Option("--case", help="One case id.")] = None,
    machine: Annotated[str | None, typer.Option(help="Only runs of this machine id.")] = None,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD, ISO time or an age: 30d.")] = None,
    min_shift: Annotated[
        str, typer.Option(help="Smallest relative step marked as a change point.")
    ] = "5%",
    last: Annotated[int, typer.Option(min=1, help="Table rows per case (newest).")] = 30,
    all_machines: Annotated[
        bool,
        typer.Option(
            "--all-machines", help="One series per case across machines [one per machine]."
        ),
    ] = False,
    all_modes: Annotated[
        bool,
        typer.Option(
            "--all-modes",
            help="One series per case across executor modes [one per mode: worker, in-process].",
        ),
    ] = False,
    svg_out: Annotated[
        Path | None, typer.Option("--svg", help="Write the plot as an SVG file.")
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the series as JSON ('-': stdout).")
    ] = None,
    html: HtmlFileOption = None,
    store: StoreOpt = None,
) -> None:
    """A metric over commits and dates from the store, with change points marked."""
    from voxbench.analysis.compare import parse_threshold
    from voxbench.analysis.history import build_history, rich_tables
    from voxbench.results.store import METRICS, open_store

    if metric not in METRICS:
        raise ConfigError(f"unknown --metric {metric!r}: choose from {', '.join(METRICS)}")
    shift = parse_threshold(min_shift)
    if svg_out is not None and not svg_out.resolve().parent.is_dir():
        raise ConfigError(f"--svg: folder {svg_out.parent} does not exist")
    if svg_out is not None:
        from voxbench.report.plots import require_matplotlib

        require_matplotlib()  # before the store is read: one line on how to install it
    if html is not None:
        from voxbench import api

        api.check_html_target(html)
    with open_store(store) as s:
        hist = build_history(
            s, engine, metric=metric, workload=workload, case_id=case, machine=machine,
            since=since, min_shift=shift, all_machines=all_machines, all_modes=all_modes,
        )  # fmt: skip
    if json_out:
        import json

        _write_text(json_out, json.dumps(hist.to_dict(), indent=2) + "\n")
    console = _console(stderr=json_out == "-")
    for table in rich_tables(hist, last):
        console.print(table)
    if html is not None:
        from voxbench import api

        console.print(f"html: {api.write_history_html(hist, html)}")
    if svg_out is not None:
        from voxbench.report.plots import history_plot

        plot = history_plot(hist)  # None only without points, which build_history refuses
        if plot is not None:
            svg_out.write_text(plot, encoding="utf-8")
            console.print(f"plot: {svg_out}")


# -- aggregate --------------------------------------------------------------------------------


def aggregate(
    dirs: Annotated[
        list[Path], typer.Argument(help="Result folders (results/<machine>/<run>/ layout).")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Folder for aggregate.json/.md and per-machine copies."
        ),
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Machine id the speedups are relative to [first found].")
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", help="Metrics tabled in Markdown (repeat/comma) [latency_ms,rtfx]."
        ),
    ] = None,
    html: HtmlFileOption = None,
) -> None:
    """Results from several machines in one comparison: rows = cases, columns = machines."""
    from voxbench.analysis import aggregate as agg_mod
    from voxbench.results.store.io import find_documents

    tables = tuple(_split(metric)) or agg_mod.DEFAULT_TABLES
    bad = [m for m in tables if m not in agg_mod.METRICS]
    if bad:
        raise ConfigError(f"unknown --metric {bad[0]!r}: choose from {', '.join(agg_mod.METRICS)}")
    if html is not None:
        from voxbench import api

        api.check_html_target(html)
    result, used = agg_mod.aggregate(list(find_documents(dirs)), baseline)
    if html is not None:
        typer.echo(f"html: {api.write_aggregate_html(result, html)}", err=True)
    if output is None:
        sys.stdout.write(agg_mod.markdown(result, tables))
        return
    for path in agg_mod.write(result, used, output, tables):
        typer.echo(str(path))


# -- export for dashboards --------------------------------------------------------------------


def export(
    run: Annotated[str, typer.Argument(help="Run folder, results.json, run id, or latest.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="bencher or github-action-benchmark.")
    ] = "bencher",
    output: Annotated[str, typer.Option("--output", "-o", help="File, or '-' for stdout.")] = "-",
    store: StoreOpt = None,
) -> None:
    """One run in a CI dashboard's format: Bencher (BMF JSON) or github-action-benchmark."""
    from voxbench.report.dashboards import FORMATS, render
    from voxbench.results.store.io import resolve_run

    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}: choose from {', '.join(FORMATS)}")
    if output != "-" and not Path(output).resolve().parent.is_dir():
        raise ConfigError(f"-o: folder {Path(output).parent} does not exist")
    doc, _ = resolve_run(run, store)
    _write_text(output, render(doc, fmt))


def register(app: typer.Typer) -> None:
    """Add the commands to the main app."""
    app.add_typer(store_app, name="store")
    app.command()(compare)
    app.command()(history)
    app.command()(aggregate)
    app.command()(export)
