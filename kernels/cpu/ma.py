"""CPU (numba) moving averages: SMA, EMA, WMA and MACD, TA-Lib conventions.

Each indicator is a row kernel `_x_row(inputs..., params..., out...) -> status` over one
series, plus a parallel 2-D driver over instruments (rows). Outputs are written in place into
preallocated arrays (allocation inside a parallel kernel is dominated by page faults).
status is -1, or the index of the first infinity (input k's index i reads as k*T + i).

Conventions (as TA-Lib 0.6, default compatibility, unstable period 0):
* leading NaNs are skipped: the series starts at its first non-NaN value b;
* SMA(n), WMA(n): lookback n-1; EMA(n): lookback n-1, seeded with the SMA of its first n
  points, then prev + k*(x - prev), k = 2/(n+1); EMA(1) and WMA(1) return the input
  unchanged (TA-Lib special-cases them; a NaN stays local), while SMA(1) is a running
  sum like any SMA (a NaN poisons);
* MACD(fast, slow, signal): periods swapped if slow < fast; both EMAs end their warm-up at
  b+slow-1, so the fast EMA is seeded with the SMA of x[b+slow-fast : b+slow] (not from b);
  the signal EMA runs over the MACD line from there; all three outputs start at
  b + slow + signal - 2;
* a NaN after b poisons every later output (TA-Lib's running sums carry it).
Running sums use the difference form s += x[i] - x[i-n] (one add on the critical path) and
are re-based exactly every `rebase_every(n)` points, so long series do not drift.

Speed: the steady-state loops run in unchecked blocks of a few hundred points on zero-based
views (numba then emits plain, vectorisable loads instead of wraparound selects or gathers),
OR-ing a non-finite flag; the first block that holds a NaN/inf is recomputed from its saved
state by the checked per-point loop, which then runs to the end, so the NaN/inf semantics
above are unchanged.
"""
from __future__ import annotations

from numba import njit, prange

from tickpath.kernels._nb import JIT, JIT_PAR, NAN, fill_nan, first_valid, rebase_every, window_sum


@njit(**JIT)
def _sma_row(x, n, out):
    T = x.shape[0]
    b = first_valid(x)
    start = b + n - 1
    fill_nan(out, 0, start if start < T else T)
    s = 0.0
    for i in range(b, start + 1 if start < T else T):
        v = x[i]
        if v == v and (v - v) != 0.0:   # v - v is NaN only for +-inf
            return i
        s += v
    if start >= T:
        return -1
    inv_n = 1.0 / n
    # n == 1: the output is the point itself; 0*s keeps a NaN poisoning it as in TA-Lib
    out[start] = s * inv_n if n > 1 else x[start] + 0.0 * s
    block = rebase_every(n)
    fast = n > 1         # unchecked sub-blocks until the first one holding a NaN/inf
    j = start + 1
    while j < T:
        end = j + block if j + block < T else T
        lo = j
        while fast and lo < end:
            hi = lo + SMA_BLOCK if lo + SMA_BLOCK < end else end
            clean, s2 = _sma_block(x, lo, hi, n, s, inv_n, out)
            if not clean:
                fast = False
                break
            s = s2
            lo = hi
        for jj in range(lo, end):
            v = x[jj]
            if v == v and (v - v) != 0.0:
                return jj
            s += v - x[jj - n]
            out[jj] = s * inv_n if n > 1 else v + 0.0 * s
        j = end
        if j < T and s == s:
            s = window_sum(x, j - n, j)   # exact re-base over the window ending at j-1
    return -1


# points per unchecked SMA sub-block
SMA_BLOCK = 512


@njit(**JIT)
def _sma_block(x, lo, hi, n, s, inv_n, out):
    """SMA(n >= 2) points lo..hi-1 (lo > the first window's end) with the checked loop's
    expressions, no per-point checks, on zero-based views (plain loads, no wraparound).
    Returns (clean, s); when not clean, out[lo:hi] is garbage and s is unchanged."""
    cur = x[lo:hi]
    old = x[lo - n:hi - n]
    os_ = out[lo:hi]
    m = cur.shape[0]
    if old.shape[0] != m or os_.shape[0] != m:
        return False, s
    acc = s
    bad = 0
    for k in range(m):
        v = cur[k]
        bad |= (v - v) != 0.0          # NaN for NaN or inf
        acc += v - old[k]
        os_[k] = acc * inv_n
    if bad:
        return False, s
    return True, acc


@njit(**JIT_PAR)
def sma_2d(x, n, out, status):
    for r in prange(x.shape[0]):
        status[r] = _sma_row(x[r], n, out[r])


@njit(**JIT)
def _copy_row(x, out):
    """Period 1 of EMA and WMA: TA-Lib returns the input itself (a NaN stays local)."""
    for i in range(x.shape[0]):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        out[i] = v
    return -1


@njit(**JIT)
def _ema_core(x, lo, T, n, k, out, write):
    """EMA over x[lo:T] seeded with the SMA of x[lo:lo+n]; writes out[lo+n-1:] when write.
    Returns (status, last value). Caller guarantees lo + n <= T."""
    s = 0.0
    for i in range(lo, lo + n):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i, NAN
        s += v
    prev = s / n
    if write:
        out[lo + n - 1] = prev
    one_k = 1.0 - k
    for i in range(lo + n, T):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i, NAN
        # prev*(1-k) + k*x: one FMA on the critical path (k*x is off it)
        prev = prev * one_k + k * v
        if write:
            out[i] = prev
    return -1, prev


