"""GPU benchmark for tickpath.kernels, ready for a GPU host:

    python -m tickpath.bench.scenarios.gpu_bench [--rows 5000] [--cols 2000] [--repeat 10]

Times, on the same universe: the numba CPU kernels (preallocated outputs), the CuPy path
on device-resident arrays (kernel time only, synchronised), and the CuPy path from host
arrays (copies included). Prints medians and spreads per indicator, the device and the CPU.
Without cupy or a device it says why and exits 0 after the CPU numbers.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tickpath.kernels as K
from tickpath.kernels import _backend

INDICATORS = {
    "sma20": lambda m, x: m.sma(x, 20),
    "ema20": lambda m, x: m.ema(x, 20),
    "rsi14": lambda m, x: m.rsi(x, 14),
    "macd": lambda m, x: m.macd(x, 12, 26, 9),
    "bbands20": lambda m, x: m.bbands(x, 20, 2.0, 2.0),
    "zscore20": lambda m, x: m.zscore(x, 20),
}


def _time(fn, repeat, sync=None):
    fn()
    if sync:
        sync()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out), min(out), max(out)


from tickpath.bench.scenarios.demo import cpu_model as _cpu_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--cols", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, (args.rows, args.cols)), axis=1))
    print(f"universe {args.rows} x {args.cols}, CPU: {_cpu_model()}")
    _backend.reset_backend()
    b = K.backend()
    print(f"backend: {b.name} ({b.reason}) {b.device}")
    rows = []
    import os
    saved = os.environ.get(_backend.ENV_VAR)
    os.environ[_backend.ENV_VAR] = "numba"
    _backend.reset_backend()
    for name, fn in INDICATORS.items():
        rows.append((name, "numba (CPU)", *_time(lambda: fn(K, x), args.repeat)))
    if saved is None:
        os.environ.pop(_backend.ENV_VAR)
    else:
        os.environ[_backend.ENV_VAR] = saved
    _backend.reset_backend()
    if b.name == "cupy":
        cp = _backend.cupy_module()
        xd = cp.asarray(x)
        sync = cp.cuda.Device().synchronize
        for name, fn in INDICATORS.items():
            rows.append((name, "cupy (device arrays)", *_time(lambda: fn(K, xd), args.repeat, sync)))
            rows.append((name, "cupy (host in/out)", *_time(lambda: fn(K, x), args.repeat, sync)))
    else:
        print(f"GPU rows skipped: {b.reason}")
    print(f"{'indicator':<10} {'path':<22} {'median ms':>10} {'min ms':>9} {'max ms':>9}")
    for name, path, med, lo, hi in rows:
        print(f"{name:<10} {path:<22} {med:>10.2f} {lo:>9.2f} {hi:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
