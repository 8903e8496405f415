"""Every batch indicator against TA-Lib (the oracle), on every data kind and several periods.

Where TA-Lib lacks the indicator (z-score, VWAP, realized volatility, log returns) the
oracle is a direct numpy/math.fsum formula over each window.
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest

talib = pytest.importorskip("talib", reason="ta-lib (the oracle) is a test dependency")

import tickpath.kernels as K  # noqa: E402

from kernels_testdata import assert_matches, kind  # noqa: E402

KINDS = ["walk", "nan_lead", "nan_close", "const", "short"]

# name -> (ours(bars, p), talib(bars, p), periods)
CASES = {
    "sma": (lambda b, p: K.sma(b.close, p), lambda b, p: talib.SMA(b.close, p), [1, 2, 5, 30, 200]),
    "ema": (lambda b, p: K.ema(b.close, p), lambda b, p: talib.EMA(b.close, p), [1, 2, 5, 30, 200]),
    "wma": (lambda b, p: K.wma(b.close, p), lambda b, p: talib.WMA(b.close, p), [1, 2, 5, 30, 200]),
    "rsi": (lambda b, p: K.rsi(b.close, p), lambda b, p: talib.RSI(b.close, p), [2, 5, 14, 100]),
    "atr": (lambda b, p: K.atr(b.high, b.low, b.close, p),
            lambda b, p: talib.ATR(b.high, b.low, b.close, p), [1, 2, 14, 100]),
    "returns": (lambda b, p: K.returns(b.close, p), lambda b, p: talib.ROCP(b.close, p), [1, 2, 10]),
}


@pytest.mark.parametrize("data", KINDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_single_output_matches_talib(name, data):
    ours, ref, periods = CASES[name]
    b = kind(data)
    for p in periods:
        o, r = ours(b, p), ref(b, p)
        if name == "wma" and data == "nan_close" and p > 1:
            # TA-Lib 0.6's WMA forgets a NaN after a period-dependent number of bars (its
            # re-sum schedule); tickpath's documented policy is that a NaN poisons the rest
            k = len(o) // 2
            assert_matches(o[:k], r[:k], label=f"wma({p}) before the NaN")
            assert np.isnan(o[k:]).all()
            continue
        assert_matches(o, r, label=f"{name}({p}) on {data}")


@pytest.mark.parametrize("data", KINDS)
def test_trange_and_obv_match_talib(data):
    b = kind(data)
    assert_matches(K.trange(b.high, b.low, b.close), talib.TRANGE(b.high, b.low, b.close))
    assert_matches(K.obv(b.close, b.volume), talib.OBV(b.close, b.volume))


@pytest.mark.parametrize("data", KINDS)
@pytest.mark.parametrize("periods", [(12, 26, 9), (26, 12, 9), (2, 3, 1), (5, 5, 5)])
def test_macd_matches_talib(data, periods):
    b = kind(data)
    f, s, g = periods
    for ours, ref, part in zip(K.macd(b.close, f, s, g), talib.MACD(b.close, f, s, g),
                               ("macd", "signal", "hist")):
        assert_matches(ours, ref, label=f"macd{periods}.{part} on {data}")


@pytest.mark.parametrize("f,s,g", [(12, 26, 9), (1, 30, 2), (3, 7, 1)])
def test_macd_is_difference_of_offset_emas(f, s, g):
    """TA-Lib's MACD seeds the fast EMA at slow-fast: check that convention explicitly
    (and periods TA-Lib's MACD refuses, like fast=1, against its EMA)."""
    b = kind("walk")
    m, sig, _ = K.macd(b.close, f, s, g)
    fast = np.full_like(b.close, np.nan)
    fast[s - f:] = talib.EMA(b.close[s - f:], f)
    line = fast - talib.EMA(b.close, s)
    assert_matches(m[s + g - 2:], line[s + g - 2:])
    assert_matches(sig[s + g - 2:], talib.EMA(line[s - 1:], g)[g - 1:])


@pytest.mark.parametrize("data", KINDS)
@pytest.mark.parametrize("periods", [(2, 2, 2), (5, 3, 3), (14, 1, 1), (14, 3, 5), (1, 1, 1)])
def test_stoch_matches_talib(data, periods):
    b = kind(data)
    fk, sk, sd = periods
    for ours, ref in zip(K.stoch(b.high, b.low, b.close, fk, sk, sd),
                         talib.STOCH(b.high, b.low, b.close, fk, sk, 0, sd, 0)):
        assert_matches(ours, ref, label=f"stoch{periods} on {data}")


@pytest.mark.parametrize("data", KINDS)
@pytest.mark.parametrize("period,up,dn", [(2, 1.0, 1.0), (5, 2.0, 2.0), (20, 2.5, 1.5)])
def test_bbands_match_talib(data, period, up, dn):
    b = kind(data)
    for ours, ref in zip(K.bbands(b.close, period, up, dn),
                         talib.BBANDS(b.close, period, up, dn, 0)):
        assert_matches(ours, ref, label=f"bbands({period}) on {data}")


def _windows(x, n):
    return np.lib.stride_tricks.sliding_window_view(x, n)


@pytest.mark.parametrize("data", ["walk", "nan_lead", "const"])
def test_zscore_matches_its_formula(data):
    b = kind(data)
    n = 20
    mean = talib.SMA(b.close, n)
    sd = talib.STDDEV(b.close, n, 1.0)
    ref = np.where(sd > 0, (b.close - mean) / np.where(sd > 0, sd, 1.0), 0.0)
    ref[np.isnan(mean)] = np.nan
    assert_matches(K.zscore(b.close, n), ref, rtol=1e-7)


@pytest.mark.parametrize("data", ["walk", "nan_lead", "short"])
def test_vwap_cumulative_and_rolling(data):
    b = kind(data)
    p, v = b.close, b.volume
    ok = ~(np.isnan(p) | np.isnan(v))
    first = int(np.argmax(ok)) if ok.any() else len(p)
    ref = np.full_like(p, np.nan)
    pv = np.where(ok, p * v, 0.0)
    ref[first:] = np.cumsum(pv[first:]) / np.cumsum(np.where(ok, v, 0.0)[first:])
    assert_matches(K.vwap(p, v), ref, rtol=1e-9)
    for n in (1, 3, 50):
        roll = np.full_like(p, np.nan)
        if first + n - 1 < len(p):
            w_pv = _windows(pv[first:], n).sum(axis=1)
            w_v = _windows(np.where(ok, v, 0.0)[first:], n).sum(axis=1)
            roll[first + n - 1:] = w_pv / w_v
        assert_matches(K.vwap(p, v, n), roll, rtol=1e-9, label=f"vwap({n})")


@pytest.mark.parametrize("data", ["walk", "nan_lead", "short", "const"])
def test_returns_log_and_realized_vol(data):
    b = kind(data)
    x = b.close
    for p in (1, 3):
        assert_matches(K.log_returns(x, p), np.log(talib.ROCR(x, p)), rtol=1e-9)
    r = np.log(x[1:] / x[:-1])
    for n in (1, 5, 20):
        ref = np.full_like(x, np.nan)
        first = int(np.argmax(~np.isnan(x)))
        if first + n < len(x):
            sq = r[first:] ** 2
            ref[first + n:] = 252.0 * np.sqrt([math.fsum(w) for w in _windows(sq, n)])
        assert_matches(K.realized_vol(x, n, 252.0), ref, rtol=1e-9, label=f"rvol({n})")


def test_constant_series_conventions():
    """Documented conventions on a constant series: RSI 0, std 0, z 0, returns 0."""
    x = np.full(100, 42.5)
    assert np.all(K.rsi(x, 14)[14:] == 0.0)
    assert np.all(K.stddev(x, 10)[9:] == 0.0)
    assert np.all(K.zscore(x, 10)[9:] == 0.0)
    assert np.all(K.returns(x, 1)[1:] == 0.0)
    assert np.all(K.realized_vol(x, 5)[5:] == 0.0)
    up, mid, lo = K.bbands(x, 5, 2.0, 2.0)
    assert np.all(up[4:] == 42.5) and np.all(lo[4:] == 42.5) and np.all(mid[4:] == 42.5)


def _exact_std(x, n):
    """Two-pass population std of each window with math.fsum (the accurate oracle)."""
    out = np.full_like(x, np.nan)
    first = int(np.argmax(~np.isnan(x))) if (~np.isnan(x)).any() else len(x)
    valid = x[first:]
    bad = np.flatnonzero(np.isnan(valid))
    stop = len(valid) if bad.size == 0 else bad[0]     # a NaN poisons the rest
    for i in range(n - 1, len(valid)):
        if i >= stop:
            continue
        w = valid[i - n + 1:i + 1]
        m = math.fsum(w) / n
        out[first + i] = math.sqrt(math.fsum((w - m) ** 2) / n)
    return out


@pytest.mark.parametrize("data", KINDS)
@pytest.mark.parametrize("n", [2, 5, 20, 200])
def test_stddev_matches_exact_and_talib(data, n):
    """STDDEV vs the exact two-pass std (1e-9), and vs TA-Lib within TA-Lib's own rounding:
    it computes E[x^2] - E[x]^2, which loses ~eps*mean^2/var of the variance to cancellation
    (tickpath sums deviations from a value inside the window instead, so it is more exact)."""
    b = kind(data, n=1500)
    ours = K.stddev(b.close, n, 1.5)
    exact = 1.5 * _exact_std(b.close, n)
    assert_matches(ours, exact, rtol=1e-9, label=f"stddev({n}) vs exact")
    ref = talib.STDDEV(b.close, n, 1.5)
    if data == "nan_close":
        # TA-Lib 0.6's STDDEV forgets a NaN after some bars (as its WMA); ours poisons
        k = len(ref) // 2
        ours, ref = ours[:k], ref[:k]
        mean_src = b.close[:k]
    else:
        mean_src = b.close
    assert (np.isnan(ours) == np.isnan(ref)).all()
    mean = talib.SMA(mean_src, n)
    ok = ~np.isnan(ref)
    eps = np.finfo(np.float64).eps
    # |d std| <= |d var| / (2 std) with |d var| <= 8 eps mean^2 (TA-Lib's cancellation)
    bound = 1e-9 * np.abs(ref[ok]) + 1.5 * np.sqrt(8 * eps * mean[ok] ** 2)
    assert (np.abs(ours[ok] - ref[ok]) <= bound).all()
