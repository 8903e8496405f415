"""The latency histogram's bucket index (lzcnt-based) against a plain-Python reference that
finds the leading one by shifting, on edges and random values over the whole range."""
from __future__ import annotations

import numpy as np
from numba import njit
from tickpath.runtime.engine import latency as L


def _reference(v: int) -> int:
    if v < L.SUB:
        return max(v, 0)
    e = v.bit_length() - 1
    return (e - L.SUB_BITS + 1) * L.SUB + (v >> (e - L.SUB_BITS)) - L.SUB


@njit(cache=False)
def _bucket(v):
    return L.bucket_of(v)


def test_bucket_matches_the_reference():
    vals = [0, 1, L.SUB - 1, L.SUB, L.SUB + 1, 511, 512, 1000, 5000, 65535, 1 << 39,
            (1 << L.MAX_EXP) - 1, 1 << L.MAX_EXP, 1 << 62, (1 << 63) - 1]
    rng = np.random.default_rng(7)
    vals += [int(x) for x in rng.integers(0, 1 << 45, 5000)] + [int(x) for x in rng.integers(0, 100_000, 5000)]
    for v in vals:
        assert _bucket(np.int64(v)) == _reference(v), v


def test_values_land_where_their_bounds_say_and_overflow_is_counted():
    h = L.new_histogram()
    over = L.record_all(h, np.array([-5, 3, 300, 7_000, 1 << 41], np.int64))
    assert over == 1 and h[L.OVERFLOW] == 1 and h[0] == 1 and h[3] == 1
    for v in (300, 7_000):
        b = _bucket(np.int64(v))
        assert h[b] == 1 and L.bucket_low(b) <= v <= L.bucket_high(b)
