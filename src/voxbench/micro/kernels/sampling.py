"""Sampling kernels: logits processors over vocabularies of 1k, 32k and 152k tokens.

Top-k, top-p (nucleus), temperature and repetition penalty (as Hugging Face transformers'
``RepetitionPenaltyLogitsProcessor``: positive logits divided, negative multiplied). Masked tokens
get ``-inf``; the batch is along the first axis. Reference: numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from voxbench.micro.kernels.base import Kernel, Prepared, Size, numpy_out, torch_device, torch_out

TOP_K = 50
TOP_P = 0.9
TEMPERATURE = 0.7
REPETITION_PENALTY = 1.2
CONTEXT_TOKENS = 256
VOCABS = {"1k": 1024, "32k": 32000, "152k": 151936}
SAMPLING_SHAPES = [(v, b) for v in VOCABS for b in (1, 8)]
QUICK_SAMPLING_SHAPES = [("32k", 8), ("152k", 1)]


def random_logits(vocab: int, batch: int, seed: int = 0) -> np.ndarray:
    """Seeded float32 logits ``[batch, vocab]`` with a peaked softmax, as a language model's."""
    rng = np.random.default_rng(seed)
    return (3.0 * rng.standard_normal((batch, vocab))).astype(np.float32)


def random_context(vocab: int, batch: int, n: int = CONTEXT_TOKENS, seed: int = 1) -> np.ndarray:
    """Seeded previous token ids ``[batch, n]`` (int64, with repeats) for the repetition penalty."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, size=(batch, n), dtype=np.int64)


def top_k_numpy(logits: np.ndarray, k: int) -> np.ndarray:
    """Keep exactly the ``k`` largest logits of each row; the rest become ``-inf``."""
    keep = np.argpartition(logits, -k, axis=-1)[..., -k:]
    out = np.full_like(logits, -np.inf)
    np.put_along_axis(out, keep, np.take_along_axis(logits, keep, -1), -1)
    return out


def top_k_torch(logits: Any, k: int) -> Any:
    """Keep exactly the ``k`` largest logits of each row (``torch.topk``); the rest ``-inf``."""
    import torch

    values, idx = torch.topk(logits, k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter_(-1, idx, values)


def _keep_nucleus(cum_sorted: np.ndarray, p: float) -> np.ndarray:
    """In descending order: keep a token while the probability before it is still below ``p``."""
    keep = np.empty(cum_sorted.shape, dtype=bool)
    keep[..., 0] = True
    keep[..., 1:] = cum_sorted[..., :-1] < p
    return keep


NUCLEUS_NOTE = (
    "top-p accumulates the sorted float32 probabilities in float64: a float32 running sum over "
    "152k tokens drifts enough to move the nucleus boundary by tens of tokens between backends"
)


def top_p_numpy(logits: np.ndarray, p: float) -> np.ndarray:
    """Nucleus filtering: keep the smallest set of most probable tokens whose softmax
    probabilities sum to at least ``p``; the rest become ``-inf``."""
    order = np.argsort(-logits, axis=-1)
    ordered = np.take_along_axis(logits, order, -1)
    probs = np.exp(ordered - ordered[..., :1])
    cum = np.cumsum(probs, axis=-1, dtype=np.float64)  # see NUCLEUS_NOTE
    cum /= cum[..., -1:]
    keep_sorted = _keep_nucleus(cum, p)
    keep = np.empty_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, -1)
    return np.where(keep, logits, np.float32(-np.inf))


def top_p_torch(logits: Any, p: float) -> Any:
    """Nucleus filtering with ``torch.sort``/``cumsum`` (see :func:`top_p_numpy`)."""
    import torch

    ordered, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.exp(ordered - ordered[..., :1])
    cum = probs.cumsum(dim=-1, dtype=torch.float64)  # see NUCLEUS_NOTE
    cum /= cum[..., -1:].clone()
    remove_sorted = torch.zeros_like(cum, dtype=torch.bool)
    remove_sorted[..., 1:] = cum[..., :-1] >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def temperature_numpy(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Logits divided by the temperature."""
    return logits / np.float32(temperature)


def temperature_torch(logits: Any, temperature: float) -> Any:
    """Logits divided by the temperature."""
    return logits / temperature


