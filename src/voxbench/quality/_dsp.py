"""Signal helpers shared by the pitch, spectral and perceptual metrics.

One place for what every family needs: a clip as mono float64 at a chosen rate (polyphase
resampling, :func:`scipy.signal.resample_poly`), the checks that turn "too short" or "silent" into
:class:`~voxbench.quality.base.MetricUnavailable`, and dynamic time warping
(:func:`dtw_path`) for sequences of unequal length.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from voxbench.quality.base import Clip, MetricUnavailable

if TYPE_CHECKING:
    import numpy as np

# Below this peak (-80 dBFS, a few 16-bit LSBs) a clip counts as silent.
SILENCE_PEAK = 1e-4
# Lengths within this fraction of each other are compared frame by frame, without DTW.
LENGTH_TOLERANCE = 0.01

# A DTW distance: frames (k, d) against frames (m, d) -> (k, m) costs, all >= 0.
Distance = Callable[["np.ndarray", "np.ndarray"], "np.ndarray"]
# Rows of the cost matrix computed by one matrix product: a threaded BLAS pays a start-up per call
# that outweighs small products on a busy 2-core machine, so few large calls, not one per row.
_DTW_BLOCK_ROWS = 256


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with BLAS on one thread (by threadpoolctl when installed, else unchanged).

    The metrics' matrix products are small (tens of columns); a threaded BLAS spends more on waking
    and spinning its threads than on the product, which on a busy 2-core machine made the spectral
    distances 2-3x slower in wall time and burnt more CPU time too.
    """
    if importlib.util.find_spec("threadpoolctl") is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def mono(audio: np.ndarray) -> np.ndarray:
    """1-D contiguous float64 samples; 2-D input ``(samples, channels)`` is averaged."""
    import numpy as np

    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise ValueError(f"expected 1-D audio, got shape {x.shape}")
    return np.ascontiguousarray(x)


