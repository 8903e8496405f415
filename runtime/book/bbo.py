"""Top of book as research data: one row per change of an instrument's best bid or ask.

`bbo_note(books, tops, loc, ev, rows, k)` is called after an event changed the book of `loc`;
it compares that book's top (price, shares and order count of each side) with the last one
recorded in `tops[loc]` and, when any of the six differs, writes a BBO_DTYPE row into
`rows[k]` and returns k + 1. One row per message at most (a replace that deletes and adds
is one change), in feed order, prices as ITCH Price(4) integers, an empty side as 0/0/0:
the same rows itch-book's BBO table holds (tests/runtime/book check it message by message).
`bbo_apply_all` applies a batch of events to the books and collects the rows in one loop.
No allocation: `rows` is sized by the caller (one per event is always enough).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.book.orderbook import ASK, BID, book_apply, book_prefetch, top_level

BBO_DTYPE = np.dtype([("seq", "<u8"), ("ts_exch", "<u8"), ("locate", "<u4"),
                      ("bid_orders", "<u4"), ("bid_px", "<i8"), ("bid_sz", "<i8"),
                      ("ask_px", "<i8"), ("ask_sz", "<i8"), ("ask_orders", "<u4"),
                      ("pad", "<u4")], align=True)
BBO_COLUMNS = ("seq", "ts_exch", "locate", "symbol", "bid_px", "bid_sz", "bid_orders",
               "ask_px", "ask_sz", "ask_orders")
N_TOP = 6   # tops[loc] = bid px, sz, orders, ask px, sz, orders


def new_tops(n_locates: int) -> np.ndarray:
    """The last top recorded per locate (all empty at the start)."""
    return np.zeros((n_locates, N_TOP), dtype=np.int64)


@njit(nogil=True, inline="always")
def bbo_note(books, tops, loc, ev, rows, k):
    """Record a row in rows[k] if the top of loc changed; returns the new row count (k when
    unchanged, or when rows or tops have no room -- sized right, that never happens)."""
    if loc < 0 or loc >= tops.shape[0] or k < 0 or k >= rows.shape[0]:
        return k
    bp, bs, bn = top_level(books, loc, BID)
    ap, as_, an = top_level(books, loc, ASK)
    t = tops[loc]
    if t[0] == bp and t[1] == bs and t[2] == bn and t[3] == ap and t[4] == as_ and t[5] == an:
        return k
    t[0] = bp
    t[1] = bs
    t[2] = bn
    t[3] = ap
    t[4] = as_
    t[5] = an
    r = rows[k]
    r.seq = ev.seq
    r.ts_exch = ev.ts_exch
    r.locate = loc
    r.bid_px = bp
    r.bid_sz = bs
    r.bid_orders = bn
    r.ask_px = ap
    r.ask_sz = as_
    r.ask_orders = an
    return k + 1


@njit(nogil=True, cache=True)
def bbo_apply_all(books, events, n, counters, tops, rows):
    """Apply events[0:n] to the books; rows gets one row per top-of-book change. Returns the
    number of rows (rows needs n slots to be sure of room)."""
    k = 0
    for i in range(min(n, events.shape[0])):
        book_prefetch(books, events, i + 6)
        loc = book_apply(books, events, i, counters)
        if loc >= 0:
            k = bbo_note(books, tops, loc, events[i], rows, k)
    return k
