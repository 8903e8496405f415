"""What a strategy may call: the order-intent functions (new, cancel, replace, cancel-all for
a locate) and read-only views of its own orders and positions. Each intent function writes one
INTENT record into the preallocated `tctx.intents` buffer and returns True, or False when the
buffer is full (counted); nothing is sent from here — the step passes each intent through the
risk gate and the order manager after the strategy returns. The intent carries the triggering
event (seq, receive time) and the decision time, for tick-to-trade and the audit log.

Prices are Price(4) integers (4 implied decimals), quantities shares, sides records.SIDE_*.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.orders import is_open, order_slot


@njit(nogil=True, inline="always")
def _claim(tctx, kind, now_ns):
    k = tctx.st[T.S_N_INTENTS]
    if k >= tctx.intents.shape[0]:
        tctx.counters[T.C_INTENTS_DROPPED] += 1
        return np.int64(-1)
    tctx.st[T.S_N_INTENTS] = k + 1
    tctx.counters[T.C_INTENTS] += 1
    it = tctx.intents[k]
    it.kind = kind
    it.trigger_seq = tctx.st[T.S_TRIG_SEQ]
    it.trigger_recv_ns = tctx.st[T.S_TRIG_RECV_NS]
    it.decision_ns = now_ns
    it.uref = 0
    it.qty = 0
    it.price = 0
    it.locate = 0
    it.side = 0
    it.tif = 0
    return k


@njit(nogil=True, inline="always")
def order_new(tctx, loc, side, qty, price, tif, now_ns):
    """Ask for a new order (tif records.TIF_DAY / TIF_IOC)."""
    k = _claim(tctx, R.INTENT_NEW, now_ns)
    if k < 0:
        return False
    it = tctx.intents[k]
    it.locate = loc
    it.side = side
    it.qty = qty
    it.price = price
    it.tif = tif
    return True


@njit(nogil=True, inline="always")
def order_cancel(tctx, uref, qty, now_ns):
    """Ask to cancel order `uref` down to `qty` open shares (0: all of it)."""
    k = _claim(tctx, R.INTENT_CANCEL, now_ns)
    if k < 0:
        return False
    it = tctx.intents[k]
    it.uref = uref
    it.qty = qty
    return True


@njit(nogil=True, inline="always")
def order_replace(tctx, uref, qty, price, now_ns):
    """Ask to replace order `uref` by `qty` open shares at `price` (loses time priority)."""
    k = _claim(tctx, R.INTENT_REPLACE, now_ns)
    if k < 0:
        return False
    it = tctx.intents[k]
    it.uref = uref
    it.qty = qty
    it.price = price
    j = order_slot(tctx, uref)
    if j >= 0:
        it.locate = tctx.orders[j].locate
        it.tif = tctx.orders[j].tif
    return True


@njit(nogil=True, inline="always")
def cancel_all(tctx, loc, now_ns):
    """Ask to cancel every open order of locate `loc` (records.ALL_LOCATES: of every locate)."""
    k = _claim(tctx, R.INTENT_CANCEL_ALL, now_ns)
    if k < 0:
        return False
    tctx.intents[k].locate = loc
    return True


# -- reads ------------------------------------------------------------------------------------
@njit(nogil=True, inline="always")
def position(tctx, loc):
    return tctx.loc[loc, T.L_POS]


@njit(nogil=True, inline="always")
def open_orders(tctx, loc):
    return tctx.loc[loc, T.L_OPEN_ORDERS]


@njit(nogil=True, inline="always")
def last_uref(tctx, loc, side):
    """The uref of the last order on `side` sent in `loc` (a new order or a replacement); 0 if none."""
    return tctx.loc[loc, T.L_LAST_UREF_B if side == R.SIDE_BUY else T.L_LAST_UREF_S]


@njit(nogil=True, inline="always")
def order_state(tctx, uref):
    """The state (layout.* constants) of order `uref`; FREE when unknown."""
    j = order_slot(tctx, uref)
    return np.uint8(T.FREE) if j < 0 else tctx.orders[j].state


@njit(nogil=True, inline="always")
def order_is_open(tctx, uref):
    j = order_slot(tctx, uref)
    return j >= 0 and is_open(tctx.orders[j].state)


@njit(nogil=True, inline="always")
def order_leaves(tctx, uref):
    j = order_slot(tctx, uref)
    return np.int64(0) if j < 0 else np.int64(tctx.orders[j].leaves)


@njit(nogil=True, inline="always")
def order_price(tctx, uref):
    j = order_slot(tctx, uref)
    return np.int64(0) if j < 0 else tctx.orders[j].price


@njit(nogil=True, inline="always")
def kill_switch_on(tctx):
    return tctx.kill[0] != 0
