"""Two small strategies of the backtest's own, written against the same records as the
trading path (INTENT out, RESPONSE in), and their cached loop bindings.

* `touch` — fixed quotes at the touch: on one locate it keeps one bid at the best bid and
  one ask at the best ask (fixed size, DAY); a quote whose price is no longer the touch is
  cancelled and re-entered once the cancel is confirmed. Acting on a timer (`timer_ns`) or on
  every feed event. It is the strategy the hftbacktest oracle runs too
  (tests/runtime/backtest/test_oracle_hftbacktest.py).
* `peek` — the no-look-ahead probe: the moment it sees the best ask rise above the price it
  remembered, it sends an IOC buy at that old, lower price. It can only fill if the order
  could reach the exchange before the event that moved the price: a backtest that leaks the
  future lets it profit, ours must not (tests/runtime/backtest/test_no_lookahead.py). It
  also records, for every event it is handed, now - (ts_exch + feed latency): >= 0 always.

bindings.probe_binding(name) generates their cached loop entry point (see loop.py).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.book.orderbook import best_ask, best_bid
from tickpath.runtime.trading.records import (
    INTENT_CANCEL, INTENT_NEW, RESP_ACCEPTED, RESP_CANCEL_REJECT, RESP_CANCELED,
    RESP_EXECUTED, RESP_REJECTED, SIDE_BUY, SIDE_SELL, TIF_DAY, TIF_IOC,
)

# params slots
P_LOC, P_QTY, P_ON_EVENTS, P_FEED_LAT_MIN_NS = range(4)
# state slots: per side s (0 bid, 1 ask) at S_SIDE0 + s * 4 + (UREF, PX, STATE, OPEN)
S_NEXT_UREF, S_PEEK_PX, S_MIN_SLACK = 0, 1, 2
S_SIDE0 = 4
Q_UREF, Q_PX, Q_STATE, Q_OPEN = range(4)
NONE, PENDING_NEW, LIVE, PENDING_CANCEL = range(4)


class StratCtx(NamedTuple):
    params: np.ndarray   # int64[8]
    st: np.ndarray       # int64[16]


def new_ctx(locate: int, qty: int, on_events: bool = False, feed_latency_min_ns: int = 0) -> StratCtx:
    p = np.zeros(8, dtype=np.int64)
    p[P_LOC], p[P_QTY], p[P_ON_EVENTS], p[P_FEED_LAT_MIN_NS] = locate, qty, int(on_events), feed_latency_min_ns
    st = np.zeros(16, dtype=np.int64)
    st[S_NEXT_UREF] = 1
    st[S_MIN_SLACK] = 1 << 62
    return StratCtx(p, st)


@njit(nogil=True, cache=True, _nrt=False)
def _new(outbox, k, uref, loc, side, qty, price, tif, now_ns):
    if k >= outbox.shape[0]:
        return k + 1     # the loop counts the overflow
    it = outbox[k]
    it.kind = INTENT_NEW
    it.uref = uref
    it.locate = loc
    it.side = side
    it.qty = qty
    it.price = price
    it.tif = tif
    it.decision_ns = now_ns
    return k + 1


@njit(nogil=True, cache=True, _nrt=False)
def _cancel(outbox, k, uref, now_ns):
    if k >= outbox.shape[0]:
        return k + 1
    it = outbox[k]
    it.kind = INTENT_CANCEL
    it.uref = uref
    it.qty = 0
    it.decision_ns = now_ns
    return k + 1


# ---------------------------------------------------------------- touch

@njit(nogil=True, cache=True, _nrt=False)
def _touch_act(sctx, pipe, now_ns, outbox):
    p, st = sctx.params, sctx.st
    loc = p[P_LOC]
    k = 0
    for s in range(2):
        px, sz = best_bid(pipe.books, loc) if s == 0 else best_ask(pipe.books, loc)
        b = S_SIDE0 + s * 4
        state = st[b + Q_STATE]
        if state == NONE and sz > 0 and px > 0:
            uref = st[S_NEXT_UREF]
            st[S_NEXT_UREF] = uref + 1
            k = _new(outbox, k, uref, loc, SIDE_BUY if s == 0 else SIDE_SELL, p[P_QTY], px,
                     TIF_DAY, now_ns)
            st[b + Q_UREF] = uref
            st[b + Q_PX] = px
            st[b + Q_STATE] = PENDING_NEW
            st[b + Q_OPEN] = p[P_QTY]
        elif state == LIVE and px != st[b + Q_PX]:
            k = _cancel(outbox, k, st[b + Q_UREF], now_ns)
            st[b + Q_STATE] = PENDING_CANCEL
    return k


@njit(nogil=True, cache=True, _nrt=False)
def touch_on_events(sctx, pipe, events, n, now_ns, outbox):
    if sctx.params[P_ON_EVENTS] == 0:
        return 0
    return _touch_act(sctx, pipe, now_ns, outbox)


@njit(nogil=True, cache=True, _nrt=False)
def touch_on_timer(sctx, pipe, now_ns, outbox):
    return _touch_act(sctx, pipe, now_ns, outbox)


@njit(nogil=True, cache=True, _nrt=False)
def touch_on_responses(sctx, responses, n, now_ns, outbox):
    st = sctx.st
    for i in range(n):
        r = responses[i]
        for s in range(2):
            b = S_SIDE0 + s * 4
            if st[b + Q_STATE] == NONE or st[b + Q_UREF] != r.uref:
                continue
            if r.kind == RESP_ACCEPTED and st[b + Q_STATE] == PENDING_NEW:
                st[b + Q_STATE] = LIVE
            elif r.kind == RESP_EXECUTED:
                st[b + Q_OPEN] -= r.qty
                if st[b + Q_OPEN] <= 0:
                    st[b + Q_STATE] = NONE
            elif r.kind == RESP_CANCELED:
                st[b + Q_OPEN] -= r.qty
                if st[b + Q_OPEN] <= 0:
                    st[b + Q_STATE] = NONE
            elif r.kind == RESP_REJECTED or r.kind == RESP_CANCEL_REJECT:
                st[b + Q_STATE] = NONE
    return 0


@njit(nogil=True, cache=True, _nrt=False)
def touch_events_passive(sctx):
    """On the timer alone, on_events never acts: the loop may deliver feed events in runs."""
    return sctx.params[P_ON_EVENTS] == 0


@njit(nogil=True, cache=True, _nrt=False)
def keep_uref(sctx, outbox, i):
    return outbox[i].uref     # these strategies never replace


# ---------------------------------------------------------------- peek

@njit(nogil=True, cache=True, _nrt=False)
def peek_on_events(sctx, pipe, events, n, now_ns, outbox):
    p, st = sctx.params, sctx.st
    for i in range(n):   # the strategy never holds an event before its delivery time
        slack = now_ns - (np.int64(events[i].ts_exch) + p[P_FEED_LAT_MIN_NS])
        if slack < st[S_MIN_SLACK]:
            st[S_MIN_SLACK] = slack
    px, sz = best_ask(pipe.books, p[P_LOC])
    k = 0
    if sz > 0:
        if st[S_PEEK_PX] > 0 and px > st[S_PEEK_PX]:
            uref = st[S_NEXT_UREF]
            st[S_NEXT_UREF] = uref + 1
            k = _new(outbox, k, uref, p[P_LOC], SIDE_BUY, p[P_QTY], st[S_PEEK_PX], TIF_IOC, now_ns)
        st[S_PEEK_PX] = px
    return k


@njit(nogil=True, cache=True, _nrt=False)
def peek_on_responses(sctx, responses, n, now_ns, outbox):
    return 0


@njit(nogil=True, cache=True, _nrt=False)
def peek_on_timer(sctx, pipe, now_ns, outbox):
    return 0


@njit(nogil=True, cache=True, _nrt=False)
def peek_events_passive(sctx):
    return False     # it acts on (and inspects) every event it is handed


PROBES = ("touch", "peek")   # bound by bindings.probe_binding(name)
