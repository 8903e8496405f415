"""Streaming indicators: after N updates the output equals the batch result on the same N
points, for every indicator, on random walks, leading NaNs, a NaN in the middle, constant
series, and long enough series to cross several re-base blocks."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from numba import njit

import tickpath.kernels as K
from tickpath.kernels import stream as S
from tickpath.runtime.core.errors import ConfigError

from kernels_testdata import assert_matches, kind  # noqa: E402

KINDS = ["walk", "nan_lead", "nan_close", "const"]


@njit
def _run1(update, row, x, out):
    for i in range(x.shape[0]):
        out[i] = update(row, x[i])


@njit
def _run1p(update, row, x, p, out):
    for i in range(x.shape[0]):
        out[i] = update(row, x[i], p)


@njit
def _run2(update, row, a, b, out):
    for i in range(a.shape[0]):
        out[i] = update(row, a[i], b[i])


@njit
def _run3(update, row, h, l, c, out):
    for i in range(h.shape[0]):
        out[i] = update(row, h[i], l[i], c[i])


@njit
def _run_macd(row, x, o1, o2, o3):
    for i in range(x.shape[0]):
        o1[i], o2[i], o3[i] = S.macd_update(row, x[i])


@njit
def _run_bb(row, x, up, dn, o1, o2, o3):
    for i in range(x.shape[0]):
        o1[i], o2[i], o3[i] = S.bbands_update(row, x[i], up, dn)


@njit
def _run_stoch(row, h, l, c, o1, o2):
    for i in range(h.shape[0]):
        o1[i], o2[i] = S.stoch_update(row, h[i], l[i], c[i])


def _state(init, size, *params):
    return S.new_states(init, size, 1, *params)[0]


def _check(ours, ref, label):
    assert_matches(ours, ref, rtol=1e-11, label=label)


@pytest.mark.parametrize("data", KINDS)
def test_single_input_streams_equal_batch(data):
    b = kind(data, n=6000)   # > one re-base block (4096) for short periods
    x = b.close
    out = np.empty_like(x)
    for n in (1, 2, 5, 30, 200):
        for name, init, size, upd, batch in [
            ("sma", S.sma_init, S.SMA_STATE_SIZE, S.sma_update, K.sma),
            ("ema", S.ema_init, S.EMA_STATE_SIZE, S.ema_update, K.ema),
            ("wma", S.wma_init, S.WMA_STATE_SIZE, S.wma_update, K.wma),
        ]:
            _run1(upd, _state(init, size, n), x, out)
            _check(out, batch(x, n), f"{name}({n}) on {data}")
        if n >= 2:
            _run1(S.rsi_update, _state(S.rsi_init, S.RSI_STATE_SIZE, n), x, out)
            _check(out, K.rsi(x, n), f"rsi({n}) on {data}")
            _run1(S.zscore_update, _state(S.zscore_init, S.ZSCORE_STATE_SIZE, n), x, out)
            _check(out, K.zscore(x, n), f"zscore({n}) on {data}")
            _run1p(S.stddev_update, _state(S.stddev_init, S.STDDEV_STATE_SIZE, n), x, 1.5, out)
            _check(out, K.stddev(x, n, 1.5), f"stddev({n}) on {data}")
            o = [np.empty_like(x) for _ in range(3)]
            _run_bb(_state(S.bbands_init, S.BBANDS_STATE_SIZE, n), x, 2.0, 1.5, *o)
            for ours, ref in zip(o, K.bbands(x, n, 2.0, 1.5)):
                _check(ours, ref, f"bbands({n}) on {data}")
        _run1(S.realized_vol_update, _state(S.realized_vol_init, S.REALIZED_VOL_STATE_SIZE, n, 252.0), x, out)
        _check(out, K.realized_vol(x, n, 252.0), f"realized_vol({n}) on {data}")
        if n <= 30:
            _run1(S.returns_update, _state(S.returns_init, S.RETURNS_STATE_SIZE, n, False), x, out)
            _check(out, K.returns(x, n), f"returns({n}) on {data}")
            _run1(S.returns_update, _state(S.returns_init, S.RETURNS_STATE_SIZE, n, True), x, out)
            _check(out, K.log_returns(x, n), f"log_returns({n}) on {data}")


@pytest.mark.parametrize("data", KINDS)
@pytest.mark.parametrize("periods", [(12, 26, 9), (26, 12, 9), (1, 5, 1), (3, 3, 4)])
def test_macd_stream_equals_batch(data, periods):
    x = kind(data).close
    o = [np.empty_like(x) for _ in range(3)]
    _run_macd(_state(S.macd_init, S.MACD_STATE_SIZE, *periods), x, *o)
    for ours, ref in zip(o, K.macd(x, *periods)):
        _check(ours, ref, f"macd{periods} on {data}")


@pytest.mark.parametrize("data", KINDS)
def test_bar_streams_equal_batch(data):
    b = kind(data, n=5000)
    out = np.empty_like(b.close)
    for n in (1, 2, 14, 100):
        _run3(S.atr_update, _state(S.atr_init, S.ATR_STATE_SIZE, n), b.high, b.low, b.close, out)
        _check(out, K.atr(b.high, b.low, b.close, n), f"atr({n}) on {data}")
    _run2(S.obv_update, _state(S.obv_init, S.OBV_STATE_SIZE), b.close, b.volume, out)
    _check(out, K.obv(b.close, b.volume), f"obv on {data}")
    _run2(S.vwap_update, _state(S.vwap_init, S.VWAP_STATE_SIZE), b.close, b.volume, out)
    _check(out, K.vwap(b.close, b.volume), f"vwap on {data}")
    for n in (1, 3, 50):
        _run2(S.rolling_vwap_update, _state(S.rolling_vwap_init, S.ROLLING_VWAP_STATE_SIZE, n),
              b.close, b.volume, out)
        _check(out, K.vwap(b.close, b.volume, n), f"vwap({n}) on {data}")
    for p in [(5, 3, 3), (1, 1, 1), (14, 1, 5), (9, 4, 1)]:
        o1, o2 = np.empty_like(out), np.empty_like(out)
        _run_stoch(_state(S.stoch_init, S.STOCH_STATE_SIZE, *p), b.high, b.low, b.close, o1, o2)
        k_ref, d_ref = K.stoch(b.high, b.low, b.close, *p)
        _check(o1, k_ref, f"stoch{p}.k on {data}")
        _check(o2, d_ref, f"stoch{p}.d on {data}")


def test_stoch_nan_high_poisons_in_both_forms():
    b = kind("walk", n=200)
    b.high[100] = np.nan
    k_ref, d_ref = K.stoch(b.high, b.low, b.close, 5, 3, 3)
    assert np.isnan(k_ref[100:]).all() and not np.isnan(k_ref[10:100]).any()
    o1, o2 = np.empty(200), np.empty(200)
    _run_stoch(_state(S.stoch_init, S.STOCH_STATE_SIZE, 5, 3, 3), b.high, b.low, b.close, o1, o2)
    _check(o1, k_ref, "stoch k")
    _check(o2, d_ref, "stoch d")


def test_state_rows_are_independent_per_instrument():
    """The runtime's layout: one state array, one row per instrument, updates interleaved."""
    rng = np.random.default_rng(3)
    xs = 100 + np.cumsum(rng.normal(size=(4, 500)), axis=1)
    st = S.new_states(S.rsi_init, S.RSI_STATE_SIZE, 4, 14)

    @njit
    def interleave(st, xs, out):
        for t in range(xs.shape[1]):
            for r in range(xs.shape[0]):
                out[r, t] = S.rsi_update(st[r], xs[r, t])

    out = np.empty_like(xs)
    interleave(st, xs, out)
    _check(out, K.rsi(xs, 14), "rsi rows")


