"""The order manager: a preallocated own-order table keyed by UserRefNum and the state machine
every venue response drives (after the architecture guide the project follows):

    New -> PendingNew -> Live -> PartiallyFilled -> Filled
    Live/PartiallyFilled -> PendingCancel -> Cancelled      (or back, on a cancel reject)
    Live/PartiallyFilled -> PendingReplace -> Replaced      (its replacement: PendingNew -> Live)
    PendingNew -> Rejected                                  (a rejected replacement restores the original)

A response no transition allows is counted (C_IMPOSSIBLE) and leaves the order unchanged —
except that an execution is always applied to position (a fill is never lost). Legal races
(an execution or accept while a cancel is in flight, a cancel reject after the order filled)
are handled, not counted as impossible. The per-locate worst case — open orders, open buy and
sell shares (leaves of every non-terminal order; a replace in flight counts both the original
and the replacement), in-flight shares — is kept up to date on every transition, so the risk
gate reads it in O(1). Layout in layout.py; all functions inline into the step.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.positions import pos_fill

_B = R.SIDE_BUY


@njit(nogil=True, inline="always")
def order_slot(tctx, uref):
    """Index of the order `uref` in the table, or -1 when it is not (or no longer) there."""
    orders = tctx.orders
    j = np.int64(uref) & (orders.shape[0] - 1)
    if uref == 0 or orders[j].uref != uref or orders[j].state == T.FREE:
        return np.int64(-1)
    return j


@njit(nogil=True, inline="always")
def is_open(state):
    return (state == T.PENDING_NEW or state == T.LIVE or state == T.PARTIAL
            or state == T.PENDING_CANCEL or state == T.PENDING_REPLACE or state == T.NEW)


@njit(nogil=True, cache=True, _nrt=False)
def _add_open(tctx, j, shares):
    """Count `shares` more (or fewer, negative) as worst-case open for order j's side."""
    o = tctx.orders[j]
    col = T.L_OPEN_BUY if o.side == _B else T.L_OPEN_SELL
    tctx.loc[o.locate, col] += shares
    tctx.st[T.S_TOTAL_OPEN] += shares


@njit(nogil=True, cache=True, _nrt=False)
def _set_leaves(tctx, j, leaves):
    o = tctx.orders[j]
    d = np.int64(leaves) - np.int64(o.leaves)
    _add_open(tctx, j, d)
    if o.acked == 0:
        tctx.loc[o.locate, T.L_INFLIGHT] += d
    o.leaves = leaves


@njit(nogil=True, cache=True, _nrt=False)
def _ack(tctx, j):
    """The venue answered for order j: its shares are no longer in flight."""
    o = tctx.orders[j]
    if o.acked == 0:
        tctx.loc[o.locate, T.L_INFLIGHT] -= o.leaves
        o.acked = 1


@njit(nogil=True, cache=True, _nrt=False)
def _close(tctx, j, state):
    """Order j reaches a terminal state: nothing of it is open any more."""
    o = tctx.orders[j]
    _set_leaves(tctx, j, 0)
    tctx.loc[o.locate, T.L_OPEN_ORDERS] -= 1
    tctx.st[T.S_N_OPEN] -= 1
    o.state = state


@njit(nogil=True, cache=True, _nrt=False)
def om_new(tctx, loc, side, qty, price, tif, trigger_recv_ns):
    """Take the next free uref for a new order (state PendingNew: the caller sends it now).
    Returns the table index, or -1 when no slot is free near the next uref."""
    orders = tctx.orders
    mask = orders.shape[0] - 1
    uref = tctx.st[T.S_NEXT_UREF]
    for _ in range(64):   # skip urefs whose slot still holds an open order (urefs need only rise)
        if uref > 0xFFFFFFFF:
            return np.int64(-1)
        j = uref & mask
        if not is_open(orders[j].state):
            break
        uref += 1
    else:
        return np.int64(-1)
    tctx.st[T.S_NEXT_UREF] = uref + 1
    o = orders[j]
    o.uref = uref
    o.locate = loc
    o.side = side
    o.qty = qty
    o.leaves = 0
    o.chain_exec = 0
    o.filled = 0
    o.other = 0
    o.price = price
    o.tif = tif
    o.prev = T.NEW
    o.state = T.PENDING_NEW
    o.trigger_recv_ns = trigger_recv_ns
    o.sent_ns = 0
    o.acked = 0
    _set_leaves(tctx, j, qty)
    tctx.loc[loc, T.L_OPEN_ORDERS] += 1
    tctx.st[T.S_N_OPEN] += 1
    return j


@njit(nogil=True, cache=True, _nrt=False)
def om_cancel(tctx, j):
    """A cancel of order j is being sent: Live/PartiallyFilled -> PendingCancel."""
    o = tctx.orders[j]
    o.prev = o.state
    o.state = T.PENDING_CANCEL


