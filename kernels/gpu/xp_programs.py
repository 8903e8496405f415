"""The GPU programs, written once against an array module `xp` (cupy on a GPU host, numpy in
CI, where their numerics are checked against the numba kernels and TA-Lib).

Inputs are 2-D (instruments x time) float64. Conventions are the CPU kernels' (cpu_ma,
cpu_osc, cpu_stats): per-row first valid index b, TA-Lib lookbacks, the same NaN rules.
Window sums are sums of n shifted slices (O(n*T) work, n launches on a GPU, no running sum
to drift); recursive indicators (EMA, MACD, RSI, ATR) are scans over time, vectorised across
instruments (`*_scan`); on a GPU, gpu.py replaces those scans by the CUDA kernels in
scan_kernels.cu (one thread per instrument), which implement the same recurrences.
"""
from __future__ import annotations

NAN = float("nan")


def first_valid(xp, *arrays):
    """Per-row index of the first column where every input is non-NaN (T if none)."""
    ok = ~xp.isnan(arrays[0])
    for a in arrays[1:]:
        ok &= ~xp.isnan(a)
    T = ok.shape[1]
    return xp.where(ok.any(axis=1), xp.argmax(ok, axis=1), T)


def _cols(xp, T):
    return xp.arange(T)[None, :]


def mask_before(xp, out, start):
    """NaN where t < start[row]."""
    out[_cols(xp, out.shape[1]) < start[:, None]] = NAN
    return out


def poison_after(xp, out, src, b):
    """NaN from the first NaN of src at t >= b[row] onwards (the running-sum poison)."""
    t = _cols(xp, src.shape[1])
    bad = xp.isnan(src) & (t >= b[:, None])
    out[xp.cumsum(bad, axis=1) > 0] = NAN
    return out


def window_sum(xp, v, n):
    """out[:, t] = sum(v[:, t-n+1 .. t]) for t >= n-1 (NaN before), by shifted slices."""
    R, T = v.shape
    out = xp.full((R, T), NAN)
    acc = v[:, n - 1:].copy()
    for k in range(1, n):
        acc += v[:, n - 1 - k:T - k]
    out[:, n - 1:] = acc
    return out


def _zero_lead(xp, x, b):
    """Leading NaNs (before b) read as 0, so slices over them do not poison later windows."""
    return xp.where(_cols(xp, x.shape[1]) < b[:, None], 0.0, x)


def sma(xp, x, n, copy1=False):
    b = first_valid(xp, x)
    if n == 1 and copy1:
        return x.copy()
    out = window_sum(xp, _zero_lead(xp, x, b), n) / n if n > 1 else x.copy()
    poison_after(xp, out, x, b)
    return mask_before(xp, out, b + n - 1)


def wma(xp, x, n):
    if n == 1:
        return x.copy()
    b = first_valid(xp, x)
    z = _zero_lead(xp, x, b)
    R, T = x.shape
    out = xp.full((R, T), NAN)
    acc = n * z[:, n - 1:]
    for k in range(1, n):
        acc = acc + (n - k) * z[:, n - 1 - k:T - k]
    out[:, n - 1:] = acc / (n * (n + 1) / 2.0)
    poison_after(xp, out, x, b)
    return mask_before(xp, out, b + n - 1)


def moments(xp, x, n, mode, up, dn):
    """mode 0: (upper, mid, lower); 1: std*up; 2: z-score. Exact two-pass per window."""
    b = first_valid(xp, x)
    z = _zero_lead(xp, x, b)
    R, T = x.shape
    mean = window_sum(xp, z, n) / n
    m2 = xp.zeros((R, T - n + 1))
    for k in range(n):
        d = z[:, n - 1 - k:T - k] - mean[:, n - 1:]
        m2 += d * d
    var = xp.full((R, T), NAN)
    var[:, n - 1:] = m2 / n
    sd = xp.where(var <= 0.0, 0.0, xp.sqrt(xp.where(var > 0.0, var, 0.0)))
    sd = xp.where(xp.isnan(var), NAN, sd)
    for a in (mean, sd):
        poison_after(xp, a, x, b)
        mask_before(xp, a, b + n - 1)
    if mode == 0:
        return mean + up * sd, mean, mean - dn * sd
    if mode == 1:
        return sd * up
    safe = xp.where(sd != 0.0, sd, 1.0)
    return xp.where(sd != 0.0, (x - mean) / safe, 0.0 * sd)


