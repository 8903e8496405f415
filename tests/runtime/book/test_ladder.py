"""Ladders (ladder.py): the levels of a side near its touch, indexed by price, the rest in the
arena. Each case drives one of the ways a level changes hands between the two -- the window
placed, moved up and down with the market, prices off the cent grid, a pool with too few
ladders, the level bound, an arena too small for the levels a move pushes out -- and checks
the whole book, best-first, against RefBook (a dict of orders) built from the same rows."""
from __future__ import annotations

import numpy as np
import pytest

from tickpath.runtime.book.layout import (
    LADDER_MIN_LEVELS,
    LADDER_SLOTS,
    LADDER_TICK,
    LADDER_TOP,
    LEVEL_REGION_MIN,
    clear_books,
    unreliable_report,
)
from tickpath.runtime.book.orderbook import (
    ASK,
    BID,
    book_apply_all,
    book_ok,
    depth,
    level_at,
    new_books,
    shares_at,
    top_level,
)
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ConfigError
from book_events import book_events
from ref_book import RefBook

CENT = LADDER_TICK


def check(books, ref, locs):
    for loc in locs:
        for side in (BID, ASK):
            want = ref.levels(loc, side)
            got = [tuple(x) for x in depth(books, loc, side, 100_000).tolist()]
            assert got == want, (loc, side, got[:5], want[:5])
            assert top_level(books, loc, side) == (want[0] if want else (0, 0, 0))
            assert books.sides["n_levels"][loc, side] == len(want)
            for k in (0, len(want) // 2, len(want) - 1):
                if want:
                    assert level_at(books, loc, side, k) == want[k]
            for px, sh, _n in want[:: max(len(want) // 7, 1)]:
                assert shares_at(books, loc, side, px) == sh


def run(books, rows, locs, step=37):
    """Apply rows in steps, checking every side of locs against RefBook after each."""
    ref, counters = RefBook(), C.new_counters()
    for a in range(0, len(rows), step):
        book_apply_all(books, book_events(rows[a:a + step]), counters)
        for t, r, side, sh, px, loc in rows[a:a + step]:
            ref.apply(t, r, BID if side == "B" else ASK, sh, px, loc, 0)
        check(books, ref, locs)
    return ref, counters


def test_a_market_that_walks_far_both_ways_moves_the_windows():
    """The mid walks up 600 cents and down 1,200 (many windows), orders rest behind it and
    some are taken out far from the touch: levels leave and re-enter the ladders."""
    rng = np.random.default_rng(3)
    rows, live, ref = [], [], 0
    mid = 500_000
    path = list(range(0, 600, 3)) + list(range(600, -600, -4)) + list(range(-600, 0, 5))
    for step in path:
        m = mid + step * CENT
        for _ in range(4):
            ref += 1
            side = "B" if rng.random() < 0.5 else "S"
            away = int(rng.integers(1, 40)) * CENT
            px = m - away if side == "B" else m + away
            rows.append(("A", ref, side, int(rng.integers(1, 300)), px, 1))
            live.append(ref)
        if len(live) > 300:   # cancel old and recent orders alike
            r = live.pop(int(rng.integers(0, len(live))))
            rows.append(("D", r, None, 0, 0, 1))
    books = new_books(2, 1 << 12, 4096)
    _ref, counters = run(books, rows, [1], step=53)
    assert counters[C.BOOK_LEVELS_FULL] == 0 and book_ok(books, 1)
    assert books.sides["arena_n"][1].sum() > 0   # levels far behind went to the arena
    lo_q = books.sides["lo_q"][1]
    assert (lo_q > 0).all()


def test_levels_pushed_to_the_arena_come_back_when_the_window_returns():
    """Bids rest at $100.00-$100.10; one jumps to $103.00 (the window moves up, the rest go
    to the arena); it is deleted and a bid joins $100.05: the window returns, and the arena's
    levels in it come back to the ladder -- one level a price, never two."""
    rows = [("A", 1 + k, "B", 10 + k, 1_000_000 + k * CENT, 1) for k in range(11)]
    rows += [("A", 50, "B", 99, 1_030_000, 1), ("D", 50, None, 0, 0, 1),
             ("A", 51, "B", 7, 1_000_500, 1), ("X", 3, None, 4, 0, 1)]
    books = new_books(2, 1 << 10, 4096)
    run(books, rows, [1], step=1)
    assert books.sides["arena_n"][1, BID] == 0 and books.sides["n_levels"][1, BID] == 11
    assert shares_at(books, 1, BID, 1_000_500) == 15 + 7


def test_prices_off_the_cent_grid_live_in_the_arena_between_ladder_levels():
    """Sub-penny prices (a stock under $1) interleave with cent prices on both sides; the
    walk, the top and shares_at merge the two structures."""
    rows, ref = [], 0
    for k in range(60):
        for px in (9_000 + k * CENT, 9_000 + k * CENT + 37):   # $0.90.. and 37 hundredths more
            ref += 1
            rows.append(("A", ref, "B", 10 + k, px, 1))
            ref += 1
            rows.append(("A", ref, "S", 10 + k, px + 20_000, 1))
    rows += [("D", r, None, 0, 0, 1) for r in range(1, ref + 1, 3)]
    books = new_books(2, 1 << 10, 4096)
    run(books, rows, [1])
    assert books.sides["arena_n"][1].min() > 0 and books.state[LADDER_TOP] == 2


def test_sides_that_find_the_pool_empty_keep_their_levels_in_the_arena():
    rows, ref = [], 0
    for loc in (1, 2, 3):
        for k in range(30):
            for side, px in (("B", 100_000 - k * CENT), ("S", 100_100 + k * CENT)):
                ref += 1
                rows.append(("A", ref, side, 5 + k, px, loc))
    rows += [("X", r, None, 2, 0, 1 + (r - 1) // 60) for r in range(1, ref + 1, 4)]
    rows += [("D", r, None, 0, 0, 1 + (r - 1) // 60) for r in range(2, ref + 1, 5)]
    books = new_books(4, 1 << 10, 4096, ladders=3)
    _ref, counters = run(books, rows, [1, 2, 3])
    assert books.state[LADDER_TOP] == 3 and (books.sides["lad"][1:] >= 0).sum() == 3
    assert books.sides["arena_n"][2, ASK] == books.sides["n_levels"][2, ASK] > 0
    assert counters[C.BOOK_LEVELS_FULL] == 0


def test_the_level_bound_counts_ladder_and_arena_levels_together():
    """max_levels_per_side is the side's whole depth: refused past it, counted, the book
    marked unreliable; the other instrument untouched."""
    books, counters = new_books(3, 1 << 10, 12), C.new_counters()
    rows = [("A", 1 + k, "B", 10, 50_000 - k * CENT, 1) for k in range(10)]      # ladder
    rows += [("A", 20 + k, "B", 10, 50_000 - k * CENT - 1, 1) for k in range(4)]   # arena
    rows += [("A", 30, "B", 7, 40_000, 2)]
    book_apply_all(books, book_events(rows), counters)
    assert books.sides["lad"][1, BID] >= 0 and books.sides["arena_n"][1, BID] == 2
    assert counters[C.BOOK_LEVELS_FULL] == 2 and books.sides["n_levels"][1, BID] == 12
    assert unreliable_report(books) == {1: ["levels_full"]} and book_ok(books, 2)
    assert top_level(books, 2, BID) == (40_000, 7, 1)


def test_a_shallow_side_stays_in_the_arena():
    """A side gets a ladder only past LADDER_MIN_LEVELS levels, then around its best."""
    books, counters = new_books(2, 1 << 10, 4096), C.new_counters()
    rows = [("A", 1 + k, "S", 10, 70_000 + 3 * k * CENT, 1) for k in range(LADDER_MIN_LEVELS)]
    book_apply_all(books, book_events(rows), counters)
    assert books.state[LADDER_TOP] == 0 and books.sides["lad"][1, ASK] == -1
    book_apply_all(books, book_events([("A", 99, "S", 5, 69_000, 1)]), counters)
    assert books.state[LADDER_TOP] == 1 and books.sides["arena_n"][1, ASK] == 0
    assert books.sides["lo_q"][1, ASK] == 70_000 // CENT - LADDER_SLOTS // 4
    assert top_level(books, 1, ASK) == (69_000, 5, 1)


def test_a_window_move_the_arena_cannot_take_marks_the_book_unreliable():
    """The window moves up past levels the arena has no room for: each lost level is
    counted, the book is marked unreliable, and the new top is still served right."""
    books = new_books(3, 1 << 10, 4096, LEVEL_REGION_MIN, ladders=4)
    counters = C.new_counters()
    n_low = LEVEL_REGION_MIN + 3
    rows = [("A", 1 + k, "B", 10, 100_000 + k * CENT, 1) for k in range(n_low)]
    rows += [("A", 100, "B", 50, 100_000 + 2 * LADDER_SLOTS * CENT, 1)]   # the market jumps
    book_apply_all(books, book_events(rows), counters)
    assert counters[C.BOOK_LEVELS_FULL] == 3 and not book_ok(books, 1)
    assert top_level(books, 1, BID) == (100_000 + 2 * LADDER_SLOTS * CENT, 50, 1)
    # the lost levels' orders update nothing, and break nothing, when they go
    book_apply_all(books, book_events([("D", 1 + k, None, 0, 0, 1) for k in range(n_low)]),
                   counters)
    assert [tuple(x) for x in depth(books, 1, BID, 10).tolist()] == [
        (100_000 + 2 * LADDER_SLOTS * CENT, 50, 1)]


def test_a_feed_that_jumps_between_far_prices_stays_right():
    """A hostile feed alternates bids at $1 and $1,000 on one book, every add a window move
    while the other far level rests: each move is bounded work, the book stays right."""
    rows = []
    for k in range(200):
        px = 10_000 + k * CENT if k % 2 else 10_000_000 - k * CENT
        rows.append(("A", 1 + k, "B", 1 + k, px, 1))
        if k % 5 == 4:
            rows.append(("D", k - 2, None, 0, 0, 1))
    books = new_books(2, 1 << 10, 4096)
    _ref, counters = run(books, rows, [1], step=7)
    assert counters[C.BOOK_LEVELS_FULL] == 0 and book_ok(books, 1)


def test_clear_books_hands_every_ladder_back():
    rows = [("A", 1 + k, "S", 10, 30_000 + k * CENT, 1 + k % 3) for k in range(90)]
    books, counters = new_books(4, 1 << 10, 4096, ladders=3), C.new_counters()
    book_apply_all(books, book_events(rows), counters)
    first = [tuple(x) for x in depth(books, 2, ASK, 100).tolist()]
    clear_books(books)
    assert books.state[LADDER_TOP] == 0 and (books.sides["lad"] == -1).all()
    assert not books.ladder.view(np.uint8).any() and not books.sides["n_levels"].any()
    book_apply_all(books, book_events(rows), counters)
    assert [tuple(x) for x in depth(books, 2, ASK, 100).tolist()] == first


@pytest.mark.parametrize("bad", [-1, 9, 2.5, True])
def test_the_ladder_count_is_checked(bad):
    with pytest.raises(ConfigError, match="ladders"):
        new_books(4, 64, 16, ladders=bad)


def test_big_tables_start_on_a_huge_page_and_small_ones_are_plain():
    from tickpath.runtime.book.layout import huge_zeros
    big = huge_zeros((3 << 20) // 16 + 5, np.dtype([("a", "<u8"), ("b", "<u8")]))
    assert big.ctypes.data % (2 << 20) == 0 and big.shape == ((3 << 20) // 16 + 5,)
    assert not big.view(np.uint8).any() and big.flags.c_contiguous
    small = huge_zeros(1000, np.int32)
    assert small.base is None and small.shape == (1000,) and not small.any()
    books = new_books(8, 1 << 17, 64)   # a 4 MiB order pool, a 2 MiB window
    assert books.orders.ctypes.data % (2 << 20) == 0 and books.window.ctypes.data % (2 << 20) == 0
