"""The command line (typer) and the pytest plugin: the front ends over :mod:`voxbench.api`."""


def main() -> None:
    """The ``voxbench`` console script."""
    from voxbench.cli.app import main as run

    run()
