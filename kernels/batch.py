"""Batch indicators: the public calls, validated once, run on numba (CPU) or CuPy (GPU).

Every call takes 1-D (time) or 2-D (instruments x time) float arrays and returns arrays of
the same shape on the device the input came from: numpy in -> numpy out, cupy in -> cupy
out. Host arrays go to the GPU only when the backend is cupy and the batch is large enough
(`_backend.use_gpu_for`). Conventions per indicator are documented in cpu_ma, cpu_osc and
cpu_stats; the GPU programs (xp_programs, scan_kernels.cu) follow the same ones.

Defaults are TA-Lib's (SMA/EMA/WMA 30, RSI/ATR 14, MACD 12/26/9, BBANDS 5/2/2, STDDEV 5,
STOCH 5/3/3). Bad input raises ConfigError (a ValueError) naming the argument.
"""
from __future__ import annotations

import numpy as np

from tickpath.runtime.core.errors import ConfigError

from tickpath.kernels.cpu import ma as cpu_ma
from tickpath.kernels.cpu import osc as cpu_osc
from tickpath.kernels.cpu import stats as cpu_stats
from tickpath.kernels._backend import cupy_module, use_gpu_for
from tickpath.kernels._validate import (
    check_finite_scalar,
    check_period,
    check_same_shape,
    check_series,
    is_cupy_array,
)


def _prepare(named: dict):
    """Validate inputs; returns (list of float64 arrays, where) where is 'cupy', 'gpu' or 'cpu'."""
    on_dev = [is_cupy_array(a) for a in named.values()]
    if any(on_dev) and not all(on_dev):
        raise ConfigError("inputs mix host and device arrays",
                          **{k: ("cupy" if d else "numpy") for k, d in zip(named, on_dev)})
    xp = cupy_module() if all(on_dev) else np
    arrays = {k: check_series(v, k, xp) for k, v in named.items()}
    if len(arrays) > 1:
        check_same_shape(arrays)
    first = next(iter(arrays.values()))
    if all(on_dev):
        where = "cupy"
    elif use_gpu_for(first.shape):
        where = "gpu"
    else:
        where = "cpu"
    return list(arrays.values()), where


