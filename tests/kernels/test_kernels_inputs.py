"""Bad input, 2-D universes, float32, and drift on long series."""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

import tickpath.kernels as K
from tickpath.runtime.core.errors import ConfigError

from kernels_testdata import assert_matches, walk  # noqa: E402

X = walk(300).close

# every batch call with one close-like input, as (name, call(x))
ONE_INPUT = {
    "sma": lambda x: K.sma(x, 5), "ema": lambda x: K.ema(x, 5), "wma": lambda x: K.wma(x, 5),
    "macd": lambda x: K.macd(x, 3, 6, 2), "rsi": lambda x: K.rsi(x, 5),
    "bbands": lambda x: K.bbands(x, 5, 2.0, 2.0), "stddev": lambda x: K.stddev(x, 5),
    "zscore": lambda x: K.zscore(x, 5), "returns": lambda x: K.returns(x, 2),
    "log_returns": lambda x: K.log_returns(x, 2), "realized_vol": lambda x: K.realized_vol(x, 5),
}
BARS = {
    "atr": lambda h, l, c: K.atr(h, l, c, 5), "trange": K.trange,
    "stoch": lambda h, l, c: K.stoch(h, l, c, 5, 3, 3),
}
TWO = {"obv": K.obv, "vwap": K.vwap, "rolling_vwap": lambda p, v: K.vwap(p, v, 5)}


@pytest.mark.parametrize("name", sorted(ONE_INPUT))
def test_bad_arrays_are_refused_naming_the_argument(name):
    call = ONE_INPUT[name]
    with pytest.raises(ConfigError, match="argument='close'.*dtype='int64'"):
        call(np.arange(300))
    with pytest.raises(ConfigError, match="C-contiguous.*argument='close'"):
        call(np.ascontiguousarray(np.tile(X, 2))[::2])
    with pytest.raises(ConfigError, match="ndarray.*argument='close'"):
        call(list(X))
    with pytest.raises(ConfigError, match="1-D.*ndim=3"):
        call(X.reshape(3, 10, 10))
    with pytest.raises(ConfigError, match="no points"):
        call(np.empty(0))
    for where in (0, 3, 150, 299):
        bad = X.copy()
        bad[where] = np.inf if where % 2 else -np.inf
        with pytest.raises(ConfigError, match=f"infinity: argument='close', index={where}"):
            call(bad)
    bad2 = np.vstack([X, X])
    bad2[1, 7] = np.inf
    with pytest.raises(ConfigError, match=r"argument='close', index=\(1, 7\)"):
        call(bad2)
    assert isinstance(ConfigError("x"), ValueError)


@pytest.mark.parametrize("bad,match", [(0, "too small"), (-3, "too small"), (301, "longer"),
                                       (2.5, "integer"), (True, "integer"), ("5", "integer")])
def test_bad_periods(bad, match):
    with pytest.raises(ConfigError, match=match):
        K.sma(X, bad)
    with pytest.raises(ConfigError, match=f"{match}.*argument='slowperiod'|argument='slowperiod'.*"):
        K.macd(X, 12, bad, 9)
    with pytest.raises(ConfigError, match=match):
        K.atr(X + 1, X - 1, X, bad)
    with pytest.raises(ConfigError, match="argument='slowd_period'"):
        K.stoch(X + 1, X - 1, X, 5, 3, bad)


def test_minimum_periods_follow_talib():
    with pytest.raises(ConfigError, match="too small.*minimum=2"):
        K.rsi(X, 1)
    with pytest.raises(ConfigError, match="minimum=2"):
        K.bbands(X, 1)
    with pytest.raises(ConfigError, match="argument='nbdevup'"):
        K.bbands(X, 5, np.inf, 2.0)
    with pytest.raises(ConfigError, match="argument='scale'"):
        K.realized_vol(X, 5, "fast")


def test_multi_input_mismatch_and_bad_second_input():
    h, l, c = X + 1, X - 1, X
    for name, call in BARS.items():
        with pytest.raises(ConfigError, match="differ in shape"):
            call(h, l, c[:-1])
        with pytest.raises(ConfigError, match="argument='low'"):
            call(h, l.astype(np.int32), c)
        bad = l.copy()
        bad[42] = np.inf
        with pytest.raises(ConfigError, match="argument='low', index=42"):
            call(h, bad, c)
        # an infinity hidden where another input is NaN (before the first valid bar)
        h2, l2 = h.copy(), l.copy()
        h2[:3] = np.nan
        l2[1] = -np.inf
        with pytest.raises(ConfigError, match="argument='low', index=1"):
            call(h2, l2, c)
    v = np.ones_like(X)
    for name, call in TWO.items():
        with pytest.raises(ConfigError, match="differ in shape"):
            call(X, v[:10])
        bad = v.copy()
        bad[9] = np.inf
        with pytest.raises(ConfigError, match="argument='volume', index=9"):
            call(X, bad)


