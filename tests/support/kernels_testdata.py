"""Test data for the kernel tests: made here, deterministic (no files)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Bars:
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def walk(n: int, seed: int = 7, start: float = 100.0) -> Bars:
    """A positive random walk with bars around it (high >= close >= low)."""
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    high = close * (1.0 + rng.random(n) * 0.01)
    low = close * (1.0 - rng.random(n) * 0.01)
    volume = rng.integers(1, 10_000, n).astype(np.float64)
    return Bars(high, low, close, volume)


def kind(name: str, n: int = 3000, seed: int = 7) -> Bars:
    """Named data kinds used across the tests."""
    b = walk(n, seed)
    if name == "walk":
        return b
    if name == "nan_lead":       # leading NaNs in every input (skipped, as TA-Lib)
        for a in (b.high, b.low, b.close, b.volume):
            a[:37] = np.nan
        return b
    if name == "nan_close":      # one NaN in the middle of close
        b.close[n // 2] = np.nan
        return b
    if name == "const":
        for a in (b.high, b.low, b.close):
            a[:] = 101.25
        return b
    if name == "short":          # fewer valid points than any lookback used
        for a in (b.high, b.low, b.close, b.volume):
            a[:-3] = np.nan
        return b
    raise KeyError(name)


def assert_matches(ours, ref, rtol: float = 1e-9, label: str = "") -> None:
    """Same NaN positions, and |ours - ref| <= rtol * max(|ref|, scale) where scale is the
    largest |ref| in the series: a relative error of 1e-9 measured against the output's
    magnitude (an output that crosses zero, like MACD's histogram, has no meaningful
    pointwise relative error near zero, in TA-Lib's own arithmetic either)."""
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    assert ours.shape == ref.shape, (label, ours.shape, ref.shape)
    nan_o = np.isnan(ours)
    nan_r = np.isnan(ref)
    mism = np.flatnonzero(nan_o != nan_r)
    assert mism.size == 0, f"{label}: NaN positions differ first at {mism[:5]}"
    if nan_r.all():
        return
    scale = np.nanmax(np.abs(ref))
    tol = rtol * np.maximum(np.abs(ref), scale)
    err = np.abs(ours - ref)
    bad = np.flatnonzero(~nan_r & (err > tol))
    assert bad.size == 0, (f"{label}: {bad.size} points off, first at {bad[0]}: "
                           f"ours={ours.flat[bad[0]]!r} ref={ref.flat[bad[0]]!r}")
