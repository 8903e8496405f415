"""The A/B duty cycle: each pass polls line A, line B and the retransmission socket, feeds
every packet to the arbiter (arbiter.py), ages holes (recovery.py) and hands the in-order
stream to the decoder and pipeline — one numba nogil loop (runtime/engine/loop.py's ctrl
slots and idle strategies).

Cached like the single-line loops: `ab_cycle` is the generic duty cycle (inlined, polls as
arguments), and `ab_socket_loop` — line A, line B and the server all kernel sockets, the
common case — inlines it with `socket_poll` called by name, so numba loads it from its disk
cache at the second start. The arbiter reaches `deliver_to_pipeline` through the type of its
sink (`PipelineSink`, registered in sink.py), never a function argument: a dispatcher passed
as a value is a per-process address in the compiled code, which numba refuses to cache. The
arbiter's own functions are compiled into the loop's cached code (they take any registered
sink, tests and benchmarks bring theirs, so they are not cached on their own).
Caveat, as for the engine's socket_loop: numba keys the cache by this file only, so after an
edit to a file the loop is built from (arbiter.py, recovery.py, the decoder, the pipeline)
delete runtime/lines/__pycache__/loop.ab_socket_loop-* or the old code keeps loading
(bench/venue/jit.py shows the fix: a key hashing every such file).
`ab_loop(backend_a)` picks the cached loop, or builds (and compiles at start) one for another
line-A poll: AF_XDP, or a run-time wrapper (fault injection, capture).

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

from tickpath.runtime.backends.socket import socket_poll
from tickpath.runtime.core import counters as C
from tickpath.runtime.lines.arbiter import SRC_B, SRC_GAP, SRC_R, accept_frames, flush
from tickpath.runtime.lines.sink import register_sink
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


@njit(nogil=True, cache=True, _nrt=False)
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


register_sink(PipelineSink, deliver_to_pipeline)


@njit(nogil=True, inline="always")
def ab_work(poll_a, st_a, fa, poll_b, st_b, fb, poll_r, st_r, fr, r_on, arb, rec, sink, counters):
    """One pass; returns frames received (work) or -errno from a backend. The server's socket
    is polled only when there is one (r_on)."""
    now = monotonic_ns()
    max_req = rec.params[R_MAX_REQUEST_MSGS]
    na = poll_a(st_a, fa[0], fa[1], fa[2])
    if na < 0:
        return na
    accept_frames(arb, 0, fa[0], fa[1], fa[2], na, now, max_req, counters, sink)
    nb = poll_b(st_b, fb[0], fb[1], fb[2])
    if nb < 0:
        return nb
    accept_frames(arb, 1, fb[0], fb[1], fb[2], nb, now, max_req, counters, sink)
    nr = 0
    if r_on:
        nr = poll_r(st_r, fr[0], fr[1], fr[2])
        if nr < 0:
            return nr
        accept_frames(arb, 2, fr[0], fr[1], fr[2], nr, now, max_req, counters, sink)
    work = na + nb + nr + maintain(arb, rec, now, counters, sink)
    flush(arb, sink)
    return work


@njit(nogil=True, inline="always")
def ab_cycle(poll_a, st_a, fa, poll_b, st_b, fb, poll_r, st_r, fr, r_on, arb, rec, sink, ctrl,
             idle_params, idle_state):
    """The generic A/B duty cycle, inlined into a loop that names its polls (see module doc)."""
    store_release(ctrl, RUNNING, 1)
    counters = sink.pipe.counters
    while load_acquire(ctrl, STOP) == 0:
        n = ab_work(poll_a, st_a, fa, poll_b, st_b, fb, poll_r, st_r, fr, r_on, arb, rec, sink,
                    counters)
        ctrl[ITERATIONS] += 1
        if n < 0:
            store_release(ctrl, EXIT_CODE, n)
            break
        idle(idle_params, idle_state, n)
    store_release(ctrl, RUNNING, 0)
    return ctrl[EXIT_CODE]


@njit(nogil=True, cache=True, _nrt=False)
def ab_socket_loop(st_a, fa, st_b, fb, st_r, fr, r_on, arb, rec, sink, ctrl, idle_params,
                   idle_state):
    """Line A, line B and the server on kernel sockets: cached on disk."""
    return ab_cycle(socket_poll, st_a, fa, socket_poll, st_b, fb, socket_poll, st_r, fr, r_on,
                    arb, rec, sink, ctrl, idle_params, idle_state)


def ab_loop(backend_a):
    """The compiled A/B loop for line A's backend (B and the server are kernel sockets)."""
    poll = backend_a.poll
    if poll is socket_poll:
        return ab_socket_loop
    loop = _AB_LOOPS.get(poll)
    if loop is None:
        # not cached: a closure over a dispatcher is keyed by a per-process pickle (engine/loop.py)
        @njit(nogil=True)
        def loop(st_a, fa, st_b, fb, st_r, fr, r_on, arb, rec, sink, ctrl, idle_params, idle_state):
            return ab_cycle(poll, st_a, fa, socket_poll, st_b, fb, socket_poll, st_r, fr, r_on,
                            arb, rec, sink, ctrl, idle_params, idle_state)
        _AB_LOOPS[poll] = loop
    return loop


_AB_LOOPS: dict = {}