@pytest.mark.parametrize("init,size,params", [
    (S.ema_init, S.EMA_STATE_SIZE, (20,)), (S.sma_init, S.SMA_STATE_SIZE, (9,)),
    (S.macd_init, S.MACD_STATE_SIZE, (12, 26, 9)), (S.rsi_init, S.RSI_STATE_SIZE, (14,)),
    (S.stoch_init, S.STOCH_STATE_SIZE, (14, 3, 3)), (S.vwap_init, S.VWAP_STATE_SIZE, ()),
    (S.realized_vol_init, S.REALIZED_VOL_STATE_SIZE, (20, 252.0)),
])
def test_new_states_rows_equal_a_row_initialised_alone(init, size, params):
    """new_states copies row 0 to the others: each row must be what its own init writes."""
    st = S.new_states(init, size, 5, *params)
    for r in range(5):
        alone = np.zeros(size)
        assert init(alone, *params) == 0
        assert np.array_equal(st[r], alone)


def test_new_states_refuses_bad_parameters():
    with pytest.raises(ConfigError, match="too short"):
        S.new_states(S.sma_init, S.SMA_STATE_SIZE, 2, S.STREAM_MAX_PERIOD + 1)
    with pytest.raises(ConfigError, match="parameter"):
        S.new_states(S.ema_init, S.EMA_STATE_SIZE, 2, 0)
    with pytest.raises(ConfigError, match="parameter"):
        S.new_states(S.rsi_init, S.RSI_STATE_SIZE, 2, 1)
    with pytest.raises(ConfigError, match="instrument"):
        S.new_states(S.ema_init, S.EMA_STATE_SIZE, 0, 5)
    # exact sizes allow periods beyond the default row length
    st = S.new_states(S.sma_init, S.sma_state_size(1000), 1, 1000)
    assert st.shape == (1, 1004)
