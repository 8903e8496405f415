"""Streaming moving averages for the runtime's hot loop: SMA, EMA, WMA, MACD.

Each indicator X is three plain numba functions over a float64 state row (no jitclass, so
the runtime keeps one 2-D array [n_instruments, X_STATE_SIZE] per indicator and calls
X_update(state[loc], x) per event):
    X_STATE_SIZE             row length that fits every period up to STREAM_MAX_PERIOD
    X_init(row, params...)   -> 0 ok, -1 row too short, -2 bad parameter (never raises)
    X_update(row, inputs...) -> output (NaN during warm-up), O(1) per tick
After N updates the output equals the batch kernel's last value on the same N points (same
conventions: leading NaNs ignored, TA-Lib seeding, a NaN after the start poisons). Window
sums are re-based exactly from the row's ring every `rebase_every(n)` ticks: amortised O(1),
one O(n) tick per block, so nothing drifts over a trading day.
"""
from __future__ import annotations

from numba import njit

from tickpath.kernels._nb import JIT, NAN, rebase_every

STREAM_MAX_PERIOD = 256

# -- EMA: [period, k, count, seed_sum, prev]
EMA_STATE_SIZE = 5


@njit(**JIT)
def ema_init(row, period):
    if row.shape[0] < EMA_STATE_SIZE:
        return -1
    if period < 1:
        return -2
    row[:EMA_STATE_SIZE] = 0.0
    row[0] = period
    row[1] = 2.0 / (period + 1)
    return 0


@njit(**JIT)
def ema_update(row, x):
    n = int(row[0])
    if n == 1:
        return x                     # TA-Lib's EMA(1) is the input itself
    count = row[2]
    if count == 0.0 and x != x:
        return NAN                   # leading NaNs are skipped, as in the batch kernel
    count += 1.0
    row[2] = count
    if count < n:
        row[3] += x
        return NAN
    if count == n:
        prev = (row[3] + x) / n
    else:
        k = row[1]
        prev = row[4] * (1.0 - k) + k * x
    row[4] = prev
    return prev


# -- SMA: [period, count, sum, pad, ring...]
SMA_HEADER = 4
SMA_STATE_SIZE = SMA_HEADER + STREAM_MAX_PERIOD


def sma_state_size(period: int) -> int:
    return SMA_HEADER + int(period)


@njit(**JIT)
def sma_init(row, period):
    if period < 1:
        return -2
    if row.shape[0] < SMA_HEADER + period:
        return -1
    row[:SMA_HEADER + period] = 0.0
    row[0] = period
    return 0


@njit(**JIT)
def sma_update(row, x):
    n = int(row[0])
    count = int(row[1])
    if count == 0 and x != x:
        return NAN
    s = row[2]
    slot = SMA_HEADER + count % n
    if count >= n:
        s += x - row[slot]
    else:
        s += x
    row[slot] = x
    count += 1
    row[1] = count
    if count > n and count % rebase_every(n) == 0 and s == s:
        s = 0.0
        for i in range(n):
            s += row[SMA_HEADER + i]
    row[2] = s
    if count < n:
        return NAN
    return s / n if n > 1 else x + 0.0 * s


# -- WMA: [period, count, S, W, ring...]
WMA_HEADER = 4
WMA_STATE_SIZE = WMA_HEADER + STREAM_MAX_PERIOD


def wma_state_size(period: int) -> int:
    return WMA_HEADER + int(period)


@njit(**JIT)
def wma_init(row, period):
    if period < 1:
        return -2
    if row.shape[0] < WMA_HEADER + period:
        return -1
    row[:WMA_HEADER + period] = 0.0
    row[0] = period
    return 0


@njit(**JIT)
def wma_update(row, x):
    n = int(row[0])
    if n == 1:
        return x                     # TA-Lib's WMA(1) is the input itself
    count = int(row[1])
    if count == 0 and x != x:
        return NAN
    S = row[2]
    W = row[3]
    slot = WMA_HEADER + count % n
    if count >= n:
        W -= S                       # every point loses one weight...
        S -= row[slot]               # ...and the oldest leaves
    W += x * (count + 1 if count < n else n)
    S += x
    row[slot] = x
    count += 1
    row[1] = count
    if count > n and count % rebase_every(n) == 0 and W == W and S == S:
        S = 0.0
        W = 0.0
        for i in range(n):           # oldest (weight 1) .. newest (weight n)
            v = row[WMA_HEADER + (count + i) % n]
            S += v
            W += v * (i + 1)
    row[2] = S
    row[3] = W
    if count < n:
        return NAN
    return W / (n * (n + 1) / 2.0)


# -- MACD: [fast, slow, signal, count, s_slow, s_fast, e_fast, e_slow, s_sig, sig]
MACD_STATE_SIZE = 10


@njit(**JIT)
def macd_init(row, fast, slow, signal):
    if row.shape[0] < MACD_STATE_SIZE:
        return -1
    if fast < 1 or slow < 1 or signal < 1:
        return -2
    if slow < fast:
        fast, slow = slow, fast
    row[:MACD_STATE_SIZE] = 0.0
    row[0] = fast
    row[1] = slow
    row[2] = signal
    return 0


@njit(**JIT)
def macd_update(row, x):
    """-> (macd, signal, hist); NaN until slow + signal - 1 points have been seen."""
    fast = int(row[0])
    slow = int(row[1])
    signal = int(row[2])
    k = int(row[3])
    if k == 0 and x != x:
        return NAN, NAN, NAN
    row[3] = k + 1
    if k < slow:
        row[4] += x
        if k >= slow - fast:
            row[5] += x
        if k < slow - 1:
            return NAN, NAN, NAN
        e_fast = row[5] / fast
        e_slow = row[4] / slow
        row[6] = e_fast
        row[7] = e_slow
        m = e_fast - e_slow
        row[8] = m
    else:
        kf = 2.0 / (fast + 1)
        ks = 2.0 / (slow + 1)
        e_fast = row[6] * (1.0 - kf) + kf * x
        e_slow = row[7] * (1.0 - ks) + ks * x
        row[6] = e_fast
        row[7] = e_slow
        m = e_fast - e_slow
        if k < slow + signal - 1:
            row[8] += m
    last_seed = slow + signal - 2
    if k < last_seed:
        return NAN, NAN, NAN
    if k == last_seed:
        g = row[8] / signal
    else:
        kg = 2.0 / (signal + 1)
        g = row[9] * (1.0 - kg) + kg * m
    row[9] = g
    return m, g, m - g