@njit(nogil=True, cache=True, _nrt=False)
def om_replace(tctx, j, qty, price, tif, trigger_recv_ns):
    """A replace of order j by `qty` open shares at `price` is being sent: j -> PendingReplace,
    the replacement gets a new uref in PendingNew. Returns its index, or -1 (table full)."""
    o = tctx.orders[j]
    k = om_new(tctx, np.int64(o.locate), o.side, qty, price, tif, trigger_recv_ns)
    if k < 0:
        return k
    n = tctx.orders[k]
    n.other = o.uref
    n.chain_exec = o.chain_exec
    o.other = n.uref
    o.prev = o.state
    o.state = T.PENDING_REPLACE
    return k


@njit(nogil=True, cache=True, _nrt=False)
def _reopen(tctx, j):
    """A cancel or replace of j was refused: back to the state it had."""
    o = tctx.orders[j]
    if o.state == T.PENDING_CANCEL or o.state == T.PENDING_REPLACE:
        o.state = o.prev if o.prev == T.LIVE or o.prev == T.PARTIAL else T.LIVE


@njit(nogil=True, cache=True, _nrt=False)
def _refused(tctx, j):
    """Order j, never live, never will be: Rejected. A refused replacement's original stands."""
    o = tctx.orders[j]
    if o.other != 0:
        k = order_slot(tctx, o.other)
        if k >= 0 and tctx.orders[k].state == T.PENDING_REPLACE:
            _reopen(tctx, k)
    _close(tctx, j, T.REJECTED)


@njit(nogil=True, cache=True, _nrt=False)
def om_withdraw(tctx, j):
    """Order j passed the gate but was not sent (the kill switch tripped before the wire): it
    closes as if the venue had refused it, also when a kill cancel of it was already queued."""
    o = tctx.orders[j]
    if o.state == T.PENDING_NEW or (o.state == T.PENDING_CANCEL and o.prev == T.PENDING_NEW):
        _refused(tctx, j)


@njit(nogil=True, cache=True, _nrt=False)
def _replacement_dead(tctx, orig):
    """`orig` died (filled or cancelled) with its replace still unanswered: OUCH ignores a
    replace whose original is dead, silently, so no answer will ever come for the
    replacement — it never lived; close it (else it stays open here forever)."""
    k = order_slot(tctx, orig.other)
    if k < 0:
        return
    n = tctx.orders[k]
    unanswered = n.state == T.PENDING_NEW or (n.state == T.PENDING_CANCEL and n.prev == T.PENDING_NEW)
    if n.other == orig.uref and unanswered:
        _close(tctx, k, T.CANCELLED)
        tctx.counters[T.C_REPLACE_IGNORED] += 1


@njit(nogil=True, cache=True, _nrt=False)
def _impossible(tctx):
    tctx.counters[T.C_IMPOSSIBLE] += 1


