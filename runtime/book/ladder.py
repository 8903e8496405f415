"""Ladders: the price levels of a side around its touch, indexed by price (layout.py draws
them). A ladder is a ring of LADDER_SLOTS level records; the level at price p sits at slot
(p / LADDER_TICK) mod LADDER_SLOTS, for the prices of the side's window [lo_q, lo_q +
LADDER_SLOTS) ticks, so finding, making and dropping a level is one read and a write: no
search, no shift. The side's best ladder level is kept (`sides.best`); when it empties, the
next is the nearest non-empty slot on the worse side, a few slots away in a book with depth.

Which levels are the ladder's: those of a side with a ladder whose price is in the window
and on the cent grid. The arena (levels.py) keeps the rest, so the best of a side is the
better of the ladder's best and the arena's best, and walking a side merges the two. A side
gets a ladder from the pool when it is about to hold more than LADDER_MIN_LEVELS levels
(shallow sides stay in the arena, as fast there for them; none left: it stays in the arena),
its window placed around the side's best. The window is placed again when the ladder is
empty and a price outside it arrives, and moved when a price beyond its inner edge arrives
(a bid above it, an ask below it: the market moved). Moving the window (recenter) moves the
levels that leave it to the arena and the arena's levels that enter it to the ladder, so the
rule above stays true; a move out refused for capacity loses that level, and the book is
then marked unreliable like any refused level. The new window puts the price that moved it a
quarter of the window from the inner edge, so it moves again only after the market has gone
that far (32 ticks). A hostile feed that makes it move on every add pays bounded work a
move (at most LADDER_SLOTS levels change places, each one arena insert or remove) and no
memory.

Why: in a deep book the arena's search for an add's level and the shift on a new or emptied
level were most of the books' time; on the deep benchmark flow the ladders took
book_apply_all from 40.4 to 30.6 ns an event (the committed benchmark; 42-43 to 33-34 with
fresh tables), and the deep replay from 1.8x to 2.1-2.4x itch-book's speed (bench/RESULTS.md,
thirteenth session).

All functions are numba inline="always" on borrowed arrays (orderbook.py explains why).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.book.layout import (
    BID,
    LADDER_MASK,
    LADDER_MIN_LEVELS,
    LADDER_SLOTS,
    LADDER_TICK,
    LADDER_TOP,
    MAX_SIDE_LEVELS,
    N_LADDERS,
    NO_REGION,
)
from tickpath.runtime.book.levels import better, insert, refused, remove, scan

_U_TICK = np.uint64(LADDER_TICK)
_U_SLOTS = np.uint64(LADDER_SLOTS)


@njit(nogil=True, inline="always")
def slot(books, loc, side, price):
    """Ladder index of the level at price when it is the ladder's to hold, else -1."""
    sd = books.sides[loc, side]
    if sd.lad < 0:
        return np.int64(NO_REGION)
    q = np.uint64(price) // _U_TICK
    if q * _U_TICK != np.uint64(price) or q - np.uint64(sd.lo_q) >= _U_SLOTS:
        return np.int64(NO_REGION)
    return sd.lad + np.int64(q & np.uint64(LADDER_MASK))


@njit(nogil=True, inline="always")
def n_ladder(books, loc, side):
    """Levels the side's ladder holds."""
    sd = books.sides[loc, side]
    return np.int64(sd.n_levels) - np.int64(sd.arena_n)


@njit(nogil=True, inline="always")
def _step(side):
    return -1 if side == BID else 1   # toward worse prices


@njit(nogil=True, inline="always")
def new_level(books, loc, side, k, price):
    """Make the empty slot k the level at price; False when the side is at its bound."""
    sd = books.sides[loc, side]
    if sd.n_levels >= books.state[MAX_SIDE_LEVELS]:
        return False
    lv = books.ladder[k]
    lv.price = price
    lv.shares = 0
    if n_ladder(books, loc, side) == 0 or better(side, np.int64(price),
                                                 np.int64(books.ladder[sd.best].price)):
        sd.best = k
    sd.n_levels += 1
    return True


@njit(nogil=True, inline="always")
def level_gone(books, loc, side, k):
    """Slot k has no order left: it is free again, and the best moves on if it was the best."""
    sd = books.sides[loc, side]
    sd.n_levels -= 1
    if k == sd.best and n_ladder(books, loc, side) > 0:
        # ends: the ladder's other levels are all in its window and all worse than k
        j = k - sd.lad
        while True:
            j = (j + _step(side)) & LADDER_MASK
            if books.ladder[sd.lad + j].orders != 0:
                break
        sd.best = sd.lad + j


