"""tickpath.kernels: technical indicators on numba (CPU) or CuPy (GPU), one API.

Batch (1-D series or 2-D instruments x time; numpy in -> numpy out, cupy in -> cupy out):
    sma ema wma macd rsi trange atr stoch obv bbands stddev zscore vwap returns
    log_returns realized_vol
Streaming (numba-callable, O(1) per tick, over a float64 state row; see stream_*.py):
    X_STATE_SIZE, X_init(state_row, params...), X_update(state_row, inputs...) for each X.
Backend: `backend()` -> Backend(name, reason, forced, device); TICKPATH_KERNELS=numba|cupy
forces one. Conventions match TA-Lib (documented per module); see kernels/README.md.
"""
from tickpath.runtime.sys.jitcache import use_versioned_cache as _use_versioned_cache

_use_versioned_cache()   # numba's cache per version of the sources (runtime/sys/jitcache.py says why)
from tickpath.kernels._backend import (
    GPU_MIN_ELEMENTS,
    GPU_MIN_ROWS,
    Backend,
    backend,
    reset_backend,
)
_BATCH = ("atr", "bbands", "ema", "log_returns", "macd", "obv", "realized_vol", "returns", "rsi",
          "sma", "stddev", "stoch", "trange", "vwap", "wma", "zscore")


def __getattr__(name):
    # the batch functions load on first use: importing numba costs ~0.2 s, and `tickpath info`
    # (which only asks for the backend) should not pay it
    if name in _BATCH:
        from tickpath.kernels import batch
        return getattr(batch, name)
    raise AttributeError(f"module 'tickpath.kernels' has no attribute {name!r}")


__all__ = [
    "Backend", "backend", "reset_backend", "GPU_MIN_ROWS", "GPU_MIN_ELEMENTS",
    "sma", "ema", "wma", "macd", "rsi", "trange", "atr", "stoch", "obv", "bbands", "stddev",
    "zscore", "vwap", "returns", "log_returns", "realized_vol",
]
