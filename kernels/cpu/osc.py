"""CPU (numba) oscillators and range indicators: RSI, TRANGE/ATR, stochastic, OBV.

Same shape as cpu_ma: row kernels returning a status (-1, or k*T + i for the first infinity
in input k at index i) plus parallel 2-D drivers writing into preallocated outputs.

Conventions (TA-Lib 0.6, default compatibility, unstable period 0):
* RSI(n), n >= 2: lookback n; average gain/loss seeded with the plain means of the first n
  differences, then Wilder smoothing avg = (avg*(n-1) + x)/n; RSI = 100*g/(g+l), 0 when g+l
  is 0 or NaN: a constant series gives 0 and, as in TA-Lib, a NaN input turns every
  later output into 0 (the NaN poisons the averages, and a NaN sum reads as 'zero').
* TRANGE: lookback 1; max(h-l, |c[i-1]-h|, |c[i-1]-l|) with TA-Lib's compare order, so a NaN
  previous close only drops its two terms (h-l survives), a NaN high/low gives NaN.
* ATR(n): lookback n; seeded with the mean of TRANGE over the first n bars, then Wilder
  smoothing; ATR(1) is TRANGE. NaN behaviour follows TRANGE (no permanent poison from a NaN
  close; a NaN high/low poisons through the smoothing).
* STOCH(fastk, slowk, slowd) with SMA smoothing (TA-Lib matype 0): fast %K =
  (c - LL)/((HH - LL)/100), 0 when HH == LL; slow %K = SMA(fast %K, slowk); slow %D =
  SMA(slow %K, slowd); lookback (fastk-1)+(slowk-1)+(slowd-1). HH/LL by monotone deques
  (amortised O(1)). NaN: a NaN close gives a NaN fast %K for that bar, which SMA(>=2)
  smoothing carries forever and SMA(1) keeps local (as TA-Lib). A NaN high or low poisons
  every later output: tickpath's policy; TA-Lib instead skips it in its extreme search
  unless it sits at the window's oldest bar, a result that depends on its search order.
* OBV: lookback 0, starts at volume[b]; adds volume on an up close, subtracts on a down
  close; TA-Lib's compares, so a NaN close means "no change" for that bar and the next.
  The running total is Neumaier-compensated (exact for integer volumes, no drift otherwise).

Speed: the steady-state loops run in unchecked blocks of a few hundred points on zero-based
views (numba then emits plain, vectorisable loads instead of wraparound selects or gathers),
OR-ing a non-finite flag; the first block that holds a NaN/inf is recomputed from its saved
state by the checked per-point loop, which then runs to the end, so the NaN/inf semantics
above are unchanged.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.core.extending import intrinsic

from tickpath.kernels._nb import (
    JIT,
    JIT_PAR,
    NAN,
    fill_nan,
    first_valid,
    first_valid_all,
    rebase_every,
)


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the cache line holding arr[idx] into L1 (llvm.prefetch, read): no value, and it
    never faults, but callers still pass an in-bounds index."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(arr)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, arr, ary, [args[1]],
                                       wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@njit(**JIT)
def _rsi_row(x, n, out):
    T = x.shape[0]
    b = first_valid(x)
    start = b + n
    fill_nan(out, 0, start if start < T else T)
    hi = start + 1 if start < T else T
    g = 0.0
    l = 0.0
    for i in range(b, hi):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        if i > b:
            d = v - x[i - 1]
            # TA-Lib: "if d < 0 loss -= d else gain += d": a NaN difference lands in gain
            g += 0.0 if d < 0.0 else d
            l += -d if d < 0.0 else 0.0
    if start >= T:
        return -1
    g /= n
    l /= n
    t = g + l
    out[start] = 100.0 * (g / t) if (t > 0.0 or t < 0.0) else 0.0
    keep = (n - 1.0) / n
    inv_n = 1.0 / n
    # unchecked blocks while the data is finite, then the checked loop from the first
    # block holding a NaN/inf (g, l are only advanced by a clean block)
    i0 = start + 1
    if T - i0 >= RSI_BLOCK:
        tot = np.empty(RSI_BLOCK)
        while i0 < T:
            hi = i0 + RSI_BLOCK if i0 + RSI_BLOCK < T else T
            clean, g2, l2 = _rsi_block(x, i0, hi, g, l, keep, inv_n, out, tot)
            if not clean:
                break
            g = g2
            l = l2
            i0 = hi
    prev = x[i0 - 1]
    for i in range(i0, T):
        v = x[i]
        if v == v and (v - v) != 0.0:
            return i
        d = v - prev
        prev = v
        # Wilder: avg*(n-1)/n + x/n, one FMA on each critical path
        g = g * keep + (0.0 if d < 0.0 else d) * inv_n
        l = l * keep + (-d if d < 0.0 else 0.0) * inv_n
        t = g + l
        out[i] = 100.0 * (g / t) if (t > 0.0 or t < 0.0) else 0.0
    return -1


# points per unchecked RSI block (its scratch row stays in L1)
RSI_BLOCK = 512


@njit(**JIT)
def _rsi_block(x, lo, hi, g, l, keep, inv_n, out, tot):
    """RSI points lo..hi-1 (lo past the seed) with the checked loop's expressions, no
    per-point checks, on zero-based views (plain loads); the loop keeps g in out and g + l
    in tot, and the divide runs afterwards in a vectorised pass, off the loop that carries
    the two dependent chains. Returns (clean, g, l); when not clean, out[lo:hi] is garbage
    and g, l are unchanged."""
    cur = x[lo:hi]
    prv = x[lo - 1:hi - 1]
    os_ = out[lo:hi]
    m = cur.shape[0]
    ts = tot[0:m]
    if prv.shape[0] != m or os_.shape[0] != m or ts.shape[0] != m:
        return False, g, l
    gg = g
    ll = l
    bad = 0
    for k in range(m):
        v = cur[k]
        bad |= (v - v) != 0.0          # NaN for NaN or inf
        d = v - prv[k]
        gg = gg * keep + (0.0 if d < 0.0 else d) * inv_n
        ll = ll * keep + (-d if d < 0.0 else 0.0) * inv_n
        os_[k] = gg
        ts[k] = gg + ll
    if bad:
        return False, g, l
    for k in range(m):
        t = ts[k]
        os_[k] = 100.0 * (os_[k] / t) if (t > 0.0 or t < 0.0) else 0.0
    return True, gg, ll


@njit(**JIT_PAR)
def rsi_2d(x, n, out, status):
    for r in prange(x.shape[0]):
        status[r] = _rsi_row(x[r], n, out[r])


@njit(**JIT)
def true_range(h, l, pc):
    """TA-Lib's compare order: NaN terms from the previous close are never 'greater'."""
    g = h - l
    a = abs(pc - h)
    g = a if a > g else g      # selects, not branches: the compares are unpredictable
    c = abs(pc - l)
    return c if c > g else g


