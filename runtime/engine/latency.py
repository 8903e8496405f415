"""A preallocated log-linear latency histogram recorded from numba (no allocation per
event), exported through the `hdrhistogram` package for .hgrm output and percentiles.

Buckets: values below 2**SUB_BITS ns are exact; above, each power of two is split into
2**SUB_BITS linear sub-buckets (relative error < 2**-SUB_BITS, 0.4 % with SUB_BITS=8), the
same shape as HdrHistogram's. Values above the top bucket land in an overflow slot and are
counted, never dropped silently.
"""
from __future__ import annotations

import io

import numpy as np
from hdrh.histogram import HdrHistogram
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

SUB_BITS = 8
SUB = 1 << SUB_BITS
MAX_EXP = 40                       # up to 2**40 ns ≈ 18 minutes
N_BUCKETS = (MAX_EXP - SUB_BITS + 2) * SUB
OVERFLOW = N_BUCKETS               # index of the overflow slot
HIST_SLOTS = N_BUCKETS + 1


def new_histogram() -> np.ndarray:
    return np.zeros(HIST_SLOTS, dtype=np.int64)


@njit(nogil=True, inline="always")
def bucket_of(v):
    if v < SUB:
        return max(v, 0)
    # the leading one's position in one instruction (lzcnt), not a 50-step shift loop per event
    e = 63 - np.int64(leading_zeros(np.int64(v)))
    # e >= SUB_BITS; keep the SUB_BITS bits below the leading one
    sub = (v >> (e - SUB_BITS)) - SUB
    return (e - SUB_BITS + 1) * SUB + sub


@njit(nogil=True, inline="always")
def record(hist, v):
    """Count one value (ns); returns 0, or 1 if it fell in the overflow slot."""
    b = bucket_of(v)
    if b >= OVERFLOW:
        hist[OVERFLOW] += 1
        return 1
    hist[b] += 1
    return 0


@njit(nogil=True, cache=True)
def record_all(hist, values):
    """Count every value of an int64 array (negatives as 0); returns how many overflowed."""
    over = 0
    for v in values:
        over += record(hist, max(v, 0))
    return over


def bucket_low(b: int) -> int:
    """Smallest value that maps to bucket b."""
    if b < SUB:
        return b
    k = b // SUB  # k >= 1
    sub = b % SUB
    e = k + SUB_BITS - 1
    return (SUB + sub) << (e - SUB_BITS)


def bucket_high(b: int) -> int:
    return bucket_low(b + 1) - 1 if b + 1 < OVERFLOW else bucket_low(b)


def count(hist: np.ndarray) -> int:
    return int(hist.sum())


def percentile(hist: np.ndarray, pct: float) -> float:
    """Value at percentile (upper edge of the bucket holding it, as HdrHistogram reports)."""
    total = int(hist[:OVERFLOW].sum())
    if total == 0:
        return float("nan")
    target = max(1, int(np.ceil(total * pct / 100.0)))
    cum = np.cumsum(hist[:OVERFLOW])
    b = int(np.searchsorted(cum, target))
    return float(bucket_high(b))


def max_value(hist: np.ndarray) -> float:
    nz = np.nonzero(hist[:OVERFLOW])[0]
    return float(bucket_high(int(nz[-1]))) if len(nz) else float("nan")


PERCENTILES = (50.0, 90.0, 99.0, 99.9, 99.99)


def summary(hist: np.ndarray) -> dict:
    out = {f"p{p:g}": percentile(hist, p) for p in PERCENTILES}
    out["max"] = max_value(hist)
    out["count"] = int(hist[:OVERFLOW].sum())
    out["overflow"] = int(hist[OVERFLOW])
    return out


def to_hdr(hist: np.ndarray, significant_figures: int = 3) -> HdrHistogram:
    """The same counts in an HdrHistogram (each bucket at its upper edge)."""
    h = HdrHistogram(1, 1 << MAX_EXP, significant_figures)
    for b in np.nonzero(hist[:OVERFLOW])[0]:
        h.record_value(max(1, bucket_high(int(b))), int(hist[b]))
    return h


def hgrm_text(hist: np.ndarray, unit_ratio: float = 1000.0) -> str:
    """HdrHistogram percentile distribution (.hgrm); values scaled to µs by default."""
    buf = io.BytesIO()
    to_hdr(hist).output_percentile_distribution(buf, unit_ratio)
    return buf.getvalue().decode()
