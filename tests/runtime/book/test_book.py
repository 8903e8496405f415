"""Order books: deterministic scenarios per message type and per refusal, then a property
test against a plain-Python reference book (dicts) on random valid order flows."""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tickpath.runtime.book import orderbook as book_mod
from tickpath.runtime.core import counters as C
from tickpath.runtime.book.orderbook import (
    ASK,
    BID,
    best_ask,
    best_bid,
    book_apply,
    book_apply_all,
    book_ok,
    book_prefetch,
    clear_books,
    depth,
    depth_into,
    find_order,
    imbalance,
    last_trade,
    microprice,
    mid_price,
    n_live_orders,
    new_books,
    top_stats,
)
from tickpath.runtime.book.layout import table_bytes
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE, FLAG_GAP
from ref_book import RefBook

LOC = 3


def ev(t, ref=0, side=None, shares=0, price=0, loc=LOC, ref2=0, aux=0, ts=0):
    e = np.zeros(1, dtype=EVENT_DTYPE)
    e["msg_type"] = ord(t) if isinstance(t, str) else t
    e["order_ref"] = ref
    e["side"] = ord(side) if side else 0
    e["shares"] = shares
    e["price"] = price
    e["locate"] = loc
    e["ref2"] = ref2
    e["aux"] = ord(aux) if isinstance(aux, str) else aux
    e["ts_exch"] = ts
    return e


class Feed:
    """A book plus counters, fed one message at a time."""

    def __init__(self, n_locates=8, max_orders=64, max_levels=16):
        self.books = new_books(n_locates, max_orders, max_levels)
        self.counters = np.zeros(C.N_COUNTERS, dtype=np.int64)

    def __call__(self, *args, **kw):
        return book_apply(self.books, ev(*args, **kw), 0, self.counters)

    def c(self, slot):
        return int(self.counters[slot])

    def levels(self, side, loc=LOC, n=100):
        return [tuple(r) for r in depth(self.books, loc, side, n).tolist()]


# ---------------------------------------------------------------- configuration

@pytest.mark.parametrize("args,name", [
    ((0, 8, 4), "n_locates"), ((-1, 8, 4), "n_locates"), ((70000, 8, 4), "n_locates"),
    ((4, 0, 4), "max_orders"), ((4, 3, 4), "max_orders"), ((4, 96, 4), "max_orders"),
    ((4, 8, 0), "max_levels_per_side"), ((4, 8, -2), "max_levels_per_side"),
    ((4.0, 8, 4), "n_locates"), ((True, 8, 4), "n_locates"), ((4, "8", 4), "max_orders"),
])
def test_bad_config_names_value_and_range(args, name):
    with pytest.raises(ConfigError) as ei:
        new_books(*args)
    msg = str(ei.value)
    assert f"name='{name}'" in msg and "allowed=" in msg and "value=" in msg


def test_sizes_and_bytes():
    b = new_books(5, 16, 7)
    # the overflow: a pool of max_orders records, an index of twice as many slots
    assert b.orders.shape == (16,) and b.ov_index.shape == (32,) and b.ov_free.shape == (16,)
    assert b.sides.shape == (5, 2)
    assert table_bytes(5, 16, 7) >= sum(a.nbytes for a in b)


# ---------------------------------------------------------------- adds and levels

def test_adds_aggregate_and_order_levels():
    f = Feed()
    assert f("A", 1, "B", 100, 10_0000) == LOC
    assert f("F", 2, "B", 50, 10_0100) == LOC
    assert f("A", 3, "B", 25, 10_0000) == LOC
    assert f("A", 4, "B", 10, 9_9900) == LOC
    assert f("A", 5, "S", 70, 10_0300) == LOC
    assert f("A", 6, "S", 30, 10_0200) == LOC
    assert f("F", 7, "S", 5, 10_0300) == LOC
    assert f.levels(BID) == [(10_0100, 50, 1), (10_0000, 125, 2), (9_9900, 10, 1)]
    assert f.levels(ASK) == [(10_0200, 30, 1), (10_0300, 75, 2)]
    assert best_bid(f.books, LOC) == (10_0100, 50)
    assert best_ask(f.books, LOC) == (10_0200, 30)
    assert f.c(C.BOOK_ADDS) == 7 and n_live_orders(f.books) == 7
    assert best_bid(f.books, LOC + 1) == (0, 0)  # other locates untouched


