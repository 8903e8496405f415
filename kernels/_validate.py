"""Argument checks for the batch kernels: every bad input is refused here, before a kernel runs.

The numba kernels do not bounds-check, so this module is what makes them safe: it checks
array type, dtype, contiguity, dimensionality, matching shapes and integer parameters, and
turns each failure into a ConfigError (a ValueError) whose key=value message names the
argument. Infinite values are found inside the kernels (one compare per element, free next to
the arithmetic) and reported by batch.py with the argument name and position.

Accepted: float64 (used as is) and float32 (upcast to float64 once; results are float64).
Refused: integer/bool/object dtypes, non-contiguous arrays, 0-D or >2-D arrays, periods that
are not integers, are < 1 (or below an indicator's minimum), or exceed the time axis.
"""
from __future__ import annotations

import numbers

import numpy as np

from tickpath.runtime.core.errors import ConfigError


def is_cupy_array(a) -> bool:
    """True for a cupy ndarray, without importing cupy."""
    return type(a).__module__.split(".")[0] == "cupy"


def check_series(a, name: str, xp=np) -> object:
    """Validate one input series (1-D or 2-D instruments x time); return it as float64."""
    if not (isinstance(a, np.ndarray) or is_cupy_array(a)):
        raise ConfigError("input must be an ndarray", argument=name, type=type(a).__name__)
    if a.ndim not in (1, 2):
        raise ConfigError("input must be 1-D (time) or 2-D (instruments x time)",
                          argument=name, ndim=a.ndim)
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        raise ConfigError("input must be float64 or float32", argument=name, dtype=str(a.dtype))
    if not a.flags.c_contiguous:
        raise ConfigError("input must be C-contiguous (pass np.ascontiguousarray(x))",
                          argument=name, strides=tuple(a.strides))
    if a.shape[-1] == 0:
        raise ConfigError("input has no points", argument=name, shape=tuple(a.shape))
    if a.dtype.itemsize == 4:
        return a.astype(xp.float64)   # upcast once; all arithmetic is float64
    return a


def check_same_shape(arrays: dict) -> None:
    """All multi-input arrays (high/low/close/volume) must have one shape."""
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ConfigError("inputs differ in shape", **shapes)


def check_period(value, name: str, n_points: int, minimum: int = 1) -> int:
    """An integer period in [minimum, n_points]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError("period must be an integer", argument=name, value=value)
    value = int(value)
    if value < minimum:
        raise ConfigError("period too small", argument=name, value=value, minimum=minimum)
    if value > n_points:
        raise ConfigError("period longer than the series", argument=name, value=value,
                          n_points=n_points)
    return value


def check_finite_scalar(value, name: str) -> float:
    """A finite float parameter (nbdev, scale)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError("parameter must be a number", argument=name, value=value) from None
    if not np.isfinite(f):
        raise ConfigError("parameter must be finite", argument=name, value=value)
    return f
