"""Order-book update cost: ns per order message, one core.

Run: .venv/bin/pytest bench/micro/test_book_bench.py --benchmark-enable -p no:cacheprovider
(add --benchmark-columns=min,median,max,stddev,rounds; on a shared machine add
--benchmark-timer=time.process_time so time spent descheduled is not counted). Target:
<= 50 ns per message on average; extra_info reports ns_per_msg_median / ns_per_msg_min.

Input: a seeded order flow made here, straight as EVENT_DTYPE records (no decoder in the
way): 300 instruments with skewed popularity, a mid price per instrument on a one-cent grid
doing a slow random walk, orders resting a geometric number of ticks from it, and a message
mix near a TotalView day (adds 44 %, deletes 30 %, partial cancels 6 %, replaces 9 %,
executions 8 % (1 in 10 with a price, C), non-displayed trades 3 %). Every E/C/X/D/U names a
live order, chosen among the most recently added far more often than among old ones, so the
live set hovers around a steady size. Side by side:
* apply_all: book_apply_all over the whole array (prefetches order slots a few events ahead);
* apply one by one: book_apply in a plain loop, no prefetch (what a caller that does not
  call book_prefetch gets; the gap to apply_all is what the prefetch buys);
* apply_all + top: the same plus best bid/ask and microprice of the touched locate after
  each message, what an indicator stage reads;
* market+decoder: the same books fed from bench/market.py's ITCH stream through the decoder
  (another generator, as a cross-check that no order is ever unknown).
Each round starts from empty books (cleared in setup, not timed) and the counters are
checked after it, so a round that refused or lost orders cannot pass as a faster one.
"""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from tickpath.runtime.core import counters as C
from tickpath.runtime.book.orderbook import (
    best_ask,
    best_bid,
    book_apply,
    book_apply_all,
    clear_books,
    microprice,
    n_live_orders,
    new_books,
)
from tickpath.runtime.core.event import EVENT_DTYPE

N_MESSAGES = 1_000_000
N_INSTRUMENTS = 300
MAX_ORDERS = 1 << 17
MAX_LEVELS = 256
TICK = 100              # one cent in Price(4)
TARGET_LIVE = 40_000    # live orders the flow hovers around


