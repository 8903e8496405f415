"""The order table's primitives (layout: book.py): the (user, UserRefNum) -> slot lookup,
placing an order in its price level and taking it out, and order slots. engine.py builds
the commands from these; all are inlined into the engine's functions (numba IR inlining),
and vjit's cache key covers this file, so an edit here recompiles them.

Placing keeps NASDAQ's priority inside a level: displayed orders first, in time order, then
hidden ones in time order (a displayed order goes in after the level's last displayed one,
a hidden one at the back).
"""
from __future__ import annotations

import numpy as np

from tickpath.bench.venue import layout as L
from tickpath.bench.venue.book import S_BG_N, S_HASH_SHIFT, S_N_FREE
from tickpath.bench.venue.jit import vjit

_FIB = np.uint64(11400714819323198485)
BID, ASK = 0, 1


# ---------------------------------------------------------------- user order hash

@vjit(inline="always")
def _hkey(user, uref):
    return (np.uint64(user + 1) << np.uint64(32)) | np.uint64(uref)   # never 0 (= empty)


@vjit(inline="always")
def _hhome(e, key):
    """Home slot: blocks of 16 consecutive keys in 16 consecutive slots, blocks scattered
    (Fibonacci hashing of key >> 4). Why: UserRefNums rise, so a user's (and the flow's)
    recent orders share a few cache lines instead of a miss per insert and per delete."""
    block = ((key >> np.uint64(4)) * _FIB) >> np.uint64(e.state[S_HASH_SHIFT])
    return np.int64((block << np.uint64(4)) | (key & np.uint64(15)))


@vjit(inline="always")
def h_find(e, user, uref):
    """Slot of the live order (user, uref), or -1."""
    key = _hkey(user, uref)
    mask = e.h_key.shape[0] - 1
    j = _hhome(e, key)
    while True:
        k = e.h_key[j]
        if k == 0:
            return -1
        if k == key:
            return e.h_val[j]
        j = (j + 1) & mask


@vjit(inline="always")
def h_insert(e, user, uref, slot):
    key = _hkey(user, uref)
    mask = e.h_key.shape[0] - 1
    j = _hhome(e, key)
    while e.h_key[j] != 0 and e.h_key[j] != key:
        j = (j + 1) & mask
    e.h_key[j] = key
    e.h_val[j] = slot


@vjit(inline="always")
def h_delete(e, user, uref):
    key = _hkey(user, uref)
    mask = e.h_key.shape[0] - 1
    i = _hhome(e, key)
    while True:
        k = e.h_key[i]
        if k == 0:
            return
        if k == key:
            break
        i = (i + 1) & mask
    j = i
    while True:   # backward shift (Knuth 6.4 algorithm R): no tombstones
        j = (j + 1) & mask
        if e.h_key[j] == 0:
            break
        h = _hhome(e, e.h_key[j])
        if (i <= j and (h <= i or h > j)) or (i > j and h <= i and h > j):
            e.h_key[i] = e.h_key[j]
            e.h_val[i] = e.h_val[j]
            i = j
    e.h_key[i] = 0
    e.h_val[i] = -1


# ---------------------------------------------------------------- price ladder

@vjit(inline="always")
def lslot(e, loc, side, gi):
    return e.loc_base[loc] + side * e.loc_npx[loc] + gi


@vjit(inline="always")
def grid(e, loc, price):
    return (price - e.loc_lo[loc]) // e.loc_tick[loc]


@vjit(inline="always")
def link(e, j):
    """Put order j in its level: after the last displayed order if displayed (ahead of the
    hidden ones), at the back if hidden. Why no pointer to the last displayed order: the
    back is displayed unless the level holds hidden orders (few), so a displayed order
    walks back over the hidden ones only then, and no extra array line is touched per
    order (a per-level 'last displayed' array cost a cache miss per add and cancel)."""
    loc, side = e.ord[j].loc, e.ord[j].side
    gi = grid(e, loc, e.ord[j].price)
    s = lslot(e, loc, side, gi)
    shown = e.ord[j].disp != L.DISPLAY_HIDDEN
    a = e.lv_tail[s]                                      # j goes right after a
    if shown:
        while a >= 0 and e.ord[a].disp == L.DISPLAY_HIDDEN:
            a = e.ord[a].prev
    n = e.ord[a].next if a >= 0 else e.lv_head[s]
    e.ord[j].prev = a
    e.ord[j].next = n
    if a >= 0:
        e.ord[a].next = j
    else:
        e.lv_head[s] = j
    if n >= 0:
        e.ord[n].prev = j
    else:
        e.lv_tail[s] = j
    if shown:
        e.lv_qty[s] += e.ord[j].qty
        e.lv_cnt[s] += 1
    e.lv_n[s] += 1
    if e.lv_n[s] == 1:
        e.nlev[loc, side] += 1
        b = e.best[loc, side]
        if b < 0 or (side == BID and gi > b) or (side == ASK and gi < b):
            e.best[loc, side] = gi


@vjit(inline="always")
def unlink(e, j):
    """Take order j out of its level (its open shares leave the displayed total)."""
    loc, side = e.ord[j].loc, e.ord[j].side
    gi = grid(e, loc, e.ord[j].price)
    s = lslot(e, loc, side, gi)
    p, n = e.ord[j].prev, e.ord[j].next
    if p >= 0:
        e.ord[p].next = n
    else:
        e.lv_head[s] = n
    if n >= 0:
        e.ord[n].prev = p
    else:
        e.lv_tail[s] = p
    if e.ord[j].disp != L.DISPLAY_HIDDEN:
        e.lv_qty[s] -= e.ord[j].qty
        e.lv_cnt[s] -= 1
    e.lv_n[s] -= 1
    if e.lv_n[s] == 0:
        e.nlev[loc, side] -= 1
        if e.best[loc, side] == gi:
            if e.nlev[loc, side] == 0:
                e.best[loc, side] = -1
            else:
                step = -1 if side == BID else 1
                g = gi + step
                base = lslot(e, loc, side, 0)
                while e.lv_n[base + g] == 0:   # ends: nlev > 0 says a level is left
                    g += step
                e.best[loc, side] = g


@vjit(inline="always")
def crosses(e, loc, side, price):
    """Would an order of `side` at `price` meet the opposite side's best level?"""
    gi = e.best[loc, 1 - side]
    if gi < 0:
        return False
    px = e.loc_lo[loc] + gi * e.loc_tick[loc]
    return px <= price if side == BID else px >= price


# ---------------------------------------------------------------- order slots

@vjit(inline="always")
def alloc(e):
    n = e.state[S_N_FREE]
    if n == 0:
        return -1
    e.state[S_N_FREE] = n - 1
    return e.free[n - 1]


@vjit(inline="always")
def release(e, j):
    """Order j is dead: out of the lookup, the background list and the slot table."""
    u = e.ord[j].user
    h_delete(e, u, e.ord[j].uref)
    if u == 0:
        k = e.ord[j].bg
        if k >= 0:
            n = e.state[S_BG_N] - 1
            last = e.bg_slots[n]
            e.bg_slots[k] = last
            e.ord[last].bg = k
            e.state[S_BG_N] = n
            e.ord[j].bg = -1
    e.ord[j].qty = 0
    e.free[e.state[S_N_FREE]] = j
    e.state[S_N_FREE] += 1
