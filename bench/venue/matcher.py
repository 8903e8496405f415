"""The matching thread: one numba nogil duty cycle that owns the books.

Each pass: take the commands the network thread queued in the command ring (up to a
batch), apply them (engine.process_range), generate the background flow due by now at
`rate` events/s (flow.gen, open loop from the start time, so a slow pass is caught up,
not forgotten; times the storm factor inside a storm window: flow_due), flush the open ITCH packet, send a MoldUDP64 heartbeat after a second
without a packet, then idle by the runtime's idle strategy when the pass did nothing.
Responses go to the network thread through the response ring inside the engine.

Why one thread for the books and the feed: the books have one writer, and the ITCH a
change causes is written by the code that made the change, so the feed is in book order
by construction. The network thread (Python: selector, logins, heartbeats, per-user
sequenced stores) talks to it only through the two SPSC rings.
"""
from __future__ import annotations

import numpy as np

from tickpath.runtime.engine.idle import idle
from tickpath.runtime.ipc import ring as R
from tickpath.runtime.sys.intrinsics import load_acquire, realtime_ns

from tickpath.bench.venue import engine as E
from tickpath.bench.venue import flow as F
from tickpath.bench.venue import itch_out as W
from tickpath.bench.venue.book import borrow_engine
from tickpath.bench.venue.jit import vjit

# ctl slots
K_STOP, K_START_NS, K_RATE_MILLI, K_BG_DONE, K_HEARTBEAT_NS, K_PASSES, K_BATCH, K_RUNNING, \
    K_MAX_BG_PER_PASS, K_CLIENT_CMDS, K_LATE_BG, K_STORM_AT_NS, K_STORM_NS, K_STORM_X_MILLI = range(14)
N_CTL = 16
NO_STORM = np.int64(1) << 62   # K_STORM_AT_NS while no storm is scheduled


def new_ctl(rate_msgs_per_s: float, heartbeat_ns: int = 1_000_000_000, batch: int = 256,
            max_bg_per_pass: int = 1024) -> np.ndarray:
    c = np.zeros(N_CTL, np.int64)
    c[K_RATE_MILLI] = int(rate_msgs_per_s * 1000)
    c[K_HEARTBEAT_NS] = heartbeat_ns
    c[K_BATCH] = batch
    c[K_MAX_BG_PER_PASS] = max_bg_per_pass
    c[K_STORM_AT_NS] = NO_STORM
    c[K_STORM_X_MILLI] = 1000
    return c


@vjit
def flow_due(ctl, el_ns, rate_per_ns):
    """Background events due by `el_ns` after the start: the rate, times the storm factor while
    a storm window [at, at + length) is on (a scheduled or signalled burst of flow)."""
    inside = min(max(el_ns - load_acquire(ctl, K_STORM_AT_NS), 0), ctl[K_STORM_NS])
    extra = inside * (ctl[K_STORM_X_MILLI] - 1000) // 1000
    return np.int64((el_ns + extra) * rate_per_ns)


@vjit
def run(e, w, rh, rd, ch, cd, abort, fparams, mid, cum, scratch, flog, in_log, ctl, idle_params,
        idle_state):
    """The duty cycle; returns when ctl[K_STOP] is raised."""
    e = borrow_engine(e)        # one borrow per run, not an incref storm per pass
    w = W.borrow_out(w)
    ctl[K_RUNNING] = 1
    start = ctl[K_START_NS]
    rate_per_ns = ctl[K_RATE_MILLI] / 1e12
    while load_acquire(ctl, K_STOP) == 0:
        now = realtime_ns()
        work = 0
        n = min(R.available(ch), ctl[K_BATCH])
        if n > 0:
            E.process_range(e, w, rh, rd, abort, cd, R.read_slot(ch, 0), n, now, in_log)
            R.release(ch, n)
            ctl[K_CLIENT_CMDS] += n
            work += n
        due = flow_due(ctl, now - start, rate_per_ns) - ctl[K_BG_DONE]
        if due > 0:
            if due > ctl[K_MAX_BG_PER_PASS]:
                ctl[K_LATE_BG] += 1          # behind schedule: caught up over the next passes
                due = ctl[K_MAX_BG_PER_PASS]
            F.gen(e, w, rh, rd, abort, fparams, mid, cum, scratch, flog, due, now)
            ctl[K_BG_DONE] += due
            work += due
        if w.state[W.PKT_START] >= 0:
            W.flush(w)
        elif now - w.state[W.LAST_SEND_NS] > ctl[K_HEARTBEAT_NS]:
            W.header_only(w, 0)
        ctl[K_PASSES] += 1
        idle(idle_params, idle_state, work)
    ctl[K_RUNNING] = 0
    return ctl[K_PASSES]
