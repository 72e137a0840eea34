import numpy as np
import pytest

from voxbench.results.stats import median_ci95, summarize


def test_summary_order_statistics():
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert s["n"] == 5
    assert (s["min"], s["median"], s["max"], s["mean"]) == (1.0, 3.0, 5.0, 3.0)
    assert s["p95"] == pytest.approx(4.8)  # linear interpolation between order statistics
    assert s["stdev"] == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1))


def test_ci_brackets_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(1)
    small = rng.normal(50, 2, 10)
    large = rng.normal(50, 2, 400)
    lo_s, hi_s = median_ci95(small)
    lo_l, hi_l = median_ci95(large)
    assert lo_s <= np.median(small) <= hi_s
    assert lo_l <= np.median(large) <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s)


def test_ci_degenerate_inputs():
    assert median_ci95([7.0]) is None
    assert median_ci95([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert summarize([]) is None
    assert summarize([2.0])["stdev"] == 0.0