def test_two_d_rows_equal_one_d_calls_bitwise():
    rng = np.random.default_rng(5)
    xs = 100 + np.cumsum(rng.normal(size=(7, 400)), axis=1)
    xs[2, :50] = np.nan         # an instrument listed later
    xs[3, 200] = np.nan         # an instrument with a bad print
    xs[4, :] = np.nan           # an instrument with no data yet
    hs, ls = xs + 0.5, xs - 0.5
    vs = rng.integers(1, 100, xs.shape).astype(np.float64)
    for name, call in ONE_INPUT.items():
        many = call(xs)
        for r in range(xs.shape[0]):
            one = call(np.ascontiguousarray(xs[r]))
            for a, b in zip(many if isinstance(many, tuple) else (many,),
                            one if isinstance(one, tuple) else (one,)):
                np.testing.assert_array_equal(a[r], b, err_msg=f"{name} row {r}")
    for name, call in BARS.items():
        many = call(hs, ls, xs)
        for r in range(xs.shape[0]):
            one = call(hs[r].copy(), ls[r].copy(), xs[r].copy())
            for a, b in zip(many if isinstance(many, tuple) else (many,),
                            one if isinstance(one, tuple) else (one,)):
                np.testing.assert_array_equal(a[r], b, err_msg=f"{name} row {r}")
    for name, call in TWO.items():
        many = call(xs, vs)
        for r in range(xs.shape[0]):
            np.testing.assert_array_equal(many[r], call(xs[r].copy(), vs[r].copy()))


def test_float32_is_upcast_with_documented_tolerance():
    x32 = X.astype(np.float32)
    # exact: the float64 computation on the upcast values
    np.testing.assert_array_equal(K.ema(x32, 10), K.ema(x32.astype(np.float64), 10))
    assert K.ema(x32, 10).dtype == np.float64
    # against the original float64 data: float32's own rounding (~6e-8 relative)
    assert_matches(K.ema(x32, 10), K.ema(X, 10), rtol=1e-7)
    assert_matches(K.rsi(x32, 14), K.rsi(X, 14), rtol=1e-4)  # RSI amplifies input rounding


def test_no_drift_on_long_series_after_a_spike():
    """1e12-sized prints then 2M points near 1: a plain running sum keeps ~1e-4 of error
    forever; the re-based / compensated sums are exact again once the spike leaves."""
    rng = np.random.default_rng(11)
    x = np.concatenate([np.full(1000, 1e12), 1.0 + 0.01 * rng.random(2_000_000)])
    v = np.concatenate([np.full(1000, 1e9), 1.0 + rng.random(2_000_000)])
    tail = slice(-500, None)
    n = 20
    win = np.lib.stride_tricks.sliding_window_view
    exact_mean = np.array([math.fsum(w) / n for w in win(x[-500 - n + 1:], n)])
    np.testing.assert_allclose(K.sma(x, n)[tail], exact_mean, rtol=1e-13)
    w = np.arange(1, n + 1, dtype=np.float64)
    exact_wma = np.array([math.fsum(a * w) for a in win(x[-500 - n + 1:], n)]) / w.sum()
    np.testing.assert_allclose(K.wma(x, n)[tail], exact_wma, rtol=1e-12)
    exact_std = np.array([np.std(a) for a in win(x[-500 - n + 1:], n)])
    np.testing.assert_allclose(K.stddev(x, n)[tail], exact_std, rtol=1e-9)
    pv = x * v
    exact_vwap = np.array([math.fsum(a) for a in win(pv[-500 - n + 1:], n)]) / \
        np.array([math.fsum(a) for a in win(v[-500 - n + 1:], n)])
    np.testing.assert_allclose(K.vwap(x, v, n)[tail], exact_vwap, rtol=1e-13)
    np.testing.assert_allclose(K.vwap(x, v)[-1], math.fsum(pv) / math.fsum(v), rtol=1e-15)