@njit(nogil=True, cache=True, _nrt=False)
def om_on_response(tctx, r):
    """Apply one venue response to the order table and positions. Returns the index of the
    order it concerned, or -1 (unknown uref / not an order response)."""
    c = tctx.counters
    kind = r.kind
    if kind == R.RESP_SYSTEM:
        c[T.C_SYSTEM_EVENTS] += 1
        return np.int64(-1)
    if kind == R.RESP_PRIORITY:
        return order_slot(tctx, r.uref)
    j = order_slot(tctx, r.uref)
    if j < 0:
        c[T.C_UNKNOWN_UREF] += 1
        return j
    o = tctx.orders[j]
    st = o.state
    if kind == R.RESP_ACCEPTED:
        c[T.C_ACCEPTED] += 1
        if st == T.PENDING_NEW:
            _ack(tctx, j)
            if r.qty < o.leaves:   # the venue took fewer shares than asked
                _set_leaves(tctx, j, r.qty)
            if r.state == ord("D"):
                _close(tctx, j, T.CANCELLED)
            else:
                o.state = T.LIVE
        elif st == T.PENDING_CANCEL and o.prev == T.PENDING_NEW:
            # the accept raced our cancel: it is live at the venue, the cancel still pending
            _ack(tctx, j)
            o.prev = T.LIVE
        else:
            _impossible(tctx)
    elif kind == R.RESP_EXECUTED:
        c[T.C_EXECUTIONS] += 1
        c[T.C_FILLED_SHARES] += r.qty
        pos_fill(tctx, np.int64(o.locate), o.side, np.int64(r.qty), np.int64(r.price))
        _ack(tctx, j)
        if not is_open(st) or r.qty > o.leaves:
            _impossible(tctx)   # applied to position all the same: a fill is never lost
            if is_open(st):
                o.filled += r.qty
                o.chain_exec += r.qty
                _close(tctx, j, T.FILLED)
            return j
        if st == T.PENDING_NEW:   # no accept seen first (a venue may skip it): it is live
            o.state = T.LIVE
        o.filled += r.qty
        o.chain_exec += r.qty
        _set_leaves(tctx, j, o.leaves - r.qty)
        if o.leaves == 0:
            _close(tctx, j, T.FILLED)
            if st == T.PENDING_REPLACE:
                _replacement_dead(tctx, o)
        elif o.state == T.LIVE:
            o.state = T.PARTIAL
        elif o.state == T.PENDING_CANCEL or o.state == T.PENDING_REPLACE:
            if o.prev == T.LIVE:
                o.prev = T.PARTIAL
    elif kind == R.RESP_CANCELED:
        c[T.C_CANCELLED] += 1
        if not is_open(st) or st == T.PENDING_NEW and o.prev != T.NEW:
            _impossible(tctx)
            return j
        _ack(tctx, j)
        dec = min(np.int64(r.qty), np.int64(o.leaves))
        if dec != r.qty:
            _impossible(tctx)
        _set_leaves(tctx, j, o.leaves - dec)
        if o.leaves == 0:
            _close(tctx, j, T.CANCELLED)
            if st == T.PENDING_REPLACE:
                _replacement_dead(tctx, o)
        elif st == T.PENDING_CANCEL:
            o.state = T.PARTIAL if o.filled > 0 else T.LIVE   # a reduce: done, still open
        elif st == T.PENDING_NEW:
            o.state = T.LIVE
    elif kind == R.RESP_REJECTED:
        c[T.C_VENUE_REJECTS] += 1
        if st == T.PENDING_NEW:
            _refused(tctx, j)
        elif st == T.PENDING_CANCEL and o.prev == T.PENDING_NEW:
            _close(tctx, j, T.REJECTED)   # rejected while our cancel was in flight
        elif not is_open(st) and o.other != 0:
            c[T.C_LATE_RESPONSES] += 1    # a venue that does answer a dead original's replace
        else:
            _impossible(tctx)
    elif kind == R.RESP_CANCEL_REJECT:
        c[T.C_CANCEL_REJECTS] += 1
        if st == T.PENDING_CANCEL:
            _reopen(tctx, j)
        elif not is_open(st):
            c[T.C_LATE_RESPONSES] += 1   # the order filled or died before our cancel arrived
        else:
            _impossible(tctx)
    elif kind == R.RESP_CANCEL_PENDING:
        if st != T.PENDING_CANCEL:
            c[T.C_LATE_RESPONSES] += 1
    elif kind == R.RESP_REPLACED:
        c[T.C_REPLACED] += 1
        k = order_slot(tctx, r.orig_uref)
        # the replacement is PendingNew, or PendingCancel when we cancelled it before the U came
        racing = st == T.PENDING_CANCEL and o.prev == T.PENDING_NEW
        if (st != T.PENDING_NEW and not racing) or o.other != r.orig_uref or k < 0:
            _impossible(tctx)
            return j
        _ack(tctx, j)
        orig = tctx.orders[k]
        if is_open(orig.state):
            o.chain_exec = orig.chain_exec
            o.filled = orig.filled
            _close(tctx, k, T.REPLACED)
        _set_leaves(tctx, j, r.qty)
        o.price = r.price
        if r.state == ord("D") or r.qty == 0:
            _close(tctx, j, T.CANCELLED)
        elif racing:
            o.prev = T.LIVE      # live at the venue; our cancel is still to be answered
        else:
            o.state = T.LIVE
    elif kind == R.RESP_MODIFIED:
        c[T.C_MODIFIED] += 1
        if is_open(st) and r.qty <= o.leaves:
            _ack(tctx, j)
            _set_leaves(tctx, j, r.qty)
            if o.leaves == 0:
                _close(tctx, j, T.CANCELLED)
        else:
            _impossible(tctx)
    elif kind == R.RESP_BROKEN:
        c[T.C_BROKEN_TRADES] += 1   # positions are not unwound: reported for the operator
    else:
        c[T.C_UNKNOWN_KIND] += 1
        return np.int64(-1)
    return j


@njit(nogil=True, cache=True, _nrt=False)
def on_session_lost(tctx):
    """Cancel-on-disconnect: a cancel that was in flight may never have arrived, so every
    PendingCancel order goes back to its previous state (the kill switch re-sends its cancel
    once the session is back)."""
    orders = tctx.orders
    for j in range(orders.shape[0]):
        o = orders[j]
        if o.state == T.PENDING_CANCEL and o.prev != T.PENDING_NEW:
            o.state = o.prev if o.prev == T.LIVE or o.prev == T.PARTIAL else T.LIVE
