"""Issue 19 findings 1 and 4 on the arbiter, deterministic and in-process (the same harness
as test_arbiter.py): a far-ahead number on one line is not believed on one packet's word, a
sustained jump is an explicit reset, the walk over any gap is bounded by the reorder
capacity (2^40 used to hang the loop), a request count is never truncated, and a full hole
table reports what it could not take instead of growing its last row.
Over real sockets (a spoofing sender, a forged retransmission answer) in
test_hostile_lines_socket.py."""
from __future__ import annotations

import socket
import threading
from typing import NamedTuple

import numpy as np
import pytest
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.feed.decoder import GAP_AUX_RESET
from tickpath.runtime.lines import arbiter as A
from tickpath.runtime.lines.arbiter import S_N_HOLES, S_NEXT, S_STAGE_N, SRC_A, SRC_B, SRC_GAP, SRC_R
from tickpath.runtime.lines.recovery import make_recovery, send_request
from tickpath.runtime.lines.sink import register_sink

from arbiter_harness import SESSION, Harness, pkt  # tests/support


def _bounded(fn, timeout_s: float = 60.0):
    """Run fn on a thread; fail (not hang) if it does not return. Compiled beforehand."""
    done = []
    t = threading.Thread(target=lambda: done.append(fn()), daemon=True)
    t.start()
    t.join(timeout_s)
    assert done, f"still running after {timeout_s} s (a walk over the numbers of a gap?)"
    return done[0]


def test_one_far_ahead_packet_on_a_line_is_dropped_and_the_feed_goes_on():
    h = Harness()
    for s in (1, 2, 3):
        h.feed(SRC_A, pkt(s))
    h.feed(SRC_A, pkt(3 + (1 << 40)))                  # the finding's spoof
    h.feed(SRC_B, M.mold_heartbeat(SESSION, 1 << 40))  # and a far-ahead heartbeat
    assert h.c[C.SEQ_SUSPECT] == 2 and h.arb.state[S_N_HOLES] == 0
    for s in range(4, 40):
        h.feed(SRC_A, pkt(s))
        h.feed(SRC_B, pkt(s))
    h.tick(20_000_000)
    assert h.seqs() == list(range(1, 40))
    assert h.c[C.UNRECOVERABLE] == 0 and h.c[C.SEQ_RESETS] == 0 and h.c[C.HEARTBEATS] == 0


def test_sustained_consistent_jump_on_a_line_is_an_explicit_reset():
    h = Harness(max_gap_msgs=100, reset_packets=3)
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(2))
    h.feed(SRC_B, pkt(4))                              # held: 3 is missing
    far = 1 << 40
    h.feed(SRC_A, pkt(far, 2))
    h.feed(SRC_A, pkt(far + 2, 2))
    assert h.c[C.SEQ_SUSPECT] == 2 and h.seqs() == [1, 2]
    h.feed(SRC_A, pkt(far + 4, 1))                     # third in a row: believed
    assert h.c[C.SEQ_RESETS] == 1
    rows = h.rows()
    assert rows[2] == (3, SRC_GAP, 1) and rows[3][:2] == (4, SRC_B)
    assert rows[4] == (5, SRC_GAP, far + 4 - 5) and rows[5][:2] == (far + 4, SRC_A)
    h.feed(SRC_B, pkt(far + 5))
    assert h.seqs()[-1] == far + 5 and h.arb.state[S_NEXT] == far + 6


class NoopSink(NamedTuple):
    unused: np.ndarray


@njit(nogil=True)   # not cached: a test's sink type (arbiter_harness.py says why)
def _noop_sink(sink, st_buf, meta, n):
    return


register_sink(NoopSink, _noop_sink)


def test_reset_gap_rows_carry_the_reset_mark():
    marks = []
    h = Harness(max_gap_msgs=10, reset_packets=2)
    h.feed(SRC_A, pkt(1))
    p1 = np.frombuffer(pkt(1000), np.uint8).copy()
    p2 = np.frombuffer(pkt(1001), np.uint8).copy()
    A.accept_packet(h.arb.arrays, SRC_A, p1, len(p1), 1, 1, 100, h.c, NoopSink(np.zeros(1, np.int64)))
    A.accept_packet(h.arb.arrays, SRC_A, p2, len(p2), 1, 1, 100, h.c, NoopSink(np.zeros(1, np.int64)))
    meta = h.arb.st_meta
    for r in range(h.arb.state[S_STAGE_N]):   # staged, not yet flushed
        if meta[0, r] == SRC_GAP:
            marks.append((int(meta[1, r]), int(meta[2, r]), int(meta[3, r])))
    assert marks == [(2, 999, GAP_AUX_RESET)]


def test_a_run_broken_by_the_live_stream_never_resets():
    h = Harness(max_gap_msgs=100, reset_packets=3)
    s = 1
    for _ in range(6):
        h.feed(SRC_A, pkt(50_000, 1))
        h.feed(SRC_A, pkt(50_001, 1))
        h.feed(SRC_B, pkt(s))            # the other line's live packet does not break A's run
        h.feed(SRC_A, pkt(s + 1))        # A's own live packet does
        s += 2
    assert h.c[C.SEQ_RESETS] == 0 and h.seqs() == list(range(1, s))