@njit(**JIT)
def _check3(h, l, c, i, T):
    # fast path: x - x is 0 for finite x, NaN for NaN or inf; one compare for all three
    if (h[i] - h[i]) + (l[i] - l[i]) + (c[i] - c[i]) == 0.0:
        return -1
    v = h[i]
    if v == v and (v - v) != 0.0:
        return i
    v = l[i]
    if v == v and (v - v) != 0.0:
        return T + i
    v = c[i]
    if v == v and (v - v) != 0.0:
        return 2 * T + i
    return -1


@njit(**JIT)
def _scan_prefix3(h, l, c, b, T):
    """Infinities hidden before the first all-valid bar (where another input is NaN)."""
    for i in range(0, b if b < T else T):
        st = _check3(h, l, c, i, T)
        if st >= 0:
            return st
    return -1


@njit(**JIT)
def _atr_row(h, l, c, n, out):
    T = h.shape[0]
    b = first_valid_all(h, l, c)
    st = _scan_prefix3(h, l, c, b, T)
    if st >= 0:
        return st
    start = b + n
    fill_nan(out, 0, start if start < T else T)
    if b < T:
        st = _check3(h, l, c, b, T)
        if st >= 0:
            return st
    hi = start + 1 if start < T else T
    s = 0.0
    for i in range(b + 1, hi):
        st = _check3(h, l, c, i, T)
        if st >= 0:
            return st
        s += true_range(h[i], l[i], c[i - 1])
    if start >= T:
        return -1
    if n == 1:
        for i in range(start, T):
            st = _check3(h, l, c, i, T)
            if st >= 0:
                return st
            out[i] = true_range(h[i], l[i], c[i - 1])
        return -1
    a = s / n
    out[start] = a
    keep = (n - 1.0) / n
    inv_n = 1.0 / n
    # fast blocks while every input is finite; the first block holding a NaN/inf is
    # recomputed (from its saved state) by the checked loop below, which runs to the end
    i0 = start + 1
    while i0 + ATR_BLOCK <= T:
        a_next, clean = _atr_block(h, l, c, i0, i0 + ATR_BLOCK, a, keep, inv_n, out)
        if not clean:
            break
        a = a_next
        i0 += ATR_BLOCK
    for i in range(i0, T):
        hi_, lo_, cl_ = h[i], l[i], c[i]
        if (hi_ - hi_) + (lo_ - lo_) + (cl_ - cl_) != 0.0:   # NaN or inf somewhere
            st = _check3(h, l, c, i, T)
            if st >= 0:
                return st
        a = a * keep + true_range(hi_, lo_, c[i - 1]) * inv_n
        out[i] = a
    return -1


