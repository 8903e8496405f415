"""CPU (numba) window statistics: rolling std / Bollinger bands / z-score, VWAP (cumulative
and rolling), realized volatility, returns and log-returns.

Same shape as cpu_ma (row kernels with a status, parallel 2-D drivers, in-place outputs).

Conventions:
* STDDEV(n, nbdev) and BBANDS(n, up, dn) as TA-Lib (n >= 2, lookback n-1, population
  variance E[x^2] - E[x]^2, std 0 where that variance is <= 0; bands mid +- nbdev*std with
  mid = SMA). Windows of <= DIRECT_MAX_PERIOD points: exact two-pass moments at every
  point. Longer windows: the window's mean and sum of squared deviations slide by Welford's update
  (deviations from the window's own mean, so no cancellation against the price level, more
  exact than TA-Lib's E[x^2] - E[x]^2) and are re-based by an exact two-pass sum every
  `rebase_every(n)` points. A NaN poisons every later output (as TA-Lib).
* ZSCORE(n) = (x - SMA(n)) / STDDEV(n); 0 where the std is 0 (constant window). Not in TA-Lib.
* VWAP (cumulative) = sum(p*v)/sum(v) from the first bar where both are valid, Neumaier-
  compensated sums (no drift, no re-base needed), NaN while sum(v) == 0. Rolling VWAP(n): the same over the last n bars,
  lookback n-1. Pass the trade price, or the typical price (h+l+c)/3 for bars. Not in TA-Lib.
* RETURNS(p) = TA-Lib ROCP: (x[i] - x[i-p]) / x[i-p], 0 where x[i-p] == 0; lookback p.
  LOG_RETURNS(p) = log(x[i]/x[i-p]), NaN where either price is <= 0; lookback p.
* REALIZED_VOL(n, scale) = scale * sqrt(sum of the last n squared one-bar log returns);
  lookback n (n returns need n+1 prices); NaN once a non-positive price or a NaN is seen.

Speed: the steady-state loops run in unchecked blocks of a few hundred points on zero-based
views (numba then emits plain, vectorisable loads instead of wraparound selects or gathers),
OR-ing a non-finite flag; the first block that holds a NaN/inf is recomputed from its saved
state by the checked per-point loop, which then runs to the end, so the NaN/inf semantics
above are unchanged.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from tickpath.kernels._nb import JIT, JIT_PAR, NAN, fill_nan, first_valid, rebase_every

@njit(**JIT)
def neumaier(total, comp, a):
    """total + a with the lost low-order bits carried in comp (Neumaier's Kahan variant)."""
    t = total + a
    if abs(total) >= abs(a):
        comp += (total - t) + a
    else:
        comp += (a - t) + total
    return t, comp


# windows up to this many points get exact two-pass moments at every point
DIRECT_MAX_PERIOD = 8

MODE_BBANDS = 0
MODE_STDDEV = 1
MODE_ZSCORE = 2


@njit(**JIT)
def window_moments(x, lo, hi):
    """Exact two-pass (mean, sum of squared deviations) of x[lo:hi]: the re-base."""
    s = 0.0
    for i in range(lo, hi):
        s += x[i]
    mean = s * (1.0 / (hi - lo))
    m2 = 0.0
    for i in range(lo, hi):
        d = x[i] - mean
        m2 += d * d
    return mean, m2


@njit(**JIT)
def _moments_row(x, n, mode, up, dn, o1, o2, o3):
    """mode BBANDS: o1 upper, o2 mid, o3 lower; STDDEV: o1 = up*std; ZSCORE: o1 = z."""
    T = x.shape[0]
    b = first_valid(x)
    start = b + n - 1
    lim = start if start < T else T
    fill_nan(o1, 0, lim)
    if mode == MODE_BBANDS:
        fill_nan(o2, 0, lim)
        fill_nan(o3, 0, lim)
    for i in range(b, start + 1 if start < T else T):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
    if start >= T:
        return -1
    inv_n = 1.0 / n
    block = rebase_every(n)
    j0 = start
    if n <= DIRECT_MAX_PERIOD:
        # short windows: vectorised exact blocks while the data is finite; the checked
        # per-point loop below takes over at the first block holding a NaN/inf
        scratch = np.empty(2 * SMALL_BLOCK)
        while j0 < T:
            hi = j0 + SMALL_BLOCK if j0 + SMALL_BLOCK < T else T
            if not _small_block(x, j0, hi, n, mode, up, dn, o1, o2, o3, scratch):
                break
            j0 = hi
        if j0 >= T:
            return -1
    mean, m2 = window_moments(x, b, start + 1)
    # long windows: sliding blocks with no per-point checks and the sqrt in a vectorised
    # pass, until the first block holding a NaN/inf (then the checked loop to the end)
    fast = n > DIRECT_MAX_PERIOD
    wscratch = np.empty(2 * SMALL_BLOCK if fast else 0)
    j = j0
    while j < T:
        end = j + block if j + block < T else T
        if j > start and mean == mean and m2 == m2:
            mean, m2 = window_moments(x, j - n + 1, j)   # x[j-n+1 .. j-1]; j added below
            # re-enter the sliding form one point early: pretend x[j-n] leaves
            mean, m2 = _unslide(x[j - n], mean, m2, n)
        jj = j
        while jj < end:
            if fast and jj > start:
                hi = jj + SMALL_BLOCK if jj + SMALL_BLOCK < end else end
                if mean == mean and m2 == m2:
                    ok, mean2, m22 = _welford_block(x, jj, hi, n, mean, m2, mode, up, dn,
                                                    o1, o2, o3, wscratch)
                    if ok:
                        mean = mean2
                        m2 = m22
                        jj = hi
                        continue
                fast = False
            v = x[jj]
            if v == v and (v - v) != 0.0:
                return jj
            if n <= DIRECT_MAX_PERIOD:
                # short windows: exact two-pass moments per point (2n flops); a sliding
                # update's absolute error would be large next to a 2..8-point variance.
                # Once NaN, the moments stay NaN (the poison policy)
                if mean == mean:
                    mean, m2 = window_moments(x, jj - n + 1, jj + 1)
            elif jj > start:
                # sliding Welford: x[jj-n] leaves, v enters; deviations are taken from the
                # window's own mean, so no cancellation against the price level
                old = x[jj - n]
                new_mean = mean + (v - old) * inv_n
                m2 += (v - old) * ((v - new_mean) + (old - mean))
                mean = new_mean
            var = m2 * inv_n
            # TA-Lib: std is 0 unless the variance is positive; NaN stays NaN
            sd = math.sqrt(var) if not (var <= 0.0) else 0.0
            if mode == MODE_BBANDS:
                o2[jj] = mean
                o1[jj] = mean + up * sd
                o3[jj] = mean - dn * sd
            elif mode == MODE_STDDEV:
                o1[jj] = sd * up
            else:
                # z: centred value over std; 0 for a constant window (and NaN stays NaN)
                o1[jj] = (v - mean) / sd if sd != 0.0 else 0.0 * sd
            jj += 1
        j = end
    return -1


@njit(**JIT)
def _welford_block(x, lo, hi, n, mean, m2, mode, up, dn, o1, o2, o3, scratch):
    """Points lo..hi-1 (lo past the first window) of the sliding Welford update, with the
    checked loop's expressions (so the same results), but no per-point checks and on
    zero-based views (plain loads); means and variances go to scratch and a vectorised pass
    takes the square roots and writes the outputs. Returns (clean, mean, m2); when not
    clean nothing was written and the state is unchanged."""
    m = hi - lo
    xs = x[lo:hi]
    olds = x[lo - n:hi - n]
    ms = scratch[0:m]
    vs = scratch[SMALL_BLOCK:SMALL_BLOCK + m]
    if olds.shape[0] != m or xs.shape[0] != m or ms.shape[0] != m or vs.shape[0] != m \
            or o1.shape[0] < hi:
        return False, mean, m2
    inv_n = 1.0 / n
    bad = 0
    mu = mean
    q = m2
    for k in range(m):
        v = xs[k]
        old = olds[k]
        bad |= (v - v) != 0.0          # NaN for NaN or inf
        new_mean = mu + (v - old) * inv_n
        q += (v - old) * ((v - new_mean) + (old - mu))
        mu = new_mean
        ms[k] = mu
        vs[k] = q * inv_n
    if bad:
        return False, mean, m2
    a1 = o1[lo:hi]
    if mode == MODE_BBANDS:
        a2 = o2[lo:hi]
        a3 = o3[lo:hi]
        if a2.shape[0] != m or a3.shape[0] != m:
            return False, mean, m2
        for k in range(m):
            var = vs[k]
            sd = math.sqrt(var) if var > 0.0 else 0.0
            mk = ms[k]
            a2[k] = mk
            a1[k] = mk + up * sd
            a3[k] = mk - dn * sd
    elif mode == MODE_STDDEV:
        for k in range(m):
            var = vs[k]
            a1[k] = (math.sqrt(var) if var > 0.0 else 0.0) * up
    else:
        for k in range(m):
            var = vs[k]
            sd = math.sqrt(var) if var > 0.0 else 0.0
            a1[k] = (xs[k] - ms[k]) / sd if sd != 0.0 else 0.0
    return True, mu, q


# points per vectorised short-window block (its two scratch rows stay in L1)
SMALL_BLOCK = 512


@njit(**JIT)
def _small_block(x, lo, hi, n, mode, up, dn, o1, o2, o3, scratch):
    """Outputs lo..hi-1 (lo >= first_valid + n - 1) of a window of n <= DIRECT_MAX_PERIOD
    points, no per-point checks. Per point, deviations d = x[j-k] - x[j] from the newest
    point (no cancellation against the price level): mean = x[j] + sum(d)/n and
    M2 = sum(d^2) - sum(d)^2/n, where sum(d^2) <= n*M2, so at most log10(n) digits cancel.
    The loop over k is outside the loop over points, so the inner loops vectorise (on
    zero-based views: numba then emits plain loads, not wraparound gathers).
    Returns False (outputs lo..hi-1 garbage) if x[lo-n+1 .. hi-1] holds a NaN or inf."""
    m = hi - lo
    win = x[lo - n + 1:hi]
    xs = x[lo:hi]
    sd = scratch[0:m]
    sq = scratch[SMALL_BLOCK:SMALL_BLOCK + m]
    if win.shape[0] != m + n - 1 or xs.shape[0] != m or sd.shape[0] != m \
            or sq.shape[0] != m or o1.shape[0] < hi:
        return False
    bad = 0
    for q in range(win.shape[0]):
        v = win[q]
        bad |= (v - v) != 0.0          # NaN for NaN or inf
    if bad:
        return False
    for q in range(m):
        sd[q] = 0.0
        sq[q] = 0.0
    for k in range(1, n):
        xk = x[lo - k:hi - k]
        if xk.shape[0] != m:
            return False
        for q in range(m):
            d = xk[q] - xs[q]
            sd[q] += d
            sq[q] += d * d
    inv_n = 1.0 / n
    a1 = o1[lo:hi]
    if mode == MODE_BBANDS:
        a2 = o2[lo:hi]
        a3 = o3[lo:hi]
        if a2.shape[0] != m or a3.shape[0] != m:
            return False
        for q in range(m):
            s = sd[q]
            mean = xs[q] + s * inv_n
            var = (sq[q] - s * (s * inv_n)) * inv_n
            std = math.sqrt(var) if var > 0.0 else 0.0
            a2[q] = mean
            a1[q] = mean + up * std
            a3[q] = mean - dn * std
    elif mode == MODE_STDDEV:
        for q in range(m):
            s = sd[q]
            var = (sq[q] - s * (s * inv_n)) * inv_n
            a1[q] = (math.sqrt(var) if var > 0.0 else 0.0) * up
    else:
        for q in range(m):
            s = sd[q]
            mean = xs[q] + s * inv_n
            var = (sq[q] - s * (s * inv_n)) * inv_n
            std = math.sqrt(var) if var > 0.0 else 0.0
            a1[q] = (xs[q] - mean) / std if std != 0.0 else 0.0
    return True


@njit(**JIT)
def _unslide(old, mean_rest, m2_rest, n):
    """Moments of a window of n points from those of its newest n-1 (mean_rest, m2_rest)
    plus the oldest point `old`: the state the sliding update expects before it drops old."""
    mean = mean_rest + (old - mean_rest) / n
    m2 = m2_rest + (old - mean_rest) * (old - mean)
    return mean, m2


@njit(**JIT_PAR)
def moments_2d(x, n, mode, up, dn, o1, o2, o3, status):
    for r in prange(x.shape[0]):
        status[r] = _moments_row(x[r], n, mode, up, dn, o1[r], o2[r], o3[r])


@njit(**JIT)
def _first_valid2(p, v):
    for i in range(p.shape[0]):
        if p[i] == p[i] and v[i] == v[i]:
            return i
    return p.shape[0]


@njit(**JIT)
def _check2(p, v, i, T):
    a = p[i]
    if a == a and (a - a) != 0.0:
        return i
    a = v[i]
    if a == a and (a - a) != 0.0:
        return T + i
    return -1


@njit(**JIT)
def _vwap_row(p, v, n, out):
    """n == 0: cumulative VWAP; n >= 1: rolling over the last n bars."""
    T = p.shape[0]
    b = _first_valid2(p, v)
    for i in range(b):
        st = _check2(p, v, i, T)
        if st >= 0:
            return st
    lb = n - 1 if n > 0 else 0
    start = b + lb
    fill_nan(out, 0, start if start < T else T)
    if n == 0:
        spv = 0.0
        cpv = 0.0
        sv = 0.0
        cv = 0.0
        for i in range(b, T):
            st = _check2(p, v, i, T)
            if st >= 0:
                return st
            spv, cpv = neumaier(spv, cpv, p[i] * v[i])
            sv, cv = neumaier(sv, cv, v[i])
            den = sv + cv
            out[i] = (spv + cpv) / den if den != 0.0 else NAN
        return -1
    # rolling: compensated window sums (volumes vary over orders of magnitude, so a plain
    # running difference would lose the small window's digits), re-based exactly per block
    block = rebase_every(n)
    spv = 0.0
    cpv = 0.0
    sv = 0.0
    cv = 0.0
    for i in range(b, T):
        st = _check2(p, v, i, T)
        if st >= 0:
            return st
        spv, cpv = neumaier(spv, cpv, p[i] * v[i])
        sv, cv = neumaier(sv, cv, v[i])
        if i >= b + n:
            spv, cpv = neumaier(spv, cpv, -(p[i - n] * v[i - n]))
            sv, cv = neumaier(sv, cv, -v[i - n])
            if (i - b) % block == 0 and spv == spv and sv == sv:
                # exact re-base: compensation cannot span a 1e12 spike that has left
                spv, cpv, sv, cv = 0.0, 0.0, 0.0, 0.0
                for q in range(i - n + 1, i + 1):
                    spv += p[q] * v[q]
                    sv += v[q]
        if i >= start:
            den = sv + cv
            out[i] = (spv + cpv) / den if den != 0.0 else NAN
    return -1


@njit(**JIT_PAR)
def vwap_2d(p, v, n, out, status):
    for r in prange(p.shape[0]):
        status[r] = _vwap_row(p[r], v[r], n, out[r])


@njit(**JIT)
def _returns_row(x, period, log, out):
    T = x.shape[0]
    b = first_valid(x)
    start = b + period
    fill_nan(out, 0, start if start < T else T)
    for i in range(b, start if start < T else T):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
    for i in range(start, T):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        pv = x[i - period]
        if log:
            out[i] = math.log(v / pv) if (v > 0.0 and pv > 0.0) else NAN
        else:
            # TA-Lib ROCP: 0 where the earlier price is 0
            out[i] = (v - pv) / pv if pv != 0.0 else 0.0
    return -1


@njit(**JIT_PAR)
def returns_2d(x, period, log, out, status):
    for r in prange(x.shape[0]):
        status[r] = _returns_row(x[r], period, log, out[r])


@njit(**JIT)
def _rvol_row(x, n, scale, out, ring):
    T = x.shape[0]
    b = first_valid(x)
    start = b + n
    fill_nan(out, 0, start if start < T else T)
    s = 0.0
    comp = 0.0
    block = rebase_every(n)
    for i in range(b, T):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        if i == b:
            continue
        pv = x[i - 1]
        r = math.log(v / pv) if (v > 0.0 and pv > 0.0) else NAN
        q = r * r
        k = i - b - 1             # index of this return, 0-based
        # compensated window sum: a calm window after a wild one keeps its relative digits
        s, comp = neumaier(s, comp, q)
        if k >= n:
            s, comp = neumaier(s, comp, -ring[k % n])
        ring[k % n] = q
        if k >= n and k % block == 0 and s == s:
            s = 0.0                  # exact re-base from the ring of squared returns
            comp = 0.0
            for m in range(n):
                s += ring[m]
        if i >= start:
            tot = s + comp
            # rounding can leave a tiny negative sum; a NaN stays NaN
            out[i] = scale * math.sqrt(tot) if not (tot < 0.0) else 0.0
    return -1


@njit(**JIT_PAR)
def rvol_2d(x, n, scale, out, status):
    for r in prange(x.shape[0]):
        ring = np.empty(n, np.float64)
        status[r] = _rvol_row(x[r], n, scale, out[r], ring)
