"""The A/B duty cycle: each pass polls line A, line B and the retransmission socket, feeds
every packet to the arbiter (runtime/arbiter.py), ages holes (runtime/recovery.py) and hands
the in-order stream to the decoder and pipeline — one numba nogil loop, specialised per
poll function like runtime/loop.py (whose ctrl slots and idle strategies it shares).

`deliver_to_pipeline` is the arbiter's sink: staged packets are decoded in place
(decode_buffer, no slice), events from line B get FLAG_LINE_B and from the server
FLAG_RETRANSMIT; staged gaps become gap events (msg_type 0, FLAG_GAP, seq = first missing,
shares = count, aux = GAP_AUX_RESET for a session reset) written here, counted GAPS/GAP_MESSAGES like the decoder's, with the
decoder's next sequence moved past them. Events go to process_events whenever the batch
might not hold the next staged packet, so a long drain never overflows it.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.lines.arbiter import SRC_B, SRC_GAP, SRC_R, accept_frames, flush
from tickpath.runtime.feed.decoder import MOLD_NEXT_SEQ, decode_buffer
from tickpath.runtime.core.event import EVENT_VERSION, FLAG_GAP, FLAG_LINE_B, FLAG_RETRANSMIT
from tickpath.runtime.engine.idle import idle
from tickpath.runtime.sys.intrinsics import load_acquire, monotonic_ns, store_release
from tickpath.runtime.engine.loop import EXIT_CODE, ITERATIONS, RUNNING, STOP
from tickpath.runtime.engine.pipeline import PipeState, process_events
from tickpath.runtime.lines.recovery import R_MAX_REQUEST_MSGS, maintain


class PipelineSink(NamedTuple):
    """Where deliver_to_pipeline puts the arbitrated stream."""
    mold: np.ndarray      # the decoder's stream state (runtime/feed/decoder.py)
    session: np.ndarray
    events: np.ndarray    # the event batch
    pipe: PipeState       # Pipeline.arrays (runtime/engine/pipeline.py)


@njit(nogil=True, cache=True)
def no_poll(state, payload, lengths, recv_ns):
    """The poll of an absent source (no retransmission server): never anything."""
    return 0


@njit(nogil=True, cache=True)
def deliver_to_pipeline(sink, st_buf, meta, n):
    mold, session, events, pipe = sink.mold, sink.session, sink.events, sink.pipe
    counters = pipe.counters
    cap = events.shape[0]
    ev = 0
    for r in range(n):
        src = meta[0, r]
        cnt = meta[2, r]
        if ev + cnt + 1 > cap and ev > 0:
            process_events(pipe, events, ev)
            ev = 0
        if src == SRC_GAP:
            if ev >= cap:
                counters[C.EVENTS_DROPPED] += 1
                continue
            e = events[ev]
            e.seq = meta[1, r]
            e.ts_exch = 0
            e.ts_recv = meta[5, r]
            e.order_ref = 0
            e.ref2 = 0
            e.shares = cnt
            e.price = 0
            e.locate = 0
            e.tracking = 0
            e.msg_type = 0
            e.side = 0
            e.version = EVENT_VERSION
            e.aux = meta[3, r]   # a gap row keeps its aux in the offset column
            e.flags = FLAG_GAP
            counters[C.GAPS] += 1
            counters[C.GAP_MESSAGES] += cnt
            counters[C.EVENTS] += 1
            ev += 1
            if mold[MOLD_NEXT_SEQ] < meta[1, r] + cnt:
                mold[MOLD_NEXT_SEQ] = meta[1, r] + cnt
            continue
        e0 = ev
        # row r of meta: offsets meta[3], lengths meta[4], recv meta[5]
        ev = decode_buffer(st_buf, meta[3], meta[4], r, 1, meta[5], mold, session, events, ev,
                           counters)
        if src == SRC_B or src == SRC_R:
            flag = FLAG_LINE_B if src == SRC_B else FLAG_RETRANSMIT
            for i in range(e0, ev):
                if events[i].msg_type != 0:
                    events[i].flags |= flag
    if ev > 0:
        process_events(pipe, events, ev)


@njit(nogil=True)
def ab_work(poll_a, st_a, fa, poll_b, st_b, fb, poll_r, st_r, fr, arb, rec, sink, counters):
    """One pass; returns frames received (work) or -errno from a backend."""
    now = monotonic_ns()
    max_req = rec.params[R_MAX_REQUEST_MSGS]
    na = poll_a(st_a, fa[0], fa[1], fa[2])
    if na < 0:
        return na
    accept_frames(arb, 0, fa[0], fa[1], fa[2], na, now, max_req, counters, deliver_to_pipeline, sink)
    nb = poll_b(st_b, fb[0], fb[1], fb[2])
    if nb < 0:
        return nb
    accept_frames(arb, 1, fb[0], fb[1], fb[2], nb, now, max_req, counters, deliver_to_pipeline, sink)
    nr = poll_r(st_r, fr[0], fr[1], fr[2])
    if nr < 0:
        return nr
    accept_frames(arb, 2, fr[0], fr[1], fr[2], nr, now, max_req, counters, deliver_to_pipeline, sink)
    work = na + nb + nr + maintain(arb, rec, now, counters, deliver_to_pipeline, sink)
    flush(arb, deliver_to_pipeline, sink)
    return work


# not cached: it takes jitted functions as arguments, which numba cannot cache
@njit(nogil=True)
def run_ab(poll_a, st_a, fa, poll_b, st_b, fb, poll_r, st_r, fr, arb, rec, sink, ctrl,
           idle_params, idle_state):
    store_release(ctrl, RUNNING, 1)
    counters = sink.pipe.counters
    while load_acquire(ctrl, STOP) == 0:
        n = ab_work(poll_a, st_a, fa, poll_b, st_b, fb, poll_r, st_r, fr, arb, rec, sink, counters)
        ctrl[ITERATIONS] += 1
        if n < 0:
            store_release(ctrl, EXIT_CODE, n)
            break
        idle(idle_params, idle_state, n)
    store_release(ctrl, RUNNING, 0)
    return ctrl[EXIT_CODE]