def test_depth_forms():
    f = Feed()
    for k in range(5):
        f("A", k + 1, "S", 10 * (k + 1), 100 + k)
    assert depth(f.books, LOC, ASK, 2).tolist() == [[100, 10, 1], [101, 20, 1]]
    assert depth(f.books, LOC, ASK, 50).shape == (5, 3)
    assert depth(f.books, LOC, ASK, 0).shape == (0, 3)
    out = np.full((3, 3), -1, dtype=np.int64)
    assert depth_into(f.books, LOC, ASK, out) == 3
    assert out[:, 0].tolist() == [100, 101, 102]
    assert depth_into(f.books, LOC, 2, out) == 0          # bad side
    assert depth_into(f.books, 99, ASK, out) == 0         # bad locate
    assert depth_into(f.books, LOC, ASK, np.zeros((3, 2), np.int64)) == 0  # too few columns
    assert depth(f.books, -1, BID, 3).shape == (0, 3)


# ---------------------------------------------------------------- executions, cancels

def test_execute_reduces_and_prints_at_resting_price():
    f = Feed()
    f("A", 1, "B", 100, 5000)
    f("A", 2, "B", 40, 5000)
    assert f("E", 1, shares=30, ts=123) == LOC
    assert f.levels(BID) == [(5000, 110, 2)]
    assert last_trade(f.books, LOC) == (5000, 30)
    assert f.books.last_trade[LOC, 2] == 123
    assert f("E", 1, shares=70) == LOC  # fully executed: the order leaves
    assert f.levels(BID) == [(5000, 40, 1)]
    assert not find_order(f.books, LOC, 1)[0]
    assert f.c(C.BOOK_OVERFILL) == 0


def test_execute_with_price_and_printable_flag():
    f = Feed()
    f("A", 1, "S", 100, 5000)
    assert f("C", 1, shares=10, price=4990, aux="Y") == LOC
    assert last_trade(f.books, LOC) == (4990, 10)
    assert f("C", 1, shares=20, price=4980, aux="N") == LOC  # non-printable: no print
    assert last_trade(f.books, LOC) == (4990, 10)
    assert f.levels(ASK) == [(5000, 70, 1)]


def test_cancel_partial_then_to_zero():
    f = Feed()
    f("A", 1, "S", 100, 5000)
    f("A", 2, "S", 100, 5001)
    assert f("X", 1, shares=60) == LOC
    assert f.levels(ASK) == [(5000, 40, 1), (5001, 100, 1)]
    assert f("X", 1, shares=40) == LOC
    assert f.levels(ASK) == [(5001, 100, 1)]
    assert last_trade(f.books, LOC) == (0, 0)  # cancels never print


def test_overfill_is_clamped_and_counted():
    f = Feed()
    f("A", 1, "B", 50, 5000)
    f("A", 2, "B", 10, 5000)
    assert f("E", 1, shares=80) == LOC
    assert f.c(C.BOOK_OVERFILL) == 1
    assert f.levels(BID) == [(5000, 10, 1)]
    assert last_trade(f.books, LOC) == (5000, 80)  # the exchange's print, unclamped
    assert f("X", 2, shares=11) == LOC
    assert f.c(C.BOOK_OVERFILL) == 2
    assert f.levels(BID) == [] and n_live_orders(f.books) == 0


def test_delete_empties_level_and_keeps_others():
    f = Feed()
    f("A", 1, "B", 50, 5000)
    f("A", 2, "B", 60, 4999)
    f("A", 3, "B", 70, 5000)
    assert f("D", 1) == LOC
    assert f.levels(BID) == [(5000, 70, 1), (4999, 60, 1)]
    assert f("D", 3) == LOC
    assert f.levels(BID) == [(4999, 60, 1)]
    assert best_bid(f.books, LOC) == (4999, 60)


def test_replace_moves_level_and_keeps_side():
    f = Feed()
    f("A", 1, "S", 50, 5005)
    f("A", 2, "S", 60, 5003)
    assert f("U", 1, shares=80, price=5001, ref2=9) == LOC
    assert f.levels(ASK) == [(5001, 80, 1), (5003, 60, 1)]
    assert not find_order(f.books, LOC, 1)[0]
    found, loc, side, price, shares, counted = find_order(f.books, LOC, 9)
    assert (found, loc, side, price, shares, counted) == (True, LOC, ASK, 5001, 80, True)
    assert f("U", 9, shares=10, price=5003, ref2=10) == LOC  # onto an existing level
    assert f.levels(ASK) == [(5003, 70, 2)]
    assert f.c(C.BOOK_ADDS) == 4


