"""OS jitter per core, the way `hiccups` measures it.

One thread per CPU, pinned there, runs a numba nogil loop that reads CLOCK_MONOTONIC back to
back (runtime.intrinsics.monotonic_ns, the vDSO, no syscall) for a bounded time. A gap
between consecutive reads above the threshold is time the CPU was taken from us (an IRQ, a
tick, a task, SMM). Gaps go into a preallocated array (no allocation in the loop); gaps past
its end are still counted. Reported per CPU: threshold, samples, count of gaps, p99, p99.9
and max of those gaps (HdrHistogram), and the smallest gap seen (the loop's own cost).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram
from numba import njit

from tickpath.runtime.core.errors import ConfigError, translate_oserror
from tickpath.runtime.sys.intrinsics import monotonic_ns

MAX_GAPS_PER_CPU = 1 << 20  # 8 MiB of int64 per CPU: ~1M interruptions before we only count
HIST_MAX_NS = 60 * 1_000_000_000  # gaps up to 60 s fit the histogram
MAX_SECONDS = 3600.0


@njit(nogil=True, cache=True)
def spin_record_gaps(duration_ns, threshold_ns, gaps_ns, stats):
    """Spin for duration_ns; store gaps > threshold_ns in gaps_ns.
    stats[0] = gaps seen, stats[1] = samples, stats[2] = smallest gap, stats[3] = gaps stored."""
    start = monotonic_ns()
    end = start + duration_ns
    prev = start
    n_gaps = 0
    n_samples = 0
    min_gap = np.int64(1) << 62
    cap = gaps_ns.shape[0]
    while prev < end:
        now = monotonic_ns()
        gap = now - prev
        n_samples += 1
        if gap < min_gap:
            min_gap = gap
        if gap > threshold_ns:
            if n_gaps < cap:  # why: the array is preallocated; past its end we only count
                gaps_ns[n_gaps] = gap
            n_gaps += 1
        prev = now
    stats[0] = n_gaps
    stats[1] = n_samples
    stats[2] = min_gap
    stats[3] = min(n_gaps, cap)


@dataclass
class CpuJitter:
    cpu: int
    threshold_ns: int
    seconds: float
    samples: int
    count: int  # gaps above the threshold
    min_gap_ns: int
    p99_ns: int
    p999_ns: int
    max_ns: int
    stored: int  # gaps kept for the percentiles (count may exceed it)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _run_one(cpu, duration_ns, threshold_ns, gaps, stats, errors):
    try:
        os.sched_setaffinity(threading.get_native_id(), {cpu})
    except OSError as exc:
        errors[cpu] = translate_oserror(exc, "pinning the jitter thread", cpu=cpu)
        return
    spin_record_gaps(duration_ns, threshold_ns, gaps, stats)


def measure(cpus: list[int], seconds: float, threshold_ns: int = 1000,
            max_gaps: int = MAX_GAPS_PER_CPU) -> list[CpuJitter]:
    """Spin on every CPU in `cpus` at once for `seconds`; one result per CPU."""
    if not cpus:
        raise ConfigError("no CPUs to measure")
    allowed = os.sched_getaffinity(0)
    bad = [c for c in cpus if c not in allowed]
    if bad:
        raise ConfigError("CPUs not available to this process", cpus=bad,
                          allowed=sorted(allowed))
    if not (0 < seconds <= MAX_SECONDS):
        raise ConfigError("seconds out of range", seconds=seconds, max=MAX_SECONDS)
    if threshold_ns <= 0:
        raise ConfigError("threshold must be positive", threshold_ns=threshold_ns)
    spin_record_gaps(1000, threshold_ns, np.zeros(1, np.int64), np.zeros(4, np.int64))  # compile
    duration_ns = int(seconds * 1e9)
    gaps = {c: np.zeros(max_gaps, np.int64) for c in cpus}
    stats = {c: np.zeros(4, np.int64) for c in cpus}
    errors: dict[int, Exception] = {}
    threads = [threading.Thread(target=_run_one, name=f"jitter-cpu{c}",
                                args=(c, duration_ns, threshold_ns, gaps[c], stats[c], errors))
               for c in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise next(iter(errors.values()))
    out = []
    for c in cpus:
        n_gaps, samples, min_gap, stored = (int(x) for x in stats[c])
        h = HdrHistogram(1, HIST_MAX_NS, 3)
        for g in gaps[c][:stored]:
            h.record_value(min(int(g), HIST_MAX_NS))
        have = stored > 0
        max_ns = int(gaps[c][:stored].max()) if have else 0
        # why min(): HdrHistogram reports a bucket's upper edge, which can pass the true max
        out.append(CpuJitter(
            cpu=c, threshold_ns=threshold_ns, seconds=seconds, samples=samples, count=n_gaps,
            min_gap_ns=min_gap, p99_ns=min(h.get_value_at_percentile(99.0), max_ns),
            p999_ns=min(h.get_value_at_percentile(99.9), max_ns),
            max_ns=max_ns, stored=stored))
    return out