def returns(xp, x, p, log):
    b = first_valid(xp, x)
    out = xp.full(x.shape, NAN)
    cur, prev = x[:, p:], x[:, :-p]
    if log:
        ok = (cur > 0.0) & (prev > 0.0)
        ratio = xp.where(ok, cur / xp.where(ok, prev, 1.0), 1.0)
        out[:, p:] = xp.where(ok, xp.log(ratio), NAN)
    else:
        safe = xp.where(prev != 0.0, prev, 1.0)
        out[:, p:] = xp.where(prev != 0.0, (cur - prev) / safe, 0.0)
        out[:, p:] = xp.where(xp.isnan(prev) | xp.isnan(cur), NAN, out[:, p:])
    return mask_before(xp, out, b + p)


def realized_vol(xp, x, n, scale):
    b = first_valid(xp, x)
    r2 = xp.full(x.shape, NAN)
    cur, prev = x[:, 1:], x[:, :-1]
    ok = (cur > 0.0) & (prev > 0.0)
    r = xp.where(ok, xp.log(xp.where(ok, cur / xp.where(ok, prev, 1.0), 1.0)), NAN)
    r2[:, 1:] = r * r
    t = _cols(xp, x.shape[1])
    src = xp.where(t <= b[:, None], 0.0, r2)        # returns start at b+1
    s = window_sum(xp, src, n)
    out = scale * xp.sqrt(xp.where(s < 0.0, 0.0, s))
    poison_after(xp, out, xp.where(t <= b[:, None], 0.0, r2), b)
    return mask_before(xp, out, b + n)


def trange(xp, h, l, c):
    b = first_valid(xp, h, l, c)
    out = xp.full(h.shape, NAN)
    hh, ll, pc = h[:, 1:], l[:, 1:], c[:, :-1]
    g = hh - ll
    a = xp.abs(pc - hh)
    g = xp.where(a > g, a, g)                         # NaN compares false, as TA-Lib
    a = xp.abs(pc - ll)
    out[:, 1:] = xp.where(a > g, a, g)
    return mask_before(xp, out, b + 1)


def obv(xp, c, v):
    b = first_valid(xp, c, v)
    R, T = c.shape
    t = _cols(xp, T)
    step = xp.zeros((R, T))
    up = c[:, 1:] > c[:, :-1]
    down = c[:, 1:] < c[:, :-1]
    step[:, 1:] = xp.where(up, v[:, 1:], xp.where(down, -v[:, 1:], 0.0))
    step = xp.where(t <= b[:, None], 0.0, step)
    first = xp.take_along_axis(v, xp.minimum(b, T - 1)[:, None], axis=1)
    out = first + xp.cumsum(step, axis=1)
    return mask_before(xp, out, b)


def vwap(xp, p, v, n):
    b = first_valid(xp, p, v)
    t = _cols(xp, p.shape[1])
    lead = t < b[:, None]
    pv = xp.where(lead, 0.0, p * v)
    vv = xp.where(lead, 0.0, v)
    if n == 0:
        num, den = xp.cumsum(pv, axis=1), xp.cumsum(vv, axis=1)
    else:
        num, den = window_sum(xp, pv, n), window_sum(xp, vv, n)
    out = xp.where(den != 0.0, num / xp.where(den != 0.0, den, 1.0), NAN)
    out = xp.where(xp.isnan(num) | xp.isnan(den), NAN, out)
    if n:
        poison_after(xp, out, p * v, b)
    return mask_before(xp, out, b + max(n - 1, 0))