@njit(**JIT)
def _ema_row(x, n, out):
    T = x.shape[0]
    if n == 1:
        return _copy_row(x, out)
    b = first_valid(x)
    start = b + n - 1
    if start >= T:
        fill_nan(out, 0, T)
        return -1
    fill_nan(out, 0, start)
    st, _ = _ema_core(x, b, T, n, 2.0 / (n + 1), out, True)
    return st


@njit(**JIT_PAR)
def ema_2d(x, n, out, status):
    for r in prange(x.shape[0]):
        status[r] = _ema_row(x[r], n, out[r])


@njit(**JIT)
def _wma_row(x, n, out):
    T = x.shape[0]
    if n == 1:
        return _copy_row(x, out)
    b = first_valid(x)
    start = b + n - 1
    fill_nan(out, 0, start if start < T else T)
    if start >= T:
        for i in range(b, T):
            v = x[i]
            if v == v and (v - v) != 0.0:
                return i
        return -1
    inv_div = 1.0 / (n * (n + 1) / 2.0)
    # plain (S) and weighted (W) sums of x[b .. start-1], weights 1..n-1
    S = 0.0
    W = 0.0
    for i in range(b, start):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        S += v
        W += v * (i - b + 1)
    block = rebase_every(n)
    checked = False      # set at the first block holding a NaN/inf: checked loop from there
    i = start
    while i < T:
        end = i + block if i + block < T else T
        if i > start and W == W and S == S:
            # exact re-base: S, W over x[i-n .. i-1] with weights 1..n, as if x[i-n] is
            # about to leave (the loop subtracts S before adding the new point)
            S = 0.0
            W = 0.0
            for j in range(i - n, i):
                S += x[j]
                W += x[j] * (j - (i - n) + 1)
        lo = i
        if lo == start:
            # the first full window: nothing leaves yet
            v = x[lo]
            if v == v and (v - v) != 0.0:
                return lo
            W += n * v
            S += v
            out[lo] = W * inv_div
            lo += 1
        if not checked:
            S2, W2, clean = _wma_block(x, lo, end, n, S, W, inv_div, out)
            if clean:
                S = S2
                W = W2
                lo = end
            else:
                checked = True
        for j in range(lo, end):
            v = x[j]
            if v == v and (v - v) != 0.0:
                return j
            # drop weight 1 from every point, then x[j-n] leaves the plain sum
            W -= S
            S -= x[j - n]
            W += n * v
            S += v
            out[j] = W * inv_div
        i = end
    return -1


@njit(**JIT)
def _wma_block(x, lo, hi, n, S, W, inv_div, out):
    """WMA points lo..hi-1 (all past the first window, so lo >= n) with no per-point
    checks: W += n*v - S and S += v - x[j-n] are one dependent add each (the checked
    loop's W -= S; W += n*v is two), on zero-based views so numba emits plain loads.
    Returns (S, W, clean); when not clean, out[lo:hi] is garbage and S, W unchanged."""
    xs = x[lo:hi]
    olds = x[lo - n:hi - n]
    os_ = out[lo:hi]
    m = xs.shape[0]
    if olds.shape[0] != m or os_.shape[0] != m:
        return S, W, False
    s = S
    w = W
    bad = 0
    for k in range(m):
        v = xs[k]
        bad |= (v - v) != 0.0      # NaN for NaN or inf
        w += n * v - s
        s += v - olds[k]
        os_[k] = w * inv_div
    if bad:
        return S, W, False
    return s, w, True


@njit(**JIT_PAR)
def wma_2d(x, n, out, status):
    for r in prange(x.shape[0]):
        status[r] = _wma_row(x[r], n, out[r])


@njit(**JIT)
def _macd_row(x, fast, slow, signal, macd, sig, hist):
    T = x.shape[0]
    if slow < fast:
        fast, slow = slow, fast
    b = first_valid(x)
    start = b + slow + signal - 2
    fill_nan(macd, 0, start if start < T else T)
    fill_nan(sig, 0, start if start < T else T)
    fill_nan(hist, 0, start if start < T else T)
    if start >= T:
        for i in range(b, T):
            v = x[i]
            if v == v and (v - v) != 0.0:
                return i
        return -1
    kf = 2.0 / (fast + 1)
    ks = 2.0 / (slow + 1)
    kg = 2.0 / (signal + 1)
    # seeds: slow EMA from b, fast EMA from b+slow-fast; both over x[.. b+slow-1]
    s_slow = 0.0
    s_fast = 0.0
    for i in range(b, b + slow):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        s_slow += v
        if i >= b + slow - fast:
            s_fast += v
    e_slow = s_slow / slow
    e_fast = s_fast / fast
    m = e_fast - e_slow
    # the signal EMA is seeded with the SMA of the first `signal` MACD values
    s_sig = m
    i0 = b + slow
    for i in range(i0, i0 + signal - 1):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        e_fast = e_fast * (1.0 - kf) + kf * v
        e_slow = e_slow * (1.0 - ks) + ks * v
        s_sig += e_fast - e_slow
    g = s_sig / signal
    m = e_fast - e_slow
    macd[start] = m
    sig[start] = g
    hist[start] = m - g
    of = 1.0 - kf
    os_ = 1.0 - ks
    og = 1.0 - kg
    for i in range(start + 1, T):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        e_fast = e_fast * of + kf * v
        e_slow = e_slow * os_ + ks * v
        m = e_fast - e_slow
        g = g * og + kg * m
        macd[i] = m
        sig[i] = g
        hist[i] = m - g
    return -1


@njit(**JIT_PAR)
def macd_2d(x, fast, slow, signal, macd, sig, hist, status):
    for r in prange(x.shape[0]):
        status[r] = _macd_row(x[r], fast, slow, signal, macd[r], sig[r], hist[r])
