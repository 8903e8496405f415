"""The trading core's costs (issue 14 targets; figures in bench/RESULTS.md):

* risk gate, all checks on: check_new (kill switch, session, listing, restriction, book
  reliability, size, notional, collar against the BBO, position per instrument and total,
  open orders, duplicate guard, 4 throttles) + note_new for an order that passes every check
  (an early reject would be cheaper and flatter the figure). Target <= 50 ns per order.
* strategy + risk + OUCH encode per book update: the market maker's on_book, the gate, the
  order manager and the O/U/X encode of what passed, as trade_on_events runs them, over
  updates that move the quote (about one replace per update), with the venue's answers fed
  back through trade_on_responses so the quotes stay live. The book update itself is
  measured alone beside it and subtracted. Target <= 200 ns per update.

Each round's work is checked (orders that passed, replaces sent): a round that did less
cannot pass as a faster one.
Run: .venv/bin/pytest bench/micro/test_trading_bench.py --benchmark-enable -p no:cacheprovider
"""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.pipeline import Pipeline, process_events
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.ref import ref
from tickpath.runtime.trading.context import new_trade_ctx, set_symbol
from tickpath.runtime.trading.risk import check_new, note_new, validate_risk
from tickpath.runtime.trading.strategy import _core_sources, _source_of, generate_module, load_strategy

N_ORDERS = 20_000
N_UPDATES = 20_000
MID = 100_000

ALL_ON = dict(max_order_qty=100_000, max_notional=1e12, price_collar_pct=50.0, max_position=1 << 30,
              max_total_position=1 << 30, max_open_orders=1 << 30, max_orders_per_s=1 << 20,
              max_orders_per_100ms=1 << 19, max_msgs_per_s=1 << 21, max_msgs_per_100ms=1 << 20,
              duplicate_window_ms=1000, restricted=["ZZZZ"], check_book=True, max_loss=1e9,
              max_venue_rejects_per_s=1000, max_breaches=1 << 30, market_data_stale_ms=1000)


@njit(nogil=True, cache=True, _nrt=False)
def gate_loop(tctx, books, n, now_ns):
    """n orders through the gate (each one passes), as the step runs it; returns how many passed."""
    tctx = ref(tctx)   # as the step does at its entry
    books = ref(books)
    passed = 0
    for i in range(n):
        price = MID - 5_000 + (i % 100) * 100     # a different price each time: not a duplicate
        side = R.SIDE_BUY if i & 1 else R.SIDE_SELL
        t = now_ns + i * 1_000
        if check_new(tctx, books, True, 1, side, 100, price, t) < 0:
            note_new(tctx, 1, side, 100, price, t)
            passed += 1
    return passed


def _gate_setup():
    pipe = Pipeline(n_locates=16, max_orders=1 << 12, max_levels=16)
    ev = np.zeros(2, EVENT_DTYPE)
    for i, (side, px) in enumerate((("B", MID - 100), ("S", MID + 100))):
        ev[i]["seq"], ev[i]["msg_type"], ev[i]["locate"] = i + 1, ord("A"), 1
        ev[i]["order_ref"], ev[i]["side"], ev[i]["shares"], ev[i]["price"] = i + 1, ord(side), 100, px
    process_events(pipe.arrays, ev, 2)
    t = new_trade_ctx(16, validate_risk(ALL_ON))
    set_symbol(t, 1, "AAAA")
    return t, pipe


def test_risk_gate_all_checks(benchmark):
    t, pipe = _gate_setup()
    gate_loop(t, pipe.books, 10, 1)          # compile / load from cache outside the timing
    state = {"now": 10**12}

    def setup():
        t.rates[:] = 0
        t.st[T.S_RATE_HEAD:T.S_RATE_HEAD + 5] = 0
        state["now"] += 10**10
        return (t, pipe.books, N_ORDERS, state["now"]), {}

    passed = benchmark.pedantic(gate_loop, setup=setup, rounds=30)
    assert passed == N_ORDERS
    benchmark.extra_info["orders_per_round"] = N_ORDERS
    benchmark.extra_info["ns_per_order"] = benchmark.stats.stats.median * 1e9 / N_ORDERS


