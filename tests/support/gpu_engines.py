"""An engine of KNOWN behaviour that declares a CUDA device, for the tests of where a ``cuda``
case goes on Ray (tests/integration/test_ray_run.py): it sleeps like the calibration
``SleepEngine`` and never touches a GPU, so planning it for ``cuda`` needs no GPU here."""

from __future__ import annotations

from typing import Any, ClassVar

from voxbench.engines.calibration import SleepEngine


class CudaSleepEngine(SleepEngine):
    """``SleepEngine`` that says it runs on cpu and cuda (it takes ``device`` and ignores it)."""

    name: ClassVar[str] = "cuda-sleep"
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")

    def __init__(self, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.device = device
