"""``python -m voxbench`` runs the CLI."""

from voxbench.cli.app import main

main()
