"""Fused universe pass: several indicators per instrument row in one parallel loop.

Running SMA, EMA and RSI one after another on the same row while it is hot in L1/L2 reads
each 16 KB row from memory once instead of three times; the row kernels are the ones behind
tickpath.kernels.sma/ema/rsi, so the results are bitwise identical. Outputs are preallocated
by the caller (allocation inside a parallel kernel is dominated by page faults).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from tickpath.runtime.core.errors import ConfigError

from tickpath.kernels._nb import JIT, JIT_PAR, fill_nan, rebase_every
from tickpath.kernels._validate import check_period, check_series
from tickpath.kernels.cpu.ma import _ema_row, _sma_row
from tickpath.kernels.cpu.osc import _rsi_row


@njit(**JIT)
def _interleaved_row(x, ns, ne, nr, os_, oe, orr):
    """The three indicators in one loop over a finite row with no leading NaN, so their
    dependent chains (SMA add, EMA FMA, RSI's two FMAs) overlap instead of running one
    after another. Same expressions, in the same order, as _sma_row/_ema_row/_rsi_row,
    so the results are bitwise identical. Returns False (outputs garbage) when it does not
    apply: a NaN/inf anywhere, a period of 1, a row too short, or a row long enough for
    the SMA's exact re-base (the caller then runs the three row kernels)."""
    T = x.shape[0]
    w = ns if ns > ne else ne
    w = w if w > nr + 1 else nr + 1
    if ns < 2 or ne < 2 or nr < 2 or T <= w or T - ns >= rebase_every(ns):
        return False
    xs = x[0:T]
    bad = 0.0
    # warm-ups: the row kernels' own loops over the first points
    s = 0.0
    for i in range(ns):
        v = xs[i]
        bad += v - v                   # 0 for finite, NaN for NaN/inf (poisons bad)
        s += v
    inv_ns = 1.0 / ns
    fill_nan(os_, 0, ns - 1)
    os_[ns - 1] = s * inv_ns
    for i in range(ns, w):
        s += xs[i] - xs[i - ns]
        os_[i] = s * inv_ns
    se = 0.0
    for i in range(ne):
        se += xs[i]
    e = se / ne
    fill_nan(oe, 0, ne - 1)
    oe[ne - 1] = e
    k = 2.0 / (ne + 1)
    one_k = 1.0 - k
    for i in range(ne, w):
        e = e * one_k + k * xs[i]
        oe[i] = e
    g = 0.0
    l = 0.0
    for i in range(1, nr + 1):
        d = xs[i] - xs[i - 1]
        g += 0.0 if d < 0.0 else d
        l += -d if d < 0.0 else 0.0
    g /= nr
    l /= nr
    fill_nan(orr, 0, nr)
    t = g + l
    orr[nr] = 100.0 * (g / t) if (t > 0.0 or t < 0.0) else 0.0
    keep = (nr - 1.0) / nr
    inv_nr = 1.0 / nr
    for i in range(nr + 1, w):
        d = xs[i] - xs[i - 1]
        g = g * keep + (0.0 if d < 0.0 else d) * inv_nr
        l = l * keep + (-d if d < 0.0 else 0.0) * inv_nr
        t = g + l
        orr[i] = 100.0 * (g / t) if (t > 0.0 or t < 0.0) else 0.0
    # the RSI division is deferred to a vectorised pass: the loop keeps g in orr and
    # g + l in tot, so no divide sits in the loop that carries the dependent chains
    tot = np.empty(T)
    # zero-based views: numba then knows no index is negative (no wraparound selects)
    cur = xs[w:T]
    old = xs[w - ns:T - ns]
    prv = xs[w - 1:T - 1]
    so = os_[w:T]
    eo = oe[w:T]
    ro = orr[w:T]
    to = tot[w:T]
    m = cur.shape[0]
    if old.shape[0] != m or prv.shape[0] != m or so.shape[0] != m or eo.shape[0] != m \
            or ro.shape[0] != m or to.shape[0] != m:
        return False
    for q in range(m):
        v = cur[q]
        bad += v - v
        s += v - old[q]
        so[q] = s * inv_ns
        e = e * one_k + k * v
        eo[q] = e
        d = v - prv[q]
        g = g * keep + (0.0 if d < 0.0 else d) * inv_nr
        l = l * keep + (-d if d < 0.0 else 0.0) * inv_nr
        ro[q] = g
        to[q] = g + l
    gs = orr[w:T]
    ts = tot[w:T]
    for q in range(gs.shape[0]):
        t = ts[q]
        gs[q] = 100.0 * (gs[q] / t) if (t > 0.0 or t < 0.0) else 0.0
    for i in range(ns, w):
        bad += xs[i] - xs[i]
    return bad == 0.0


@njit(**JIT_PAR)
def sma_ema_rsi_2d(x, n_sma, n_ema, n_rsi, out_sma, out_ema, out_rsi, status):
    for r in prange(x.shape[0]):
        if _interleaved_row(x[r], n_sma, n_ema, n_rsi, out_sma[r], out_ema[r], out_rsi[r]):
            status[r] = -1
            continue
        st = _sma_row(x[r], n_sma, out_sma[r])
        if st < 0:
            st = _ema_row(x[r], n_ema, out_ema[r])
        if st < 0:
            st = _rsi_row(x[r], n_rsi, out_rsi[r])
        status[r] = st


def sma_ema_rsi(close, n_sma=20, n_ema=20, n_rsi=14, out=None):
    """(sma, ema, rsi) of a 2-D universe in one pass; `out` = three preallocated arrays."""
    x = check_series(close, "close")
    if x.ndim != 2 or not isinstance(x, np.ndarray):
        raise ConfigError("fused pass takes a 2-D numpy universe", argument="close",
                          ndim=x.ndim)
    T = x.shape[1]
    a = check_period(n_sma, "n_sma", T)
    b = check_period(n_ema, "n_ema", T)
    c = check_period(n_rsi, "n_rsi", T, minimum=2)
    if out is None:
        out = tuple(np.empty(x.shape) for _ in range(3))
    for k, o in enumerate(out):
        if not isinstance(o, np.ndarray) or o.shape != x.shape or o.dtype != np.float64 \
                or not o.flags.c_contiguous:
            raise ConfigError("out arrays must be C-contiguous float64 like close",
                              argument=f"out[{k}]")
    status = np.empty(x.shape[0], np.int64)
    sma_ema_rsi_2d(x, a, b, c, out[0], out[1], out[2], status)
    bad = np.flatnonzero(status >= 0)
    if bad.size:
        raise ConfigError("input holds an infinity", argument="close",
                          index=(int(bad[0]), int(status[bad[0]])))
    return out