def test_replace_uses_the_orders_locate():
    f = Feed()
    f("A", 1, "B", 50, 5000, loc=2)
    assert f("U", 1, shares=5, price=5001, ref2=2, loc=2) == 2
    assert f.levels(BID, loc=2) == [(5001, 5, 1)]


def test_trade_message_prints_only():
    f = Feed()
    f("A", 1, "B", 50, 5000)
    assert f("P", 77, "B", 300, 5002, ts=9) == LOC
    assert last_trade(f.books, LOC) == (5002, 300)
    assert f.levels(BID) == [(5000, 50, 1)] and n_live_orders(f.books) == 1


@pytest.mark.parametrize("t", ["S", "R", "H", "Q", "B", "L", 0])
def test_other_types_change_nothing(t):
    f = Feed()
    f("A", 1, "B", 50, 5000)
    before = [a.copy() for a in f.books]
    e = ev(t, 1, "B", 50, 5000)
    if t == 0:
        e["flags"] = FLAG_GAP
    assert book_apply(f.books, e, 0, f.counters) == -1
    assert all(np.array_equal(a, b) for a, b in zip(before, f.books))


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize("t", ["E", "C", "X", "D", "U"])
def test_unknown_ref_counted(t):
    f = Feed()
    f("A", 1, "B", 50, 5000)
    assert f(t, 999, shares=10, price=5000, ref2=5) == -1
    assert f.c(C.BOOK_UNKNOWN_ORDER) == 1
    assert f.levels(BID) == [(5000, 50, 1)] and not find_order(f.books, LOC, 5)[0]


@pytest.mark.parametrize("t", ["A", "F", "E", "C", "X", "D", "U", "P"])
def test_bad_locate_counted(t):
    f = Feed(n_locates=4)
    f("A", 1, "B", 50, 5000, loc=1)
    assert f(t, 1, "B", 10, 5000, loc=4, ref2=2) == -1
    assert f(t, 1, "B", 10, 5000, loc=65535, ref2=2) == -1
    assert f.c(C.BOOK_BAD_LOCATE) == 2
    assert f.levels(BID, loc=1) == [(5000, 50, 1)]


def test_bad_adds_refused():
    f = Feed()
    f("A", 1, "B", 50, 5000)
    assert f("A", 1, "S", 10, 5001) == -1            # duplicate ref
    assert f("A", 2, "X", 10, 5001) == -1            # side not B/S
    assert f("A", 3, None, 10, 5001) == -1           # side 0
    assert f("A", 4, "B", 0, 5001) == -1             # zero shares
    assert f.c(C.BOOK_BAD_ADD) == 4 and f.c(C.BOOK_ADDS) == 1
    assert f.levels(BID) == [(5000, 50, 1)] and f.levels(ASK) == []


def test_order_table_full_then_room_again():
    f = Feed(max_orders=4)
    for r in range(1, 5):
        assert f("A", r, "B", 10, 5000 + r) == LOC
    assert f("A", 5, "B", 10, 6000) == -1
    assert f.c(C.BOOK_FULL) == 1 and f.levels(BID)[0] == (5004, 10, 1)
    assert f("U", 1, shares=1, price=4000, ref2=6) == LOC  # replace at capacity works
    f("D", 2)
    assert f("A", 5, "B", 10, 6000) == LOC
    assert n_live_orders(f.books) == 4 and f.c(C.BOOK_FULL) == 1


