"""Background participants: the market's usual order flow, generated as orders into the
engine (not as pre-encoded ITCH), so a client's orders meet a live book and what the feed
shows is what matches.

Per event (seeded, numba): an instrument by Zipf-like popularity; its reference price
(`mid`) drifts by a tick now and then, held inside its band; then one action:
    passive add   ~45 %  a day limit 1-50 ticks behind the reference, 1-10 round lots
                         (5 % attributable: F with the background MPID, 3 % hidden)
    cancel        ~30 %  a resting background order, recent ones far more often
    reduce        ~ 4 %  a partial cancel to half (keeps priority: ITCH X)
    replace       ~ 4 %  to a new price near the reference (ITCH U)
    marketable    ~17 %  an IOC 0-3 ticks through the reference, 1-3 round lots
When the background holds more than `target_live` orders adds give way to cancels, so
the books stay realistic in depth over a long run. Background orders are user 0 (no
OUCH responses, no self-match prevention).
"""
from __future__ import annotations

import numpy as np

from tickpath.bench.venue import engine as E
from tickpath.bench.venue import itch_out as W
from tickpath.bench.venue.book import borrow_engine
from tickpath.bench.venue.timestamps import new_in_log
from tickpath.bench.venue import layout as L
from tickpath.bench.venue.book import S_BG_N
from tickpath.bench.venue.jit import vjit

P_ADD, P_CANCEL, P_REDUCE, P_REPLACE = 0.45, 0.30, 0.04, 0.04
P_DRIFT = 0.05
# flow params (int64)
F_TARGET_LIVE, F_N_LOC, F_NEXT_UREF = 0, 1, 2
CHUNK = 32                   # events built, then applied, at a time
N_FLOW = 4


def new_flow(ref, seed: int, target_live: int | None = None, quiet_locates=()):
    """(params int64, mid int64 per locate, cum_weight float64, scratch commands, a
    1-record in_log: background events carry no token, nothing is logged) for gen().
    quiet_locates: instruments the flow never touches (weight 0: a tick-to-trade trigger
    there is the only message of its instrument, so nothing else lands in its batch)."""
    n = ref.n
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n + 1) ** 0.8
    weights = rng.permutation(popularity)
    for loc in quiet_locates:
        weights[loc - 1] = 0.0
    if not weights.any():
        from tickpath.runtime.core.errors import ConfigError
        raise ConfigError("every instrument is quiet: the background flow has nowhere to go",
                          quiet_symbols=len(quiet_locates), instruments=n)
    cum = np.cumsum(weights)
    cum /= cum[-1]
    params = np.zeros(N_FLOW, np.int64)
    params[F_TARGET_LIVE] = target_live if target_live is not None else max(200, 40 * n)
    params[F_N_LOC] = n
    mid = ref.ref_price.copy()
    seed_flow(int(rng.integers(0, 2 ** 31 - 1)))
    return params, mid, cum, np.zeros(CHUNK, L.CMD_DTYPE), new_in_log(1)


@vjit
def seed_flow(seed):
    np.random.seed(seed)


@vjit(inline="always")
def _geo(p, cap):
    k = 1
    while k < cap and np.random.random() > p:
        k += 1
    return k


@vjit
def gen(e, w, rh, rd, stop, params, mid, cum, scratch, log, n, now):
    """Generate and apply n background events; returns n. Events are built CHUNK at a time
    and applied through engine.process_range like client commands (one compiled engine);
    a cancel or replace whose target an earlier event of the same chunk removed finds
    nothing and is counted (background_target_gone)."""
    e = borrow_engine(e)       # no refcount traffic on the 48 arrays per chunk call
    w = W.borrow_out(w)
    done = 0
    zero = np.int64(n - n)     # not the literal 0: a literal argument would compile (and
    while done < n:            # cache) a second process_range just for this call site
        k = min(CHUNK, n - done)
        for i in range(k):
            _one(e, params, mid, cum, scratch[i])
        E.process_range(e, w, rh, rd, stop, scratch, zero, k, now, log)
        done += k
    e.counters[L.C_BG_ORDERS] += n
    return n


