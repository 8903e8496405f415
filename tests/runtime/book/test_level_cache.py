"""The level cache (layout.py) maps (locate, side, price) to where that level was in the
arena. It is never trusted: levels shift, regions move between books, keys collide. Each
case below makes the cached entry wrong in one of those ways, and the add must still land
on the level of its own book at its own price.
The books here have no ladders (ladders=0): the cache serves arena levels only."""
from __future__ import annotations

import numpy as np

from tickpath.runtime.book.layout import LEVEL_CACHE_SHIFT, LEVEL_REGION_MIN, level_cache_slots
from tickpath.runtime.book.orderbook import (
    ASK, BID, book_apply_all, level_at, new_books, shares_at, top_level,
)
from tickpath.runtime.core import counters as C
from book_events import book_events

_FIB = 11400714819323198485


def _slot(books, loc, side, price):
    """The cache slot of a key (orderbook.py's hash, here in Python)."""
    key = (loc << 33) | (side << 32) | price
    return ((key * _FIB) % (1 << 64)) >> int(books.state[LEVEL_CACHE_SHIFT])


def _apply(books, counters, rows):
    book_apply_all(books, book_events(rows), counters)


def test_cache_slots_are_a_bounded_power_of_two():
    for n_loc in (1, 3, 64, 1000, 65536):
        n = level_cache_slots(n_loc)
        assert n & (n - 1) == 0 and (1 << 12) <= n <= (1 << 16)
    books = new_books(5, 16, 8, ladders=0)
    assert books.level_cache.shape[0] == 1 << (64 - int(books.state[LEVEL_CACHE_SHIFT]))
    assert (books.level_cache == -1).all()


def test_an_add_after_a_worse_level_shifted_its_level_reaches_the_right_level():
    books, counters = new_books(2, 1 << 8, 64, ladders=0), C.new_counters()
    _apply(books, counters, [("A", 1, "B", 10, 1000000, 1), ("A", 2, "B", 20, 2000000, 1),
                             ("A", 3, "B", 30, 3000000, 1)])
    cached = books.level_cache[_slot(books, 1, BID, 3000000)]
    _apply(books, counters, [("A", 4, "B", 40, 500000, 1)])   # every level moves up one
    assert books.levels["price"][cached] == 2000000              # the entry is stale now
    _apply(books, counters, [("A", 5, "B", 7, 3000000, 1)])
    assert shares_at(books, 1, BID, 3000000) == 37
    assert shares_at(books, 1, BID, 2000000) == 20
    assert top_level(books, 1, BID) == (3000000, 37, 2)


def test_an_entry_into_a_region_another_book_now_owns_is_not_used():
    """A side that outgrows its smallest region moves and frees it; another book takes it
    and puts a level at the same price at the same index: the first book's entry now names
    a record with the right price in the wrong book."""
    books, counters = new_books(3, 1 << 8, 64, ladders=0), C.new_counters()
    rows = [("A", k + 1, "B", 10, (k + 1) * 10000, 1) for k in range(LEVEL_REGION_MIN)]
    _apply(books, counters, rows)                  # book 1 fills its first region: 100 at index 0
    first = books.sides["off"][1, BID]
    assert books.level_cache[_slot(books, 1, BID, 10000)] == first
    _apply(books, counters, [("A", 100, "B", 10, 990000, 1)])   # one more: book 1 moves
    assert books.sides["off"][1, BID] != first
    _apply(books, counters, [("A", 200, "B", 5, 10000, 2)])     # book 2 reuses the region
    assert books.sides["off"][2, BID] == first
    _apply(books, counters, [("A", 300, "B", 1, 10000, 1)])
    assert shares_at(books, 1, BID, 10000) == 11
    assert shares_at(books, 2, BID, 10000) == 5
    assert books.sides["n_levels"][2, BID] == 1 and top_level(books, 2, BID) == (10000, 5, 1)


def test_keys_that_share_a_slot_each_reach_their_own_level():
    books, counters = new_books(2, 1 << 10, 64, ladders=0), C.new_counters()
    target = _slot(books, 1, ASK, 5000000)
    twins = [p for p in range(5000100, 90000000, 100) if _slot(books, 1, ASK, p) == target][:3]
    assert len(twins) == 3
    rows = []
    for k in range(4):   # alternate the colliding prices so every add evicts the other's entry
        for j, p in enumerate([5000000] + twins):
            rows.append(("A", 1 + k * 10 + j, "S", 1 + j, p, 1))
    _apply(books, counters, rows)
    assert [shares_at(books, 1, ASK, p) for p in [5000000] + twins] == [4, 8, 12, 16]
    assert [level_at(books, 1, ASK, k)[0] for k in range(4)] == [5000000] + twins
    assert counters[C.BOOK_LEVELS_FULL] == 0


def test_a_refused_level_leaves_no_entry_that_finds_it():
    books, counters = new_books(2, 1 << 8, 2, ladders=0), C.new_counters()   # two levels a side
    _apply(books, counters, [("A", 1, "B", 1, 10000, 1), ("A", 2, "B", 1, 20000, 1),
                             ("A", 3, "B", 1, 5000, 1), ("A", 4, "B", 1, 5000, 1)])
    assert counters[C.BOOK_LEVELS_FULL] == 2
    assert books.level_cache[_slot(books, 1, BID, 5000)] == -1
    assert [level_at(books, 1, BID, k) for k in range(3)] == [(20000, 1, 1), (10000, 1, 1),
                                                             (0, 0, 0)]
    assert np.all(books.levels["price"][books.sides["off"][1, BID]:][:2] == [10000, 20000])