def test_levels_full_refuses_and_marks_the_book():
    f = Feed(max_levels=3)
    for r, px in [(1, 100), (2, 101), (3, 102)]:
        f("A", r, "B", 10, px)
    assert book_ok(f.books, LOC)
    assert f("A", 4, "B", 5, 99) == LOC                     # a fourth level: refused
    assert f.c(C.BOOK_LEVELS_FULL) == 1 and not book_ok(f.books, LOC)
    assert find_order(f.books, LOC, 4)[5] is False                # kept, but counted nowhere
    assert f("A", 5, "B", 7, 103) == LOC                    # better: refused too (no eviction)
    assert f.c(C.BOOK_LEVELS_FULL) == 2
    assert f.c(C.BOOK_UNRELIABLE) == 1                      # one instrument, however many refusals
    assert f.levels(BID) == [(102, 10, 1), (101, 10, 1), (100, 10, 1)]
    assert f("A", 6, "B", 3, 101) == LOC                    # existing level: no refusal
    assert f.c(C.BOOK_LEVELS_FULL) == 2
    # orders of refused levels stay consistent: a level created later at their price is
    # not corrupted by their later executions, cancels and deletes
    f("D", 1)
    assert f("A", 7, "B", 20, 99) == LOC                    # new level at 99 (room again)
    f("X", 4, shares=4)
    f("E", 4, shares=1)
    assert f.levels(BID) == [(102, 10, 1), (101, 13, 2), (99, 20, 1)]
    f("D", 4)
    f("D", 5)
    assert f.levels(BID) == [(102, 10, 1), (101, 13, 2), (99, 20, 1)]
    assert n_live_orders(f.books) == 4 and not book_ok(f.books, LOC)


def test_levels_full_on_ask_side():
    f = Feed(max_levels=2)
    f("A", 1, "S", 10, 200)
    f("A", 2, "S", 10, 201)
    f("A", 3, "S", 10, 199)   # a third level: refused
    assert f.levels(ASK) == [(200, 10, 1), (201, 10, 1)]
    assert f.c(C.BOOK_LEVELS_FULL) == 1 and not book_ok(f.books, LOC)


def test_event_index_out_of_range():
    f = Feed()
    e = ev("A", 1, "B", 10, 10)
    assert book_apply(f.books, e, 1, f.counters) == -1
    assert book_apply(f.books, e, -1, f.counters) == -1
    assert n_live_orders(f.books) == 0


# ---------------------------------------------------------------- order table

def _refs_by_home(books, n_refs=4000):
    """Group refs 1..n_refs by the overflow slot book.py's hash sends them to."""
    homes = defaultdict(list)
    for r in range(1, n_refs):
        homes[int(book_mod._home(books, np.uint64(r)))].append(r)
    return homes


def _where(books, ref):
    """'window', 'overflow' or None: which part of the order table holds ref."""
    w, o = books.window, books.orders
    if ((w["ref"] == ref) & (w["used"] == 1)).any():
        return "window"
    return "overflow" if ((o["ref"] == ref) & (o["used"] == 1)).any() else None


def test_window_slot_is_ref_mod_size_and_overflow_hash_keeps_blocks_together():
    f = Feed(max_orders=64)
    n_w = f.books.window.shape[0]
    assert n_w == 32
    f("A", 37, "B", 1, 1)
    assert f.books.window["ref"][37 % n_w] == 37 and f.books.window["used"][37 % n_w] == 1
    assert f.books.orders["used"].sum() == 0
    homes = _refs_by_home(f.books)
    assert sorted(homes) == list(range(128))  # every overflow slot is some ref's home
    # consecutive refs of one 16-ref block land in consecutive slots (cache locality)
    h = [int(book_mod._home(f.books, np.uint64(x))) for x in range(32, 48)]
    assert h == list(range(h[0], h[0] + 16))


def test_window_moves_an_older_order_out_and_an_out_of_order_ref_goes_to_overflow():
    f = Feed(max_orders=8)            # window of 4 slots
    f("A", 5, "B", 10, 100)
    f("A", 9, "B", 20, 100)           # slot 1 again: the older 5 moves to the overflow
    assert _where(f.books, 9) == "window" and _where(f.books, 5) == "overflow"
    f("A", 1, "S", 30, 200)           # slot 1 holds the newer 9: 1 goes to the overflow
    assert _where(f.books, 9) == "window" and _where(f.books, 1) == "overflow"
    for r in (5, 9, 1):
        assert find_order(f.books, LOC, r)[0]
    f("A", 5, "B", 1, 100)            # a duplicate held in the overflow is still refused
    f("A", 9, "B", 1, 100)            # and one held in the window
    assert f.c(C.BOOK_BAD_ADD) == 2 and n_live_orders(f.books) == 3
    f("E", 5, shares=4)
    assert find_order(f.books, LOC, 5)[4] == 6 and f.levels(BID) == [(100, 26, 2)]
    f("U", 9, ref2=13, shares=7, price=101)   # slot 1 again: the window keeps the newest
    assert _where(f.books, 13) == "window" and _where(f.books, 9) is None
    for r in (5, 1, 13):
        f("D", r)
    assert n_live_orders(f.books) == 0 and f.c(C.BOOK_UNKNOWN_ORDER) == 0
    assert f.books.orders["used"].sum() == 0 and f.books.window["used"].sum() == 0
    assert f.levels(BID) == [] and f.levels(ASK) == []


