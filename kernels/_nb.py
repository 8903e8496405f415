"""Shared numba settings and tiny helpers for the CPU kernels.

Every kernel is compiled with `nogil=True` (callable from any thread, and from the runtime's
hot loop), `error_model='numpy'` (a float division by zero gives inf/NaN instead of raising,
and no Python-style checks are emitted in loops), `fastmath={'contract'}` (only FMA
contraction: TA-Lib's own build uses FMA; no reassociation, so NaN/inf semantics are kept)
and `cache=True` (no recompilation per process).

Running window sums are made drift-free by re-basing: every `rebase_every(period)` points the
sum is recomputed exactly from the window, so rounding error never accumulates over more
than one block, whatever the series length. A NaN sum is never re-based, so a NaN keeps
poisoning the output the way it does in TA-Lib's running sums.
"""
from __future__ import annotations

import numpy as np
from numba import njit

JIT = dict(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})
JIT_PAR = dict(nogil=True, cache=True, error_model="numpy", fastmath={"contract"}, parallel=True)

NAN = np.nan
INF = np.inf

# A window sum is recomputed from scratch at least this often (points), and never more
# often than 8 windows, so the exact re-sum costs at most 1/8 of an add per point.
REBASE_MIN_POINTS = 4096


@njit(**JIT)
def rebase_every(period):
    """Block length between exact re-sums for a window of `period` points."""
    r = 8 * period
    return r if r > REBASE_MIN_POINTS else REBASE_MIN_POINTS


@njit(**JIT)
def first_valid(x):
    """Index of the first non-NaN value (len(x) if none): TA-Lib's Python wrapper skips
    leading NaNs the same way (check_begidx)."""
    n = x.shape[0]
    for i in range(n):
        if x[i] == x[i]:
            return i
    return n


@njit(**JIT)
def first_valid_all(a, b, c):
    """First index where a, b and c are all non-NaN (multi-input indicators)."""
    n = a.shape[0]
    for i in range(n):
        if a[i] == a[i] and b[i] == b[i] and c[i] == c[i]:
            return i
    return n


@njit(**JIT)
def is_inf(v):
    return v == INF or v == -INF


@njit(**JIT)
def scan_inf(x, lo, hi):
    """Index of the first infinity in x[lo:hi], or -1."""
    for i in range(lo, hi):
        if x[i] == INF or x[i] == -INF:
            return i
    return -1


@njit(**JIT)
def fill_nan(out, lo, hi):
    for i in range(lo, hi):
        out[i] = NAN


@njit(**JIT)
def window_sum(x, lo, hi):
    """Plain sum of x[lo:hi] in index order (the exact re-sum of a window)."""
    s = 0.0
    for i in range(lo, hi):
        s += x[i]
    return s


@njit(**JIT)
def merge_status(status):
    """Flat index of the first infinity over rows (status[r] = -1 or the index in row r)."""
    for r in range(status.shape[0]):
        if status[r] >= 0:
            return r, status[r]
    return -1, -1
