"""Fused universe pass: several indicators per instrument row in one parallel loop.

Running SMA, EMA and RSI one after another on the same row while it is hot in L1/L2 reads
each 16 KB row from memory once instead of three times; the row kernels are the ones behind
tickpath.kernels.sma/ema/rsi, so the results are bitwise identical. Outputs are preallocated
by the caller (allocation inside a parallel kernel is dominated by page faults).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from tickpath.runtime.errors import ConfigError

from ._nb import JIT_PAR
from ._validate import check_period, check_series
from .cpu_ma import _ema_row, _sma_row
from .cpu_osc import _rsi_row


@njit(**JIT_PAR)
def sma_ema_rsi_2d(x, n_sma, n_ema, n_rsi, out_sma, out_ema, out_rsi, status):
    for r in prange(x.shape[0]):
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
