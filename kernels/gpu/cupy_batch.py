"""The CuPy path: validated cupy arrays in, cupy arrays out.

Vectorisable indicators run the xp programs with xp = cupy; the recursive scans (EMA, MACD,
RSI, ATR) run the CUDA kernels of scan_kernels.cu (RawKernel, one thread per instrument,
time-major input for coalesced reads). Infinities are found with one reduction on the device
and reported as ConfigError, like the CPU path. Imported only when cupy is usable.
"""
from __future__ import annotations

from pathlib import Path

from tickpath.runtime.core.errors import ConfigError

from tickpath.kernels.gpu import xp_programs as P
from tickpath.kernels._backend import cupy_module

CU_SOURCE = Path(__file__).with_name("scan_kernels.cu")
THREADS_PER_BLOCK = 128
_kernels: dict = {}


def _kernel(name: str):
    """Compile scan_kernels.cu once (NVRTC) and fetch a kernel by name."""
    if name not in _kernels:
        cp = cupy_module()
        module = cp.RawModule(code=CU_SOURCE.read_text(), options=("--std=c++11",))
        for k in ("ema_scan", "wilder_scan"):
            _kernels[k] = module.get_function(k)
    return _kernels[name]


def _as2d(arrays, names):
    cp = cupy_module()
    one_d = arrays[0].ndim == 1
    out = [a.reshape(1, -1) if one_d else a for a in arrays]
    for a, name in zip(out, names):
        bad = cp.isinf(a)
        if bool(bad.any()):
            flat = int(cp.argmax(bad.ravel()))
            r, t = divmod(flat, a.shape[1])
            raise ConfigError("input holds an infinity", argument=name,
                              index=t if one_d else (r, t))
    return cp, out, one_d


def _back(res, one_d):
    if isinstance(res, tuple):
        return tuple(r[0] if one_d else r for r in res)
    return res[0] if one_d else res


def _has_raw(cp) -> bool:
    """Real cupy always has RawModule; an array module without it (the numpy-backed stand-in
    the CI tests use) runs the xp scans, the numpy reference of the same recurrences."""
    return hasattr(cp, "RawModule")


def _ema_rows(cp, x, start, n):
    """EMA(n) of each row of x seeded at start[row], on the GPU."""
    if not _has_raw(cp):
        return P.ema_scan(cp, x, start, n)
    R, T = x.shape
    xt = cp.ascontiguousarray(x.T)
    out = cp.empty_like(xt)
    grid = ((R + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,)
    _kernel("ema_scan")(grid, (THREADS_PER_BLOCK,),
                        (xt, cp.ascontiguousarray(start.astype(cp.int64)), out,
                         cp.int32(R), cp.int32(T), cp.int32(n), cp.float64(2.0 / (n + 1))))
    return cp.ascontiguousarray(out.T)


def _wilder_rows(cp, v, start, n, rsi_mode):
    if not _has_raw(cp):
        return P.wilder_scan(cp, v, start, n, rsi_mode)
    R, T = v.shape
    vt = cp.ascontiguousarray(v.T)
    out = cp.empty_like(vt)
    grid = ((R + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,)
    _kernel("wilder_scan")(grid, (THREADS_PER_BLOCK,),
                           (vt, cp.ascontiguousarray(start.astype(cp.int64)), out,
                            cp.int32(R), cp.int32(T), cp.int32(n), cp.int32(1 if rsi_mode else 0)))
    return cp.ascontiguousarray(out.T)


def sma(x, n):
    cp, (x2,), one = _as2d([x], ("close",))
    return _back(P.sma(cp, x2, n), one)


def wma(x, n):
    cp, (x2,), one = _as2d([x], ("close",))
    return _back(P.wma(cp, x2, n), one)


def ema(x, n):
    cp, (x2,), one = _as2d([x], ("close",))
    if n == 1:
        return _back(x2.copy(), one)
    return _back(_ema_rows(cp, x2, P.first_valid(cp, x2), n), one)


def macd(x, fast, slow, signal):
    cp, (x2,), one = _as2d([x], ("close",))
    if slow < fast:
        fast, slow = slow, fast
    b = P.first_valid(cp, x2)
    line = _ema_rows(cp, x2, b + slow - fast, fast) - _ema_rows(cp, x2, b, slow)
    sig = _ema_rows(cp, line, b + slow - 1, signal)
    m = P.mask_before(cp, line, b + slow + signal - 2)
    return _back((m, sig, m - sig), one)


def rsi(x, n):
    cp, (x2,), one = _as2d([x], ("close",))
    d = cp.zeros_like(x2)
    d[:, 1:] = x2[:, 1:] - x2[:, :-1]
    return _back(_wilder_rows(cp, d, P.first_valid(cp, x2) + 1, n, True), one)


def trange(h, l, c):
    cp, ins, one = _as2d([h, l, c], ("high", "low", "close"))
    return _back(P.trange(cp, *ins), one)


def atr(h, l, c, n):
    cp, ins, one = _as2d([h, l, c], ("high", "low", "close"))
    tr = P.trange(cp, *ins)
    if n == 1:
        return _back(tr, one)
    return _back(_wilder_rows(cp, tr, P.first_valid(cp, *ins) + 1, n, False), one)


def stoch(h, l, c, fk, sk, sd):
    cp, ins, one = _as2d([h, l, c], ("high", "low", "close"))
    return _back(P.stoch(cp, *ins, fk, sk, sd), one)


def obv(c, v):
    cp, ins, one = _as2d([c, v], ("close", "volume"))
    return _back(P.obv(cp, *ins), one)


def moments(x, n, mode, up, dn):
    cp, (x2,), one = _as2d([x], ("close",))
    return _back(P.moments(cp, x2, n, mode, up, dn), one)


def vwap(p, v, n):
    cp, ins, one = _as2d([p, v], ("price", "volume"))
    return _back(P.vwap(cp, *ins, n), one)


def returns(x, n, log):
    cp, (x2,), one = _as2d([x], ("close",))
    return _back(P.returns(cp, x2, n, log), one)


def realized_vol(x, n, scale):
    cp, (x2,), one = _as2d([x], ("close",))
    return _back(P.realized_vol(cp, x2, n, scale), one)