def test_window_and_overflow_with_refs_past_2_to_the_63():
    """The overflow's newest-ref mark is kept as int64 bits: refs >= 2^63 compare as u64."""
    f = Feed(max_orders=8)
    f("A", 1, "S", 5, 200)
    f("A", 5, "S", 5, 200)         # window slot 1 again: ref 1 moves to the overflow
    top = (1 << 64) - 1
    old, new = top - 4, top        # one window slot (of 4)
    f("A", old, "B", 10, 100)
    f("A", new, "B", 20, 100)      # moves old to the overflow; the mark is 2^64 - 5
    assert _where(f.books, old) == "overflow" and _where(f.books, new) == "window"
    # (as np.uint64: a Python int past 2^63 does not fit find_order's int64 signature)
    assert find_order(f.books, LOC, np.uint64(old))[0] and find_order(f.books, LOC, np.uint64(new))[0]
    # a signed compare would read the mark as -5 and skip the overflow for ref 1
    assert find_order(f.books, LOC, np.uint64(1))[0] and _where(f.books, 1) == "overflow"
    f("A", old, "B", 1, 100)       # still found, so still a duplicate
    assert f.c(C.BOOK_BAD_ADD) == 1
    for r in (old, new, 1, 5):
        f("D", r)
    assert n_live_orders(f.books) == 0 and f.c(C.BOOK_UNKNOWN_ORDER) == 0


@pytest.mark.parametrize("first,second,delete", [(15, 0, 0), (15, 15, 0), (14, 14, 0),
                                                 (15, 14, 0), (15, 0, 2), (14, 14, 3)])
def test_backward_shift_keeps_probe_runs(first, second, delete):
    """16 overflow slots: colliding refs and a probe run wrapping from slot 15 to slot 0;
    deleting any member must leave every other member findable."""
    f = Feed(max_orders=8)
    n_w = f.books.window.shape[0]
    homes = _refs_by_home(f.books)
    refs = [homes[first][0], homes[second][1], homes[0][2], homes[15][3]]
    for r in refs:
        assert f("A", r, "B", 10, 100) == LOC
    top = max(refs)
    pushers = [top + 1 + k for k in range(n_w)]   # newer refs: every window slot, once
    for r in pushers:
        assert f("A", r, "B", 10, 100) == LOC
    assert all(_where(f.books, r) == "overflow" for r in refs)
    gone = refs[delete]
    f("D", gone)
    for r in refs:
        assert find_order(f.books, LOC, r)[0] == (r != gone)
    for r in refs + pushers:
        if r != gone:
            f("D", r)
    assert n_live_orders(f.books) == 0 and f.books.orders["used"].sum() == 0
    assert f.books.window["used"].sum() == 0 and f.levels(BID) == []


@pytest.mark.parametrize("max_orders,seed", [(4, 1), (8, 2), (16, 3)])
def test_hash_table_random_churn(max_orders, seed):
    rng = np.random.default_rng(seed)
    f = Feed(max_orders=max_orders)
    pool = np.arange(1, 6 * max_orders + 1)
    live = set()
    for _ in range(1500):
        r = int(rng.choice(pool))
        if r in live:
            f("D", r)
            live.discard(r)
        elif len(live) < max_orders:
            f("A", r, "S", 5, 200)
            live.add(r)
        for q in pool:
            assert find_order(f.books, LOC, int(q))[0] == (int(q) in live)
    assert f.c(C.BOOK_UNKNOWN_ORDER) == f.c(C.BOOK_FULL) == f.c(C.BOOK_BAD_ADD) == 0
    assert f.levels(ASK) == ([(200, 5 * len(live), len(live))] if live else [])


# ---------------------------------------------------------------- derived prices

