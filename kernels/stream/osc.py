"""Streaming oscillators and ranges: RSI, ATR, OBV, stochastic (see stream_ma for the
X_STATE_SIZE / X_init / X_update contract). Conventions are the batch kernels' (cpu_osc)."""
from __future__ import annotations

from numba import njit

from tickpath.kernels._nb import JIT, NAN
from tickpath.kernels.cpu.osc import ring_sma, true_range
from tickpath.kernels.stream.ma import STREAM_MAX_PERIOD

# -- RSI: [period, count, prev, gain, loss]
RSI_STATE_SIZE = 5


@njit(**JIT)
def rsi_init(row, period):
    if row.shape[0] < RSI_STATE_SIZE:
        return -1
    if period < 2:
        return -2
    row[:RSI_STATE_SIZE] = 0.0
    row[0] = period
    return 0


@njit(**JIT)
def rsi_update(row, x):
    n = int(row[0])
    count = int(row[1])
    if count == 0:
        if x != x:
            return NAN
        row[1] = 1
        row[2] = x
        return NAN
    d = x - row[2]
    row[2] = x
    gain = 0.0 if d < 0.0 else d
    loss = -d if d < 0.0 else 0.0
    count += 1
    row[1] = count
    if count <= n + 1:
        g = row[3] + gain
        l = row[4] + loss
        if count <= n:
            row[3] = g
            row[4] = l
            return NAN
        g /= n
        l /= n
    else:
        keep = (n - 1.0) / n
        inv_n = 1.0 / n
        g = row[3] * keep + gain * inv_n
        l = row[4] * keep + loss * inv_n
    row[3] = g
    row[4] = l
    t = g + l
    return 100.0 * (g / t) if (t > 0.0 or t < 0.0) else 0.0


# -- ATR: [period, count, prev_close, avg]
ATR_STATE_SIZE = 4


@njit(**JIT)
def atr_init(row, period):
    if row.shape[0] < ATR_STATE_SIZE:
        return -1
    if period < 1:
        return -2
    row[:ATR_STATE_SIZE] = 0.0
    row[0] = period
    return 0


@njit(**JIT)
def atr_update(row, high, low, close):
    n = int(row[0])
    count = int(row[1])
    if count == 0:
        if high != high or low != low or close != close:
            return NAN
        row[1] = 1
        row[2] = close
        return NAN
    tr = true_range(high, low, row[2])
    row[2] = close
    count += 1
    row[1] = count
    if n == 1:
        return tr
    if count <= n + 1:
        a = row[3] + tr
        if count <= n:
            row[3] = a
            return NAN
        a /= n
    else:
        a = row[3] * ((n - 1.0) / n) + tr * (1.0 / n)
    row[3] = a
    return a


# -- OBV: [started, prev_close, total, comp]
OBV_STATE_SIZE = 4


@njit(**JIT)
def obv_init(row):
    if row.shape[0] < OBV_STATE_SIZE:
        return -1
    row[:OBV_STATE_SIZE] = 0.0
    return 0


@njit(**JIT)
def obv_update(row, close, volume):
    if row[0] == 0.0:
        if close != close or volume != volume:
            return NAN
        row[0] = 1.0
        row[1] = close
        row[2] = volume
        return volume
    d = 0.0
    if close > row[1]:
        d = volume
    elif close < row[1]:
        d = -volume
    row[1] = close
    total = row[2]
    t = total + d
    if abs(total) >= abs(d):
        row[3] += (total - t) + d
    else:
        row[3] += (d - t) + total
    row[2] = t
    return t + row[3]


# -- STOCH: header, then rings: highs(fk) lows(fk) dq_hi(fk) dq_lo(fk) fastk(sk) slowk(sd)
STOCH_HEADER = 16
STOCH_STATE_SIZE = STOCH_HEADER + 6 * STREAM_MAX_PERIOD
_FK, _SK, _SD, _I, _HH0, _HH1, _LL0, _LL1, _NK, _ND, _SUMK, _SUMD, _POISON = range(13)


def stoch_state_size(fastk_period: int, slowk_period: int, slowd_period: int) -> int:
    return STOCH_HEADER + 4 * int(fastk_period) + int(slowk_period) + int(slowd_period)


@njit(**JIT)
def stoch_init(row, fastk_period, slowk_period, slowd_period):
    if fastk_period < 1 or slowk_period < 1 or slowd_period < 1:
        return -2
    need = STOCH_HEADER + 4 * fastk_period + slowk_period + slowd_period
    if row.shape[0] < need:
        return -1
    row[:need] = 0.0
    row[_FK] = fastk_period
    row[_SK] = slowk_period
    row[_SD] = slowd_period
    row[_I] = -1.0          # index of the last accepted bar
    return 0


@njit(**JIT)
def stoch_update(row, high, low, close):
    """-> (slow %K, slow %D)."""
    fk = int(row[_FK])
    sk = int(row[_SK])
    sd = int(row[_SD])
    i = int(row[_I])
    if i < 0 and (high != high or low != low or close != close):
        return NAN, NAN
    i += 1
    row[_I] = i
    if row[_POISON] != 0.0 or high != high or low != low:
        row[_POISON] = 1.0   # tickpath's policy: a NaN high/low poisons the rest
        return NAN, NAN
    o_h = STOCH_HEADER
    o_l = o_h + fk
    o_dh = o_l + fk
    o_dl = o_dh + fk
    o_k = o_dl + fk
    o_d = o_k + sk
    hh0 = int(row[_HH0])
    hh1 = int(row[_HH1])
    ll0 = int(row[_LL0])
    ll1 = int(row[_LL1])
    # expire, then push (monotone deques of bar indices; values in the h/l rings)
    if hh1 > hh0 and int(row[o_dh + hh0 % fk]) <= i - fk:
        hh0 += 1
    while hh1 > hh0 and row[o_h + int(row[o_dh + (hh1 - 1) % fk]) % fk] <= high:
        hh1 -= 1
    if ll1 > ll0 and int(row[o_dl + ll0 % fk]) <= i - fk:
        ll0 += 1
    while ll1 > ll0 and row[o_l + int(row[o_dl + (ll1 - 1) % fk]) % fk] >= low:
        ll1 -= 1
    row[o_h + i % fk] = high
    row[o_l + i % fk] = low
    row[o_dh + hh1 % fk] = i
    hh1 += 1
    row[o_dl + ll1 % fk] = i
    ll1 += 1
    row[_HH0] = hh0
    row[_HH1] = hh1
    row[_LL0] = ll0
    row[_LL1] = ll1
    if i < fk - 1:
        return NAN, NAN
    hv = row[o_h + int(row[o_dh + hh0 % fk]) % fk]
    lv = row[o_l + int(row[o_dl + ll0 % fk]) % fk]
    diff = (hv - lv) / 100.0
    fast_k = (close - lv) / diff if diff != 0.0 else 0.0
    nk = int(row[_NK])
    k_val, row[_SUMK] = ring_sma(row[o_k:o_k + sk], nk, sk, fast_k, row[_SUMK])
    row[_NK] = nk + 1
    if nk + 1 < sk:
        return NAN, NAN
    nd = int(row[_ND])
    d_val, row[_SUMD] = ring_sma(row[o_d:o_d + sd], nd, sd, k_val, row[_SUMD])
    row[_ND] = nd + 1
    if nd + 1 < sd:
        return NAN, NAN
    return k_val, d_val