def resample(audio: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """``audio`` at ``rate`` Hz resampled to ``target_rate`` Hz (polyphase, Kaiser window).

    Returns mono float64; the input is returned converted but otherwise untouched when the rates
    already match, so identical clips stay bit-identical.
    """
    x = mono(audio)
    if rate == target_rate:
        return x
    if rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {rate} and {target_rate}")
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(target_rate))
    return resample_poly(x, int(target_rate) // g, int(rate) // g)


def at_rate(clip: Clip, rate: int) -> np.ndarray:
    """The clip's samples as mono float64 at ``rate`` Hz."""
    return resample(clip.audio, clip.sample_rate, rate)


def require_signal(audio: np.ndarray, rate: int, *, min_seconds: float, what: str) -> None:
    """Raise :class:`MetricUnavailable` when ``audio`` is shorter than ``min_seconds`` or silent.

    ``what`` names the clip in the reason ("the audio", "the reference").
    """
    import numpy as np

    seconds = len(audio) / rate
    if seconds < min_seconds:
        raise MetricUnavailable(
            f"{what} is too short ({seconds:.2f} s; this metric needs at least {min_seconds:g} s)"
        )
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if not peak >= SILENCE_PEAK:  # also catches NaN
        raise MetricUnavailable(f"{what} is silent (peak {peak:.1e}, below -80 dBFS)")


def lengths_differ(n: float, m: float, tolerance: float = LENGTH_TOLERANCE) -> bool:
    """True when lengths ``n`` and ``m`` differ by more than ``tolerance`` of the longer one."""
    return abs(n - m) > tolerance * max(n, m)


def trim_to_shorter(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays cut to the length of the shorter one (along the first axis)."""
    n = min(len(a), len(b))
    return a[:n], b[:n]


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between every frame of ``a`` ``(k, d)`` and of ``b`` ``(m, d)``."""
    import numpy as np

    sq = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def dtw_path(
    x: np.ndarray,
    y: np.ndarray,
    distance: Distance = euclidean,
    band: float = 0.1,
    max_radius: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost monotonic alignment of frame sequences ``x`` ``(N, d)`` and ``y`` ``(M, d)``.

    Classic DTW (Sakoe & Chiba 1978) with steps (1, 0), (0, 1), (1, 1) of weight 1, from (0, 0) to
    (N-1, M-1), the recursion of ``librosa.sequence.dtw`` with its default steps:
    ``D[i, j] = C[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1])`` with ``C = distance(x, y)``.
    A Sakoe-Chiba band around the straight line between the two corners bounds time and memory:
    its radius is ``band`` times the longer length, at most ``max_radius`` frames, and at least
    the slope (so the band stays connected); ``band=1`` with a large ``max_radius`` searches the
    whole matrix. Ties prefer the diagonal step.

    Rows are computed one at a time, vectorised: the horizontal term is a running minimum,
    ``D[i, j] = S[j] + min_{k <= j} (A[k] - S[k])`` with ``S`` the cumulative row cost and
    ``A[k] = C[i, k] + min(D[i-1, k-1], D[i-1, k])``, so no Python code runs per cell.

    Returns the index pairs ``(ix, iy)`` of the path, in order, both of length ``>= max(N, M)``.

    >>> import numpy as np
    >>> ix, iy = dtw_path(np.array([[0.0], [1.0], [2.0]]), np.array([[0.0], [1.0], [1.0], [2.0]]))
    >>> list(zip(ix.tolist(), iy.tolist()))
    [(0, 0), (1, 1), (1, 2), (2, 3)]
    """
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        raise ValueError("DTW needs at least one frame on each side")
    slope = (m - 1) / (n - 1) if n > 1 else float(m)
    radius = max(min(math.ceil(band * max(n, m)), max_radius), math.ceil(slope) + 1)
    centre = np.arange(n) * slope
    lo = np.clip(np.floor(centre - radius), 0, m).astype(np.int64)
    hi = np.clip(np.ceil(centre + radius) + 1, 0, m).astype(np.int64)
    lo[0], hi[-1] = 0, m

    # prev[j + 1] = D[i-1, j] inside the previous row's band, +inf elsewhere (prev[0] is j = -1).
    prev = np.full(m + 1, np.inf)
    cur = np.full(m + 1, np.inf)
    # Per row, over its band [lo, hi): reached from the left, else from above (else diagonally).
    from_left: list[np.ndarray] = []
    from_up: list[np.ndarray] = []
    block = np.empty((0, 0))
    block_start = block_lo = 0
    for i in range(n):
        a, b = int(lo[i]), int(hi[i])
        if i - block_start >= len(block):
            block_start, block_end = i, min(i + _DTW_BLOCK_ROWS, n)
            block_lo = a
            block = distance(x[i:block_end], y[a : int(hi[block_end - 1])])
        cost = block[i - block_start, a - block_lo : b - block_lo]
        if i == 0:
            row = cost.cumsum()
            up = np.zeros(b - a, dtype=bool)
            left = np.ones(b - a, dtype=bool)
        else:
            diag, above = prev[a:b], prev[a + 1 : b + 1]
            up = above < diag
            s = cost.cumsum()
            t = cost + np.minimum(above, diag) - s
            best = np.minimum.accumulate(t)
            row = s + best
            left = best < t
        if i >= 2:  # clear what row i-2 left in this buffer
            cur[lo[i - 2] + 1 : hi[i - 2] + 1] = np.inf
        cur[a + 1 : b + 1] = row
        from_left.append(left)
        from_up.append(up)
        prev, cur = cur, prev

    i, j = n - 1, m - 1
    path_i, path_j = [i], [j]
    while i > 0 or j > 0:
        k = j - lo[i]
        if from_left[i][k]:
            j -= 1
        elif from_up[i][k]:
            i -= 1
        else:
            i, j = i - 1, j - 1
        path_i.append(i)
        path_j.append(j)
    return np.array(path_i[::-1]), np.array(path_j[::-1])
