"""The tick-to-trade benchmark strategy: answer each marked trigger with one order.

A tickpath strategy like any other (selected as `tickpath.bench.t2t.responder` in
`[strategy] name`), so the measured path is the user's: feed -> decode -> books -> the
trading step -> risk gate -> order manager -> OUCH `send()`. The trigger (bench/t2t/triggers.py)
is a 1-share buy resting at the bottom of the band of a quiet instrument (one the venue's
background flow never touches), so every book update of that instrument that raises its
best-bid size is one new trigger. The answer is an IOC buy of `answer_qty` at `answer_price`
(below every ask: it never trades and never rests). The live loop writes the triggering
event's sequence number into the order's ClOrdID, which is how the venue pairs answer and
trigger. Two triggers in one batch are one book update (the step calls on_book once per
touched instrument): the earlier one goes unanswered and is counted here and by the venue.
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

PARAMS = {
    "symbol": "",           # the quiet instrument the triggers are on
    "answer_price": 0,      # Price(4) of the answering IOC buy
    "answer_qty": 1,
}

# ip slots
I_SYMBOL, I_PRICE, I_QTY, I_LAST_BID_SZ, I_ANSWERS, I_COALESCED = range(6)


class ResponderState(NamedTuple):
    ip: np.ndarray          # int64[6]


def check_params(p: dict) -> None:
    if not p["symbol"] or len(p["symbol"]) > 8:
        raise ConfigError("the trigger instrument is needed (1-8 characters)", key="strategy.params.symbol",
                          symbol=p["symbol"])
    if p["answer_price"] <= 0 or p["answer_qty"] <= 0:
        raise ConfigError("answer_price and answer_qty must be positive", key="strategy.params.answer_price",
                          answer_price=p["answer_price"], answer_qty=p["answer_qty"])


def new_state(n_locates: int, params: dict) -> ResponderState:
    ip = np.zeros(6, np.int64)
    ip[I_SYMBOL] = np.int64(np.uint64(symbol_u64(params["symbol"])).view(np.int64))
    ip[I_PRICE] = params["answer_price"]
    ip[I_QTY] = params["answer_qty"]
    return ResponderState(ip)


@njit(nogil=True, cache=True)
def on_book(tctx, s, pipe, loc, now_ns):
    if np.int64(tctx.symbols[loc]) != s.ip[I_SYMBOL]:
        return
    _, size = best_bid(pipe.books, loc)
    new = np.int64(size) - s.ip[I_LAST_BID_SZ]
    s.ip[I_LAST_BID_SZ] = size
    if new <= 0:
        return
    if new > 1:
        s.ip[I_COALESCED] += new - 1
    if order_new(tctx, loc, R.SIDE_BUY, s.ip[I_QTY], s.ip[I_PRICE], R.TIF_IOC, now_ns):
        s.ip[I_ANSWERS] += 1


@njit(nogil=True, cache=True)
def on_order(tctx, s, resp, j, now_ns):
    return


@njit(nogil=True, cache=True)
def on_timer(tctx, s, pipe, now_ns):
    return
