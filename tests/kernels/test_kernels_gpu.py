"""The GPU path without a GPU: xp programs run with numpy against the numba kernels, the CUDA
source compiled with nvcc when present; then the real thing where cupy and a device exist."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

import tickpath.kernels as K
from tickpath.kernels.gpu import cupy_batch as gpu
from tickpath.kernels.gpu import xp_programs as P


def _universe():
    rng = np.random.default_rng(5)
    xs = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(6, 700)), axis=1))
    xs[1, :50] = np.nan      # listed later
    xs[2, 300] = np.nan      # a bad print
    xs[3, :] = np.nan        # no data yet
    xs[4, :695] = np.nan     # fewer points than any lookback
    hs, ls = xs * 1.005, xs * 0.995
    hs[5, 400] = np.nan
    vs = rng.integers(1, 100, xs.shape).astype(np.float64)
    return xs, hs, ls, vs


def _pairs(xp, xs, hs, ls, vs, ours):
    """(label, gpu-program result, numba result) for every indicator."""
    out = []
    for n in (1, 2, 5, 20):
        out += [(f"sma{n}", P.sma(xp, xs, n) if ours is None else ours.sma(xs, n), K.sma(xs, n)),
                (f"wma{n}", P.wma(xp, xs, n) if ours is None else ours.wma(xs, n), K.wma(xs, n)),
                (f"ema{n}", P.ema(xp, xs, n) if ours is None else ours.ema(xs, n), K.ema(xs, n)),
                (f"atr{n}", P.atr(xp, hs, ls, xs, n) if ours is None else ours.atr(hs, ls, xs, n),
                 K.atr(hs, ls, xs, n)),
                (f"vwap{n}", P.vwap(xp, xs, vs, n) if ours is None else ours.vwap(xs, vs, n),
                 K.vwap(xs, vs, n)),
                (f"rvol{n}", P.realized_vol(xp, xs, n, 1.0) if ours is None
                 else ours.realized_vol(xs, n, 1.0), K.realized_vol(xs, n, 1.0)),
                (f"ret{n}", P.returns(xp, xs, n, False) if ours is None
                 else ours.returns(xs, n, False), K.returns(xs, n)),
                (f"logret{n}", P.returns(xp, xs, n, True) if ours is None
                 else ours.returns(xs, n, True), K.log_returns(xs, n))]
        if n > 1:
            out += [(f"rsi{n}", P.rsi(xp, xs, n) if ours is None else ours.rsi(xs, n), K.rsi(xs, n)),
                    (f"bbands{n}", P.moments(xp, xs, n, 0, 2.0, 1.5) if ours is None
                     else ours.moments(xs, n, 0, 2.0, 1.5), K.bbands(xs, n, 2.0, 1.5)),
                    (f"zscore{n}", P.moments(xp, xs, n, 2, 1.0, 0.0) if ours is None
                     else ours.moments(xs, n, 2, 1.0, 0.0), K.zscore(xs, n))]
    out += [("vwap", P.vwap(xp, xs, vs, 0) if ours is None else ours.vwap(xs, vs, 0), K.vwap(xs, vs)),
            ("obv", P.obv(xp, xs, vs) if ours is None else ours.obv(xs, vs), K.obv(xs, vs)),
            ("trange", P.trange(xp, hs, ls, xs) if ours is None else ours.trange(hs, ls, xs),
             K.trange(hs, ls, xs))]
    for p in [(12, 26, 9), (26, 12, 9), (1, 5, 1)]:
        out.append((f"macd{p}", P.macd(xp, xs, *p) if ours is None else ours.macd(xs, *p),
                    K.macd(xs, *p)))
    for p in [(5, 3, 3), (1, 1, 1), (14, 1, 5), (9, 4, 1)]:
        out.append((f"stoch{p}", P.stoch(xp, hs, ls, xs, *p) if ours is None
                    else ours.stoch(hs, ls, xs, *p), K.stoch(hs, ls, xs, *p)))
    return out


def _assert_same(label, a, b, to_host=np.asarray):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        x = to_host(x)
        assert (np.isnan(x) == np.isnan(y)).all(), label
        ok = ~np.isnan(y)
        scale = np.abs(y[ok]).max() if ok.any() else 1.0
        assert (np.abs(x[ok] - y[ok]) <= 1e-9 * np.maximum(np.abs(y[ok]), scale)).all(), label


def test_xp_programs_with_numpy_equal_numba():
    xs, hs, ls, vs = _universe()
    for label, a, b in _pairs(np, xs, hs, ls, vs, None):
        _assert_same(label, a, b)


def test_cuda_source_compiles_with_nvcc(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not installed: the CUDA source is compiled only where a toolkit is")
    for arch in ("sm_80", "sm_90"):
        res = subprocess.run([nvcc, "-c", str(gpu.CU_SOURCE), "-arch", arch, "-o",
                              str(tmp_path / f"scan_{arch}.o")], capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr


def _device_cupy():
    cp = pytest.importorskip("cupy", reason="cupy not installed: GPU tests run on GPU hosts")
    try:
        n = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver / no device
        pytest.skip(f"cupy installed but no usable CUDA device: {exc}")
    if n < 1:
        pytest.skip("cupy installed but no CUDA device")
    return cp


def test_gpu_kernels_equal_numba_on_device():
    cp = _device_cupy()
    xs, hs, ls, vs = _universe()
    dev = [cp.asarray(a) for a in (xs, hs, ls, vs)]
    pairs = _pairs(cp, *dev, gpu)
    for (label, a, _), (_, _, b) in zip(pairs, _pairs(np, xs, hs, ls, vs, None)):
        _assert_same(label, a, b, to_host=cp.asnumpy)


def test_cupy_in_cupy_out_on_device():
    cp = _device_cupy()
    x = cp.asarray(100 + np.cumsum(np.random.default_rng(1).normal(size=(3, 500)), axis=1))
    out = K.ema(x, 20)
    assert isinstance(out, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(out), K.ema(cp.asnumpy(x), 20), rtol=1e-12)
