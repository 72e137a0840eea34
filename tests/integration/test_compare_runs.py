"""compare on real runs: identical configurations rarely alarm, a 10% slower engine is caught.

The engine is the calibration sleep engine (20 ms per call), run in-process; the noise is the
machine's own (scheduler wake-up jitter, other tests' processes).
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from support.store_fixtures import one_item_workload, sleep_run
from voxbench.analysis.compare import compare

pytestmark = pytest.mark.slow
COMPARISONS = 20


def test_identical_configurations_false_alarm_rate_under_5_percent(tmp_path):
    """21 runs of one configuration, 20 consecutive comparisons at the default threshold (5%):
    a false alarm is any verdict other than unchanged on any gated metric."""
    workload = one_item_workload(tmp_path)
    docs = [sleep_run(tmp_path / "r", workload, 20.0, 10)[0] for _ in range(COMPARISONS + 1)]
    alarms = []
    for before, after in pairwise(docs):
        result = compare(before, after, threshold=0.05)
        verdicts = {m.metric: m.verdict for c in result.cases for m in c.metrics}
        assert verdicts["latency_ms"] in ("unchanged", "improved", "regressed")
        if any(v not in ("unchanged", "info") for v in verdicts.values()):
            alarms.append((after.run_id, verdicts))
    rate = len(alarms) / COMPARISONS
    print(f"false alarms: {len(alarms)}/{COMPARISONS} = {rate:.0%}")
    assert rate < 0.05, alarms


def test_ten_percent_slower_is_regressed(tmp_path):
    """20 ms against 22 ms per call, 30 iterations each: regressed, by about +10%."""
    workload = one_item_workload(tmp_path)
    base, _ = sleep_run(tmp_path / "r", workload, 20.0, 30)
    slow, _ = sleep_run(tmp_path / "r", workload, 22.0, 30)
    result = compare(base, slow, ignore_params=frozenset({"call_ms"}))
    lat = result.cases[0].metrics[0]
    print(f"latency change {lat.change:+.2%} [{lat.ci_low:+.2%}, {lat.ci_high:+.2%}]")
    assert lat.verdict == "regressed" and result.regressed
    assert lat.change == pytest.approx(0.10, abs=0.03)
    assert lat.ci_low > 0.05
    back = compare(slow, base, ignore_params=frozenset({"call_ms"}))
    assert back.cases[0].metrics[0].verdict == "improved" and not back.regressed
