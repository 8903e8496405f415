"""Deep books: every level kept (region growth, binary search below the top), thinning books
give their memory back, and the arena bound marks books unreliable instead of lying."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from tickpath.runtime.book.layout import LEVEL_REGION_MIN, unreliable_report
from tickpath.runtime.book.orderbook import (
    ASK,
    BID,
    book_apply_all,
    book_ok,
    depth,
    new_books,
    top_level,
)
from tickpath.runtime.core import counters as C
from book_events import book_events


def _levels(orders, loc, side):
    agg = defaultdict(lambda: [0, 0])
    for oloc, oside, px, sh in orders.values():
        if oloc == loc and oside == side:
            agg[px][0] += sh
            agg[px][1] += 1
    return [(p, s, n) for p, (s, n) in sorted(agg.items(), reverse=(side == BID))]


@pytest.mark.parametrize("ladders", [None, 0], ids=["ladders", "arena-only"])
@pytest.mark.parametrize("seed", [1, 2])
def test_deep_random_book_then_drain_matches_a_dict_book(seed, ladders):
    """Two books with ~700 levels a side built in random price order, random partial
    executions, then every order deleted in random order; checked against a dict book at
    checkpoints, and the top after every event. With ladders, the levels near the first
    prices are the ladders' and the rest the arena's, and the windows move as the book
    fills and drains."""
    rng = np.random.default_rng(seed)
    rows, orders, ref, loc_of = [], {}, 0, {}
    for _ in range(6000):
        loc = int(rng.integers(1, 3))
        side = "B" if rng.random() < 0.5 else "S"
        px = int(100_000 + (rng.integers(1, 800) * (-1 if side == "B" else 1)) * 100)
        ref += 1
        loc_of[ref] = loc
        rows.append(("A", ref, side, int(rng.integers(1, 500)), px, loc))
    for _ in range(1500):   # updates name their order's locate, as ITCH's do
        r = int(rng.integers(1, ref + 1))
        rows.append(("X", r, None, 1, 0, loc_of[r]))
    dels = rng.permutation(np.arange(1, ref + 1))
    rows += [("D", int(r), None, 0, 0, loc_of[int(r)]) for r in dels]
    events = book_events(rows)
    books, counters = new_books(4, 1 << 13, 4096, ladders=ladders), C.new_counters()
    step = 997
    for a in range(0, len(rows), step):
        book_apply_all(books, events[a:a + step], counters)
        for t, r, side, sh, px, loc in rows[a:a + step]:
            if t == "A":
                orders[r] = [loc, BID if side == "B" else ASK, px, sh]
            elif t == "X" and r in orders:
                orders[r][3] -= 1
                if orders[r][3] == 0:
                    del orders[r]
            elif t == "D":
                orders.pop(r, None)
        for loc in (1, 2):
            for sd in (BID, ASK):
                want = _levels(orders, loc, sd)
                got = [tuple(x) for x in depth(books, loc, sd, 5000).tolist()]
                assert got == want, (a, loc, sd)
                assert top_level(books, loc, sd) == (want[0] if want else (0, 0, 0))
    assert counters[C.BOOK_LEVELS_FULL] == 0 and book_ok(books, 1) and book_ok(books, 2)
    assert books.sides["n_levels"].sum() == 0
    # the drained books gave their big regions back (the smallest stays with its side)
    assert (books.sides["cap"] <= LEVEL_REGION_MIN).all()


def test_arena_bound_marks_only_the_book_that_hit_it():
    books, counters = new_books(4, 64, 1000, 2 * LEVEL_REGION_MIN, ladders=0), C.new_counters()
    rows = [("A", 1, "B", 10, 100, 1), ("A", 2, "S", 10, 200, 1),   # two regions: arena full
            ("A", 3, "B", 10, 100, 2)]                              # no region left
    book_apply_all(books, book_events(rows), counters)
    assert counters[C.BOOK_LEVELS_FULL] == 1
    assert book_ok(books, 1) and not book_ok(books, 2)
    assert unreliable_report(books) == {2: ["levels_full"]}
    # a side growing past its region needs a bigger one: refused too, the top stays right
    rows = [("A", 10 + k, "B", 1, 101 + k, 1) for k in range(LEVEL_REGION_MIN)]
    book_apply_all(books, book_events(rows), counters)
    assert not book_ok(books, 1)
    assert top_level(books, 1, BID)[0] == 100 + LEVEL_REGION_MIN - 1


def test_freed_regions_are_reused_across_books():
    """One book fills and drains repeatedly; others then take its memory: the arena is only
    big enough for that if regions come back."""
    n_lv = 40
    books, counters = new_books(8, 1 << 10, 1000, 128, ladders=0), C.new_counters()
    for loc in range(1, 8):
        add = [("A", loc * 1000 + k, "S", 1, 500 + k, loc) for k in range(n_lv)]
        book_apply_all(books, book_events(add), counters)
        assert books.sides["n_levels"][loc, ASK] == n_lv and book_ok(books, loc)
        dele = [("D", loc * 1000 + k, None, 0, 0, loc) for k in range(n_lv)]
        book_apply_all(books, book_events(dele), counters)
        assert books.sides["n_levels"][loc, ASK] == 0
    assert counters[C.BOOK_LEVELS_FULL] == 0


def test_hostile_prices_and_depth_are_bounded():
    """A 1-cent bid under a $200 stock, a $199,999 ask, and a flood of distinct levels on one
    instrument: the flood is refused at the bound and counted, the other book is untouched."""
    books, counters = new_books(3, 1 << 12, 256), C.new_counters()
    rows = [("A", 1, "B", 100, 2_000_000, 1), ("A", 2, "S", 100, 2_000_100, 1),
            ("A", 3, "B", 5, 100, 1), ("A", 4, "S", 5, 1_999_990_000, 1)]
    rows += [("A", 10 + k, "B", 1, 1000 + k, 2) for k in range(2000)]
    book_apply_all(books, book_events(rows), counters)
    assert top_level(books, 1, BID) == (2_000_000, 100, 1)
    assert top_level(books, 1, ASK) == (2_000_100, 100, 1)
    assert depth(books, 1, BID, 10)[-1].tolist() == [100, 5, 1]
    assert depth(books, 1, ASK, 10)[-1].tolist() == [1_999_990_000, 5, 1]
    assert book_ok(books, 1) and not book_ok(books, 2)
    assert counters[C.BOOK_LEVELS_FULL] == 2000 - 256 and books.sides["n_levels"][2, BID] == 256


def test_level_at_and_shares_at_walk_a_side():
    from tickpath.runtime.book.orderbook import level_at, shares_at
    books, counters = new_books(3, 64, 100), C.new_counters()
    rows = [("A", k + 1, "S", 10 * (k + 1), 500 + 3 * k, 1) for k in range(20)]
    book_apply_all(books, book_events(rows), counters)
    assert [level_at(books, 1, ASK, k) for k in (0, 1, 19, 20, -1)] == [
        (500, 10, 1), (503, 20, 1), (557, 200, 1), (0, 0, 0), (0, 0, 0)]
    assert shares_at(books, 1, ASK, 530) == 110 and shares_at(books, 1, ASK, 531) == 0
    assert shares_at(books, 1, BID, 530) == 0 and shares_at(books, 7, ASK, 530) == 0


def test_replace_across_the_book_and_overfills_stay_in_their_book():
    """A bid replaced from deep in the book to above the best ask (U keeps the side), an
    execution larger than the order: counted, and the other instrument's book untouched."""
    books, counters = new_books(4, 64, 100), C.new_counters()
    rows = [("A", 1, "B", 100, 9_000, 1), ("A", 2, "B", 100, 9_900, 1),
            ("A", 3, "S", 100, 10_000, 1), ("A", 4, "S", 50, 10_000, 2)]
    book_apply_all(books, book_events(rows), counters)
    e = book_events([("U", 1, None, 300, 10_500, 1)])
    e[0]["ref2"] = 5
    book_apply_all(books, e, counters)
    assert top_level(books, 1, BID) == (10_500, 300, 1)           # crossed: kept as sent
    assert [tuple(x) for x in depth(books, 1, BID, 5).tolist()] == [(10_500, 300, 1),
                                                                     (9_900, 100, 1)]
    book_apply_all(books, book_events([("E", 3, None, 1_000_000, 0, 1)]), counters)
    assert counters[C.BOOK_OVERFILL] == 1 and top_level(books, 1, ASK) == (0, 0, 0)
    assert top_level(books, 2, ASK) == (10_000, 50, 1) and books.sides["n_levels"][2, BID] == 0
    assert book_ok(books, 1) and book_ok(books, 2)


