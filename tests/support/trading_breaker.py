"""A strategy that trips the breach breaker in its first book update, after one good order:
it asks for a good new order, then two over max_order_qty (configure max_order_qty=500,
max_breaches=1). Named in a config as "trading_breaker:Breaker"."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.book.orderbook import best_bid
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.intents import order_new


class BreakerState(NamedTuple):
    done: np.ndarray     # int64[1]: 1 once it has asked


@njit(nogil=True, cache=True)
def _on_book(tctx, s, pipe, loc, now_ns):
    px, _shares = best_bid(pipe.books, loc)
    if s.done[0] != 0 or px <= 0:
        return
    s.done[0] = 1
    order_new(tctx, loc, R.SIDE_BUY, np.int64(100), px, R.TIF_DAY, now_ns)
    order_new(tctx, loc, R.SIDE_BUY, np.int64(900), px, R.TIF_DAY, now_ns)
    order_new(tctx, loc, R.SIDE_BUY, np.int64(900), px, R.TIF_DAY, now_ns)


@njit(nogil=True, cache=True)
def _on_order(tctx, s, resp, j, now_ns):
    pass


@njit(nogil=True, cache=True)
def _on_timer(tctx, s, pipe, now_ns):
    pass


def _new_state(n_locates, params):
    return BreakerState(np.zeros(1, dtype=np.int64))


class Breaker:
    PARAMS = {"unused": 0}
    new_state = staticmethod(_new_state)
    on_book = _on_book
    on_order = _on_order
    on_timer = _on_timer