@vjit(inline="always")
def _one(e, params, mid, cum, c):
    """Fill command c with the next background event."""
    c.user = 0
    c.orig_uref = 0
    c.token = -1
    c.recv_ns = 0
    c.capacity = 80          # P
    c.iso = 78               # N
    c.cross = L.CROSS_CONTINUOUS
    c.flags = 0
    loc = np.int64(np.searchsorted(cum, np.random.random())) + 1
    if loc > params[F_N_LOC]:
        loc = params[F_N_LOC]
    tick = e.loc_tick[loc]
    if np.random.random() < P_DRIFT:
        m = mid[loc] + (tick if np.random.random() < 0.5 else -tick)
        if e.loc_lo[loc] + 60 * tick <= m <= e.loc_hi[loc] - 60 * tick:
            mid[loc] = m
    nbg = e.state[S_BG_N]
    r = np.random.random()
    p_add = P_ADD if nbg < params[F_TARGET_LIVE] else P_ADD * 0.5
    if nbg < 16:
        p_add = 1.0
    lot = 100
    c.locate = loc
    if r < p_add:                                    # passive add
        c.kind = L.CMD_ENTER
        params[F_NEXT_UREF] += 1
        c.uref = params[F_NEXT_UREF]
        buy = np.random.random() < 0.5
        c.side = L.SIDE_BUY if buy else L.SIDE_SELL
        off = _geo(0.25, 50) * tick
        px = mid[loc] - off if buy else mid[loc] + off
        c.price = min(max(px, e.loc_lo[loc]), e.loc_hi[loc])
        c.qty = lot * _geo(0.35, 10)
        c.tif = L.TIF_DAY
        d = np.random.random()
        c.display = L.DISPLAY_ATTRIBUTABLE if d < 0.05 else (L.DISPLAY_HIDDEN if d < 0.08
                                                            else L.DISPLAY_VISIBLE)
        return
    r2 = (r - p_add) / (1.0 - p_add)                 # split the rest in proportion
    rest = P_CANCEL + P_REDUCE + P_REPLACE + 0.17
    if r2 < (P_CANCEL + P_REDUCE + P_REPLACE) / rest and nbg > 0:
        u = np.random.random()
        j = e.bg_slots[nbg - 1 - np.int64(nbg * u * u * u)]   # recent orders more often
        if r2 < (P_CANCEL + P_REDUCE) / rest:
            c.kind = L.CMD_CANCEL
            c.uref = e.ord[j].uref
            c.qty = 0 if r2 < P_CANCEL / rest else e.ord[j].qty // 2
            return
        jl = e.ord[j].loc
        jt = e.loc_tick[jl]
        off = _geo(0.3, 30) * jt
        px = mid[jl] - off if e.ord[j].side == 0 else mid[jl] + off
        c.kind = L.CMD_REPLACE
        c.orig_uref = e.ord[j].uref
        params[F_NEXT_UREF] += 1
        c.uref = params[F_NEXT_UREF]
        c.locate = jl
        c.price = min(max(px, e.loc_lo[jl]), e.loc_hi[jl])
        c.qty = e.ord[j].exec + e.ord[j].qty
        c.tif = L.TIF_DAY
        c.display = e.ord[j].disp
        return
    c.kind = L.CMD_ENTER                             # marketable IOC
    params[F_NEXT_UREF] += 1
    c.uref = params[F_NEXT_UREF]
    buy = np.random.random() < 0.5
    c.side = L.SIDE_BUY if buy else L.SIDE_SELL
    through = np.int64(np.random.random() * 4) * tick
    px = mid[loc] + through if buy else mid[loc] - through
    c.price = min(max(px, e.loc_lo[loc]), e.loc_hi[loc])
    c.qty = lot * (1 + np.int64(np.random.random() * 3))
    c.tif = L.TIF_IOC
    c.display = L.DISPLAY_VISIBLE