@njit(nogil=True, inline="always")
def claim(books, loc, side, price, counters):
    """Slot for a price the ladder does not hold, when giving the side a ladder or placing
    or moving its window makes it the ladder's; -1 when it stays in the arena (off the grid,
    behind the window, a side too shallow for a ladder, none free)."""
    q = np.int64(np.uint64(price) // _U_TICK)
    if q * LADDER_TICK != np.int64(price):
        return np.int64(NO_REGION)
    sd = books.sides[loc, side]
    if sd.lad < 0:
        # a shallow side is as fast in the arena, and its ladder's memory would cost more
        top = books.state[LADDER_TOP]
        if sd.n_levels < LADDER_MIN_LEVELS or top >= books.state[N_LADDERS]:
            return np.int64(NO_REGION)
        books.state[LADDER_TOP] = top + 1
        sd.lad = top * LADDER_SLOTS
        # around the side's best (all its levels are in the arena yet), not this price
        best = books.levels[np.int64(sd.off) + np.int64(sd.arena_n) - 1]
        q = np.int64(best.price) // LADDER_TICK
    elif n_ladder(books, loc, side) > 0 and (q < sd.lo_q if side == BID
                                             else q >= sd.lo_q + LADDER_SLOTS):
        return np.int64(NO_REGION)   # behind the window: far from the touch
    lo = q - (3 * LADDER_SLOTS) // 4 if side == BID else q - LADDER_SLOTS // 4
    recenter(books, loc, side, max(lo, np.int64(0)), counters)
    return slot(books, loc, side, price)


@njit(nogil=True, inline="always")
def recenter(books, loc, side, lo_q, counters):
    """Move the side's window to [lo_q, lo_q + LADDER_SLOTS) ticks: the levels leaving it go
    to the arena, the arena's grid levels inside it come to the ladder."""
    sd = books.sides[loc, side]
    lad = sd.lad
    if n_ladder(books, loc, side) > 0:
        for j in range(LADDER_SLOTS):
            lv = books.ladder[lad + j]
            if lv.orders == 0 or np.uint64(lv.price) // _U_TICK - np.uint64(lo_q) < _U_SLOTS:
                continue
            price = np.int64(lv.price)
            orders = lv.orders
            shares = lv.shares
            lv.orders = 0
            lv.shares = 0
            sd.n_levels -= 1   # insert counts it again
            pos = scan(books, np.int64(sd.off), np.int64(sd.arena_n), side, price)
            a = insert(books, loc, side, pos + 1, price)
            if a < 0:
                refused(books, loc, counters)   # the level is lost: the book may lie
            else:
                books.levels[a].orders = orders
                books.levels[a].shares = shares
    i = np.int64(sd.arena_n) - 1
    while i >= 0:   # best first: a removal shifts only the levels already seen
        alv = books.levels[np.int64(sd.off) + i]
        q = np.uint64(alv.price) // _U_TICK
        if q * _U_TICK == np.uint64(alv.price) and q - np.uint64(lo_q) < _U_SLOTS:
            d = books.ladder[lad + np.int64(q & np.uint64(LADDER_MASK))]
            d.price = alv.price
            d.orders = alv.orders
            d.shares = alv.shares
            remove(books, loc, side, i)
            sd.n_levels += 1   # still the side's level, now in the ladder
        i -= 1
    sd.lo_q = lo_q
    if n_ladder(books, loc, side) > 0:   # the best: the first level from the inner edge
        j = lo_q + LADDER_SLOTS - 1 if side == BID else lo_q
        while books.ladder[lad + (j & LADDER_MASK)].orders == 0:
            j += _step(side)
        sd.best = lad + (j & LADDER_MASK)


@njit(nogil=True, inline="always")
def side_top(books, loc, side):
    """(price, shares, orders) of the best level of one side, ladder or arena; zeros when
    the side is empty. The caller checks loc and side."""
    sd = books.sides[loc, side]
    na = np.int64(sd.arena_n)
    if np.int64(sd.n_levels) > na:
        lv = books.ladder[sd.best]
        if na == 0 or not better(side, np.int64(books.levels[np.int64(sd.off) + na - 1].price),
                                 np.int64(lv.price)):
            return np.int64(lv.price), lv.shares, np.int64(lv.orders)
    elif na == 0:
        return np.int64(0), np.int64(0), np.int64(0)
    lv = books.levels[np.int64(sd.off) + na - 1]
    return np.int64(lv.price), lv.shares, np.int64(lv.orders)


@njit(nogil=True, inline="always")
def walk_start(books, loc, side):
    """Cursor of a best-first walk of a side: (next arena index, next ladder ring offset,
    ladder levels left)."""
    sd = books.sides[loc, side]
    n_lad = n_ladder(books, loc, side)
    return np.int64(sd.arena_n) - 1, (sd.best - sd.lad) if n_lad > 0 else np.int64(0), n_lad


@njit(nogil=True, inline="always")
def walk_next(books, loc, side, ai, lj, left):
    """The next level of a best-first walk, and the cursor after it: (price, shares, orders,
    ai, lj, left). The caller stops after n_levels[loc, side] levels."""
    sd = books.sides[loc, side]
    lp = np.int64(0)
    if left > 0:
        while books.ladder[sd.lad + (lj & LADDER_MASK)].orders == 0:
            lj += _step(side)
        lp = np.int64(books.ladder[sd.lad + (lj & LADDER_MASK)].price)
    if ai >= 0:
        alv = books.levels[np.int64(sd.off) + ai]
        if left == 0 or better(side, np.int64(alv.price), lp):
            return np.int64(alv.price), alv.shares, np.int64(alv.orders), ai - 1, lj, left
    lv = books.ladder[sd.lad + (lj & LADDER_MASK)]
    return lp, lv.shares, np.int64(lv.orders), ai, lj + _step(side), left - 1
