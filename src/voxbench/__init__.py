"""voxbench: honest speed, scalability and quality benchmarks for speech and audio engines.

The public API is what this module exports. Heavy modules (numpy, pydantic, engines) load lazily,
so ``import voxbench`` and ``voxbench --help`` stay fast.
"""

from __future__ import annotations

from voxbench.engine import BaseEngine, Chunk, Engine, Output, TextChunk, stage
from voxbench.errors import ConfigError, EngineFailed, EngineUnavailable, VoxbenchError

__version__ = "0.1.0"

__all__ = [
    "BaseEngine",
    "Chunk",
    "ConfigError",
    "Engine",
    "EngineFailed",
    "EngineUnavailable",
    "Output",
    "TextChunk",
    "VoxbenchError",
    "__version__",
    "stage",
]
