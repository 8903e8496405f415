"""Streaming window statistics: Bollinger bands / rolling std / z-score, VWAP (cumulative
and rolling), realized volatility, returns (see stream_ma for the contract; conventions are
the batch kernels' in cpu_stats)."""
from __future__ import annotations

import math

from numba import njit

from tickpath.kernels._nb import JIT, NAN, rebase_every
from tickpath.kernels.cpu.stats import DIRECT_MAX_PERIOD, neumaier
from tickpath.kernels.stream.ma import STREAM_MAX_PERIOD

# -- moments (BBANDS, STDDEV, ZSCORE): [period, count, mean, m2, ring...]
MOM_HEADER = 4
BBANDS_STATE_SIZE = STDDEV_STATE_SIZE = ZSCORE_STATE_SIZE = MOM_HEADER + STREAM_MAX_PERIOD


def moments_state_size(period: int) -> int:
    return MOM_HEADER + int(period)


@njit(**JIT)
def moments_init(row, period):
    if period < 2:
        return -2
    if row.shape[0] < MOM_HEADER + period:
        return -1
    row[:MOM_HEADER + period] = 0.0
    row[0] = period
    return 0


bbands_init = stddev_init = zscore_init = moments_init


@njit(**JIT)
def _ring_moments(row, n, count):
    # oldest point first, as the batch kernel sums: slots count % n .. n-1, then 0 .. count % n - 1
    # (two runs instead of a modulo per point, each an integer division; the same order of sums)
    first = MOM_HEADER + count % n
    end = MOM_HEADER + n
    s = 0.0
    for k in range(first, end):
        s += row[k]
    for k in range(MOM_HEADER, first):
        s += row[k]
    mean = s * (1.0 / n)         # the batch kernel's exact arithmetic
    m2 = 0.0
    for k in range(first, end):
        d = row[k] - mean
        m2 += d * d
    for k in range(MOM_HEADER, first):
        d = row[k] - mean
        m2 += d * d
    return mean, m2


@njit(**JIT)
def moments_update(row, x):
    """-> (mean, std) of the last `period` points (NaN, NaN during warm-up)."""
    n = int(row[0])
    count = int(row[1])
    if count == 0 and x != x:
        return NAN, NAN
    slot = MOM_HEADER + count % n
    old = row[slot]
    row[slot] = x
    count += 1
    row[1] = count
    if count < n:
        return NAN, NAN
    mean = row[2]
    m2 = row[3]
    if count == n or (n <= DIRECT_MAX_PERIOD and mean == mean):
        mean, m2 = _ring_moments(row, n, count)
    elif count % rebase_every(n) == 0 and mean == mean and m2 == m2:
        mean, m2 = _ring_moments(row, n, count)
    else:
        new_mean = mean + (x - old) * (1.0 / n)   # the batch kernel's exact arithmetic
        m2 += (x - old) * ((x - new_mean) + (old - mean))
        mean = new_mean
    row[2] = mean
    row[3] = m2
    var = m2 * (1.0 / n)
    return mean, (math.sqrt(var) if not (var <= 0.0) else 0.0)


@njit(**JIT)
def bbands_update(row, x, nbdevup, nbdevdn):
    """-> (upper, middle, lower)."""
    mean, sd = moments_update(row, x)
    return mean + nbdevup * sd, mean, mean - nbdevdn * sd


@njit(**JIT)
def stddev_update(row, x, nbdev):
    mean, sd = moments_update(row, x)
    return sd * nbdev + 0.0 * mean


@njit(**JIT)
def zscore_update(row, x):
    mean, sd = moments_update(row, x)
    return (x - mean) / sd if sd != 0.0 else 0.0 * sd * mean


# -- cumulative VWAP: [started, spv, cpv, sv, cv]
VWAP_STATE_SIZE = 5


@njit(**JIT)
def vwap_init(row):
    if row.shape[0] < VWAP_STATE_SIZE:
        return -1
    row[:VWAP_STATE_SIZE] = 0.0
    return 0


@njit(**JIT)
def vwap_update(row, price, volume):
    if row[0] == 0.0:
        if price != price or volume != volume:
            return NAN
        row[0] = 1.0
    row[1], row[2] = neumaier(row[1], row[2], price * volume)
    row[3], row[4] = neumaier(row[3], row[4], volume)
    den = row[3] + row[4]
    return (row[1] + row[2]) / den if den != 0.0 else NAN


# -- rolling VWAP: [period, count, spv, cpv, sv, cv, ring_pv(n), ring_v(n)]
RVWAP_HEADER = 6
ROLLING_VWAP_STATE_SIZE = RVWAP_HEADER + 2 * STREAM_MAX_PERIOD


