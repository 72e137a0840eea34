"""Micro-benchmarks: kernels speech engines spend time in, timed in-process, no model weights.

``voxbench micro`` runs them (:mod:`voxbench.micro.runner`); the kernels themselves, on numpy,
scipy, torch and librosa, are in :mod:`voxbench.micro.kernels`; the timing loop shared with the
pytest plugin is :mod:`voxbench.micro.timing`. Results are ordinary result documents with
``scenario = "micro"``. Method and kernels: docs/micro.md.
"""
