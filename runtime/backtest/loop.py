"""The backtest's event loop: one discrete-event simulation over a batch of decoded events.

Four clocks meet here, each a FIFO channel with its own latency model (latency.py):

    recorded event e ──(exchange, at ts_exch)──▶ exchange book + own queues (exchange.py)
          └──(feed latency)──▶ strategy's books + indicators → on_events → outbox
    outbox intent ──(order-entry latency)──▶ exchange (ex_on_intent)
    exchange response ──(response latency)──▶ on_responses (order manager, positions)

At every step the loop takes the earliest of: the next recorded event at the exchange, the
next order arriving there, the next P&L sample, the next feed delivery, the next response
delivery, the next strategy timer. Ties go in that order (the exchange acts on what happened
at t before the strategy hears of anything at t). The strategy's clock `now_ns` is the
delivery time of what it is handling, and it only ever sees events whose delivery time is
<= now: no look-ahead by construction (tests/runtime/backtest/test_no_lookahead.py).
Deciding takes no simulated time (the strategy's compute time is part of entry latency).

The strategy plugs in as three jitted functions — on_events(sctx, pipe, events, n, now_ns,
outbox) -> n_out, on_responses(sctx, responses, n, now_ns, outbox) -> n_out,
on_timer(sctx, pipe, now_ns, outbox) -> n_out, and replace_orig(sctx, outbox, i) -> the
original uref of a REPLACE outbox entry (whose uref is the replacement's), and
events_passive(sctx) -> bool — passed to `run_batch`, which is therefore
not cached itself: each strategy binding is a small `@njit(cache=True)` function in a
generated module (bindings.py) that calls run_batch with the strategy's functions as globals,
so the whole loop is compiled once per binding and cached on disk, not once per process; the
module's name hashes every source the loop inlines (numba checks only the defining file's
timestamp, so an edit to this file must give a new module, not a stale cache). run_batch is
inline="always": numba inlines it into each binding at the IR level, where the callbacks
become direct calls to global dispatchers — passed as values to a compiled callee they would
be "dynamic globals" and make the binding uncacheable.

Passive feed: a strategy whose on_events never acts (events_passive(sctx) true: a
timer-driven one, like hftbacktest's `elapse` loop) does not need a call per delivery
instant, only books that are current whenever it reads them. Then deliveries are not steps
of the loop: before each on_timer at t (on_responses is handed no books), every event
delivered by t goes through the pipeline in one call (the same events in the same order, so
the same books and indicators; only the number of calls differs), and at the end of a batch
those delivered by the last exchange time (no later callback can come before it). One loop
step per recorded event instead of two, and the pipeline's per-call cost paid per run of
events (process_span: the pipeline by pointer, its prefetch reading ahead in the batch).
Recorded events that follow one another with nothing else due in between are applied in one
run (`_exchange_next` takes the clocks' decision without recomputing them all).

The exchange's books go to its functions as a Ref (one pointer, trading/ref.py), not as
the flattened tuple of nine arrays copied at each of the per-event calls.

Batches: the caller decodes a file in blocks; events the strategy has not been delivered
yet (their delivery time is later than the last exchange event) are carried to the front
of the next batch (`cur[CUR_F]` says where they start). Return codes: NEED_DATA (batch
consumed), FLUSH (fill log or samples near full: copy them out and call again), DONE.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.backtest import latency as L
from tickpath.runtime.backtest.exchange import borrow_ex, ex_on_intent, ex_on_market, mark_to_market, respond
from tickpath.runtime.book.orderbook import _borrowed, _prefetch_event
from tickpath.runtime.trading.ref import ref
from tickpath.runtime.sys.intrinsics import borrow
from tickpath.runtime.backtest.records import (
    C_EXCHANGE_EVENTS, C_FEED_EVENTS, C_ORDER_QUEUE_FULL, C_OUTBOX_OVERFLOW, C_REJECTS,
    C_STRATEGY_CALLS, C_TIMER_CALLS, REJECT_QUEUE_FULL, SAMPLE_DTYPE, ST_N_FILLS, ST_ORD_HEAD,
    ST_ORD_LAST_T, ST_ORD_TAIL, ST_RSP_HEAD, ST_RSP_TAIL,
)
from tickpath.runtime.engine.pipeline import PipeState, process_span
from tickpath.runtime.trading.records import INTENT_DTYPE, INTENT_REPLACE, RESP_REJECTED, RESPONSE_DTYPE

NEED_DATA, FLUSH, DONE = 0, 1, 2
_INF = np.int64(1 << 62)
_R = ord("R")
_A, _F, _E, _C, _X, _D, _U, _P = (ord(c) for c in "AFECXDUP")

# cursor slots (int64)
CUR_E = 0             # next recorded event the exchange applies
CUR_F = 1             # next event the strategy is delivered
CUR_LAST_DELIVER = 2  # delivery time of the last event (the feed is FIFO)
CUR_TIMER_NS = 3      # strategy timer period (0: none)
CUR_NEXT_TIMER = 4
CUR_SAMPLE_NS = 5     # P&L sampling interval
CUR_NEXT_SAMPLE = 6
CUR_N_SAMPLES = 7
CUR_LAST_TS = 8       # exchange time of the last recorded event applied
CUR_STARTED = 9       # 1 once the first event set the clocks
N_CUR = 16


class LoopState(NamedTuple):
    cur: np.ndarray          # int64[N_CUR]
    deliver: np.ndarray      # int64[batch capacity] delivery time of each event in the batch
    ordq: np.ndarray         # INTENT_DTYPE[Q] order channel ring (cursors in ex.st)
    ord_t: np.ndarray        # int64[Q] arrival time at the exchange
    ord_sent: np.ndarray     # int64[Q] the strategy's send time
    ord_orig: np.ndarray     # uint32[Q] a REPLACE's original uref
    feed_lat: np.ndarray     # quantile tables, ns
    entry_lat: np.ndarray
    rng: np.ndarray          # uint64[1] (its own stream: feed/entry draws)
    samples: np.ndarray      # SAMPLE_DTYPE[S]
    mids: np.ndarray         # float64[n_locates] last mid (marks one-sided books)
    rsp_buf: np.ndarray      # RESPONSE_DTYPE[k] responses handed to the strategy at once


def new_loop_state(batch_capacity: int, n_locates: int, *, feed_latency, entry_latency,
                   timer_ns: int = 0, sample_ns: int = 1_000_000_000, seed: int = 1,
                   order_capacity: int = 4096, sample_capacity: int = 1 << 14) -> LoopState:
    cur = np.zeros(N_CUR, dtype=np.int64)
    cur[CUR_TIMER_NS] = timer_ns
    cur[CUR_SAMPLE_NS] = sample_ns
    return LoopState(
        cur=cur, deliver=np.zeros(batch_capacity, dtype=np.int64),
        ordq=np.zeros(order_capacity, dtype=INTENT_DTYPE),
        ord_t=np.zeros(order_capacity, dtype=np.int64),
        ord_sent=np.zeros(order_capacity, dtype=np.int64),
        ord_orig=np.zeros(order_capacity, dtype=np.uint32),
        feed_lat=feed_latency, entry_lat=entry_latency,
        rng=np.array([(int(seed) * 0xD1B54A32D192ED03 + 3) % (1 << 64)],
                     dtype=np.uint64),
        samples=np.zeros(sample_capacity, dtype=SAMPLE_DTYPE),
        mids=np.zeros(n_locates, dtype=np.float64),
        rsp_buf=np.zeros(256, dtype=RESPONSE_DTYPE),
    )


@njit(nogil=True, inline="always")
def _borrow_lp(lp):
    return LoopState(borrow(lp.cur), borrow(lp.deliver), borrow(lp.ordq), borrow(lp.ord_t),
                     borrow(lp.ord_sent), borrow(lp.ord_orig), borrow(lp.feed_lat),
                     borrow(lp.entry_lat), borrow(lp.rng), borrow(lp.samples), borrow(lp.mids),
                     borrow(lp.rsp_buf))


@njit(nogil=True, inline="always")
def _borrow_pipe(p):
    return PipeState(_borrowed(p.books), borrow(p.ema), borrow(p.rsi), borrow(p.vwap), borrow(p.out),
                     borrow(p.hist), borrow(p.counters), borrow(p.params), borrow(p.ring_hdr),
                     borrow(p.ring_data), borrow(p.stop))


@njit(nogil=True, inline="always")
def send_intents(replace_orig, sctx, lp, ex, outbox, n_out, now_ns):
    """Put the strategy's intents on the order channel (FIFO, entry latency each)."""
    if n_out > outbox.shape[0]:
        ex.ctr[C_OUTBOX_OVERFLOW] += 1
        n_out = outbox.shape[0]
    cap = lp.ordq.shape[0]
    for k in range(n_out):
        head = ex.st[ST_ORD_HEAD]
        tail = ex.st[ST_ORD_TAIL]
        it = outbox[k]
        if tail - head >= cap:
            ex.ctr[C_ORDER_QUEUE_FULL] += 1
            ex.ctr[C_REJECTS] += 1
            respond(ex, now_ns, RESP_REJECTED, it.uref, 0, it.qty, it.price, 0, it.side,
                    it.tif, 0, REJECT_QUEUE_FULL, 0, 0, now_ns)
            continue
        t = max(now_ns + L.draw_ns(lp.entry_lat, lp.rng), ex.st[ST_ORD_LAST_T])
        ex.st[ST_ORD_LAST_T] = t
        lp.ordq[tail % cap] = it
        lp.ord_t[tail % cap] = t
        lp.ord_sent[tail % cap] = now_ns
        lp.ord_orig[tail % cap] = replace_orig(sctx, outbox, k) if it.kind == INTENT_REPLACE else 0
        ex.st[ST_ORD_TAIL] = tail + 1


