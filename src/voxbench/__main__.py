"""``python -m voxbench`` runs the CLI."""

from voxbench.cli import main

main()