def repetition_penalty_numpy(
    logits: np.ndarray, previous: np.ndarray, penalty: float
) -> np.ndarray:
    """Penalise tokens already generated (``previous``: ids ``[batch, n]``): a positive logit is
    divided by ``penalty``, a negative one multiplied, once per token however often it repeats
    (transformers' ``RepetitionPenaltyLogitsProcessor``)."""
    picked = np.take_along_axis(logits, previous, -1)
    picked = np.where(picked < 0, picked * np.float32(penalty), picked / np.float32(penalty))
    out = logits.copy()
    np.put_along_axis(out, previous, picked, -1)
    return out


def repetition_penalty_torch(logits: Any, previous: Any, penalty: float) -> Any:
    """The same with ``torch.gather``/``scatter`` (as transformers implements it)."""
    import torch

    picked = torch.gather(logits, -1, previous)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return logits.scatter(-1, previous, picked)


# ---------------------------------------------------------------------------------------------
# Sizes and builders


def _sampling_sizes(quick: bool) -> list[Size]:
    return [
        Size(
            workload=f"vocab{label}-b{batch}",
            input_id="fp32",
            input_kind="logits",
            settings={"vocab": VOCABS[label], "batch": batch},
            batch=batch,
        )
        for label, batch in (QUICK_SAMPLING_SHAPES if quick else SAMPLING_SHAPES)
    ]


# The settings each sampling kernel runs with, recorded in its cases' input metadata.
SAMPLING_SETTINGS: dict[str, dict[str, float]] = {
    "topk": {"top_k": TOP_K},
    "topp": {"top_p": TOP_P},
    "temperature": {"temperature": TEMPERATURE},
    "repetition_penalty": {"penalty": REPETITION_PENALTY, "context_tokens": CONTEXT_TOKENS},
}


def _build_sampling(kind: str) -> Callable[[str, str, Size], Prepared]:
    def build(backend: str, device: str, size: Size) -> Prepared:
        vocab, batch = int(size.settings["vocab"]), int(size.settings["batch"])
        logits = random_logits(vocab, batch)
        previous = random_context(vocab, batch)
        if backend == "numpy":
            calls: dict[str, Callable[[], Any]] = {
                "topk": lambda: top_k_numpy(logits, TOP_K),
                "topp": lambda: top_p_numpy(logits, TOP_P),
                "temperature": lambda: temperature_numpy(logits, TEMPERATURE),
                "repetition_penalty": lambda: repetition_penalty_numpy(
                    logits, previous, REPETITION_PENALTY
                ),
            }
            return Prepared(calls[kind], numpy_out)
        import torch

        dev, sync, info = torch_device(device)
        tl = torch.from_numpy(logits).to(dev)
        tp = torch.from_numpy(previous).to(dev)
        tcalls: dict[str, Callable[[], Any]] = {
            "topk": lambda: top_k_torch(tl, TOP_K),
            "topp": lambda: top_p_torch(tl, TOP_P),
            "temperature": lambda: temperature_torch(tl, TEMPERATURE),
            "repetition_penalty": lambda: repetition_penalty_torch(tl, tp, REPETITION_PENALTY),
        }
        return Prepared(tcalls[kind], torch_out, sync, info)

    return build


KERNELS: dict[str, Kernel] = {
    "topk": Kernel(
        "topk",
        "sampling",
        f"top-k filtering, k={TOP_K}",
        "numpy",
        ("numpy", "torch"),
        _sampling_sizes,
        _build_sampling("topk"),
    ),
    "topp": Kernel(
        "topp",
        "sampling",
        f"top-p (nucleus) filtering, p={TOP_P}",
        "numpy",
        ("numpy", "torch"),
        _sampling_sizes,
        _build_sampling("topp"),
    ),
    "temperature": Kernel(
        "temperature",
        "sampling",
        f"temperature scaling, T={TEMPERATURE}",
        "numpy",
        ("numpy", "torch"),
        _sampling_sizes,
        _build_sampling("temperature"),
    ),
    "repetition_penalty": Kernel(
        "repetition_penalty",
        "sampling",
        f"repetition penalty {REPETITION_PENALTY} over {CONTEXT_TOKENS} previous tokens",
        "numpy",
        ("numpy", "torch"),
        _sampling_sizes,
        _build_sampling("repetition_penalty"),
    ),
}