def test_mid_microprice_imbalance():
    f = Feed()
    assert math.isnan(mid_price(f.books, LOC)) and math.isnan(imbalance(f.books, LOC))
    f("A", 1, "B", 300, 1000)
    assert math.isnan(microprice(f.books, LOC))
    assert imbalance(f.books, LOC) == 1.0
    f("A", 2, "S", 100, 1010)
    assert mid_price(f.books, LOC) == 1005.0
    assert microprice(f.books, LOC) == pytest.approx((1000 * 100 + 1010 * 300) / 400)
    assert imbalance(f.books, LOC) == pytest.approx(0.5)
    assert math.isnan(mid_price(f.books, 1000))


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_top_stats_equals_the_three_queries_bit_for_bit():
    """The pipeline reads top_stats; strategies and tests call the three: same floats."""
    f = Feed()
    states = []
    for msg in [("A", 1, "B", 300, 1000), ("A", 2, "S", 100, 1010), ("A", 3, "S", 7, 1003),
                ("A", 4, "B", 33, 1001), ("D", 1), ("D", 4), ("D", 2), ("D", 3)]:
        f(*msg)
        states.append(msg)
        for loc in (LOC, 0, 1000):
            got = top_stats(f.books, loc)
            want = (mid_price(f.books, loc), microprice(f.books, loc), imbalance(f.books, loc))
            assert all(_same(g, w) for g, w in zip(got, want)), (states, loc, got, want)


def test_clear_and_apply_all():
    f = Feed()
    e = np.concatenate([ev("A", 1, "B", 10, 10), ev("S"), ev("A", 2, "S", 5, 11),
                        ev("E", 1, shares=1)])
    assert book_apply_all(f.books, e, f.counters) == 3
    clear_books(f.books)
    assert n_live_orders(f.books) == 0 and f.levels(BID) == [] and not find_order(f.books, LOC, 1)[0]
    assert book_apply_all(f.books, e, f.counters) == 3


def _random_flow(seed, n, n_locates, n_refs):
    """Messages of every kind, good and bad (unknown refs, bad locates and sides, other types,
    huge shares), refs from a small range so most name live orders."""
    rng = np.random.default_rng(seed)
    e = np.zeros(n, dtype=EVENT_DTYPE)
    e["msg_type"] = rng.choice(np.frombuffer(b"AAAFEECXDDUPS", np.uint8), n)
    e["order_ref"] = rng.integers(0, n_refs, n)
    e["ref2"] = rng.integers(0, n_refs, n)
    e["side"] = rng.choice(np.frombuffer(b"BBSSx", np.uint8), n)
    e["shares"] = rng.choice([0, 1, 5, 100, 1 << 63], n, p=[0.02, 0.4, 0.3, 0.27, 0.01])
    e["price"] = 1000 + rng.integers(-20, 20, n)
    e["locate"] = rng.integers(0, n_locates + 2, n)  # some beyond the books
    e["aux"] = rng.choice(np.frombuffer(b"YN", np.uint8), n)
    return e


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_apply_all_matches_one_by_one(seed):
    """book_apply_all (which prefetches ahead) leaves the same books and counters and
    returns the same count as book_apply per event, up to the array's last event."""
    e = _random_flow(seed, 4000, 6, 300)
    one, batch = Feed(6, 256, 8), Feed(6, 256, 8)  # the flow has locates 0..7
    changed = sum(book_apply(one.books, e, i, one.counters) >= 0 for i in range(len(e)))
    assert book_apply_all(batch.books, e, batch.counters) == changed > 0
    assert (one.counters == batch.counters).all()
    for a, b in zip(one.books, batch.books):
        assert (a == b).all()
    assert one.c(C.BOOK_UNKNOWN_ORDER) and one.c(C.BOOK_BAD_LOCATE) and one.c(C.BOOK_BAD_ADD)


def test_prefetch_changes_nothing_and_takes_any_index():
    f = Feed()
    f("A", 1, "B", 10, 10)
    before = [a.copy() for a in f.books]
    e = np.concatenate([ev("D", 1), ev("U", 1, ref2=2**63), ev("A", 7, "S", 1, 1, loc=60000)])
    for i in (-5, -1, 0, 1, 2, 3, 1 << 40):
        book_prefetch(f.books, e, i)
    assert all((a == b).all() for a, b in zip(before, f.books))



