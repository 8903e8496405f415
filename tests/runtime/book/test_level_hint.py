"""Each order remembers where its price level was (the slot's `hint`). Levels move when a
worse level comes or goes, so the hint goes stale: an execution or a delete must then still
reach the level at the order's price, never the level that now sits at the old index."""
from __future__ import annotations

import numpy as np

from tickpath.runtime.book.layout import HASH_BLOCK_BITS, HASH_SHIFT
from tickpath.runtime.book.orderbook import BID, book_apply_all, new_books, shares_at, top_level
from tickpath.runtime.core import counters as C
from book_events import book_events

LOC = 1


def _apply(books, counters, rows):
    book_apply_all(books, book_events([r + (LOC,) for r in rows]), counters)


def _hint(books, ref):
    """The hint of live order ref, from whichever part of the order table holds it."""
    table = np.concatenate([books.window, books.orders])
    slot = np.flatnonzero((table["used"] == 1) & (table["ref"] == ref))
    assert slot.size == 1
    return int(table["hint"][slot[0]])


def test_stale_hint_after_a_worse_level_is_inserted_reaches_the_right_level():
    books, counters = new_books(2, 1 << 8, 64, ladders=0), C.new_counters()
    # bids at 100, 200, 300 (worst first: indices 0, 1, 2); order 3 rests at 300
    _apply(books, counters, [("A", 1, "B", 10, 1000000), ("A", 2, "B", 20, 2000000),
                             ("A", 3, "B", 30, 3000000)])
    assert _hint(books, 3) == 2
    # a worse level (50) moves every level up one: index 2 is now the 200 level
    _apply(books, counters, [("A", 4, "B", 40, 500000)])
    assert _hint(books, 3) == 2   # stale on purpose: only the order's own events refresh it
    _apply(books, counters, [("X", 3, None, 5, 0)])
    assert shares_at(books, LOC, BID, 3000000) == 25
    assert shares_at(books, LOC, BID, 2000000) == 20
    assert _hint(books, 3) == 3   # found by the scan, kept for next time
    assert counters[C.BOOK_UNKNOWN_ORDER] == 0


def test_hint_past_the_end_after_worse_levels_go_still_finds_the_level():
    books, counters = new_books(2, 1 << 8, 64, ladders=0), C.new_counters()
    _apply(books, counters, [("A", 1, "B", 10, 1000000), ("A", 2, "B", 20, 2000000),
                             ("A", 3, "B", 30, 3000000), ("A", 4, "B", 40, 4000000)])
    assert _hint(books, 4) == 3
    _apply(books, counters, [("D", 1, None, 0, 0), ("D", 2, None, 0, 0), ("D", 3, None, 0, 0)])
    # one level left: the hint (3) points past the side's end
    _apply(books, counters, [("E", 4, None, 15, 0)])
    assert top_level(books, LOC, BID) == (4000000, 25, 1)
    _apply(books, counters, [("D", 4, None, 0, 0)])
    assert top_level(books, LOC, BID) == (0, 0, 0)
    assert books.sides["n_levels"][LOC, BID] == 0


def _home(books, ref):
    """The overflow table's home slot of ref (layout.py's block hash, here in Python)."""
    b = int(books.state[HASH_BLOCK_BITS])
    block = (((ref >> b) * 11400714819323198485) % (1 << 64)) >> int(books.state[HASH_SHIFT])
    return (block << b) | (ref & ((1 << b) - 1))


def test_hint_stays_with_its_order_when_a_delete_shifts_a_probe_run_back():
    """Backward-shift deletion moves index entries, never the pool records they name: each
    order keeps its record, and with it its hint."""
    books, counters = new_books(2, 1 << 6, 64, ladders=0), C.new_counters()
    n_w = books.window.shape[0]
    colliders = [r for r in range(n_w + 2, 1 << 16) if _home(books, r) == _home(books, 1)][:4]
    assert len(colliders) == 4
    # a newer ref in ref 1's window slot moves 1 to the overflow first; then newer refs in
    # the colliders' window slots move them there too: the run is 1, then its colliders
    rows = [("A", 1, "B", 1, 1000000), ("A", n_w + 1, "S", 1, 9000000)]
    rows += [("A", r, "B", 10 + k, (200 + k) * 10000) for k, r in enumerate(colliders)]
    base = (max(colliders) // n_w + 1) * n_w
    rows += [("A", base + s, "S", 1, 9100000) for s in sorted({r % n_w for r in colliders})]
    _apply(books, counters, rows)
    pool = books.orders
    assert pool["ref"][books.ov_index[_home(books, 1)] - 1] == 1   # 1 sits at its home
    hints = {r: _hint(books, r) for r in colliders}
    assert sorted(hints.values()) == [1, 2, 3, 4]
    index_before = books.ov_index.copy()
    records_before = {r: int(np.flatnonzero(pool["ref"] == r)[0]) for r in colliders}
    _apply(books, counters, [("D", 1, None, 0, 0)])   # the run behind it moves back one slot
    assert not np.array_equal(books.ov_index, index_before)
    for k, r in enumerate(colliders):
        assert int(np.flatnonzero(pool["ref"] == r)[0]) == records_before[r]
        assert _hint(books, r) == hints[r]
        _apply(books, counters, [("X", r, None, 1, 0)])
        assert shares_at(books, LOC, BID, (200 + k) * 10000) == 10 + k - 1
    assert counters[C.BOOK_UNKNOWN_ORDER] == 0


def test_the_overflow_pool_reuses_freed_records_and_never_outgrows_max_orders():
    from tickpath.runtime.book.layout import N_OVERFLOW, POOL_FREE, POOL_TOP
    from tickpath.runtime.book.orderbook import clear_books, n_live_orders
    max_orders = 16
    books, counters = new_books(2, max_orders, 64, ladders=0), C.new_counters()
    n_w = books.window.shape[0]
    rng = np.random.default_rng(5)
    live, next_ref = [], 1
    for step in range(3000):
        if len(live) < max_orders - 1 and (not live or rng.random() < 0.55):
            # refs jump ahead by up to two windows: older live orders move to the overflow
            next_ref += int(rng.integers(1, 2 * n_w))
            _apply(books, counters, [("A", next_ref, "B", 5, 1000000 + 100 * (step % 7))])
            live.append(next_ref)
        else:
            ref = live.pop(int(rng.integers(len(live))))
            _apply(books, counters, [("D", ref, None, 0, 0)])
        top, free, held = (int(books.state[k]) for k in (POOL_TOP, POOL_FREE, N_OVERFLOW))
        assert top <= max_orders and top - free == held
        assert int((books.orders["used"][:top] == 1).sum()) == held
    assert int(books.state[POOL_TOP]) > 4   # the overflow was used, and records came back
    assert n_live_orders(books) == len(live) and counters[C.BOOK_UNKNOWN_ORDER] == 0
    clear_books(books)
    assert books.state[POOL_TOP] == books.state[POOL_FREE] == 0 and not books.ov_index.any()
    assert not books.orders["used"].any()