# points per fast ATR block: the block's true ranges stay in L1 between the two passes
ATR_BLOCK = 512
# series at least this long get software prefetch of the next block (well past L2)
ATR_PREFETCH_MIN = 1 << 16


@njit(**JIT)
def _atr_block(h, l, c, lo, hi, a, keep, inv_n, out):
    """Wilder smoothing over bars lo..hi-1 (lo >= 1, hi - lo a multiple of 4) with no
    per-bar checks. Pass 1 (vectorised, no dependency between bars) writes tr/n into out
    and ORs a non-finite flag; pass 2 advances the average 4 bars per dependent FMA:
    a[i+m] = keep^m * a[i] + sum_{q<m} keep^(m-1-q) * u[i+1+q], so the critical path is a
    quarter of the plain recurrence (rounding differs from it by a few ulps).
    Returns (average after hi-1, clean); when not clean, out[lo:hi] is garbage."""
    # zero-based views: numba then knows no index is negative, so no wraparound selects
    # and the loops vectorise with plain loads (with h[i] it emits gathers/scatters)
    hs = h[lo:hi]
    ls = l[lo:hi]
    pcs = c[lo - 1:hi - 1]
    cs = c[lo:hi]
    us = out[lo:hi]
    m = hs.shape[0]
    if ls.shape[0] != m or pcs.shape[0] != m or cs.shape[0] != m or us.shape[0] != m:
        return a, False
    bad = 0
    for k in range(m):
        hv = hs[k]
        lv = ls[k]
        cv = cs[k]
        # x - x is 0 for a finite x, NaN for NaN or inf (an int OR vectorises)
        bad |= (hv - hv) + (lv - lv) + (cv - cv) != 0.0
        us[k] = true_range(hv, lv, pcs[k]) * inv_n
    if bad:
        return a, False
    k1 = keep
    k2 = k1 * keep
    k3 = k2 * keep
    k4 = k3 * keep
    T = h.shape[0]
    last = T - 1
    # long series stream from memory: fetch the next block's inputs during this
    # (compute-bound) pass, so pass 1 of the next block finds them in cache; short rows
    # (the 2-D universe) are already cached and skip it (LLVM unswitches the loop on pf)
    pf = T >= ATR_PREFETCH_MIN and l.shape[0] == T and c.shape[0] == T
    for k in range(0, m - 3, 4):
        if pf:
            ahead = hi + k
            ahead = ahead if ahead < last else last
            _prefetch(h, ahead)
            _prefetch(l, ahead)
            _prefetch(c, ahead)
        u0 = us[k]
        u1 = us[k + 1]
        u2 = us[k + 2]
        u3 = us[k + 3]
        p1 = k1 * u0 + u1                 # off the critical path: inputs only
        p2 = k1 * p1 + u2
        p3 = k1 * p2 + u3
        us[k] = k1 * a + u0
        us[k + 1] = k2 * a + p1
        us[k + 2] = k3 * a + p2
        a = k4 * a + p3                   # the one dependent FMA per 4 bars
        us[k + 3] = a
    return a, True


@njit(**JIT_PAR)
def atr_2d(h, l, c, n, out, status):
    for r in prange(h.shape[0]):
        status[r] = _atr_row(h[r], l[r], c[r], n, out[r])


@njit(**JIT)
def _trange_row(h, l, c, out):
    T = h.shape[0]
    b = first_valid_all(h, l, c)
    st = _scan_prefix3(h, l, c, b, T)
    if st >= 0:
        return st
    fill_nan(out, 0, b + 1 if b + 1 < T else T)
    if b < T:
        st = _check3(h, l, c, b, T)
        if st >= 0:
            return st
    for i in range(b + 1, T):
        st = _check3(h, l, c, i, T)
        if st >= 0:
            return st
        out[i] = true_range(h[i], l[i], c[i - 1])
    return -1


@njit(**JIT_PAR)
def trange_2d(h, l, c, out, status):
    for r in prange(h.shape[0]):
        status[r] = _trange_row(h[r], l[r], c[r], out[r])


@njit(**JIT)
def ring_sma(ring, count, n, value, total):
    """Push `value` as the count-th point of an SMA(n) kept in `ring`; returns (mean once
    count+1 >= n, new running total). TA-Lib's SMA(1) inside STOCH is a copy (a NaN stays
    local); longer ones carry a NaN in the running total (never re-based away)."""
    if n == 1:
        ring[0] = value
        return value, 0.0
    if count >= n:
        total -= ring[count % n]
    ring[count % n] = value
    total += value
    if count >= n and (count % rebase_every(n)) == 0 and total == total:
        total = 0.0
        for q in range(n):
            total += ring[q]
    return total / n, total