def _raise_status(status: int, row: int, names: tuple, shape: tuple) -> None:
    T = shape[-1]
    which = names[min(status // T, len(names) - 1)]
    t = int(status % T)
    index = (row, t) if len(shape) == 2 else t
    raise ConfigError("input holds an infinity", argument=which, index=index)


def _run_cpu(row_fn, drv_fn, ins, params, outs, names):
    if ins[0].ndim == 1:
        st = row_fn(*ins, *params, *outs)
        if st >= 0:
            _raise_status(int(st), 0, names, ins[0].shape)
        return
    status = np.empty(ins[0].shape[0], np.int64)
    drv_fn(*ins, *params, *outs, status)
    bad = np.flatnonzero(status >= 0)
    if bad.size:
        _raise_status(int(status[bad[0]]), int(bad[0]), names, ins[0].shape)


def _gpu(name, ins, where, *params):
    """Run the GPU program `name`; host inputs are copied over and results copied back."""
    from tickpath.kernels.gpu import cupy_batch as gpu
    cp = cupy_module()
    dev_ins = ins if where == "cupy" else [cp.asarray(a) for a in ins]
    res = getattr(gpu, name)(*dev_ins, *params)
    if where == "cupy":
        return res
    if isinstance(res, tuple):
        return tuple(cp.asnumpy(r) for r in res)
    return cp.asnumpy(res)


def _empty(like, k=1):
    outs = tuple(np.empty(like.shape, np.float64) for _ in range(k))
    return outs


# ---- moving averages -------------------------------------------------------------------

def sma(close, period=30):
    """Simple moving average; lookback period-1."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1])
    if where != "cpu":
        return _gpu("sma", [x], where, n)
    (out,) = _empty(x)
    _run_cpu(cpu_ma._sma_row, cpu_ma.sma_2d, [x], (n,), (out,), ("close",))
    return out


def ema(close, period=30):
    """Exponential moving average, seeded with the SMA of the first `period` points."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1])
    if where != "cpu":
        return _gpu("ema", [x], where, n)
    (out,) = _empty(x)
    _run_cpu(cpu_ma._ema_row, cpu_ma.ema_2d, [x], (n,), (out,), ("close",))
    return out


def wma(close, period=30):
    """Linearly weighted moving average (weights 1..period, newest heaviest)."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1])
    if where != "cpu":
        return _gpu("wma", [x], where, n)
    (out,) = _empty(x)
    _run_cpu(cpu_ma._wma_row, cpu_ma.wma_2d, [x], (n,), (out,), ("close",))
    return out


def macd(close, fastperiod=12, slowperiod=26, signalperiod=9):
    """(macd, signal, hist) with TA-Lib's seeding (see cpu_ma)."""
    (x,), where = _prepare({"close": close})
    T = x.shape[-1]
    f = check_period(fastperiod, "fastperiod", T)
    s = check_period(slowperiod, "slowperiod", T)
    g = check_period(signalperiod, "signalperiod", T)
    if where != "cpu":
        return _gpu("macd", [x], where, f, s, g)
    outs = _empty(x, 3)
    _run_cpu(cpu_ma._macd_row, cpu_ma.macd_2d, [x], (f, s, g), outs, ("close",))
    return outs


# ---- oscillators and ranges ------------------------------------------------------------

def rsi(close, period=14):
    """Wilder's RSI (period >= 2, as TA-Lib); lookback period."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1], minimum=2)
    if where != "cpu":
        return _gpu("rsi", [x], where, n)
    (out,) = _empty(x)
    _run_cpu(cpu_osc._rsi_row, cpu_osc.rsi_2d, [x], (n,), (out,), ("close",))
    return out


def trange(high, low, close):
    """True range; lookback 1."""
    ins, where = _prepare({"high": high, "low": low, "close": close})
    if where != "cpu":
        return _gpu("trange", ins, where)
    (out,) = _empty(ins[0])
    _run_cpu(cpu_osc._trange_row, cpu_osc.trange_2d, ins, (), (out,), ("high", "low", "close"))
    return out


def atr(high, low, close, period=14):
    """Average true range with Wilder smoothing; lookback period."""
    ins, where = _prepare({"high": high, "low": low, "close": close})
    n = check_period(period, "period", ins[0].shape[-1])
    if where != "cpu":
        return _gpu("atr", ins, where, n)
    (out,) = _empty(ins[0])
    _run_cpu(cpu_osc._atr_row, cpu_osc.atr_2d, ins, (n,), (out,), ("high", "low", "close"))
    return out


def stoch(high, low, close, fastk_period=5, slowk_period=3, slowd_period=3):
    """(slowk, slowd): stochastic with SMA smoothing (TA-Lib STOCH, matype 0)."""
    ins, where = _prepare({"high": high, "low": low, "close": close})
    T = ins[0].shape[-1]
    fk = check_period(fastk_period, "fastk_period", T)
    sk = check_period(slowk_period, "slowk_period", T)
    sd = check_period(slowd_period, "slowd_period", T)
    if where != "cpu":
        return _gpu("stoch", ins, where, fk, sk, sd)
    outs = _empty(ins[0], 2)
    names = ("high", "low", "close")
    if ins[0].ndim == 1:
        st = cpu_osc._stoch_row(*ins, fk, sk, sd, *outs, np.empty(fk, np.int64),
                                np.empty(fk, np.int64), np.empty(sk), np.empty(sd))
        if st >= 0:
            _raise_status(int(st), 0, names, ins[0].shape)
        return outs
    _run_cpu(None, cpu_osc.stoch_2d, ins, (fk, sk, sd), outs, names)
    return outs


def obv(close, volume):
    """On-balance volume (TA-Lib OBV); lookback 0."""
    ins, where = _prepare({"close": close, "volume": volume})
    if where != "cpu":
        return _gpu("obv", ins, where)
    (out,) = _empty(ins[0])
    _run_cpu(cpu_osc._obv_row, cpu_osc.obv_2d, ins, (), (out,), ("close", "volume"))
    return out


# ---- window statistics -----------------------------------------------------------------

def _moments(x, where, n, mode, up, dn, k):
    if where != "cpu":
        return _gpu("moments", [x], where, n, mode, up, dn)
    outs = _empty(x, 3) if k == 3 else _empty(x, 1) * 3
    _run_cpu(cpu_stats._moments_row, cpu_stats.moments_2d, [x], (n, mode, up, dn), outs,
             ("close",))
    return outs if k == 3 else outs[0]


def bbands(close, period=5, nbdevup=2.0, nbdevdn=2.0):
    """(upper, middle, lower) Bollinger bands, population std (TA-Lib BBANDS, matype 0)."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1], minimum=2)
    up = check_finite_scalar(nbdevup, "nbdevup")
    dn = check_finite_scalar(nbdevdn, "nbdevdn")
    return _moments(x, where, n, cpu_stats.MODE_BBANDS, up, dn, 3)


def stddev(close, period=5, nbdev=1.0):
    """Rolling population standard deviation times nbdev (TA-Lib STDDEV)."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1], minimum=2)
    k = check_finite_scalar(nbdev, "nbdev")
    return _moments(x, where, n, cpu_stats.MODE_STDDEV, k, 0.0, 1)


def zscore(close, period=20):
    """(x - SMA) / STDDEV over the window; 0 where the window is constant."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1], minimum=2)
    return _moments(x, where, n, cpu_stats.MODE_ZSCORE, 1.0, 0.0, 1)


def vwap(price, volume, period=None):
    """Cumulative VWAP (period None) or rolling VWAP over `period` bars."""
    ins, where = _prepare({"price": price, "volume": volume})
    n = 0 if period is None else check_period(period, "period", ins[0].shape[-1])
    if where != "cpu":
        return _gpu("vwap", ins, where, n)
    (out,) = _empty(ins[0])
    _run_cpu(cpu_stats._vwap_row, cpu_stats.vwap_2d, ins, (n,), (out,), ("price", "volume"))
    return out


def returns(close, period=1):
    """Simple returns over `period` bars (TA-Lib ROCP)."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1])
    if where != "cpu":
        return _gpu("returns", [x], where, n, False)
    (out,) = _empty(x)
    _run_cpu(cpu_stats._returns_row, cpu_stats.returns_2d, [x], (n, False), (out,),
             ("close",))
    return out


def log_returns(close, period=1):
    """log(x[i] / x[i-period]); NaN where a price is <= 0."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1])
    if where != "cpu":
        return _gpu("returns", [x], where, n, True)
    (out,) = _empty(x)
    _run_cpu(cpu_stats._returns_row, cpu_stats.returns_2d, [x], (n, True), (out,),
             ("close",))
    return out


def realized_vol(close, period=20, scale=1.0):
    """scale * sqrt(sum of the last `period` squared log returns); lookback period."""
    (x,), where = _prepare({"close": close})
    n = check_period(period, "period", x.shape[-1])
    k = check_finite_scalar(scale, "scale")
    if where != "cpu":
        return _gpu("realized_vol", [x], where, n, k)
    (out,) = _empty(x)
    if x.ndim == 1:
        st = cpu_stats._rvol_row(x, n, k, out, np.empty(n))
        if st >= 0:
            _raise_status(int(st), 0, ("close",), x.shape)
        return out
    _run_cpu(None, cpu_stats.rvol_2d, [x], (n, k), (out,), ("close",))
    return out
