"""The fast paths added for speed give the same results as the checked loops they skip.

The interleaved fused row must equal the separate row kernels bitwise (periods in every
order, rows that fall back because of a NaN/inf/short length mixed with rows that do not);
the fast ATR/WMA/short-window-moments blocks must match the checked per-point loops (fed a
late NaN so a row switches to them mid-way) within 1e-9.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import tickpath.kernels as K
from tickpath.kernels import fused

from kernels_testdata import assert_matches  # noqa: E402


@pytest.mark.parametrize("periods", [(20, 20, 14), (5, 30, 2), (40, 3, 25), (2, 2, 2)])
def test_interleaved_fused_rows_equal_separate_kernels_bitwise(periods):
    rng = np.random.default_rng(11)
    xs = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (6, 1500)), axis=1))
    xs[1, :7] = np.nan          # leading NaN: fallback row
    xs[3, 900] = np.nan         # NaN in the middle: fallback row, poisons SMA/EMA/RSI
    ns, ne, nr = periods
    s, e, r = fused.sma_ema_rsi(xs, ns, ne, nr)
    np.testing.assert_array_equal(s, K.sma(xs, ns))
    np.testing.assert_array_equal(e, K.ema(xs, ne))
    np.testing.assert_array_equal(r, K.rsi(xs, nr))


def test_interleaved_fused_long_rows_take_the_rebasing_kernels():
    rng = np.random.default_rng(12)
    xs = 100 + np.cumsum(rng.normal(0, 0.1, (2, 9000)), axis=1)
    s, e, r = fused.sma_ema_rsi(xs, 20, 20, 14)
    np.testing.assert_array_equal(s, K.sma(xs, 20))
    np.testing.assert_array_equal(r, K.rsi(xs, 14))


def _series(n=5000, seed=3):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    h = c * (1 + rng.random(n) * 0.002)
    lo = c * (1 - rng.random(n) * 0.002)
    return h, lo, c


def _oracle_wma(x, n):
    w = np.arange(1, n + 1, dtype=float)
    out = np.full(x.shape, np.nan)
    for i in range(n - 1, x.shape[0]):
        out[i] = np.dot(x[i - n + 1:i + 1], w) / w.sum()
    return out


def _oracle_atr(h, lo, c, n):
    tr = np.full(h.shape, np.nan)
    pc = c[:-1]
    tr[1:] = np.maximum.reduce([h[1:] - lo[1:], np.abs(pc - h[1:]), np.abs(pc - lo[1:])])
    out = np.full(h.shape, np.nan)
    a = tr[1:n + 1].mean()
    out[n] = a
    for i in range(n + 1, h.shape[0]):
        a = (a * (n - 1) + tr[i]) / n
        out[i] = a
    return out


def test_fast_blocks_match_oracles_and_switch_to_checked_loops_at_a_late_nan():
    h, lo, c = _series()
    assert_matches(K.wma(c, 20), _oracle_wma(c, 20), label="wma")
    assert_matches(K.atr(h, lo, c, 14), _oracle_atr(h, lo, c, 14), label="atr")
    for n in (2, 5, 8):
        std = np.array([np.std(c[i - n + 1:i + 1]) if i >= n - 1 else np.nan
                        for i in range(c.shape[0])])
        assert_matches(K.stddev(c, n, 1.0), std, label=f"stddev({n})")
    # a NaN at 3000: fast blocks before it, the checked loops from its block on
    c2 = c.copy()
    c2[3000] = np.nan
    w2 = K.wma(c2, 20)
    assert_matches(w2[:3000], _oracle_wma(c, 20)[:3000], label="wma before the NaN")
    assert np.isnan(w2[3000:]).all()
    sd2 = K.stddev(c2, 5, 1.0)
    assert np.isnan(sd2[3000:]).all() and not np.isnan(sd2[4:3000]).any()
    h2 = h.copy()
    h2[3000] = np.nan          # a NaN high poisons ATR through the smoothing
    a2 = K.atr(h2, lo, c, 14)
    assert_matches(a2[:3000], _oracle_atr(h, lo, c, 14)[:3000], label="atr before the NaN")
    assert np.isnan(a2[3000:]).all()
    h2[3000] = np.inf          # an infinity is refused, naming the input and index
    with pytest.raises(Exception, match="3000"):
        K.atr(h2, lo, c, 14)


@pytest.mark.parametrize("n", [3, 20, 50])
def test_moment_blocks_match_the_exact_oracle_for_every_mode(n):
    _, _, c = _series(6000, seed=5)
    c[4500] = np.nan             # fast blocks before it, the checked loop from its block on
    mean = np.full(c.shape, np.nan)
    std = np.full(c.shape, np.nan)
    for i in range(n - 1, 4500):
        w = c[i - n + 1:i + 1]
        mean[i] = w.mean()
        std[i] = np.sqrt(((w - w.mean()) ** 2).mean())
    up, mid, lo = K.bbands(c, n, 2.0, 1.5)
    assert_matches(mid[:4500], mean[:4500], label=f"mid({n})")
    assert_matches(up[:4500], (mean + 2.0 * std)[:4500], label=f"upper({n})")
    assert_matches(lo[:4500], (mean - 1.5 * std)[:4500], label=f"lower({n})")
    assert_matches(K.stddev(c, n, 1.0)[:4500], std[:4500], label=f"stddev({n})")
    z = K.zscore(c, n)
    np.testing.assert_allclose(z[n - 1:4500], ((c - mean) / std)[n - 1:4500], rtol=1e-7,
                               atol=1e-7)
    assert np.isnan(up[4500:]).all() and np.isnan(z[4500:]).all()


def test_atr_on_a_long_series_takes_the_prefetching_blocks():
    h, lo, c = _series(70_000, seed=9)          # >= ATR_PREFETCH_MIN points
    assert_matches(K.atr(h, lo, c, 14), _oracle_atr(h, lo, c, 14), label="atr 70k")
    h[69_990] = np.inf                          # an infinity in the last partial block
    with pytest.raises(Exception, match="69990"):
        K.atr(h, lo, c, 14)