@njit(**JIT)
def _stoch_row(h, l, c, fk, sk, sd, slowk, slowd, dq_hi, dq_lo, ring_k, ring_d):
    """dq_hi/dq_lo (fk), ring_k (sk), ring_d (sd): caller-provided int64/float64 scratch."""
    T = h.shape[0]
    b = first_valid_all(h, l, c)
    st = _scan_prefix3(h, l, c, b, T)
    if st >= 0:
        return st
    start = b + (fk - 1) + (sk - 1) + (sd - 1)
    fill_nan(slowk, 0, start if start < T else T)
    fill_nan(slowd, 0, start if start < T else T)
    # monotone deques of indices (ring of capacity fk): head..tail
    hh0 = 0
    hh1 = 0
    ll0 = 0
    ll1 = 0
    sum_k = 0.0
    sum_d = 0.0
    nk = 0
    nd = 0
    poisoned = False
    for i in range(b, T):
        st = _check3(h, l, c, i, T)
        if st >= 0:
            return st
        if not (h[i] == h[i] and l[i] == l[i]):
            poisoned = True
        if poisoned:
            if i >= start:
                slowk[i] = NAN
                slowd[i] = NAN
            continue
        # expire first so the ring (capacity fk) never holds more than fk indices
        if hh1 > hh0 and dq_hi[hh0 % fk] <= i - fk:
            hh0 += 1
        while hh1 > hh0 and h[dq_hi[(hh1 - 1) % fk]] <= h[i]:
            hh1 -= 1
        dq_hi[hh1 % fk] = i
        hh1 += 1
        if ll1 > ll0 and dq_lo[ll0 % fk] <= i - fk:
            ll0 += 1
        while ll1 > ll0 and l[dq_lo[(ll1 - 1) % fk]] >= l[i]:
            ll1 -= 1
        dq_lo[ll1 % fk] = i
        ll1 += 1
        if i < b + fk - 1:
            continue
        hv = h[dq_hi[hh0 % fk]]
        lv = l[dq_lo[ll0 % fk]]
        diff = (hv - lv) / 100.0
        fast_k = (c[i] - lv) / diff if diff != 0.0 else 0.0
        # slow %K = SMA(fast %K, sk), slow %D = SMA(slow %K, sd), each over a ring
        k_val, sum_k = ring_sma(ring_k, nk, sk, fast_k, sum_k)
        nk += 1
        if nk < sk:
            continue
        d_val, sum_d = ring_sma(ring_d, nd, sd, k_val, sum_d)
        nd += 1
        if nd < sd:
            continue
        slowk[i] = k_val
        slowd[i] = d_val
    return -1


@njit(**JIT_PAR)
def stoch_2d(h, l, c, fk, sk, sd, slowk, slowd, status):
    for r in prange(h.shape[0]):
        dq_hi = np.empty(fk, np.int64)
        dq_lo = np.empty(fk, np.int64)
        ring_k = np.empty(sk, np.float64)
        ring_d = np.empty(sd, np.float64)
        status[r] = _stoch_row(h[r], l[r], c[r], fk, sk, sd, slowk[r], slowd[r],
                               dq_hi, dq_lo, ring_k, ring_d)


@njit(**JIT)
def _obv_row(c, v, out):
    T = c.shape[0]
    b = T
    for i in range(T):
        if c[i] == c[i] and v[i] == v[i]:
            b = i
            break
    fill_nan(out, 0, b)
    for i in range(b):
        x = c[i]
        if x == x and (x - x) != 0.0:
            return i
        w = v[i]
        if w == w and (w - w) != 0.0:
            return T + i
    if b >= T:
        return -1
    total = 0.0
    comp = 0.0
    prev = c[b]
    for i in range(b, T):
        x = c[i]
        if x == x and (x - x) != 0.0:
            return i
        w = v[i]
        if w == w and (w - w) != 0.0:
            return T + i
        if i == b:
            total = w
        else:
            d = 0.0
            if x > prev:
                d = w
            elif x < prev:
                d = -w
            # Neumaier: carry the low-order bits lost by total + d
            t = total + d
            if abs(total) >= abs(d):
                comp += (total - t) + d
            else:
                comp += (d - t) + total
            total = t
            prev = x
        out[i] = total + comp
    return -1


@njit(**JIT_PAR)
def obv_2d(c, v, out, status):
    for r in prange(c.shape[0]):
        status[r] = _obv_row(c[r], v[r], out[r])
