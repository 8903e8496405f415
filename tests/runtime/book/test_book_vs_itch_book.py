"""The oracle: on generated shallow, deep (>= 300 levels a side) and thinning (drained)
books, every top-of-book change tickpath's books make equals itch-book's (an independent
C++ ITCH order book), message by message: same sequence numbers, locates, prices, sizes
and order counts. And at a bound too small for the flow, a book is never wrong while
book_ok says it is right."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from tickpath.bench.load.market import generate, pack_mold
from tickpath.runtime.book.bbo import BBO_DTYPE, bbo_apply_all, new_tops
from tickpath.runtime.book.orderbook import book_ok, new_books
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.feed import decoder

itch_book = pytest.importorskip("itch_book", reason="itch-book (the test extra) not installed")

N_INSTR = 20
DEEP = dict(levels_per_side=400, depth="uniform", max_live_orders=1 << 17,
            mix=(0.7, 0.1, 0.05, 0.05, 0.05))
FLOWS = {
    "shallow": (150_000, dict(levels_per_side=5)),
    "deep": (150_000, DEEP),
    "thinning": (150_000, dict(DEEP, drain_from=75_000)),
}
COLS = (("seq", "seq"), ("locate", "locate"), ("bid_px", "bid_px"), ("bid_sz", "bid_sz"),
        ("bid_ct", "bid_orders"), ("ask_px", "ask_px"), ("ask_sz", "ask_sz"),
        ("ask_ct", "ask_orders"))


def _itch_book_bbo(market):
    blob = b"".join(struct.pack(">H", len(m)) + m for m in market.messages())
    s = itch_book.Session(tables=["bbo"], depth=0, symbols=[])
    s.reserve(market.n_messages + 16)
    s.feed(blob)
    st = s.stats()
    assert st["messages"] == market.n_messages and st["missing_ref"] == st["malformed"] == 0
    return s.take_bbo(), st


def _ours(market, max_levels, max_orders=1 << 17):
    pk = pack_mold(market, "ORACLE")
    mold, sess = decoder.new_mold_state("ORACLE")
    events = np.zeros(market.n_messages + pk.n_packets, EVENT_DTYPE)
    counters = C.new_counters()
    n = decoder.decode_buffer(pk.buf, pk.offsets, pk.lengths, 0, pk.n_packets,
                              np.zeros(pk.n_packets, np.int64), mold, sess, events, 0, counters)
    assert n == market.n_messages
    books = new_books(N_INSTR + 1, max_orders, max_levels)
    rows = np.zeros(n, BBO_DTYPE)
    k = bbo_apply_all(books, events, n, counters, new_tops(N_INSTR + 1), rows)
    return rows[:k], counters, books


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_every_top_of_book_change_equals_itch_books(flow):
    n, kw = FLOWS[flow]
    market = generate(11, n, N_INSTR, **kw)
    theirs, st = _itch_book_bbo(market)
    rows, counters, books = _ours(market, max_levels=4096)
    assert counters[C.BOOK_UNKNOWN_ORDER] == counters[C.BOOK_LEVELS_FULL] == 0
    assert all(book_ok(books, loc) for loc in range(N_INSTR + 1))
    assert len(rows) == len(theirs["seq"]) > 500
    for a, b in COLS:
        diff = np.flatnonzero(theirs[a].astype(np.int64) != rows[b].astype(np.int64))
        assert len(diff) == 0, (a, int(diff[0]), int(theirs[a][diff[0]]), int(rows[b][diff[0]]))
    if flow == "thinning":
        assert st["live_orders"] == 0 and books.sides["n_levels"].sum() == 0


def test_deep_flow_reaches_300_levels_a_side():
    """The deep flow is deep: some book holds >= 300 levels on each side at its peak."""
    n, kw = FLOWS["thinning"]
    market = generate(11, kw["drain_from"] + 2 * N_INSTR + 3, N_INSTR, **kw)
    rows, counters, books = _ours(market, max_levels=4096)
    assert books.sides["n_levels"][:, 0].max() >= 300 and books.sides["n_levels"][:, 1].max() >= 300


def test_a_bound_too_small_never_gives_a_wrong_top_while_book_ok():
    """max_levels 64 on the deep, thinning flow: books past it are marked, and every top of
    book change of an instrument still marked ok equals itch-book's."""
    n, kw = FLOWS["thinning"]
    market = generate(11, n, N_INSTR, **kw)
    theirs, _ = _itch_book_bbo(market)
    rows, counters, books = _ours(market, max_levels=64)
    assert counters[C.BOOK_LEVELS_FULL] > 0
    bad = {loc for loc in range(N_INSTR + 1) if not book_ok(books, loc)}
    assert len(bad) >= N_INSTR // 2
    ok_t = ~np.isin(theirs["locate"], list(bad))
    ok_r = ~np.isin(rows["locate"], list(bad))
    assert ok_t.sum() == ok_r.sum()
    for a, b in COLS:
        assert np.array_equal(theirs[a][ok_t].astype(np.int64), rows[b][ok_r].astype(np.int64))
