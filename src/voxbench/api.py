"""The library entry points the CLI calls: each one measures, writes the run folder and its
report, and records the run."""