@njit(nogil=True, cache=True, _nrt=False)
def _sample(lp, ex, books, t):
    k = lp.cur[CUR_N_SAMPLES]
    if k < lp.samples.shape[0]:
        eq, net, gross = mark_to_market(ex, books, lp.mids)
        s = lp.samples[k]
        s.t_ns = t
        s.equity = eq
        s.net_position = net
        s.gross_position = gross
        lp.cur[CUR_N_SAMPLES] = k + 1


@njit(nogil=True, cache=True, _nrt=False)
def _is_book_event(t):
    return t == _A or t == _F or t == _E or t == _C or t == _X or t == _D or t == _U or t == _P


_EX_PREFETCH_AHEAD = 6   # as book_apply_all: far enough to cover a miss, near enough to stay cached


@njit(nogil=True, inline="always")
def _exchange_next(lp, ex, cur, f, e, t, passive, cap_o, cap_r):
    """True when the loop's next step would be recorded event e at time t again: the same
    decision as the clocks at the top of run_batch (ties: a sample first, then the exchange,
    a timer last), taken without recomputing what an exchange event cannot change."""
    if cur[CUR_NEXT_SAMPLE] <= t:
        return False
    oh = ex.st[ST_ORD_HEAD]
    if oh < ex.st[ST_ORD_TAIL] and lp.ord_t[oh % cap_o] < t:
        return False
    if not passive and f < e and lp.deliver[f] < t:
        return False
    rh = ex.st[ST_RSP_HEAD]
    if rh < ex.st[ST_RSP_TAIL] and ex.rsp_t[rh % cap_r] < t:
        return False
    if cur[CUR_TIMER_NS] > 0 and cur[CUR_NEXT_TIMER] < t:
        return False
    return True


