import os

import numpy as np
import pytest

from tickpath.hostconfig.jitter import measure, spin_record_gaps
from tickpath.runtime.core.errors import ConfigError


def test_cpu0_for_0_2_seconds():
    (r,) = measure([0], 0.2, threshold_ns=1000)
    assert r.cpu == 0 and r.threshold_ns == 1000
    assert r.samples > 10_000  # a vDSO clock read costs well under 20 us
    assert 0 < r.min_gap_ns < 1000
    assert r.stored == r.count
    assert (r.count == 0) or (1000 < r.p99_ns <= r.p999_ns <= r.max_ns)
    # the loop really spun for its time: samples x smallest gap cannot exceed it
    assert r.samples * r.min_gap_ns <= 0.2e9 * 1.01


def test_gaps_past_the_array_are_counted_not_written():
    gaps = np.zeros(4, np.int64)
    stats = np.zeros(4, np.int64)
    spin_record_gaps(2_000_000, 0, gaps, stats)  # threshold 0: every gap counts
    assert stats[0] == stats[1] > 4 and stats[3] == 4
    assert (gaps > 0).all()


@pytest.mark.parametrize("cpus,seconds,thr,match", [
    ([], 0.1, 1000, "no CPUs"), ([4096], 0.1, 1000, "not available"),
    ([0], 0, 1000, "seconds"), ([0], 99999, 1000, "seconds"), ([0], 0.1, 0, "threshold")])
def test_bad_inputs(cpus, seconds, thr, match):
    with pytest.raises(ConfigError, match=match):
        measure(cpus, seconds, thr)


def test_all_cpus_in_parallel():
    cpus = sorted(os.sched_getaffinity(0))[:2]
    res = measure(cpus, 0.1, threshold_ns=2000)
    assert [r.cpu for r in res] == cpus and all(r.samples > 0 for r in res)