op = st.tuples(st.sampled_from("AAAAFEECXXDDUUPZ"), st.integers(0, 10**6),
               st.integers(1, 400), st.integers(0, 12), st.integers(0, 2), st.booleans())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=120), max_orders=st.sampled_from([128, 256]))
def test_matches_reference_book(ops, max_orders):
    f = Feed(n_locates=3, max_orders=max_orders, max_levels=32)
    ref = RefBook()
    next_ref = 1
    for t, pick, shares, tick, loc, flip in ops:
        live = list(ref.orders)
        side_ch = "B" if flip else "S"
        price = 10_000 + tick if side_ch == "S" else 10_000 - tick + 6  # sides may cross
        r, r2 = 0, 0
        if t in "AF":
            r, next_ref = next_ref, next_ref + 1
        elif t == "Z":
            t, r = "E", 10**9 + pick  # an unknown ref
        elif t != "P":
            if not live:
                continue
            r = live[pick % len(live)]
            if t in "ECX":
                shares = 1 + pick % (ref.orders[r][3] + 2)  # sometimes more than remains
            if t == "U":
                r2, next_ref = next_ref, next_ref + 1
        if t in "ECXDU":
            loc = ref.orders.get(r, [loc])[0]
        got = f(t, r, side_ch, shares, price, loc=loc, ref2=r2)
        ref.apply(t, r, BID if flip else ASK, shares, price, loc, r2)
        assert got == (-1 if t == "E" and r >= 10**9 else loc)
        for lc in range(3):
            for sd in (BID, ASK):
                want = ref.levels(lc, sd)
                assert f.levels(sd, loc=lc) == want
                top = (want[0][0], want[0][1]) if want else (0, 0)
                assert (best_bid if sd == BID else best_ask)(f.books, lc) == top
            assert last_trade(f.books, lc) == ref.last[lc]
        assert n_live_orders(f.books) == len(ref.orders)
    assert f.c(C.BOOK_OVERFILL) == ref.overfill
    assert f.c(C.BOOK_UNKNOWN_ORDER) == ref.unknown
    assert f.c(C.BOOK_FULL) == f.c(C.BOOK_BAD_ADD) == f.c(C.BOOK_LEVELS_FULL) == 0
    for r, (lc, sd, price, shares) in ref.orders.items():
        assert find_order(f.books, lc, r)[:5] == (True, lc, sd, price, shares)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.integers(0, 8), st.integers(1, 24), st.integers(1, 24),
                              st.integers(1, 60), st.integers(0, 30), st.booleans()),
                    min_size=1, max_size=150))
def test_tiny_capacities_stay_consistent(ops):
    """2 window slots and 8 overflow slots, 3 levels per side, an arena of 16 level records
    (two regions), refs drawn from a pool of 24 so window slots and hash homes collide: refusals and backward shifts are common.
    Every live order must stay findable, and the levels must equal the sums of the orders
    counted in them."""
    f = Feed(n_locates=1, max_orders=4, max_levels=3)
    f.books = new_books(1, 4, 3, 16)
    pool = range(1, 25)
    for kind, ref, ref2, shares, tick, flip in ops:
        if kind < 4:
            f("A", ref, "B" if flip else "S", shares, 100 + tick, loc=0)
        else:
            f("EXDUC"[kind - 4], ref, shares=shares, price=100 + tick, ref2=ref2, loc=0)
        live = [r for r in pool if find_order(f.books, 0, r)[0]]
        w, o = f.books.window, f.books.orders   # both parts of the order table
        used = np.concatenate([w[w["used"] == 1], o[o["used"] == 1]])
        assert len(used) == n_live_orders(f.books) == len(live) <= 4
        assert sorted(used["ref"].tolist()) == live
        if f.c(C.BOOK_LEVELS_FULL) or f.c(C.BOOK_FULL):
            assert not book_ok(f.books, 0)
        for sd in (BID, ASK):
            lv = depth(f.books, 0, sd, 10)
            px = lv[:, 0]
            assert np.all(np.diff(px) > 0) if sd == ASK else np.all(np.diff(px) < 0)
            counted = used[(used["counted"] == 1) & (used["side"] == sd)]
            assert sorted(set(counted["price"].tolist())) == sorted(px.tolist())
            for p, sh, n in lv.tolist():
                mine = counted[counted["price"] == p]
                assert len(mine) == n > 0 and int(mine["shares"].sum()) == sh