def test_walk_over_a_huge_gap_is_bounded_by_the_reorder_capacity():
    h = Harness(capacity=8, max_gap_msgs=0, max_holes=4)   # window off: the jump is believed
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(3))                                  # 3 held, 2 missing
    _bounded(lambda: h.feed(SRC_A, pkt(1 << 40)))
    rows = h.rows()
    assert rows[:3] == [(1, SRC_A, rows[0][2]), (2, SRC_GAP, 1), (3, SRC_A, rows[2][2])]
    assert rows[3] == (4, SRC_GAP, (1 << 40) - 8 + 1 - 4)
    assert h.c[C.REORDER_OVERFLOW] == (1 << 40) - 8 + 1 - 1 - 2
    # the rest of the jump is missing on both lines: bounded table, the remainder untracked
    assert h.arb.state[S_N_HOLES] == 4 and h.c[C.HOLES_UNTRACKED] > 0
    _bounded(lambda: h.tick(20_000_000))                   # the deadline: all given up
    h.tick(20_000_000)
    assert h.seqs()[-1] == 1 << 40 and h.arb.state[S_N_HOLES] == 0
    assert h.arb.stats(h.now)["untracked"] == 0


@pytest.fixture
def server_sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(2)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", 0))
    yield s, c
    s.close()
    c.close()


def _requests(srv):
    out = []
    srv.settimeout(0.2)
    try:
        while True:
            r = srv.recv(64)
            out.append((int.from_bytes(r[10:18], "big"), int.from_bytes(r[18:20], "big")))
    except socket.timeout:
        return out


def test_a_long_request_is_split_never_truncated(server_sock):
    srv, cli = server_sock
    rec = make_recovery(srv.getsockname(), cli.fileno(), max_request_msgs=M.MAX_MESSAGES_PER_PACKET)
    sess = np.frombuffer(SESSION, np.uint8).copy()
    assert send_request(rec, sess, 7, 985_575) == 16     # the finding's hole
    got = _requests(srv)
    assert sum(n for _, n in got) == 985_575 and max(n for _, n in got) <= 0xFFFE
    assert got[0] == (7, 0xFFFE) and all(got[i + 1][0] == got[i][0] + got[i][1]
                                         for i in range(len(got) - 1))


def test_full_hole_table_reports_and_never_grows_a_row(server_sock):
    srv, cli = server_sock
    h = Harness(server=srv.getsockname(), fd=cli.fileno(), max_holes=2)   # rows of <= 100
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(500))                           # 2..499 missing: 2 rows, 298 untracked
    assert h.arb.state[S_N_HOLES] == 2 and h.c[C.HOLES_UNTRACKED] == 298
    assert h.arb.holes[1, 1] == 100                   # the last row kept its size
    h.tick(2_000)
    asked = _requests(srv)
    assert asked == [(2, 100), (102, 100)]
    for first, n in asked:                            # the server answers: rows free up
        h.feed(SRC_R, pkt(first, n))
    h.tick(1_000)                                     # the untracked range is reopened
    h.tick(2_000)
    asked = _requests(srv)
    assert asked == [(202, 100), (302, 100)] and h.arb.stats(h.now)["untracked"] == 98
    for first, n in asked:
        h.feed(SRC_R, pkt(first, n))
    h.tick(1_000)
    h.tick(2_000)
    last = _requests(srv)
    assert last == [(402, 98)]
    h.feed(SRC_R, pkt(402, 98))
    assert h.seqs() == list(range(1, 501)) and h.c[C.UNRECOVERABLE] == 0


def test_while_a_range_is_untracked_new_holes_queue_behind_it(server_sock):
    srv, cli = server_sock
    h = Harness(server=srv.getsockname(), fd=cli.fileno(), max_holes=2)   # rows of <= 100
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(500))                           # rows 2.., 102..; 202..499 untracked
    h.tick(2_000)
    assert _requests(srv) == [(2, 100), (102, 100)]
    h.feed(SRC_R, pkt(2, 100))                        # a row frees up...
    h.feed(SRC_A, pkt(600))                           # ...but 501..599 queues behind 202..499
    assert h.arb.state[S_N_HOLES] == 2 and h.c[C.HOLES_UNTRACKED] == 298 + 99
    h.tick(1_000)
    h.tick(2_000)
    assert _requests(srv) == [(202, 100)]             # oldest first, never past a row
    h.feed(SRC_R, pkt(102, 100))
    h.feed(SRC_R, pkt(202, 100))
    for _ in range(12):
        h.tick(1_000)
        h.tick(2_000)
        for first, n in _requests(srv):
            h.feed(SRC_R, pkt(first, n))
    assert h.seqs() == list(range(1, 601))            # all recovered, in order
    assert h.c[C.UNRECOVERABLE] == 0
