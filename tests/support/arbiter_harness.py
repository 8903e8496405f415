"""The arbiter harness the lines tests share: the arbiter fed packet by packet, its
in-order output recorded by a jitted sink (no sockets, no decoder)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.lines.arbiter import SRC_GAP, Arbiter, accept_packet, flush
from tickpath.runtime.lines.recovery import make_recovery, maintain
from tickpath.runtime.lines.sink import register_sink

SESSION = b"TESTSESS01"


class RecordSink(NamedTuple):
    """Where record_sink writes: one row per delivered message or gap, pos[0] rows so far."""
    out: np.ndarray
    pos: np.ndarray


# not cached: a test's sink type in a cache index is unreadable where the test is not importable
@njit(nogil=True)
def record_sink(sink, st_buf, meta, n):
    """Sink: one row per delivered message (seq, src, first byte) or gap (seq, SRC_GAP, count)."""
    out, pos = sink.out, sink.pos
    for r in range(n):
        src, seq, cnt, off = meta[0, r], meta[1, r], meta[2, r], meta[3, r]
        if src == SRC_GAP:
            k = pos[0]
            out[k, 0], out[k, 1], out[k, 2] = seq, SRC_GAP, cnt
            pos[0] = k + 1
            continue
        o = off + 20
        for j in range(cnt):
            ln = (np.int64(st_buf[o]) << 8) | st_buf[o + 1]
            k = pos[0]
            out[k, 0], out[k, 1], out[k, 2] = seq + j, src, st_buf[o + 2] if ln else -1
            pos[0] = k + 1
            o += 2 + ln


register_sink(RecordSink, record_sink)   # the arbiter delivers by sink type (runtime/lines/sink.py)


class Harness:
    def __init__(self, server=None, fd=-1, **kw):
        kw.setdefault("wait_ns", 1_000)
        self.arb = Arbiter(**kw)
        self.rec = make_recovery(server, fd, timeout_ns=1_000_000, retries=2, deadline_ns=10_000_000,
                                 max_outstanding=4, max_request_msgs=100, wait_ns=kw["wait_ns"])
        self.out = np.zeros((100_000, 3), dtype=np.int64)
        self.pos = np.zeros(1, dtype=np.int64)
        self.c = C.new_counters()
        self.now = 1_000_000_000

    def feed(self, src, pkt: bytes, dt_ns=100):
        self.now += dt_ns
        p = np.frombuffer(pkt, dtype=np.uint8).copy()
        accept_packet(self.arb.arrays, src, p, len(p), self.now, self.now, 100, self.c,
                      RecordSink(self.out, self.pos))
        flush(self.arb.arrays, RecordSink(self.out, self.pos))

    def tick(self, dt_ns):
        self.now += dt_ns
        w = maintain(self.arb.arrays, self.rec, self.now, self.c, RecordSink(self.out, self.pos))
        flush(self.arb.arrays, RecordSink(self.out, self.pos))
        return w

    def rows(self):
        return [tuple(r) for r in self.out[:self.pos[0]]]

    def seqs(self):
        return [r[0] for r in self.rows() if r[1] != SRC_GAP]


def msg(seq):   # the first byte carries the seq (mod 256) so the test sees which copy came out
    return bytes([65 + seq % 26]) + seq.to_bytes(8, "big")


def pkt(seq, n=1, session=SESSION):
    return M.mold_packet(session, seq, [msg(s) for s in range(seq, seq + n)])
