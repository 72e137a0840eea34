"""What every micro-benchmark kernel shares: its registry entry (:class:`Kernel`), its input
sizes (:class:`Size`), a ready-to-time call (:class:`Prepared`), the backends, and the agreement
check of a backend's output against the reference backend's.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BACKENDS = ("numpy", "scipy", "torch", "torchaudio", "librosa")
GPU_BACKENDS = ("torch", "torchaudio")
AUDIO_SECONDS = (0.5, 2.0, 10.0)  # input durations of the audio and codes kernels, seconds
QUICK_AUDIO_SECONDS = (0.5, 2.0)


def seconds_label(seconds: float) -> str:
    """``0.5`` → ``"0.5s"``, ``2.0`` → ``"2s"``."""
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Size:
    """One input size of a kernel: the case's workload label, input id and settings."""

    workload: str
    input_id: str
    input_kind: str
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    audio_seconds: float | None = None
    batch: int = 1


@dataclass
class Prepared:
    """A kernel bound to its input: ``call()`` runs it once; ``to_numpy(output)`` turns an
    output into numpy for the agreement check; ``sync`` waits for the device (CUDA) or is None;
    ``info`` is recorded with the case."""

    call: Callable[[], Any]
    to_numpy: Callable[[Any], np.ndarray]
    sync: Callable[[], None] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kernel:
    """A benchmarked kernel: name, family, reference backend, backends, sizes and builder."""

    name: str
    family: str
    summary: str
    reference: str
    backends: tuple[str, ...]
    sizes: Callable[[bool], list[Size]]
    build: Callable[[str, str, Size], Prepared]
    params: Callable[[Size], dict[str, Any]] = lambda size: {}


def backend_version(backend: str) -> str | None:
    """The installed version of a backend's library, or None when it is not installed."""
    module = backend
    if importlib.util.find_spec(module) is None:
        return None
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "unknown"


def torch_device(device: str) -> tuple[Any, Callable[[], None] | None, dict[str, Any]]:
    """``(torch.device, sync or None, info)`` for a builder: ``sync`` waits for a CUDA device
    (None on the CPU), ``info`` is recorded with the case (torch threads, CUDA device name)."""
    import torch

    dev = torch.device(device)
    info: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(dev)
        return dev, (lambda: torch.cuda.synchronize(dev)), info
    return dev, None, info


def numpy_out(x: Any) -> np.ndarray:
    """A numpy backend's output as it is (:attr:`Prepared.to_numpy`)."""
    return np.asarray(x)


def torch_out(x: Any) -> np.ndarray:
    """A torch backend's output tensor, copied to the host (:attr:`Prepared.to_numpy`)."""
    return x.detach().cpu().numpy()


def agreement(output: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """How far ``output`` is from ``reference``: ``max_abs_error`` and ``max_rel_error`` (the
    largest absolute difference divided by the reference's largest magnitude) over the entries
    finite in both, and ``mismatched`` entries (different shape or finiteness count as all)."""
    out = np.asarray(output)
    ref = np.asarray(reference)
    if out.shape != ref.shape:
        return {
            "max_abs_error": None,
            "max_rel_error": None,
            "mismatched": int(max(out.size, ref.size)),
            "note": f"shape {list(out.shape)} vs reference {list(ref.shape)}",
        }
    out_c = out.astype(np.complex128 if np.iscomplexobj(out) else np.float64)
    ref_c = ref.astype(np.complex128 if np.iscomplexobj(ref) else np.float64)
    fin_out, fin_ref = np.isfinite(out_c), np.isfinite(ref_c)
    both = fin_out & fin_ref
    mismatched = int(np.count_nonzero(fin_out != fin_ref))
    mismatched += int(np.count_nonzero(~fin_out & ~fin_ref & (out_c != ref_c)))
    if not both.any():
        return {"max_abs_error": 0.0, "max_rel_error": 0.0, "mismatched": mismatched}
    diff = np.abs(out_c[both] - ref_c[both])
    scale = float(np.abs(ref_c[both]).max())
    max_abs = float(diff.max())
    return {
        "max_abs_error": max_abs,
        "max_rel_error": max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf),
        "mismatched": mismatched,
    }
