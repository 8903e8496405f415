"""A taker: EMA crossover on the mid with IOC orders (the aggressive path).

Per instrument, a fast and a slow EMA of the mid (tickpath.kernels.stream EMA state rows).
When the fast EMA crosses above the slow one, buy `qty` at the best ask (IOC: what does not
trade at once is cancelled by the venue); when it crosses below, sell at the best bid. No
order while one is in flight for the instrument, none beyond `max_position` either way, and
nothing until both EMAs have seen `slow` updates.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.kernels.stream import ma as KM
from tickpath.runtime.book.orderbook import best_ask, best_bid
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.context import symbol_u64
from tickpath.runtime.trading.intents import order_new, position

READS_INDICATORS = False   # books only: a backtest skips the pipeline's indicators
PARAMS = {
    "symbols": [],          # [] = all listed instruments
    "fast": 8,              # EMA periods, book updates
    "slow": 32,
    "qty": 100,
    "max_position": 300,
}


class TakerState(NamedTuple):
    ema_fast: np.ndarray    # float64[n_locates, EMA_STATE_SIZE]
    ema_slow: np.ndarray
    n: np.ndarray           # int64[n_locates]: updates seen
    sign: np.ndarray        # int8[n_locates]: last fast-vs-slow side (+1 / -1 / 0)
    syms: np.ndarray        # uint64 symbols to trade
    enabled: np.ndarray     # int8[n_locates]: 0 undecided, 1 yes, 2 no
    ip: np.ndarray          # int64: slow, qty, max_position, all


def check_params(p: dict) -> None:
    if not 1 <= p["fast"] < p["slow"] <= 256:
        raise ConfigError("need 1 <= fast < slow <= 256", key="strategy.params.fast",
                          fast=p["fast"], slow=p["slow"])
    if p["qty"] <= 0 or p["max_position"] < p["qty"]:
        raise ConfigError("need 0 < qty <= max_position", key="strategy.params.qty",
                          qty=p["qty"], max_position=p["max_position"])


def new_state(n_locates: int, params: dict) -> TakerState:
    f = np.zeros((n_locates, KM.EMA_STATE_SIZE))
    s = np.zeros((n_locates, KM.EMA_STATE_SIZE))
    for i in range(n_locates):
        KM.ema_init(f[i], params["fast"])
        KM.ema_init(s[i], params["slow"])
    return TakerState(f, s, np.zeros(n_locates, np.int64), np.zeros(n_locates, np.int8),
                      np.array([symbol_u64(x) for x in params["symbols"]], dtype=np.uint64),
                      np.zeros(n_locates, np.int8),
                      np.array([params["slow"], params["qty"], params["max_position"],
                                0 if params["symbols"] else 1], dtype=np.int64))


@njit(nogil=True, cache=True, _nrt=False)
def _enabled(tctx, s, loc):
    if s.enabled[loc] != 0:
        return s.enabled[loc] == 1
    sym = tctx.symbols[loc]
    if sym == 0:
        return False
    ok = s.ip[3] == 1
    for i in range(s.syms.shape[0]):
        if s.syms[i] == sym:
            ok = True
    s.enabled[loc] = 1 if ok else 2
    return ok


@njit(nogil=True, cache=True, _nrt=False)
def on_book(tctx, s, pipe, loc, now_ns):
    if not _enabled(tctx, s, loc):
        return
    bp, bs = best_bid(pipe.books, loc)
    ap, as_ = best_ask(pipe.books, loc)
    if bs <= 0 or as_ <= 0 or ap <= bp:
        return
    mid = 0.5 * (np.float64(bp) + np.float64(ap))
    f = KM.ema_update(s.ema_fast[loc], mid)
    sl = KM.ema_update(s.ema_slow[loc], mid)
    s.n[loc] += 1
    if s.n[loc] < s.ip[0] or f != f or sl != sl:
        return
    sign = np.int8(1) if f > sl else (np.int8(-1) if f < sl else np.int8(0))
    prev = s.sign[loc]
    s.sign[loc] = sign
    if prev == 0 or sign == 0 or sign == prev or tctx.loc[loc, T.L_INFLIGHT] > 0:
        return
    qty = s.ip[1]
    pos = position(tctx, loc)
    if sign > 0 and pos + qty <= s.ip[2]:
        order_new(tctx, loc, R.SIDE_BUY, qty, ap, R.TIF_IOC, now_ns)
    elif sign < 0 and pos - qty >= -s.ip[2]:
        order_new(tctx, loc, R.SIDE_SELL, qty, bp, R.TIF_IOC, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def on_order(tctx, s, resp, j, now_ns):
    return


@njit(nogil=True, cache=True, _nrt=False)
def on_timer(tctx, s, pipe, now_ns):
    return
