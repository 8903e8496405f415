"""The transport-independent trading step: the seam the live loop (OUCH) and the backtest
(a simulated exchange) share. Two calls, both jitted and allocation-free:

    trade_on_events(tctx, strat, pipe, events, n, now_ns) -> n_out
        after process_events applied events[0:n] to books and indicators: keep the locate ->
        symbol table ('R' messages), mark positions to the mid, run the breakers, call the
        strategy's on_book once per touched locate (the last event of that locate is the
        trigger) and on_timer when due, pass every intent through the risk gate and the order
        manager, and write what may go into tctx.outbox[0:n_out] (INTENT records, uref set;
        a REPLACE entry carries the NEW uref, its original is `replace_orig(tctx, i)`, and the
        chain-total quantity OUCH wants). A tripped kill switch writes cancels of every open
        order instead. Rejected intents are counted by reason and never reach the outbox.
    trade_on_responses(tctx, strat, responses, n, now_ns) -> applied
        each response (records.RESPONSE_DTYPE) drives the order manager and positions, then the
        strategy's on_order; breakers (reject rate, loss, session lost, sequence gap) trip the
        kill switch. Intents written in on_order wait for the next trade_on_events (which has
        the books the risk gate needs).

`strat` is the strategy's state (context.py says why it is not inside tctx).
Right before sending outbox entry i the transport asks `withheld(tctx, i, now_ns)` (True: the
kill switch tripped since the gate passed it; it stays home). After sending it calls
`note_sent(tctx, i, sent_ns)` (tick-to-trade into tctx.t2t) or `note_send_failed(tctx, i)`
(counted; the kill switch trips: an order in an unknown state). The strategy's functions are
bound by name in a generated module (strategy.py), which inlines `events_impl` /
`responses_impl` into its cached entry points.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.engine import latency
from tickpath.runtime.book.orderbook import book_ok as _book_ok
from tickpath.runtime.book.orderbook import mid_price
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading import risk as K
from tickpath.runtime.trading.ref import ref
from tickpath.runtime.trading.audit.writer import (
    audit_write_decision,
    audit_write_response_record,
    audit_write_risk,
    audit_write_sent,
)
from tickpath.runtime.trading.killswitch import kill_active, kill_trip
from tickpath.runtime.trading.orders import (
    is_open,
    om_cancel,
    om_new,
    om_on_response,
    om_replace,
    om_withdraw,
    on_session_lost,
    order_slot,
)
from tickpath.runtime.trading.positions import net_pnl, pos_mark

_R = ord("R")


@njit(nogil=True, inline="always")
def trip(tctx, reason, now_ns):
    if not kill_active(tctx.kill):
        tctx.counters[T.C_KILL_TRIPS] += 1
        tctx.st[T.S_KILL_DONE] = 0
    kill_trip(tctx.kill, reason, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def _audit_failed(tctx, now_ns):
    """The audit ring refused a record: trading without an audit trail is not allowed."""
    tctx.counters[T.C_AUDIT_FULL] += 1
    trip(tctx, T.K_AUDIT, now_ns)


@njit(nogil=True, inline="always")
def _audit_verdict(tctx, kind, uref, loc, side, qty, price, tif, seq, recv_ns, dec_ns, reason, now_ns):
    """DECISION + RISK records of one intent (reason < 0: passed); no call when the log is off."""
    if tctx.st[T.S_AUDIT_ON] != 0:
        _audit_verdict_write(tctx, kind, uref, loc, side, qty, price, tif, seq, recv_ns, dec_ns, reason,
                             now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def _audit_verdict_write(tctx, kind, uref, loc, side, qty, price, tif, seq, recv_ns, dec_ns, reason, now_ns):
    aw = tctx.audit
    ok = audit_write_decision(aw, dec_ns, recv_ns, seq, kind, uref, loc, side, qty, price, tif)
    ok2 = audit_write_risk(aw, now_ns, kind, uref, loc, reason < 0, max(reason, 0))
    if not (ok and ok2):
        _audit_failed(tctx, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def _out(tctx, kind, uref, qty, price, loc, side, tif, trig_seq, trig_recv_ns, decision_ns):
    i = tctx.st[T.S_N_OUT]
    o = tctx.outbox[i]
    o.kind = kind
    o.uref = uref
    o.qty = qty
    o.price = price
    o.locate = loc
    o.side = side
    o.tif = tif
    o.trigger_seq = trig_seq
    o.trigger_recv_ns = trig_recv_ns
    o.decision_ns = decision_ns
    tctx.st[T.S_N_OUT] = i + 1


@njit(nogil=True, inline="always")
def _outbox_full(tctx):
    return tctx.st[T.S_N_OUT] >= tctx.outbox.shape[0]


@njit(nogil=True, cache=True, _nrt=False)
def _reject(tctx, reason, now_ns):
    c = tctx.counters
    c[reason] += 1
    c[T.C_RISK_REJECTS] += 1
    if K.counts_as_breach(reason):
        tctx.st[T.S_BREACHES] += 1
        mb = tctx.risk_i[K.RI_MAX_BREACHES]
        if mb > 0 and tctx.st[T.S_BREACHES] > mb:
            trip(tctx, T.K_BREACHES, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def _send_cancel(tctx, j, qty, seq, recv_ns, dec_ns, now_ns):
    o = tctx.orders[j]
    _audit_verdict(tctx, R.INTENT_CANCEL, o.uref, o.locate, o.side, qty, o.price, o.tif, seq, recv_ns,
                   dec_ns, -1, now_ns)
    _out(tctx, R.INTENT_CANCEL, o.uref, qty, o.price, o.locate, o.side, o.tif, seq, recv_ns, dec_ns)
    om_cancel(tctx, j)
    K.note_msg(tctx, now_ns)
    tctx.counters[T.C_CANCEL_SENT] += 1


@njit(nogil=True, inline="always")
def _cancellable(o):
    return o.state == T.LIVE or o.state == T.PARTIAL or o.state == T.PENDING_NEW


@njit(nogil=True, cache=True, _nrt=False)
def _cancel_all(tctx, loc, seq, recv_ns, dec_ns, now_ns):
    """Cancels of every open order of `loc` (ALL_LOCATES: of all). Returns False if the outbox filled."""
    orders = tctx.orders
    if tctx.st[T.S_N_OPEN] == 0:
        return True
    for j in range(orders.shape[0]):
        o = orders[j]
        if _cancellable(o) and (loc == R.ALL_LOCATES or o.locate == loc):
            if _outbox_full(tctx):
                return False
            _send_cancel(tctx, j, 0, seq, recv_ns, dec_ns, now_ns)
    return True


@njit(nogil=True, cache=True, _nrt=False)
def _one_intent(tctx, books, it, now_ns):
    kind = it.kind
    if kind == R.INTENT_NEW:
        loc = np.int64(it.locate)
        ok = True
        if loc >= 0 and loc < tctx.loc.shape[0]:
            ok = _book_ok(books, loc)
        r = K.check_new(tctx, books, ok, loc, it.side, np.int64(it.qty), it.price, now_ns)
        if r < 0 and _outbox_full(tctx):
            r = T.R_OUTBOX_FULL
        if r < 0:
            j = om_new(tctx, loc, it.side, it.qty, it.price, it.tif, it.trigger_recv_ns)
            if j < 0:
                r = T.R_TABLE_FULL
            else:
                o = tctx.orders[j]
                _audit_verdict(tctx, R.INTENT_NEW, o.uref, it.locate, it.side, it.qty, it.price, it.tif,
                               it.trigger_seq, it.trigger_recv_ns, it.decision_ns, -1, now_ns)
                _out(tctx, R.INTENT_NEW, o.uref, it.qty, it.price, it.locate, it.side, it.tif,
                     it.trigger_seq, it.trigger_recv_ns, it.decision_ns)
                K.note_new(tctx, loc, it.side, np.int64(it.qty), it.price, now_ns)
                tctx.loc[loc, T.L_LAST_UREF_B if it.side == R.SIDE_BUY else T.L_LAST_UREF_S] = o.uref
                tctx.loc[loc, T.L_LAST_NEW_NS] = it.decision_ns
                tctx.counters[T.C_NEW_SENT] += 1
        if r >= 0:
            # a refused order still consumes a uref (never sent), so the audit log pairs its records
            uref = tctx.st[T.S_NEXT_UREF]
            tctx.st[T.S_NEXT_UREF] = uref + 1
            _audit_verdict(tctx, R.INTENT_NEW, uref, it.locate, it.side, it.qty, it.price, it.tif,
                           it.trigger_seq, it.trigger_recv_ns, it.decision_ns, r, now_ns)
            _reject(tctx, r, now_ns)
    elif kind == R.INTENT_CANCEL:
        j = order_slot(tctx, it.uref)
        if tctx.st[T.S_SESSION_DOWN] != 0:
            _reject(tctx, T.R_SESSION_DOWN, now_ns)
        elif j < 0 or not _cancellable(tctx.orders[j]) or (it.qty > 0 and it.qty >= tctx.orders[j].leaves):
            _audit_verdict(tctx, R.INTENT_CANCEL, it.uref, 0, 0, it.qty, 0, 0, it.trigger_seq,
                           it.trigger_recv_ns, it.decision_ns, T.R_BAD_INTENT, now_ns)
            _reject(tctx, T.R_BAD_INTENT, now_ns)
        elif _outbox_full(tctx):
            _reject(tctx, T.R_OUTBOX_FULL, now_ns)
        else:   # cancels lower risk: never throttled or refused by the gate
            _send_cancel(tctx, j, it.qty, it.trigger_seq, it.trigger_recv_ns, it.decision_ns, now_ns)
    elif kind == R.INTENT_REPLACE:
        j = order_slot(tctx, it.uref)
        if j < 0 or (tctx.orders[j].state != T.LIVE and tctx.orders[j].state != T.PARTIAL):
            r = T.R_BAD_INTENT if not kill_active(tctx.kill) else T.R_KILL
        else:
            o = tctx.orders[j]
            loc = np.int64(o.locate)
            r = K.check_replace(tctx, books, _book_ok(books, loc), loc, o.side, np.int64(it.qty),
                                it.price, now_ns)
            if r < 0 and _outbox_full(tctx):
                r = T.R_OUTBOX_FULL
            if r < 0:
                k = om_replace(tctx, j, it.qty, it.price, o.tif, it.trigger_recv_ns)
                if k < 0:
                    r = T.R_TABLE_FULL
                else:
                    n = tctx.orders[k]
                    _audit_verdict(tctx, R.INTENT_REPLACE, n.uref, o.locate, o.side, it.qty, it.price,
                                   o.tif, it.trigger_seq, it.trigger_recv_ns, it.decision_ns, -1, now_ns)
                    _out(tctx, R.INTENT_REPLACE, n.uref, n.chain_exec + it.qty, it.price, o.locate,
                         o.side, o.tif, it.trigger_seq, it.trigger_recv_ns, it.decision_ns)
                    K.note_replace(tctx, now_ns)
                    tctx.loc[loc, T.L_LAST_UREF_B if o.side == R.SIDE_BUY else T.L_LAST_UREF_S] = n.uref
                    tctx.counters[T.C_REPLACE_SENT] += 1
        if r >= 0:
            _audit_verdict(tctx, R.INTENT_REPLACE, it.uref, it.locate, 0, it.qty, it.price, it.tif,
                           it.trigger_seq, it.trigger_recv_ns, it.decision_ns, r, now_ns)
            _reject(tctx, r, now_ns)
    elif kind == R.INTENT_CANCEL_ALL:
        if tctx.st[T.S_SESSION_DOWN] != 0:
            _reject(tctx, T.R_SESSION_DOWN, now_ns)
        elif not _cancel_all(tctx, np.int64(it.locate), it.trigger_seq, it.trigger_recv_ns,
                             it.decision_ns, now_ns):
            _reject(tctx, T.R_OUTBOX_FULL, now_ns)
    else:
        _reject(tctx, T.R_BAD_INTENT, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def drain_intents(tctx, books, now_ns):
    """Risk gate + order manager for every intent the strategy wrote; resets the buffer."""
    n = tctx.st[T.S_N_INTENTS]
    for k in range(n):
        _one_intent(tctx, books, tctx.intents[k], now_ns)
    tctx.st[T.S_N_INTENTS] = 0


@njit(nogil=True, cache=True, _nrt=False)
def kill_cancels(tctx, now_ns):
    """While the kill switch is on: a cancel for every open order not already being cancelled
    (once per change: a response or a reconnect makes it look again)."""
    if tctx.st[T.S_KILL_DONE] != 0 or tctx.st[T.S_SESSION_DOWN] != 0:
        return
    before = tctx.st[T.S_N_OUT]
    if _cancel_all(tctx, R.ALL_LOCATES, 0, 0, now_ns, now_ns):
        tctx.st[T.S_KILL_DONE] = 1
    tctx.counters[T.C_KILL_CANCELS] += tctx.st[T.S_N_OUT] - before


@njit(nogil=True, cache=True, _nrt=False)
def _breakers_md(tctx, now_ns):
    stale = tctx.risk_i[K.RI_STALE_NS]
    last = tctx.st[T.S_LAST_MD_NS]
    if stale > 0 and last > 0 and now_ns - last > stale:
        trip(tctx, T.K_STALE, now_ns)
    ml = tctx.risk_f[K.RF_MAX_LOSS]
    if ml > 0 and net_pnl(tctx) < -ml:
        trip(tctx, T.K_LOSS, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def _set_symbol(tctx, loc, sym):
    tctx.symbols[loc] = sym
    rs = tctx.restricted
    for i in range(rs.shape[0]):
        if rs[i] == sym:
            tctx.loc[loc, T.L_RESTRICTED] = 1


@njit(nogil=True, inline="always")
def events_impl(on_book, on_timer, tctx, strat, pipe, events, n, now_ns):
    tctx = ref(tctx)   # callees get pointers, not ~350 words of context each (ref.py says why)
    strat = ref(strat)
    pipe = ref(pipe)
    st = tctx.st
    st[T.S_N_OUT] = 0
    books = pipe.books
    n_loc = tctx.loc.shape[0]
    n = min(n, events.shape[0])
    # which locates this batch touched, and the last event of each (the trigger)
    nt = 0
    for i in range(n):
        ev = events[i]
        loc = np.int64(ev.locate)
        if ev.ts_recv > 0:
            st[T.S_LAST_MD_NS] = ev.ts_recv
        if loc <= 0 or loc >= n_loc:
            continue
        if ev.msg_type == _R:
            _set_symbol(tctx, loc, ev.ref2)
        if tctx.loc[loc, T.L_TOUCHED] == 0:
            tctx.touched[nt] = loc
            nt += 1
        tctx.loc[loc, T.L_TOUCHED] = i + 1
    for t in range(nt):
        loc = tctx.touched[t]
        if tctx.loc[loc, T.L_POS] != 0:
            pos_mark(tctx, loc, mid_price(books, loc))
    _breakers_md(tctx, now_ns)
    if not kill_active(tctx.kill):
        # t = -1: intents written in on_order since the last step; 0..nt-1: on_book per
        # touched locate; nt: on_timer when due. One drain site: it is inlined once.
        tn = tctx.risk_i[K.RI_TIMER_NS]
        for t in range(-1, nt + 1):
            if t >= 0 and t < nt:
                loc = tctx.touched[t]
                ev = events[tctx.loc[loc, T.L_TOUCHED] - 1]
                st[T.S_TRIG_SEQ] = ev.seq
                st[T.S_TRIG_RECV_NS] = ev.ts_recv
                tctx.counters[T.C_BOOK_CALLS] += 1
                on_book(tctx, strat, pipe, loc, now_ns)
            elif t == nt:
                if tn <= 0 or now_ns < st[T.S_NEXT_TIMER_NS]:
                    break
                st[T.S_NEXT_TIMER_NS] = now_ns + tn
                st[T.S_TRIG_SEQ] = 0
                st[T.S_TRIG_RECV_NS] = 0
                tctx.counters[T.C_TIMER_CALLS] += 1
                on_timer(tctx, strat, pipe, now_ns)
            if st[T.S_N_INTENTS] > 0:
                drain_intents(tctx, books, now_ns)
    for t in range(nt):
        tctx.loc[tctx.touched[t], T.L_TOUCHED] = 0
    if kill_active(tctx.kill):
        st[T.S_N_INTENTS] = 0   # nothing the strategy asked for goes out any more
        kill_cancels(tctx, now_ns)
    return st[T.S_N_OUT]


@njit(nogil=True, inline="always")
def responses_impl(on_order, tctx, strat, responses, n, now_ns):
    tctx = ref(tctx)
    strat = ref(strat)
    st = tctx.st
    c = tctx.counters
    n = min(n, responses.shape[0])
    applied = 0
    for i in range(n):
        r = responses[i]
        c[T.C_RESPONSES] += 1
        if st[T.S_AUDIT_ON] != 0:
            jj = order_slot(tctx, r.uref)
            loc = 0 if jj < 0 else tctx.orders[jj].locate
            if not audit_write_response_record(tctx.audit, responses, i, loc):
                _audit_failed(tctx, now_ns)
        if r.kind == R.RESP_SESSION_LOST:
            c[T.C_SESSION_LOST] += 1
            st[T.S_SESSION_DOWN] = 1
            on_session_lost(tctx)
            trip(tctx, T.K_SESSION, now_ns)
            continue
        if r.kind == R.RESP_UNDECODED:
            c[T.C_UNDECODED] += 1   # a message we could not read may have been a fill
            trip(tctx, T.K_UNSURE, now_ns)
            continue
        if r.seq != 0:
            last = st[T.S_LAST_RESP_SEQ]
            if r.seq <= last:
                c[T.C_DUP_RESPONSE] += 1   # a replayed message already applied: exactly once
                continue
            if last != 0 and r.seq != last + 1:
                c[T.C_SEQ_GAP] += 1
                trip(tctx, T.K_UNSURE, now_ns)   # responses missing: our order state is unsure
            st[T.S_LAST_RESP_SEQ] = r.seq
        j = om_on_response(tctx, r)
        applied += 1
        if r.kind == R.RESP_REJECTED:
            K.rate_note(tctx, K.RATE_VENUE_REJECTS, now_ns)
            lim = tctx.risk_i[K.RI_MAX_VENUE_REJECTS_PER_S]
            if lim > 0 and K.rate_full(tctx, K.RATE_VENUE_REJECTS, lim + 1, 1_000_000_000, now_ns):
                trip(tctx, T.K_REJECT_RATE, now_ns)
        on_order(tctx, strat, r, j, now_ns)
    if applied > 0:
        st[T.S_KILL_DONE] = 0
        ml = tctx.risk_f[K.RF_MAX_LOSS]
        if ml > 0 and net_pnl(tctx) < -ml:
            trip(tctx, T.K_LOSS, now_ns)
    return applied


# -- transport side -----------------------------------------------------------------------------
@njit(nogil=True, inline="always")
def instrument_run_end(events, lo, hi):
    """End of the run of consecutive events of events[lo]'s instrument in events[lo:hi]: the
    live loop steps once per such run, so an update is answered once its own messages are
    applied, not after the rest of its packet (a sweep's executions still arrive as one)."""
    loc = events[lo].locate
    j = lo + 1
    while j < hi and events[j].locate == loc:
        j += 1
    return j


@njit(nogil=True, cache=True, _nrt=False)
def replace_orig(tctx, i):
    """The original uref of the REPLACE outbox entry i (its `uref` is the replacement's)."""
    j = order_slot(tctx, tctx.outbox[i].uref)
    return np.int64(0) if j < 0 else np.int64(tctx.orders[j].other)


@njit(nogil=True, inline="always")
def note_sent_inline(tctx, i, sent_ns):
    ob = tctx.outbox[i]
    j = order_slot(tctx, ob.uref)
    orig = 0
    if j >= 0 and (ob.kind == R.INTENT_NEW or ob.kind == R.INTENT_REPLACE):
        tctx.orders[j].sent_ns = sent_ns
        if ob.kind == R.INTENT_REPLACE:
            orig = tctx.orders[j].other
    if tctx.st[T.S_AUDIT_ON] != 0:
        if not audit_write_sent(tctx.audit, sent_ns, ob.trigger_recv_ns, ob.kind, ob.uref, orig,
                                ob.locate, ob.side, ob.qty, ob.price, ob.tif):
            _audit_failed(tctx, sent_ns)
    if ob.trigger_recv_ns > 0 and sent_ns >= ob.trigger_recv_ns:
        tctx.counters[T.C_T2T_RECORDED] += 1
        latency.record(tctx.t2t, sent_ns - ob.trigger_recv_ns)


@njit(nogil=True, inline="always")
def note_send_call_inline(tctx, i, call_ns):
    """Outbox entry i's send() was called at call_ns: tick-to-trade without the syscall (on
    loopback send() also runs the venue's TCP receive, so its return says little of ours)."""
    rv = tctx.outbox[i].trigger_recv_ns
    if rv > 0 and call_ns >= rv:
        latency.record(tctx.t2t_call, call_ns - rv)


@njit(nogil=True, cache=True, _nrt=False)
def note_sent(tctx, i, sent_ns):
    """Outbox entry i left at sent_ns: stamp the order, record tick-to-trade."""
    note_sent_inline(tctx, i, sent_ns)


@njit(nogil=True, inline="always")
def withheld_inline(tctx, i, now_ns):
    """Must outbox entry i stay home? A new or replace order must once the kill switch is on:
    the switch may have tripped after the gate passed it (another process, a breaker later in
    the same step), and after a kill nothing new leaves. A cancel of an order withheld so stays
    home too (the venue never saw that order). The transport asks right before each send."""
    ob = tctx.outbox[i]
    if ob.kind == R.INTENT_CANCEL:
        j = order_slot(tctx, ob.uref)
        if j >= 0 and is_open(tctx.orders[j].state):
            return False
    elif not kill_active(tctx.kill):
        return False
    _withhold(tctx, i, now_ns)
    return True


@njit(nogil=True, cache=True, _nrt=False)
def _withhold(tctx, i, now_ns):
    """Outbox entry i is not sent: its order closes as refused (a replacement's original stands
    and the kill cancels look again), its count moves from sent to withheld, and the audit log
    gets the kill switch's reject for it."""
    ob = tctx.outbox[i]
    c = tctx.counters
    c[T.C_KILL_WITHHELD] += 1
    if ob.kind == R.INTENT_CANCEL:
        c[T.C_CANCEL_SENT] -= 1
        return
    c[T.C_NEW_SENT if ob.kind == R.INTENT_NEW else T.C_REPLACE_SENT] -= 1
    j = order_slot(tctx, ob.uref)
    if j >= 0:
        om_withdraw(tctx, j)
    tctx.st[T.S_KILL_DONE] = 0
    _reject(tctx, T.R_KILL, now_ns)
    if tctx.st[T.S_AUDIT_ON] != 0:
        if not audit_write_risk(tctx.audit, now_ns, ob.kind, ob.uref, ob.locate, False, T.R_KILL):
            _audit_failed(tctx, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def withheld(tctx, i, now_ns):
    """withheld_inline as a cached entry point (tests; a transport written in Python)."""
    return withheld_inline(tctx, i, now_ns)


@njit(nogil=True, inline="always")
def note_send_failed_inline(tctx, i, now_ns):
    tctx.counters[T.C_SEND_ERRORS] += 1
    trip(tctx, T.K_UNSURE, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def note_send_failed(tctx, i, now_ns):
    """Order entry refused outbox entry i: counted, and the kill switch trips (state unsure)."""
    note_send_failed_inline(tctx, i, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def session_restored(tctx):
    """The order-entry session is back: cancel what is still open before anything else."""
    tctx.st[T.S_SESSION_DOWN] = 0
    tctx.st[T.S_KILL_DONE] = 0


@njit(nogil=True, cache=True, _nrt=False)
def trip_now(tctx, reason, now_ns):
    trip(tctx, reason, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def count_open(tctx):
    """Open orders by a full scan (tests and reports compare it with the running count)."""
    n = 0
    for j in range(tctx.orders.shape[0]):
        if is_open(tctx.orders[j].state):
            n += 1
    return n