def stoch(xp, h, l, c, fk, sk, sd):
    b = first_valid(xp, h, l, c)
    R, T = h.shape
    t = _cols(xp, T)
    lead = t < b[:, None]
    hz = xp.where(lead, -xp.inf, h)
    lz = xp.where(lead, xp.inf, l)
    hh = hz[:, fk - 1:].copy()
    ll = lz[:, fk - 1:].copy()
    for k in range(1, fk):
        hh = xp.maximum(hh, hz[:, fk - 1 - k:T - k])
        ll = xp.minimum(ll, lz[:, fk - 1 - k:T - k])
    fast = xp.full((R, T), NAN)
    diff = (hh - ll) / 100.0
    safe = xp.where(diff != 0.0, diff, 1.0)
    fast[:, fk - 1:] = xp.where(diff != 0.0, (c[:, fk - 1:] - ll) / safe, 0.0)
    k_start = b + fk - 1
    slowk = _sma_from(xp, fast, k_start, sk)
    slowd = _sma_from(xp, slowk, k_start + sk - 1, sd)
    start = b + fk + sk + sd - 3
    hl_bad = xp.isnan(h) | xp.isnan(l)
    for a in (slowk, slowd):
        poison_after(xp, a, xp.where(hl_bad, NAN, 0.0), b)  # tickpath policy: NaN high/low
        mask_before(xp, a, start)
    return slowk, slowd


def _sma_from(xp, v, start, n):
    """SMA(n) of v whose valid part starts at start[row]; SMA(1) is a copy (stoch's rule)."""
    if n == 1:
        return v.copy()
    t = _cols(xp, v.shape[1])
    z = xp.where(t < start[:, None], 0.0, v)
    out = window_sum(xp, z, n) / n
    poison_after(xp, out, xp.where(t < start[:, None], 0.0, v), start)
    return mask_before(xp, out, start + n - 1)


# ---- recursive scans (numpy reference of scan_kernels.cu) ------------------------------

def ema_scan(xp, x, start, n):
    """EMA(n) per row, seeded with the SMA of x[row, start : start+n]."""
    R, T = x.shape
    k = 2.0 / (n + 1)
    acc = xp.zeros(R)
    prev = xp.zeros(R)
    out = xp.empty((R, T))
    for t in range(T):
        xt = x[:, t]
        acc = xp.where((t >= start) & (t < start + n), acc + xt, acc)
        prev = xp.where(t == start + n - 1, acc / n,
                        xp.where(t >= start + n, prev * (1.0 - k) + k * xt, prev))
        out[:, t] = prev
    return mask_before(xp, out, start + n - 1)


def ema(xp, x, n):
    if n == 1:
        return x.copy()
    return ema_scan(xp, x, first_valid(xp, x), n)


def macd(xp, x, fast, slow, signal):
    if slow < fast:
        fast, slow = slow, fast
    b = first_valid(xp, x)
    line = ema_scan(xp, x, b + slow - fast, fast) - ema_scan(xp, x, b, slow)
    sig = ema_scan(xp, line, b + slow - 1, signal)   # seeds only read t >= b+slow-1
    start = b + slow + signal - 2
    m = mask_before(xp, line.copy(), start)
    return m, sig, m - sig


def wilder_scan(xp, v, start, n, rsi_mode):
    """Wilder average of gains/losses (RSI) or of v (ATR) starting at start[row]."""
    R, T = v.shape
    keep = (n - 1.0) / n
    inv = 1.0 / n
    g = xp.zeros(R)
    lo = xp.zeros(R)
    out = xp.empty((R, T))
    for t in range(T):
        vt = v[:, t]
        gain = xp.where(vt < 0.0, 0.0, vt) if rsi_mode else vt
        loss = xp.where(vt < 0.0, -vt, 0.0)
        seed = (t >= start) & (t < start + n)
        last = t == start + n - 1
        later = t >= start + n
        g = xp.where(seed, g + gain, xp.where(later, g * keep + gain * inv, g))
        lo = xp.where(seed, lo + loss, xp.where(later, lo * keep + loss * inv, lo))
        g = xp.where(last, g / n, g)
        lo = xp.where(last, lo / n, lo)
        if rsi_mode:
            tot = g + lo
            nz = (tot > 0.0) | (tot < 0.0)
            out[:, t] = xp.where(nz, 100.0 * (g / xp.where(nz, tot, 1.0)), 0.0)
        else:
            out[:, t] = g
    return mask_before(xp, out, start + n - 1)


def rsi(xp, x, n):
    b = first_valid(xp, x)
    d = xp.zeros(x.shape)
    d[:, 1:] = x[:, 1:] - x[:, :-1]
    return wilder_scan(xp, d, b + 1, n, True)


def atr(xp, h, l, c, n):
    tr = trange(xp, h, l, c)
    if n == 1:
        return tr
    b = first_valid(xp, h, l, c)
    return wilder_scan(xp, tr, b + 1, n, False)
