"""Kernel speed beside TA-Lib in the same run (pytest-benchmark; run with --benchmark-enable).

    .venv/bin/pytest bench/micro/test_kernels_bench.py --benchmark-enable \
        --benchmark-group-by=group --benchmark-columns=median,iqr,min,rounds

Groups: one per indicator on a 1 M-point series (numba kernel vs TA-Lib), the 5,000 x 2,000
universe (SMA+EMA+RSI: numba 2-D kernels writing into preallocated outputs vs looping TA-Lib
per instrument), and the streaming update per tick (numba loop over 1 M ticks; divide by 1e6).
"""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from tickpath.kernels.cpu import ma as cpu_ma
from tickpath.kernels.cpu import osc as cpu_osc
from tickpath.kernels.cpu import stats as cpu_stats
from tickpath.kernels import fused
from tickpath.kernels import stream as S

talib = pytest.importorskip("talib", reason="ta-lib is the speed reference")

N = 1_000_000
rng = np.random.default_rng(42)
CLOSE = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, N)))
HIGH = CLOSE * (1 + rng.random(N) * 0.001)
LOW = CLOSE * (1 - rng.random(N) * 0.001)
OUT = [np.empty(N) for _ in range(3)]

# kernel calls with preallocated outputs (the row kernels behind tickpath.kernels.*)
OURS = {
    "sma": lambda: cpu_ma._sma_row(CLOSE, 20, OUT[0]),
    "ema": lambda: cpu_ma._ema_row(CLOSE, 20, OUT[0]),
    "wma": lambda: cpu_ma._wma_row(CLOSE, 20, OUT[0]),
    "rsi": lambda: cpu_osc._rsi_row(CLOSE, 14, OUT[0]),
    "macd": lambda: cpu_ma._macd_row(CLOSE, 12, 26, 9, *OUT),
    "bbands": lambda: cpu_stats._moments_row(CLOSE, 5, 0, 2.0, 2.0, *OUT),
    "stddev": lambda: cpu_stats._moments_row(CLOSE, 20, 1, 1.0, 0.0, *OUT),
    "atr": lambda: cpu_osc._atr_row(HIGH, LOW, CLOSE, 14, OUT[0]),
}
THEIRS = {
    "sma": lambda: talib.SMA(CLOSE, 20),
    "ema": lambda: talib.EMA(CLOSE, 20),
    "wma": lambda: talib.WMA(CLOSE, 20),
    "rsi": lambda: talib.RSI(CLOSE, 14),
    "macd": lambda: talib.MACD(CLOSE, 12, 26, 9),
    "bbands": lambda: talib.BBANDS(CLOSE, 5, 2.0, 2.0, 0),
    "stddev": lambda: talib.STDDEV(CLOSE, 20, 1.0),
    "atr": lambda: talib.ATR(HIGH, LOW, CLOSE, 14),
}


@pytest.mark.parametrize("impl", ["tickpath", "talib"])
@pytest.mark.parametrize("name", sorted(OURS))
def test_series_1m(benchmark, name, impl):
    benchmark.group = f"1M {name}"
    fn = OURS[name] if impl == "tickpath" else THEIRS[name]
    fn()  # compile / warm
    # 40 rounds of 1-15 ms: the median holds up when another process shares the 2 cores
    benchmark.pedantic(fn, rounds=40, iterations=1, warmup_rounds=2)


R, T = 5000, 2000
UNI = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.001, (R, T)), axis=1))
U_OUT = [np.empty((R, T)) for _ in range(3)]
U_STATUS = np.empty(R, np.int64)


def _uni_numba():
    cpu_ma.sma_2d(UNI, 20, U_OUT[0], U_STATUS)
    cpu_ma.ema_2d(UNI, 20, U_OUT[1], U_STATUS)
    cpu_osc.rsi_2d(UNI, 14, U_OUT[2], U_STATUS)


def _uni_fused():
    fused.sma_ema_rsi_2d(UNI, 20, 20, 14, U_OUT[0], U_OUT[1], U_OUT[2], U_STATUS)


def _uni_talib():
    for r in range(R):
        x = UNI[r]
        talib.SMA(x, 20)
        talib.EMA(x, 20)
        talib.RSI(x, 14)


@pytest.mark.parametrize("impl", ["tickpath-fused", "tickpath-3-calls", "talib"])
def test_universe_5000x2000(benchmark, impl):
    benchmark.group = "universe 5000x2000 sma+ema+rsi"
    fn = {"tickpath-fused": _uni_fused, "tickpath-3-calls": _uni_numba, "talib": _uni_talib}[impl]
    fn()
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)


TICKS = CLOSE


@njit(nogil=True)
def _stream_ema(state, xs):
    acc = 0.0
    for i in range(xs.shape[0]):
        acc += S.ema_update(state, xs[i])
    return acc


@njit(nogil=True)
def _stream_sma(state, xs):
    acc = 0.0
    for i in range(xs.shape[0]):
        acc += S.sma_update(state, xs[i])
    return acc


@njit(nogil=True)
def _stream_rsi(state, xs):
    acc = 0.0
    for i in range(xs.shape[0]):
        acc += S.rsi_update(state, xs[i])
    return acc


@njit(nogil=True)
def _stream_bb(state, xs):
    acc = 0.0
    for i in range(xs.shape[0]):
        u, m, lo = S.bbands_update(state, xs[i], 2.0, 2.0)
        acc += u
    return acc


@njit(nogil=True)
def _stream_macd(state, xs):
    acc = 0.0
    for i in range(xs.shape[0]):
        m, g, h = S.macd_update(state, xs[i])
        acc += h
    return acc


STREAMS = {
    "ema20": (_stream_ema, S.ema_init, S.EMA_STATE_SIZE, (20,)),
    "sma20": (_stream_sma, S.sma_init, S.SMA_STATE_SIZE, (20,)),
    "rsi14": (_stream_rsi, S.rsi_init, S.RSI_STATE_SIZE, (14,)),
    "bbands20": (_stream_bb, S.bbands_init, S.BBANDS_STATE_SIZE, (20,)),
    "macd": (_stream_macd, S.macd_init, S.MACD_STATE_SIZE, (12, 26, 9)),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_stream_1m_ticks(benchmark, name):
    """Time for 1 M updates: the per-tick cost is the median / 1e6."""
    benchmark.group = "stream 1M ticks"
    loop, init, size, params = STREAMS[name]

    def run():
        state = S.new_states(init, size, 1, *params)[0]
        return loop(state, TICKS)

    run()
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
