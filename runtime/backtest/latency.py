"""Latency models of a backtest: feed (exchange timestamp → the strategy's clock), order entry
(the strategy's send → the exchange) and response (the exchange → the strategy).

One representation for every model: a quantile table (float64, ns, non-decreasing) that the
hot loop samples by inverse transform — u from the run's own splitmix64 stream, linear
interpolation between neighbouring quantiles. A constant is a one-entry table; a named
distribution is the sorted values of 4096 seeded draws (its empirical quantiles); a
`.hgrm` file (HdrHistogram percentile distribution, as `tickpath bench --t2t` writes it) is
its (percentile, value) rows resampled onto an even grid. So a backtest can run with the
latency the live system measured on the user's own host, and the loop has one code path.

Config ([backtest] keys feed_latency / entry_latency / response_latency), each one of:
    1500                                  constant, ns
    "const:1500"                          the same
    "normal:MEAN,SD" "lognormal:MEDIAN,SIGMA" "exponential:MEAN" "uniform:LO,HI"   (ns)
    "hgrm:PATH" or "hgrm:PATH:UNIT"       UNIT = ns|us|ms (default us, the .hgrm default)

Determinism: the rng state is one uint64 per run (seeded from [backtest] seed), so the same
files and config draw the same latencies, byte for byte, serial or on Ray.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit

from tickpath.runtime.core.errors import ConfigError

N_DRAWS = 4096          # draws behind a named distribution's quantile table
N_HGRM_POINTS = 1024    # even percentile grid a .hgrm is resampled onto
_UNITS_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6}


def constant(value_ns: float) -> np.ndarray:
    return np.array([float(value_ns)], dtype=np.float64)


def _positive_table(values: np.ndarray, key: str, spec) -> np.ndarray:
    v = np.sort(np.asarray(values, dtype=np.float64))
    if len(v) == 0 or not np.all(np.isfinite(v)):
        raise ConfigError("latency model gives no finite values", key=key, value=spec)
    return np.maximum(v, 0.0)   # a latency below zero would be look-ahead


def parse_hgrm(path: str, unit: str = "us", key: str = "backtest.latency") -> np.ndarray:
    """Quantile table (ns) from an HdrHistogram percentile distribution file."""
    if unit not in _UNITS_NS:
        raise ConfigError("unknown .hgrm unit", key=key, unit=unit, allowed=sorted(_UNITS_NS))
    try:
        with open(path, "r", encoding="ascii", errors="strict") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("cannot read latency histogram", key=key, path=path,
                          reason=getattr(exc, "strerror", None) or str(exc)) from exc
    pts = []
    header = False
    for ln_no, line in enumerate(lines, 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            continue
        parts = s.split()
        if parts[0] == "Value":
            header = True
            continue
        try:
            value, pct = float(parts[0]), float(parts[1])
            if len(parts) < 3:
                raise ValueError("short row")
            int(float(parts[2]))
        except (ValueError, IndexError):
            raise ConfigError("latency histogram does not parse (rows must be: Value Percentile "
                              "TotalCount ...)", key=key, path=path, line=ln_no, text=s[:60]) from None
        if not (np.isfinite(value) and 0.0 <= pct <= 1.0 and value >= 0):
            raise ConfigError("latency histogram row out of range", key=key, path=path,
                              line=ln_no, value=value, percentile=pct)
        pts.append((pct, value * _UNITS_NS[unit]))
    if not header or len(pts) < 2:
        raise ConfigError("latency histogram does not parse (no 'Value Percentile' header and "
                          "at least two rows)", key=key, path=path, rows=len(pts))
    p = np.array([x[0] for x in pts])
    v = np.array([x[1] for x in pts])
    if np.any(np.diff(p) < 0) or np.any(np.diff(v) < 0):
        raise ConfigError("latency histogram is not monotonic", key=key, path=path)
    grid = np.linspace(0.0, 1.0, N_HGRM_POINTS)
    # a percentile repeated at the top (HdrHistogram's last rows) keeps the largest value
    p_u, idx = np.unique(p[::-1], return_index=True)
    v_u = v[::-1][idx]
    return _positive_table(np.interp(grid, p_u, v_u), key, path)


def from_spec(spec, key: str, seed: int, base_dir: str = ".") -> np.ndarray:
    """Quantile table (ns) for one config value (see the module doc)."""
    if isinstance(spec, bool):
        raise ConfigError("latency must be ns or a model string", key=key, value=spec)
    if isinstance(spec, (int, float)):
        if not np.isfinite(spec) or spec < 0:
            raise ConfigError("latency must be >= 0 ns", key=key, value=spec)
        return constant(spec)
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError("latency must be ns or 'kind:params' (const, normal, lognormal, "
                          "exponential, uniform, hgrm)", key=key, value=spec)
    kind, _, rest = spec.partition(":")
    if kind == "hgrm":
        path, _, unit = rest.partition(":") if rest.count(":") == 1 else (rest, "", "")
        path = path if os.path.isabs(path) else os.path.join(base_dir, path)
        return parse_hgrm(path, unit or "us", key)
    try:
        args = [float(x) for x in rest.split(",")]
    except ValueError:
        raise ConfigError("latency parameters must be numbers", key=key, value=spec) from None
    rng = np.random.default_rng(seed)
    want = {"const": 1, "normal": 2, "lognormal": 2, "exponential": 1, "uniform": 2}
    if kind not in want:
        raise ConfigError("unknown latency model", key=key, value=spec, allowed=sorted(want) + ["hgrm"])
    if len(args) != want[kind] or any(a < 0 for a in args):
        raise ConfigError("latency model takes non-negative parameters", key=key, value=spec,
                          expects=want[kind])
    if kind == "const":
        return constant(args[0])
    if kind == "normal":
        draws = rng.normal(args[0], args[1], N_DRAWS)
    elif kind == "lognormal":
        draws = args[0] * np.exp(rng.normal(0.0, args[1], N_DRAWS))
    elif kind == "exponential":
        draws = rng.exponential(args[0], N_DRAWS)
    else:
        if args[1] < args[0]:
            raise ConfigError("uniform latency needs LO <= HI", key=key, value=spec)
        draws = rng.uniform(args[0], args[1], N_DRAWS)
    return _positive_table(draws, key, spec)


# ---------------------------------------------------------------- hot path

@njit(nogil=True, cache=True, _nrt=False, inline="always")
def splitmix64(state):
    """Next u64 of the stream kept in state[0] (Steele et al.'s splitmix64)."""
    state[0] = state[0] + np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(nogil=True, cache=True, _nrt=False, inline="always")   # once per recorded event
def draw_ns(table, rng):
    """One latency (ns, int64) from a quantile table; a constant draws nothing."""
    n = table.shape[0]
    if n == 1:
        return np.int64(table[0])
    u = np.float64(splitmix64(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)  # [0, 1)
    x = u * (n - 1)
    i = np.int64(x)
    if i >= n - 1:
        return np.int64(table[n - 1])
    f = x - i
    return np.int64(table[i] + f * (table[i + 1] - table[i]))