@njit(nogil=True)
def _flow(seed, n, n_instruments, target_live, events):
    """Fill events with a valid order flow; return the peak number of live orders."""
    np.random.seed(seed)
    mid = np.empty(n_instruments + 1, np.int64)
    for k in range(n_instruments + 1):
        mid[k] = (1000 + np.random.randint(0, 20000)) * TICK  # $10 .. $210
    cap = 4 * target_live
    l_ref = np.empty(cap, np.uint64)   # live orders in (roughly) add order
    l_loc = np.empty(cap, np.int64)
    l_side = np.empty(cap, np.uint8)
    l_sh = np.empty(cap, np.int64)
    l_px = np.empty(cap, np.int64)
    n_live = 0
    peak = 0
    next_ref = np.uint64(1)
    next_match = np.uint64(1)
    for i in range(n):
        e = events[i]
        e.seq = i + 1
        e.ts_exch = 34_200_000_000_000 + i * 1000
        e.version = 1
        u = np.random.random()
        # adds a bit more likely below the target live count, less above it
        p_add = 0.44 + 0.1 * (target_live - n_live) / target_live
        if n_live == 0 or (u < p_add and n_live < cap):
            loc = 1 + int(n_instruments * np.random.random() ** 2)  # skewed popularity
            if np.random.random() < 0.002:
                mid[loc] += TICK * (1 if np.random.random() < 0.5 else -1)
            side = np.uint8(66) if np.random.random() < 0.5 else np.uint8(83)
            off = 1 + int(np.log(1.0 - np.random.random()) / np.log(0.7))  # geometric ticks
            px = mid[loc] - off * TICK if side == 66 else mid[loc] + off * TICK
            px = max(px, TICK)
            sh = 100 * (1 + np.random.randint(0, 10))
            e.msg_type = 70 if np.random.random() < 0.05 else 65
            e.order_ref = next_ref
            e.side = side
            e.shares = sh
            e.price = px
            e.locate = loc
            l_ref[n_live] = next_ref
            l_loc[n_live] = loc
            l_side[n_live] = side
            l_sh[n_live] = sh
            l_px[n_live] = px
            n_live += 1
            peak = max(peak, n_live)
            next_ref += np.uint64(1)
            continue
        # pick a live order: mostly among the last ~64 added, sometimes any
        if np.random.random() < 0.8:
            j = n_live - 1 - min(n_live - 1, int(np.random.exponential(16.0)))
        else:
            j = np.random.randint(0, n_live)
        e.order_ref = l_ref[j]
        e.locate = l_loc[j]
        v = (u - p_add) / (1.0 - p_add)  # where u fell among the non-add actions
        gone = False
        if v < 0.30 / 0.56:
            e.msg_type = 68  # D
            gone = True
        elif v < 0.36 / 0.56:
            e.msg_type = 88  # X
            cut = 100 * (1 + np.random.randint(0, l_sh[j] // 100))
            e.shares = cut
            l_sh[j] -= cut
            gone = l_sh[j] == 0
        elif v < 0.45 / 0.56:
            e.msg_type = 85  # U
            e.ref2 = next_ref
            off = int(np.random.randint(-2, 3)) * TICK
            e.price = max(l_px[j] + off, TICK)
            e.shares = 100 * (1 + np.random.randint(0, 10))
            l_ref[j] = next_ref
            l_px[j] = e.price
            l_sh[j] = e.shares
            next_ref += np.uint64(1)
        elif v < 0.53 / 0.56:
            ex = 100 * (1 + np.random.randint(0, l_sh[j] // 100))
            e.shares = ex
            e.ref2 = next_match
            next_match += np.uint64(1)
            if np.random.random() < 0.1:
                e.msg_type = 67  # C
                e.price = l_px[j]
                e.aux = 89
            else:
                e.msg_type = 69  # E
            l_sh[j] -= ex
            gone = l_sh[j] == 0
        else:
            e.msg_type = 80  # P: a hidden trade near the order's price
            e.order_ref = 0
            e.side = l_side[j]
            e.price = l_px[j]
            e.shares = 100
            e.ref2 = next_match
            next_match += np.uint64(1)
        if gone:  # swap-remove keeps the array dense
            n_live -= 1
            l_ref[j] = l_ref[n_live]
            l_loc[j] = l_loc[n_live]
            l_side[j] = l_side[n_live]
            l_sh[j] = l_sh[n_live]
            l_px[j] = l_px[n_live]
    return peak


def make_flow(seed: int = 2024, n: int = N_MESSAGES):
    events = np.zeros(n, dtype=EVENT_DTYPE)
    peak = _flow(seed, n, N_INSTRUMENTS, TARGET_LIVE, events)
    return events, peak


@njit(nogil=True)
def _apply_one_by_one(books, events, counters):
    changed = 0
    for i in range(events.shape[0]):
        if book_apply(books, events, i, counters) >= 0:
            changed += 1
    return changed


@njit(nogil=True)
def _apply_and_read_top(books, events, counters):
    acc = 0.0
    for i in range(events.shape[0]):
        loc = book_apply(books, events, i, counters)
        if loc >= 0:
            acc += best_bid(books, loc)[0] - best_ask(books, loc)[0]
            m = microprice(books, loc)
            if not np.isnan(m):
                acc += m
    return acc


@pytest.fixture(scope="module")
def flow():
    events, peak = make_flow()
    assert peak < MAX_ORDERS
    return events


def _run(benchmark, events, fn, n_expected_adds=None):
    books = new_books(N_INSTRUMENTS + 1, MAX_ORDERS, MAX_LEVELS)
    counters = np.zeros(C.N_COUNTERS, dtype=np.int64)
    fn(books, events[:1000], counters)  # compile outside the timing

    def setup():
        clear_books(books)
        counters[:] = 0

    benchmark.pedantic(fn, args=(books, events, counters), setup=setup, rounds=5,
                       iterations=1, warmup_rounds=1)
    for slot in (C.BOOK_UNKNOWN_ORDER, C.BOOK_FULL, C.BOOK_LEVELS_FULL, C.BOOK_BAD_LOCATE,
                 C.BOOK_BAD_ADD, C.BOOK_OVERFILL):
        assert counters[slot] == 0, C.NAMES[slot]
    if n_expected_adds is not None:
        assert counters[C.BOOK_ADDS] == n_expected_adds
    n = events.shape[0]
    benchmark.extra_info["messages"] = n
    benchmark.extra_info["live_orders_at_end"] = int(n_live_orders(books))
    if benchmark.stats:  # empty when timing is off (plain pytest run)
        benchmark.extra_info["ns_per_msg_median"] = benchmark.stats.stats.median * 1e9 / n
    if benchmark.stats:  # empty when timing is off (plain pytest run)
        benchmark.extra_info["ns_per_msg_min"] = benchmark.stats.stats.min * 1e9 / n
    return books


def _expected_adds(events):
    t = events["msg_type"]
    return int(np.count_nonzero((t == 65) | (t == 70) | (t == 85)))


def test_book_apply_all(benchmark, flow):
    _run(benchmark, flow, book_apply_all, _expected_adds(flow))


def test_book_apply_one_by_one(benchmark, flow):
    _run(benchmark, flow, _apply_one_by_one, _expected_adds(flow))


def test_book_apply_and_read_top(benchmark, flow):
    _run(benchmark, flow, _apply_and_read_top, _expected_adds(flow))


def test_book_from_market_decoder(benchmark):
    from tickpath.bench.load import market
    from tickpath.runtime.feed import decoder
    mkt = market.generate(2024, N_MESSAGES, N_INSTRUMENTS)
    pk = market.pack_mold(mkt, "BENCH")
    mold, session = decoder.new_mold_state("BENCH")
    events = np.zeros(N_MESSAGES + pk.n_packets, dtype=EVENT_DTYPE)
    dc = np.zeros(C.N_COUNTERS, dtype=np.int64)
    recv_ns = np.zeros(pk.n_packets, dtype=np.int64)
    n = decoder.decode_buffer(pk.buf, pk.offsets, pk.lengths, 0, pk.n_packets, recv_ns, mold,
                              session, events, 0, dc)
    assert dc[C.EVENTS] == N_MESSAGES == n
    _run(benchmark, events[:n], book_apply_all, _expected_adds(events[:n]))