def test_an_update_with_another_books_locate_changes_nothing():
    """Orders are known by (locate, ref): an execute, cancel, delete or replace that names
    an order of instrument 2 under locate 1 is an unknown order, and book 2 stays as it was;
    the same ref added in two books is two orders (ITCH never does it; a bad feed may)."""
    books, counters = new_books(4, 64, 100), C.new_counters()
    book_apply_all(books, book_events([("A", 4, "S", 50, 10_000, 2), ("A", 7, "B", 10, 9_000, 1)]),
                   counters)
    bad = book_events([("E", 4, None, 10, 0, 1), ("X", 4, None, 10, 0, 1), ("D", 4, None, 0, 0, 1),
                       ("U", 4, None, 99, 9_999, 1), ("C", 4, None, 5, 10_000, 3)])
    book_apply_all(books, bad, counters)
    assert counters[C.BOOK_UNKNOWN_ORDER] == 5
    assert top_level(books, 2, ASK) == (10_000, 50, 1) and top_level(books, 1, ASK) == (0, 0, 0)
    assert top_level(books, 1, BID) == (9_000, 10, 1)
    book_apply_all(books, book_events([("A", 4, "B", 20, 9_500, 1)]), counters)   # same ref, book 1
    assert counters[C.BOOK_BAD_ADD] == 0 and top_level(books, 1, BID) == (9_500, 20, 1)
    book_apply_all(books, book_events([("D", 4, None, 0, 0, 2)]), counters)
    assert top_level(books, 2, ASK) == (0, 0, 0) and top_level(books, 1, BID) == (9_500, 20, 1)
    book_apply_all(books, book_events([("A", 4, "B", 1, 9_400, 1)]), counters)    # live in book 1
    assert counters[C.BOOK_BAD_ADD] == 1