@njit(nogil=True, inline="always")
def _deliver_upto(rpipe, events, lp, ex, e, t):
    """Passive feed: events [cur[CUR_F], e) delivered by t go through the pipeline in one call."""
    f = lp.cur[CUR_F]
    g = f
    while g < e and lp.deliver[g] <= t:
        g += 1
    if g > f:
        process_span(rpipe, events, f, g)
        ex.ctr[C_FEED_EVENTS] += g - f
        lp.cur[CUR_F] = g


@njit(nogil=True, inline="always")
def run_batch(on_events, on_responses, on_timer, replace_orig, events_passive, sctx, outbox, pipe,
              lp, ex, ex_books, ex_counters, events, n, final):
    """Advance the simulation over events[0:n] (see the module doc). Returns NEED_DATA,
    FLUSH or DONE; cur[CUR_E], cur[CUR_F] say where it stopped."""
    # borrowed views (no reference counts) for the whole batch: the caller holds the arrays
    ex = ref(borrow_ex(ex))    # callees get pointers, not the flattened state (trading/ref.py)
    lp = ref(_borrow_lp(lp))
    pipe = _borrow_pipe(pipe)
    rpipe = ref(pipe)          # the strategy's callbacks and the feed's pipeline get a pointer
    ex_books_v = _borrowed(ex_books)
    ex_books = ref(ex_books_v)
    passive = events_passive(sctx)
    events = borrow(events)
    outbox = borrow(outbox)
    ex_counters = borrow(ex_counters)
    cur = lp.cur
    fill_room = ex.fills.shape[0] - ex.oi.shape[0] - 1024   # headroom for one step's fills
    cap_r = ex.rsp.shape[0]
    cap_o = lp.ordq.shape[0]
    while True:
        if ex.st[ST_N_FILLS] >= fill_room or cur[CUR_N_SAMPLES] >= lp.samples.shape[0] - 1:
            return FLUSH
        e = cur[CUR_E]
        f = cur[CUR_F]
        if e >= n and not final:
            if passive:   # no later callback comes before the last exchange time
                _deliver_upto(rpipe, events, lp, ex, e, cur[CUR_LAST_TS])
            return NEED_DATA
        t_ex = np.int64(events[e].ts_exch) if e < n else _INF
        if cur[CUR_STARTED] == 0 and e < n and _is_book_event(events[e].msg_type):
            cur[CUR_STARTED] = 1   # timers and samples start with the order flow, not the preamble
            cur[CUR_NEXT_SAMPLE] = t_ex + cur[CUR_SAMPLE_NS]
            cur[CUR_NEXT_TIMER] = t_ex + cur[CUR_TIMER_NS]
        oh = ex.st[ST_ORD_HEAD]
        t_ord = lp.ord_t[oh % cap_o] if oh < ex.st[ST_ORD_TAIL] else _INF
        t_feed = lp.deliver[f] if (f < e and not passive) else _INF
        rh = ex.st[ST_RSP_HEAD]
        t_rsp = ex.rsp_t[rh % cap_r] if rh < ex.st[ST_RSP_TAIL] else _INF
        # after the last event, clocks stop at the last event's time (no endless timers)
        horizon = t_ex if e < n else cur[CUR_LAST_TS]
        t_timer = cur[CUR_NEXT_TIMER] if (cur[CUR_TIMER_NS] > 0 and cur[CUR_STARTED] != 0
                                          and cur[CUR_NEXT_TIMER] <= horizon) else _INF
        t_sample = cur[CUR_NEXT_SAMPLE] if (cur[CUR_STARTED] != 0
                                            and cur[CUR_NEXT_SAMPLE] <= horizon) else _INF
        t = min(t_ex, t_ord, t_feed, t_rsp, t_timer, t_sample)
        if t >= _INF:
            if passive:
                _deliver_upto(rpipe, events, lp, ex, e, _INF)
            _sample(lp, ex, ex_books, cur[CUR_LAST_TS])   # the closing mark
            return DONE
        if t_sample == t:
            _sample(lp, ex, ex_books, t)
            cur[CUR_NEXT_SAMPLE] = t + cur[CUR_SAMPLE_NS]
        elif t_ex == t:
            # a run of recorded events: while nothing else falls due before the next one, the
            # exchange applies it without going back through the six clocks above
            while True:
                ev = events[e]
                if ev.msg_type == _R and ev.locate < ex.valid_loc.shape[0]:
                    ex.valid_loc[ev.locate] = 1
                # the order-table misses of a later event, started now (as book_apply_all)
                _prefetch_event(ex_books_v, events, e + _EX_PREFETCH_AHEAD)
                ex_on_market(ex, ex_books, events, e, ex_counters, t)
                ex.ctr[C_EXCHANGE_EVENTS] += 1
                d = max(t + L.draw_ns(lp.feed_lat, lp.rng), cur[CUR_LAST_DELIVER])
                cur[CUR_LAST_DELIVER] = d
                lp.deliver[e] = d
                cur[CUR_LAST_TS] = t
                e += 1
                cur[CUR_E] = e
                if e >= n or cur[CUR_STARTED] == 0 or ex.st[ST_N_FILLS] >= fill_room:
                    break
                t = np.int64(events[e].ts_exch)
                if not _exchange_next(lp, ex, cur, f, e, t, passive, cap_o, cap_r):
                    break
        elif t_ord == t:
            ex_on_intent(ex, ex_books, lp.ordq[oh % cap_o], lp.ord_orig[oh % cap_o], lp.ord_sent[oh % cap_o], t)
            ex.st[ST_ORD_HEAD] = oh + 1
        elif t_feed == t:
            g = f + 1     # every event delivered at the same instant goes in one call
            while g < e and lp.deliver[g] == t:
                g += 1
            k = g - f
            process_span(rpipe, events, f, g)
            ex.ctr[C_FEED_EVENTS] += k
            ex.ctr[C_STRATEGY_CALLS] += 1
            n_out = on_events(sctx, rpipe, events[f:g], k, t, outbox)
            cur[CUR_F] = g
            send_intents(replace_orig, sctx, lp, ex, outbox, n_out, t)
        elif t_rsp == t:
            # on_responses is handed no books: a passive feed catches up before the next
            # callback that reads them (the same events in the same order, fewer calls)
            k = 0
            while k < lp.rsp_buf.shape[0] and rh < ex.st[ST_RSP_TAIL] and ex.rsp_t[rh % cap_r] == t:
                lp.rsp_buf[k] = ex.rsp[rh % cap_r]
                rh += 1
                k += 1
            ex.st[ST_RSP_HEAD] = rh
            n_out = on_responses(sctx, lp.rsp_buf[:k], k, t, outbox)
            send_intents(replace_orig, sctx, lp, ex, outbox, n_out, t)
        else:
            if passive:
                _deliver_upto(rpipe, events, lp, ex, e, t)
            ex.ctr[C_TIMER_CALLS] += 1
            cur[CUR_NEXT_TIMER] = t + cur[CUR_TIMER_NS]
            n_out = on_timer(sctx, rpipe, t, outbox)
            send_intents(replace_orig, sctx, lp, ex, outbox, n_out, t)