def rolling_vwap_state_size(period: int) -> int:
    return RVWAP_HEADER + 2 * int(period)


@njit(**JIT)
def rolling_vwap_init(row, period):
    if period < 1:
        return -2
    if row.shape[0] < RVWAP_HEADER + 2 * period:
        return -1
    row[:RVWAP_HEADER + 2 * period] = 0.0
    row[0] = period
    return 0


@njit(**JIT)
def rolling_vwap_update(row, price, volume):
    n = int(row[0])
    count = int(row[1])
    if count == 0 and (price != price or volume != volume):
        return NAN
    pv = price * volume
    row[2], row[3] = neumaier(row[2], row[3], pv)
    row[4], row[5] = neumaier(row[4], row[5], volume)
    s_pv = RVWAP_HEADER + count % n
    s_v = RVWAP_HEADER + n + count % n
    if count >= n:
        row[2], row[3] = neumaier(row[2], row[3], -row[s_pv])
        row[4], row[5] = neumaier(row[4], row[5], -row[s_v])
    row[s_pv] = pv
    row[s_v] = volume
    row[1] = count + 1
    if count >= n and count % rebase_every(n) == 0 and row[2] == row[2] and row[4] == row[4]:
        a = 0.0                      # exact re-base from the rings, as the batch kernel
        w = 0.0
        for q in range(n):
            a += row[RVWAP_HEADER + q]
            w += row[RVWAP_HEADER + n + q]
        row[2], row[3], row[4], row[5] = a, 0.0, w, 0.0
    if count + 1 < n:
        return NAN
    den = row[4] + row[5]
    return (row[2] + row[3]) / den if den != 0.0 else NAN


# -- realized volatility: [period, count, prev, s, comp, scale, ring(n)]
RVOL_HEADER = 6
REALIZED_VOL_STATE_SIZE = RVOL_HEADER + STREAM_MAX_PERIOD


def realized_vol_state_size(period: int) -> int:
    return RVOL_HEADER + int(period)


@njit(**JIT)
def realized_vol_init(row, period, scale):
    if period < 1 or not (scale == scale):
        return -2
    if row.shape[0] < RVOL_HEADER + period:
        return -1
    row[:RVOL_HEADER + period] = 0.0
    row[0] = period
    row[5] = scale
    return 0


@njit(**JIT)
def realized_vol_update(row, x):
    n = int(row[0])
    count = int(row[1])
    if count == 0:
        if x != x:
            return NAN
        row[1] = 1
        row[2] = x
        return NAN
    pv = row[2]
    row[2] = x
    r = math.log(x / pv) if (x > 0.0 and pv > 0.0) else NAN
    q = r * r
    k = count - 1                    # index of this return
    row[3], row[4] = neumaier(row[3], row[4], q)
    slot = RVOL_HEADER + k % n
    if k >= n:
        row[3], row[4] = neumaier(row[3], row[4], -row[slot])
    row[slot] = q
    row[1] = count + 1
    if k >= n and k % rebase_every(n) == 0 and row[3] == row[3]:
        a = 0.0                      # exact re-base from the ring, as the batch kernel
        for m in range(n):
            a += row[RVOL_HEADER + m]
        row[3], row[4] = a, 0.0
    if k + 1 < n:
        return NAN
    tot = row[3] + row[4]
    return row[5] * math.sqrt(tot) if not (tot < 0.0) else 0.0


# -- returns / log returns: [period, count, log, pad, ring(period)]
RET_HEADER = 4
RETURNS_STATE_SIZE = RET_HEADER + STREAM_MAX_PERIOD


def returns_state_size(period: int) -> int:
    return RET_HEADER + int(period)


@njit(**JIT)
def returns_init(row, period, log):
    if period < 1:
        return -2
    if row.shape[0] < RET_HEADER + period:
        return -1
    row[:RET_HEADER + period] = 0.0
    row[0] = period
    row[2] = 1.0 if log else 0.0
    return 0


@njit(**JIT)
def returns_update(row, x):
    n = int(row[0])
    count = int(row[1])
    if count == 0 and x != x:
        return NAN
    slot = RET_HEADER + count % n
    pv = row[slot]
    row[slot] = x
    row[1] = count + 1
    if count < n:
        return NAN
    if row[2] != 0.0:
        return math.log(x / pv) if (x > 0.0 and pv > 0.0) else NAN
    return (x - pv) / pv if pv != 0.0 else 0.0
