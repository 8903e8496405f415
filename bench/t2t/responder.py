"""The tick-to-trade benchmark strategy: answer each marked trigger with one order.

A tickpath strategy like any other (selected as `tickpath.bench.t2t.responder` in
`[strategy] name`), so the measured path is the user's: feed -> decode -> books -> the
trading step -> risk gate -> order manager -> OUCH `send()`. A trigger (bench/t2t/triggers.py)
is a 1-share buy resting at the bottom of the band of one of a few quiet instruments (ones
the venue's background flow never touches), so a book update of a trigger instrument that
raises its best-bid size is one new trigger. The answer is an IOC buy of `answer_qty` at
`answer_price` on `answer_symbol` (below every ask: it never trades and never rests). The
live loop writes the triggering event's sequence number into the order's ClOrdID, which is
how the venue pairs answer and trigger. Triggers go round-robin over the instruments because
the live loop steps once per run of consecutive messages of one instrument and the step calls
on_book once per touched instrument: two triggers of one instrument back to back in one
packet are one update (the earlier goes unanswered, counted here and by the venue).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.book.orderbook import best_bid
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.context import symbol_u64
from tickpath.runtime.trading.intents import order_new

READS_INDICATORS = False   # books only, as a user's book-driven strategy would declare
PARAMS = {
    "symbols": [],          # the quiet instruments the triggers are on
    "answer_symbol": "",    # the instrument the answers go to
    "answer_price": 0,      # Price(4) of the answering IOC buy
    "answer_qty": 1,
}

# ip slots
I_ANSWER_SYM, I_PRICE, I_QTY, I_ANSWER_LOC, I_ANSWERS, I_COALESCED = range(6)


class ResponderState(NamedTuple):
    ip: np.ndarray          # int64[6]
    syms: np.ndarray        # int64: the trigger instruments' symbols (u64 bits)
    last_bid_sz: np.ndarray  # int64[n_locates]: best-bid size at the last update


def check_params(p: dict) -> None:
    if not p["symbols"] or not p["answer_symbol"]:
        raise ConfigError("the trigger instruments and the answer instrument are needed",
                          key="strategy.params.symbols", symbols=p["symbols"], answer_symbol=p["answer_symbol"])
    if p["answer_price"] <= 0 or p["answer_qty"] <= 0:
        raise ConfigError("answer_price and answer_qty must be positive", key="strategy.params.answer_price",
                          answer_price=p["answer_price"], answer_qty=p["answer_qty"])


def _bits(symbol: str) -> int:
    return int(np.uint64(symbol_u64(symbol)).view(np.int64))


def new_state(n_locates: int, params: dict) -> ResponderState:
    ip = np.zeros(6, np.int64)
    ip[I_ANSWER_SYM] = _bits(params["answer_symbol"]) if params["answer_symbol"] else 0
    ip[I_PRICE] = params["answer_price"]
    ip[I_QTY] = params["answer_qty"]
    ip[I_ANSWER_LOC] = -1
    syms = np.array([_bits(s) for s in params["symbols"]], np.int64)
    return ResponderState(ip, syms, np.zeros(n_locates, np.int64))


@njit(nogil=True, cache=True)
def _answer_loc(tctx, s):
    if s.ip[I_ANSWER_LOC] < 0:
        for loc in range(tctx.symbols.shape[0]):
            if np.int64(tctx.symbols[loc]) == s.ip[I_ANSWER_SYM]:
                s.ip[I_ANSWER_LOC] = loc
                break
    return s.ip[I_ANSWER_LOC]


@njit(nogil=True, cache=True)
def on_book(tctx, s, pipe, loc, now_ns):
    sym = np.int64(tctx.symbols[loc])
    hit = False
    for i in range(s.syms.shape[0]):
        if s.syms[i] == sym:
            hit = True
    if not hit:
        return
    _, size = best_bid(pipe.books, loc)
    new = np.int64(size) - s.last_bid_sz[loc]
    s.last_bid_sz[loc] = size
    if new <= 0:
        return
    if new > 1:
        s.ip[I_COALESCED] += new - 1
    a = _answer_loc(tctx, s)
    if a >= 0 and order_new(tctx, a, R.SIDE_BUY, s.ip[I_QTY], s.ip[I_PRICE], R.TIF_IOC, now_ns):
        s.ip[I_ANSWERS] += 1


@njit(nogil=True, cache=True)
def on_order(tctx, s, resp, j, now_ns):
    return


@njit(nogil=True, cache=True)
def on_timer(tctx, s, pipe, now_ns):
    return
