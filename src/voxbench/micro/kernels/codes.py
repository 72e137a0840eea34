"""Codes kernels: codec frame codes ``[frames, codebooks]`` packed into one token stream with
MusicGen's delay pattern (codebook k shifted by k frames, interleaved frame by frame, each
codebook offset into its own id range) and unpacked again. Reference: numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from voxbench.micro.kernels.base import (
    AUDIO_SECONDS,
    QUICK_AUDIO_SECONDS,
    Kernel,
    Prepared,
    Size,
    numpy_out,
    seconds_label,
    torch_device,
    torch_out,
)

CODEC_FRAME_RATE = 75  # EnCodec 24 kHz
CODEBOOKS = 8
CODEBOOK_SIZE = 1024
CODE_DTYPES = ("int16", "int32")


def random_codes(frames: int, codebooks: int, dtype: str, seed: int = 2) -> np.ndarray:
    """Seeded codec codes ``[frames, codebooks]`` in ``[0, CODEBOOK_SIZE)``."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, CODEBOOK_SIZE, size=(frames, codebooks)).astype(dtype)


def pad_token(codebooks: int, codebook_size: int = CODEBOOK_SIZE) -> int:
    """The id of the padding token: one past the last codebook's range."""
    return codebooks * codebook_size


def pack_delay_numpy(codes: np.ndarray, codebook_size: int = CODEBOOK_SIZE) -> np.ndarray:
    """``codes [frames, K]`` → tokens ``[(frames + K - 1) * K]``: codebook ``k`` delayed by ``k``
    steps (MusicGen's delay pattern), offset by ``k * codebook_size``, interleaved step by step;
    the empty corners hold :func:`pad_token`. Same dtype as ``codes``."""
    frames, k_books = codes.shape
    out = np.full((frames + k_books - 1, k_books), pad_token(k_books, codebook_size), codes.dtype)
    for k in range(k_books):
        out[k : k + frames, k] = codes[:, k] + k * codebook_size
    return out.reshape(-1)


def unpack_delay_numpy(
    tokens: np.ndarray, codebooks: int, codebook_size: int = CODEBOOK_SIZE
) -> np.ndarray:
    """Inverse of :func:`pack_delay_numpy`: tokens → codes ``[frames, K]``."""
    steps = tokens.shape[0] // codebooks
    grid = tokens.reshape(steps, codebooks)
    frames = steps - codebooks + 1
    out = np.empty((frames, codebooks), tokens.dtype)
    for k in range(codebooks):
        out[:, k] = grid[k : k + frames, k] - k * codebook_size
    return out


def pack_delay_torch(codes: Any, codebook_size: int = CODEBOOK_SIZE) -> Any:
    """:func:`pack_delay_numpy` on torch tensors (any device)."""
    import torch

    frames, k_books = codes.shape
    out = torch.full(
        (frames + k_books - 1, k_books),
        pad_token(k_books, codebook_size),
        dtype=codes.dtype,
        device=codes.device,
    )
    for k in range(k_books):
        out[k : k + frames, k] = codes[:, k] + k * codebook_size
    return out.reshape(-1)


def unpack_delay_torch(tokens: Any, codebooks: int, codebook_size: int = CODEBOOK_SIZE) -> Any:
    """:func:`unpack_delay_numpy` on torch tensors (any device)."""
    import torch

    steps = tokens.shape[0] // codebooks
    grid = tokens.reshape(steps, codebooks)
    frames = steps - codebooks + 1
    out = torch.empty((frames, codebooks), dtype=tokens.dtype, device=tokens.device)
    for k in range(codebooks):
        out[:, k] = grid[k : k + frames, k] - k * codebook_size
    return out


# ---------------------------------------------------------------------------------------------
# Sizes and builders


def _codes_sizes(quick: bool) -> list[Size]:
    return [
        Size(
            workload=seconds_label(sec),
            input_id=f"{CODEBOOKS}cb-{dtype}",
            input_kind="codes",
            settings={
                "frames": math.ceil(sec * CODEC_FRAME_RATE),
                "codebooks": CODEBOOKS,
                "codebook_size": CODEBOOK_SIZE,
                "frame_rate": CODEC_FRAME_RATE,
                "dtype": dtype,
            },
            audio_seconds=sec,
        )
        for sec in (QUICK_AUDIO_SECONDS if quick else AUDIO_SECONDS)
        for dtype in CODE_DTYPES
    ]


def _build_codes(kind: str) -> Callable[[str, str, Size], Prepared]:
    def build(backend: str, device: str, size: Size) -> Prepared:
        frames, books = int(size.settings["frames"]), int(size.settings["codebooks"])
        codes = random_codes(frames, books, str(size.settings["dtype"]))
        tokens = pack_delay_numpy(codes)
        if backend == "numpy":
            if kind == "pack":
                return Prepared(lambda: pack_delay_numpy(codes), numpy_out)
            return Prepared(lambda: unpack_delay_numpy(tokens, books), numpy_out)
        import torch

        dev, sync, info = torch_device(device)
        if kind == "pack":
            tc = torch.from_numpy(codes).to(dev)
            return Prepared(lambda: pack_delay_torch(tc), torch_out, sync, info)
        tt = torch.from_numpy(tokens).to(dev)
        return Prepared(lambda: unpack_delay_torch(tt, books), torch_out, sync, info)

    return build


def _codes_params(size: Size) -> dict[str, Any]:
    return {"dtype": size.settings["dtype"]}


KERNELS: dict[str, Kernel] = {
    "pack": Kernel(
        "pack",
        "codes",
        f"delay-pattern packing of {CODEBOOKS} codebooks at {CODEC_FRAME_RATE} frames/s",
        "numpy",
        ("numpy", "torch"),
        _codes_sizes,
        _build_codes("pack"),
        _codes_params,
    ),
    "unpack": Kernel(
        "unpack",
        "codes",
        f"delay-pattern unpacking of {CODEBOOKS} codebooks at {CODEC_FRAME_RATE} frames/s",
        "numpy",
        ("numpy", "torch"),
        _codes_sizes,
        _build_codes("unpack"),
        _codes_params,
    ),
}
