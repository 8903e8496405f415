"""What the kernel path adds over the receive floor, per packet, without the network: the
work after recvmmsg returns (receive stamp, decode, books, indicators, latency record) on
`tickpath bench`'s feed (seed 1, 300 instruments, 4 messages per packet), one packet per
batch as at 100 k msg/s, fresh books per repeat. Each mode adds one stage; the difference
between modes is that stage's cost (the copy of the packet into the slot is in every mode).

    python -m tickpath.bench.refs.rx_breakdown [MODES] [REPEATS]     e.g. 240 7

For an A/B, run it from two trees (PYTHONPATH) pinned to one CPU; numbers are ns per packet,
median [min-max] over repeats. Slow-path tool: the loop compiles on each start (not cached).
"""
from __future__ import annotations

import sys

import numpy as np
from numba import njit
from tickpath.bench.scenarios.demo import build_feed, SESSION
from tickpath.runtime.engine.pipeline import Pipeline, process_events
from tickpath.runtime.feed.decoder import decode_frames, max_events_per_packet, new_mold_state
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.sys.intrinsics import realtime_ns, monotonic_ns
from tickpath.runtime.engine import latency
from tickpath.runtime.book.orderbook import book_apply, book_prefetch, mid_price, microprice, imbalance


@njit(nogil=True, inline="always")
def books_only(pipe, events, n, with_lat, with_top):
    books = pipe.books
    params = pipe.params
    acc = 0.0
    for i in range(n):
        ev = events[i]
        book_prefetch(books, events, i + 6)
        loc = book_apply(books, events, i, pipe.counters)
        if with_top and loc >= 0:
            acc += mid_price(books, loc) + microprice(books, loc) + imbalance(books, loc)
        if with_lat:
            lat = realtime_ns() - (params[0] + np.int64(ev.ts_exch))
            latency.record(pipe.hist, max(lat, 0))
    return acc


@njit(nogil=True)
def run_full(buf, offs, lens, npk, payload, lengths, recv_ns, mold, session, events, pipe, mode):
    t0 = monotonic_ns()
    acc = 0
    for k in range(npk):
        ln = lens[k]
        o = offs[k]
        for j in range(ln):
            payload[0, j] = buf[o + j]
        lengths[0] = ln
        if mode == 0:      # the kernel path: recv stamp + decode + books/indicators/latency
            recv_ns[0] = realtime_ns()
            m = decode_frames(payload, lengths, 1, recv_ns, mold, session, events, 0, pipe.counters)
            process_events(pipe, events, m)
        elif mode == 1:    # recv stamp + decode only
            recv_ns[0] = realtime_ns()
            m = decode_frames(payload, lengths, 1, recv_ns, mold, session, events, 0, pipe.counters)
            acc += m
        elif mode == 2:    # the copy alone (subtract)
            acc += payload[0, 0]
        elif mode == 3:    # one clock read
            acc += realtime_ns() & 1
        elif mode == 5 or mode == 6 or mode == 7:
            recv_ns[0] = realtime_ns()
            m = decode_frames(payload, lengths, 1, recv_ns, mold, session, events, 0, pipe.counters)
            acc += books_only(pipe, events, m, mode >= 6, mode == 7)
        elif mode == 4:    # a histogram record
            acc += latency.record(pipe.hist, 5000 + (k & 1023))
    return monotonic_ns() - t0, acc


def main(reps=5):
    _m, packets = build_feed(1, 300_000, 300, 4)
    npk = packets.n_packets
    buf = packets.buf; offs = packets.offsets.astype(np.int64); lens = packets.lengths.astype(np.int64)
    res = {}
    for mode, name in [m for m in ((2, "copy"), (3, "clock"), (4, "hist record"), (1, "recv clock + decode"), (5, "+ book_apply"), (6, "+ latency"), (7, "+ mid/micro/imb"), (0, "kernel path")) if str(m[0]) in MODES]:
        vals = []
        for r in range(reps):
            pipe = Pipeline(n_locates=301, max_orders=1 << 20, max_levels=128)
            mold, session = new_mold_state(SESSION, 1)
            payload = np.zeros((32, 2048), np.uint8); lengths = np.zeros(32, np.int32); recv_ns = np.zeros(32, np.int64)
            events = np.zeros(32 * max_events_per_packet(2048), EVENT_DTYPE)
            dt, _ = run_full(buf, offs, lens, npk, payload, lengths, recv_ns, mold, session, events, pipe.arrays, mode)
            vals.append(dt / npk)
        res[name] = vals
        print(f"{name:>22}: per packet median {np.median(vals):7.1f} ns  [{min(vals):.1f}-{max(vals):.1f}]", flush=True)
    return res


MODES = sys.argv[1] if len(sys.argv) > 1 else "23415670"
if __name__ == "__main__":
    main(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
