"""The ``voxbench`` command: the typer app, its commands in the order ``--help`` lists them, and
the entry point that turns every expected failure into one line and an exit status.

Commands live by what they do: :mod:`.measure` (run, micro, quality), :mod:`.load` (serve, load), :mod:`.pipeline` (pipeline),
:mod:`.info` (engines, workloads, report, site), :mod:`.results` (store, compare, history,
aggregate, export). Only typer is imported at start-up; each command loads the library inside.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from voxbench.cli import info, load, measure, pipeline, results
from voxbench.cli.signals import Caught, exit_status, stop_on_signals
from voxbench.errors import VoxbenchError

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


app.command()(measure.run)
app.command()(load.serve)
app.command()(load.load)
app.command()(pipeline.pipeline)
app.command()(measure.micro)
app.command()(info.engines)
app.command()(info.workloads)
app.command()(info.report)
app.command()(measure.quality)
app.command()(info.site)
results.register(app)


def main() -> None:
    """Console entry point: one line and a non-zero exit for every expected failure; SIGTERM
    stops a command like Ctrl-C (:mod:`.signals`), with exit status 143 instead of 130."""
    caught = Caught()
    try:
        with stop_on_signals() as caught:
            app()
    except SystemExit as exc:  # typer ends a KeyboardInterrupt outside a run as a silent 130
        if exc.code == 130 and caught.signum is not None:
            name = (
                "" if caught.signum == signal.SIGINT else f" ({signal.Signals(caught.signum).name})"
            )
            print(f"voxbench: interrupted{name}", file=sys.stderr)
            sys.exit(128 + caught.signum)
        raise
    except VoxbenchError as exc:
        if _state["debug"]:
            raise
        print(f"voxbench: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        status = exit_status(exc)
        print("voxbench: interrupted" + (f" ({exc})" if status != 130 else ""), file=sys.stderr)
        sys.exit(status)
    except OSError as exc:  # disk full, permissions: still one line, the traceback with --debug
        if _state["debug"]:
            raise
        print(f"voxbench: error: {exc}", file=sys.stderr)
        sys.exit(1)
