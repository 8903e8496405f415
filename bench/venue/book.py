"""Where the bytes of the matching engine are (layout apart from algorithm: engine.py moves
them). Everything is preallocated once; the engine has one writer thread.

Orders: one record per order slot (0..max_orders-1), ORDER_DTYPE, a free-slot stack.
What a fill touches is in the first cache line:

    byte 0 next | 8 prev | 16 qty | 24 price | 32 ref | 40 exec | 48 loc i32 | 52 side i32
        56 user i32 | 60 disp | 61 och | 62 cap | 63 iso || 64 uref | 72 bg | 80 mpid | 88 tif
        89 flags (layout.FLAG_*)

    next / prev  FIFO neighbours in the price level (-1 = none)
    qty      open shares                price   Price(4)
    ref      ITCH order reference number (venue-assigned, rising; OUCH OrderReferenceNumber)
    exec     shares executed over the whole replace chain (OUCH U quantity counts them)
    loc      stock locate               side    0 bid / 1 ask
    user     0 = background flow, 1.. = an OUCH user
    disp, och, cap, iso, tif  OUCH Display, Side char, Capacity, ISO, TIF (ASCII)
    flags    the entering command's flags (post-only)
    uref     the user's UserRefNum of this order (the chain's latest)
    bg       index in bg_slots (background orders) or -1
    mpid     attribution for F messages (4 ASCII bytes, big-endian), 0 = A

Price ladder: per locate and side, one level per tick of the price band
[band_lo, band_hi] (grid index gi = (price - band_lo) / tick), so placing an order at a
price is O(1) and the book never reallocates. Level slot = loc_base[loc] + side *
loc_npx[loc] + gi. Each level is a FIFO of orders (head/tail), displayed orders first and
hidden ones behind them (NASDAQ's priority: price, then display, then time), with lv_n
orders in all and lv_qty / lv_cnt the displayed shares / orders (what ITCH shows). best[loc, side] is the gi
of the best non-empty level (-1 = empty side); nlev[loc, side] counts non-empty levels,
so an emptied side is known without a scan. When the best level empties, the engine scans
toward worse prices to the next non-empty one: flow concentrates near the top, so the
scan is short; a side with nothing left stops at once (nlev = 0).

Order lookup: open addressing (linear probing, backward-shift deletion: no tombstones)
keyed by ((user + 1) << 32 | UserRefNum) -> slot, 2 * max_orders entries (load <= 0.5),
blocks of 16 consecutive keys kept in consecutive slots (rising UserRefNums stay close).
Background orders (user 0) are in it too, under the flow's own rising reference numbers,
and also listed in bg_slots so the flow can pick one to cancel or replace.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from tickpath.runtime.core.errors import ConfigError

from tickpath.bench.venue import layout as L

# state slots
S_N_FREE, S_NEXT_REF, S_NEXT_MATCH, S_N_LIVE, S_OPEN, S_SMP, S_BG_N, S_HASH_SHIFT = range(8)
N_STATE = 16

ORDER_DTYPE = np.dtype([
    ("next", "<i8"), ("prev", "<i8"), ("qty", "<i8"), ("price", "<i8"), ("ref", "<u8"),
    ("exec", "<i8"), ("loc", "<i4"), ("side", "<i4"), ("user", "<i4"), ("disp", "u1"),
    ("och", "u1"), ("cap", "u1"), ("iso", "u1"), ("uref", "<i8"), ("bg", "<i8"),
    ("mpid", "<i8"), ("tif", "u1"), ("flags", "u1"),
], align=True)
assert ORDER_DTYPE.itemsize == 96 and ORDER_DTYPE.fields["uref"][1] == 64

Engine = namedtuple("Engine", [
    "ord", "free", "state", "lv_head", "lv_tail", "lv_qty", "lv_cnt", "lv_n",
    "loc_tick", "loc_lo", "loc_hi", "loc_npx", "loc_base", "best", "nlev", "symbols",
    "h_key", "h_val", "bg_slots", "user_mpid", "counters",
])

MAX_USERS = 1024


def new_engine(ref, max_orders: int = 1 << 20, self_match_prevention: bool = True,
               user_mpids: dict | None = None) -> Engine:
    """Books for every instrument of `ref` (refdata.RefData)."""
    if max_orders < 16 or max_orders & (max_orders - 1) or max_orders > 1 << 28:
        raise ConfigError("max_orders must be a power of two in 16..2^28", max_orders=max_orders)
    n_loc = ref.n + 1
    npx = np.zeros(n_loc, np.int64)
    npx[1:] = (ref.band_hi[1:] - ref.band_lo[1:]) // ref.tick[1:] + 1
    base = np.zeros(n_loc, np.int64)
    base[1:] = np.cumsum(2 * npx)[:-1]
    n_lv = int(2 * npx.sum())
    if n_lv > 1 << 30:
        raise ConfigError("price ladders too large: narrow the bands or coarsen the ticks",
                          levels=n_lv)
    n = max_orders
    state = np.zeros(N_STATE, np.int64)
    state[S_N_FREE] = n
    state[S_NEXT_REF] = 1
    state[S_NEXT_MATCH] = 1
    state[S_OPEN] = 1
    state[S_SMP] = 1 if self_match_prevention else 0
    h = 2 * n
    state[S_HASH_SHIFT] = 64 - (h.bit_length() - 1 - 4)   # blocks of 16 slots (engine._hhome)
    mp = np.zeros(MAX_USERS, np.int64)
    for u, code in (user_mpids or {}).items():
        mp[u] = int.from_bytes(code.encode("ascii").ljust(4)[:4], "big")
    orders = np.zeros(n, ORDER_DTYPE)
    orders["next"] = -1
    orders["prev"] = -1
    orders["bg"] = -1
    i64 = lambda k: np.zeros(k, np.int64)  # noqa: E731
    return Engine(
        ord=orders, free=np.arange(n - 1, -1, -1, dtype=np.int64), state=state,
        lv_head=np.full(n_lv, -1, np.int64), lv_tail=np.full(n_lv, -1, np.int64),
        lv_qty=i64(n_lv), lv_cnt=i64(n_lv), lv_n=i64(n_lv),
        loc_tick=ref.tick.copy(), loc_lo=ref.band_lo.copy(), loc_hi=ref.band_hi.copy(),
        loc_npx=npx, loc_base=base, best=np.full((n_loc, 2), -1, np.int64),
        nlev=np.zeros((n_loc, 2), np.int64), symbols=ref.symbols.copy(),
        h_key=np.zeros(h, np.uint64), h_val=np.full(h, -1, np.int64),
        bg_slots=i64(n), user_mpid=mp, counters=np.zeros(L.N_ALL_COUNTERS, np.int64),
    )


def levels(e: Engine, loc: int, side: int) -> list[tuple[int, int, int]]:
    """Displayed levels of one side best-first: (price, shares, orders). Slow path."""
    npx = int(e.loc_npx[loc])
    b = int(e.loc_base[loc]) + side * npx
    qty = e.lv_qty[b:b + npx]
    gi = np.flatnonzero(qty > 0)
    if side == 0:
        gi = gi[::-1]
    lo, tick = int(e.loc_lo[loc]), int(e.loc_tick[loc])
    return [(lo + int(g) * tick, int(qty[g]), int(e.lv_cnt[b + g])) for g in gi]


def all_levels(e: Engine) -> dict:
    """{locate: (bids, asks)} for every locate with a displayed order."""
    out = {}
    for loc in range(1, len(e.loc_npx)):
        bids, asks = levels(e, loc, 0), levels(e, loc, 1)
        if bids or asks:
            out[loc] = (bids, asks)
    return out


def queue(e: Engine, loc: int, side: int, price: int) -> list[int]:
    """Order slots resting at one price, in time priority. Slow path (tests)."""
    gi = (price - int(e.loc_lo[loc])) // int(e.loc_tick[loc])
    j = int(e.lv_head[int(e.loc_base[loc]) + side * int(e.loc_npx[loc]) + gi])
    out = []
    while j >= 0:
        out.append(j)
        j = int(e.ord["next"][j])
    return out


def live_orders(e: Engine) -> int:
    return int(len(e.free) - e.state[S_N_FREE])


def _make_borrower(tuple_type, name):
    """A jitted f(t) -> the same namedtuple with every array borrowed (no refcount).
    Why: a non-inlined numba call gives every array argument an atomic incref/decref
    pair, and the engine's tuple holds 37 arrays — that cost 6 µs per order (measured);
    with borrowed views the pairs test a NULL and do nothing. Safe while the caller holds
    the real tuple."""
    from tickpath.bench.venue.jit import vjit
    from tickpath.runtime.sys.intrinsics import borrow
    src = (f"def {name}(t):\n    return T(" +
           ", ".join(f"borrow(t.{f})" for f in tuple_type._fields) + ")\n")
    ns = {"T": tuple_type, "borrow": borrow}
    exec(src, ns)  # noqa: S102 - generated from the namedtuple's own field names
    return vjit(inline="always")(ns[name])


borrow_engine = _make_borrower(Engine, "borrow_engine")
