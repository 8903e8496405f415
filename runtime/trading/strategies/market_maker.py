"""Avellaneda–Stoikov market maker (Avellaneda & Stoikov 2008, "High-frequency trading in a
limit order book"): one bid and one ask per instrument around a reservation price that leans
against inventory.

    sigma    the streaming standard deviation of mid changes over `vol_window` book updates
             (tickpath.kernels.stream moments), dollars; floored at `min_sigma_ticks` ticks
    r        = mid - q * gamma * sigma^2 * tau            q = position / quote_size (lots)
    delta    = gamma * sigma^2 * tau + (2 / gamma) * ln(1 + gamma / k)
    bid, ask = r -/+ delta / 2, rounded outward to the tick, at least `min_spread_ticks` apart,
             never crossing the opposite best price (a passive quote)

A quote is sent when there is none; a live quote is replaced only when its price should move
by at least `requote_ticks` ticks (requoting costs messages and queue priority). At
|position| >= max_inventory the side that would add to it is cancelled and not quoted.
Instruments: `symbols` (empty: every instrument the feed lists).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.kernels.stream import stats as KS
from tickpath.runtime.book.orderbook import best_ask, best_bid
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.context import symbol_u64
from tickpath.runtime.trading.intents import last_uref, order_new, order_cancel, order_replace, position
from tickpath.runtime.trading.orders import order_slot

READS_INDICATORS = False   # books only: a backtest skips the pipeline's indicators
PARAMS = {
    "symbols": [],              # symbols to quote; [] = all
    "gamma": 0.1,               # risk aversion, 1/dollar
    "k": 100.0,                 # order-arrival decay (liquidity), 1/dollar
    "tau_s": 1.0,               # horizon T - t, held constant (a rolling horizon)
    "vol_window": 50,           # book updates in the volatility estimate
    "min_sigma_ticks": 0.5,     # volatility floor, ticks
    "tick": 0.01,               # dollars
    "quote_size": 100,          # shares per quote
    "max_inventory": 500,       # shares; beyond it the side that adds is not quoted
    "requote_ticks": 1,         # move a quote only when its price changes by this many ticks
    "min_spread_ticks": 1,
}

# fp slots; F_SPREAD0 = (2 / gamma) * ln(1 + gamma / k), the spread's constant part, computed
# once here instead of a log per update (the same double: Python's math.log and numba's are libm's)
F_GAMMA, F_K, F_TAU, F_MIN_SIGMA, F_TICK4, F_SPREAD0 = range(6)
# ip slots
I_QSIZE, I_MAXINV, I_REQUOTE, I_MINSPREAD, I_ALL = range(5)


class MMState(NamedTuple):
    fp: np.ndarray          # float64 params
    ip: np.ndarray          # int64 params
    syms: np.ndarray        # uint64 symbols to quote
    enabled: np.ndarray     # int8[n_locates]: 0 not decided yet, 1 quote, 2 never
    vol: np.ndarray         # float64[n_locates, moments row]
    last_mid: np.ndarray    # float64[n_locates], Price(4)


def check_params(p: dict) -> None:
    for k in ("gamma", "k", "tau_s", "tick", "quote_size", "vol_window", "requote_ticks"):
        if p[k] <= 0:
            raise ConfigError("must be positive", key=f"strategy.params.{k}", value=p[k])
    if p["max_inventory"] < p["quote_size"]:
        raise ConfigError("max_inventory below quote_size: no quote could be placed",
                          key="strategy.params.max_inventory", value=p["max_inventory"],
                          quote_size=p["quote_size"])
    if not 2 <= p["vol_window"] <= 256:
        raise ConfigError("value out of range", key="strategy.params.vol_window",
                          value=p["vol_window"], allowed="2..256")
    if p["min_sigma_ticks"] < 0 or p["min_spread_ticks"] < 1:
        raise ConfigError("min_sigma_ticks >= 0 and min_spread_ticks >= 1 required",
                          key="strategy.params.min_spread_ticks", value=p["min_spread_ticks"])
    if not all(isinstance(s, str) and 1 <= len(s) <= 8 for s in p["symbols"]):
        raise ConfigError("symbols are 1-8 character strings", key="strategy.params.symbols",
                          value=p["symbols"])


def new_state(n_locates: int, params: dict) -> MMState:
    gamma, k = float(params["gamma"]), float(params["k"])
    fp = np.array([gamma, k, params["tau_s"], params["min_sigma_ticks"],
                   round(params["tick"] * 1e4), (2.0 / gamma) * math.log(1.0 + gamma / k)],
                  dtype=np.float64)
    ip = np.array([params["quote_size"], params["max_inventory"], params["requote_ticks"],
                   params["min_spread_ticks"], 0 if params["symbols"] else 1], dtype=np.int64)
    vol = np.zeros((n_locates, KS.moments_state_size(params["vol_window"])), dtype=np.float64)
    for i in range(n_locates):
        KS.moments_init(vol[i], params["vol_window"])
    return MMState(fp, ip, np.array([symbol_u64(s) for s in params["symbols"]], dtype=np.uint64),
                   np.zeros(n_locates, dtype=np.int8), vol, np.zeros(n_locates, dtype=np.float64))


@njit(nogil=True, cache=True, _nrt=False)
def _enabled(tctx, s, loc):
    e = s.enabled[loc]
    if e != 0:
        return e == 1
    sym = tctx.symbols[loc]
    if sym == 0:
        return False        # not listed yet (no 'R' seen): decide later
    ok = s.ip[I_ALL] == 1
    for i in range(s.syms.shape[0]):
        if s.syms[i] == sym:
            ok = True
    s.enabled[loc] = 1 if ok else 2
    return ok


@njit(nogil=True, cache=True, _nrt=False)
def _quote(tctx, s, loc, side, price, want, now_ns):
    """Keep one quote on `side` at `price` (want=False: none)."""
    uref = last_uref(tctx, loc, side)
    j = order_slot(tctx, uref)
    live = False
    if j >= 0:
        st = tctx.orders[j].state
        if st == T.PENDING_NEW or st == T.PENDING_CANCEL or st == T.PENDING_REPLACE:
            return          # wait for the venue's answer before acting again
        live = st == T.LIVE or st == T.PARTIAL
    if not want:
        if live:
            order_cancel(tctx, uref, 0, now_ns)
        return
    if not live:
        order_new(tctx, loc, side, s.ip[I_QSIZE], price, R.TIF_DAY, now_ns)
    elif abs(tctx.orders[j].price - price) >= s.ip[I_REQUOTE] * np.int64(s.fp[F_TICK4]):
        order_replace(tctx, uref, s.ip[I_QSIZE], price, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def on_book(tctx, s, pipe, loc, now_ns):
    if not _enabled(tctx, s, loc):
        return
    bp, bs = best_bid(pipe.books, loc)
    ap, as_ = best_ask(pipe.books, loc)
    if bs <= 0 or as_ <= 0 or ap <= bp:
        return
    mid = 0.5 * (np.float64(bp) + np.float64(ap))
    last = s.last_mid[loc]
    s.last_mid[loc] = mid
    if last <= 0:
        return
    _, sd = KS.moments_update(s.vol[loc], mid - last)
    if sd != sd:
        return              # warming up
    tick4 = s.fp[F_TICK4]
    sigma = max(sd, s.fp[F_MIN_SIGMA] * tick4) * 1e-4      # dollars
    gamma = s.fp[F_GAMMA]
    tau = s.fp[F_TAU]
    q = np.float64(position(tctx, loc)) / np.float64(s.ip[I_QSIZE])
    r = mid * 1e-4 - q * gamma * sigma * sigma * tau
    delta = gamma * sigma * sigma * tau + s.fp[F_SPREAD0]
    t = np.int64(tick4)
    bid = np.int64(math.floor((r - 0.5 * delta) * 1e4 / tick4)) * t
    ask = np.int64(math.ceil((r + 0.5 * delta) * 1e4 / tick4)) * t
    min_spread = s.ip[I_MINSPREAD] * t
    if ask - bid < min_spread:
        ask = bid + min_spread
    bid = min(bid, ap - t)  # passive: never cross the opposite best price
    ask = max(ask, bp + t)
    pos = position(tctx, loc)
    _quote(tctx, s, loc, R.SIDE_BUY, bid, bid > 0 and pos < s.ip[I_MAXINV], now_ns)
    _quote(tctx, s, loc, R.SIDE_SELL, ask, pos > -s.ip[I_MAXINV], now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def on_order(tctx, s, resp, j, now_ns):
    return              # quotes are found again from the order table on the next book update


@njit(nogil=True, cache=True, _nrt=False)
def on_timer(tctx, s, pipe, now_ns):
    return