# -- strategy + risk + encode ------------------------------------------------------------------
LOOP = '''"""Generated for bench/micro/test_trading_bench.py; do not edit."""
from numba import njit

import tickpath.runtime.trading.strategies.market_maker as _mod
from tickpath.runtime.engine.pipeline import process_events
from tickpath.runtime.trading import records as _R
from tickpath.runtime.trading.ouch import codec as _codec
from tickpath.runtime.trading.step import events_impl, responses_impl, order_slot

_on_book = _mod.on_book
_on_order = _mod.on_order
_on_timer = _mod.on_timer


@njit(nogil=True, cache=True, _nrt=False)
def book_only(pipe, events, n):
    for i in range(n):
        process_events(pipe, events[i:i + 1], 1)
    return n


@njit(nogil=True, cache=True, _nrt=False)
def full(tctx, strat, pipe, events, n, wire, responses, now_ns):
    """Per update: book, step (strategy + gate + order manager), encode, the venue's answer."""
    sent = 0
    for i in range(n):
        ev = events[i:i + 1]
        process_events(pipe, ev, 1)
        t = now_ns + i * 10_000
        k = events_impl(_on_book, _on_timer, tctx, strat, pipe, ev, 1, t)
        m = 0
        for j in range(k):
            ob = tctx.outbox[j]
            r = responses[m]
            r.seq = 0
            r.uref = ob.uref
            r.price = ob.price
            r.state = 76
            if ob.kind == _R.INTENT_NEW:
                _codec.encode_enter(wire, 0, ob.uref, ob.side, ob.qty, tctx.symbols[ob.locate], ob.price,
                                    ob.tif, ob.trigger_seq)
                r.kind = _R.RESP_ACCEPTED
                r.qty = ob.qty
            elif ob.kind == _R.INTENT_REPLACE:
                o = tctx.orders[order_slot(tctx, ob.uref)]
                _codec.encode_replace(wire, 0, o.other, ob.uref, ob.qty, ob.price, ob.tif)
                r.kind = _R.RESP_REPLACED
                r.orig_uref = o.other
                r.qty = ob.qty
            else:
                _codec.encode_cancel(wire, 0, ob.uref, ob.qty)
                r.kind = _R.RESP_CANCELED
                r.qty = tctx.orders[order_slot(tctx, ob.uref)].leaves
            m += 1
            sent += 1
        if m > 0:
            responses_impl(_on_order, tctx, strat, responses, m, t)
    return sent
'''


def _mm_setup():
    s = load_strategy("market_maker", {"symbols": ["AAAA"], "vol_window": 8, "requote_ticks": 1,
                                       "max_inventory": 10_000, "quote_size": 100})
    mod = generate_module(LOOP, "bench_trading", _source_of(s.obj, s.module) + _core_sources())
    pipe = Pipeline(n_locates=16, max_orders=1 << 14, max_levels=64)
    t = new_trade_ctx(16, validate_risk(ALL_ON | {"check_book": True, "market_data_stale_ms": 0}))
    set_symbol(t, 1, "AAAA")
    strat = s.new_state(16)
    # a book, then updates that move the top: a bid one tick better is added, then deleted
    base = np.zeros(2, EVENT_DTYPE)
    for i, (side, px) in enumerate((("B", MID - 1_000), ("S", MID + 1_000))):
        base[i]["seq"], base[i]["msg_type"], base[i]["locate"] = i + 1, ord("A"), 1
        base[i]["order_ref"], base[i]["side"], base[i]["shares"], base[i]["price"] = i + 1, ord(side), 500, px
    ev = np.zeros(N_UPDATES, EVENT_DTYPE)
    ev["locate"] = 1
    ev["seq"] = np.arange(N_UPDATES) + 3
    ev["ts_recv"] = 1
    for i in range(N_UPDATES):
        ref = 1000 + i // 2
        step = (i // 2) % 8          # the improving bid wanders over 8 ticks: the quote moves
        if i % 2 == 0:
            ev[i]["msg_type"], ev[i]["order_ref"], ev[i]["side"] = ord("A"), ref, ord("B")
            ev[i]["shares"], ev[i]["price"] = 100, MID - 900 + step * 100
        else:
            ev[i]["msg_type"], ev[i]["order_ref"] = ord("D"), ref
    return mod, pipe, t, strat, base, ev


def _fresh(mod, base):
    pipe = Pipeline(n_locates=16, max_orders=1 << 14, max_levels=64)
    process_events(pipe.arrays, base, 2)
    t = new_trade_ctx(16, validate_risk(ALL_ON | {"market_data_stale_ms": 0}))
    set_symbol(t, 1, "AAAA")
    return pipe, t


@pytest.mark.parametrize("part", ["book_only", "strategy_risk_encode"])
def test_strategy_risk_encode_per_update(benchmark, part):
    mod, _, _, _, base, ev = _mm_setup()
    s = load_strategy("market_maker", {"symbols": ["AAAA"], "vol_window": 8, "requote_ticks": 1,
                                       "max_inventory": 10_000, "quote_size": 100})
    wire = np.zeros(64, np.uint8)
    resp = R.new_responses(64)
    pipe, t = _fresh(mod, base)
    mod.book_only(pipe.arrays, ev[:4], 4)
    mod.full(t, s.new_state(16), pipe.arrays, ev[:4].copy(), 0, wire, resp, 10**12)

    def setup():
        pipe, t = _fresh(mod, base)
        if part == "book_only":
            return (pipe.arrays, ev, N_UPDATES), {}
        return (t, s.new_state(16), pipe.arrays, ev, N_UPDATES, wire, resp, 10**12), {}

    fn = mod.book_only if part == "book_only" else mod.full
    out = benchmark.pedantic(fn, setup=setup, rounds=20)
    benchmark.extra_info["updates_per_round"] = N_UPDATES
    benchmark.extra_info["ns_per_update"] = benchmark.stats.stats.median * 1e9 / N_UPDATES
    if part == "strategy_risk_encode":
        benchmark.extra_info["orders_per_update"] = out / N_UPDATES
        assert out > N_UPDATES // 4       # the quote really moves: replaces go out
