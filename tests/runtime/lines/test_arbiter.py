"""A/B arbitration semantics, single-threaded and deterministic: the arbiter fed packet by
packet, its in-order output recorded by a jitted test sink (no sockets, no decoder)."""
from __future__ import annotations

import socket

import pytest

from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.lines.arbiter import SRC_A, SRC_B, SRC_GAP, SRC_R, Arbiter
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.lines.recovery import make_recovery

from arbiter_harness import SESSION, Harness, msg, pkt  # noqa: E402  (tests/support)


def test_each_sequence_once_from_the_first_line():
    h = Harness()
    for s in range(1, 21, 2):          # packets of 2; A loses 5-6, B loses 11-12
        if s != 5:
            h.feed(SRC_A, pkt(s, 2))
        if s != 11:
            h.feed(SRC_B, pkt(s, 2))
    assert h.seqs() == list(range(1, 21))
    srcs = {r[0]: r[1] for r in h.rows()}
    assert srcs[5] == srcs[6] == SRC_B and srcs[11] == SRC_A and srcs[1] == SRC_A
    assert h.c[C.ARB_FIRST_A] == 18 and h.c[C.ARB_FIRST_B] == 2
    assert h.c[C.ARB_DUP_B] == 16 and h.c[C.ARB_DUP_A] == 0
    assert h.c[C.UNRECOVERABLE] == 0 and h.arb.held() == 0


def test_line_b_ahead_is_held_and_delivered_in_order():
    h = Harness()
    for s in (1, 2, 3):
        h.feed(SRC_A, pkt(s))
    for s in (5, 6, 4):                 # B brings 5 and 6 before anybody brings 4
        h.feed(SRC_B, pkt(s))
    assert h.seqs() == [1, 2, 3, 4, 5, 6]
    assert [r[2] for r in h.rows()] == [msg(s)[0] for s in range(1, 7)]


def test_missing_on_both_without_server_becomes_a_gap_at_the_deadline():
    h = Harness()
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(4))               # 2, 3 missing on both
    assert h.seqs() == [1]
    h.tick(2_000)                       # past the arbitration wait: declared missing
    assert h.c[C.ARB_MISSING_BOTH] == 2 and h.c[C.UNRECOVERABLE] == 0
    h.tick(20_000_000)                  # past the deadline
    assert h.rows()[1] == (2, SRC_GAP, 2) and h.seqs() == [1, 4]
    assert h.c[C.UNRECOVERABLE] == 2 and h.c[C.UNRECOVERABLE_GAPS] == 1
    h.feed(SRC_B, pkt(2))               # too late: a duplicate, not a second delivery
    assert h.seqs() == [1, 4] and h.c[C.ARB_DUP_B] == 1


def test_a_hole_the_other_line_fills_is_never_requested():
    h = Harness()
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(3))
    h.feed(SRC_B, pkt(2))
    h.tick(20_000_000)
    assert h.seqs() == [1, 2, 3] and h.c[C.ARB_MISSING_BOTH] == 0 and h.arb.state[3] == 0


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


def test_request_retry_and_recovery(server_sock):
    srv, cli = server_sock
    h = Harness(server=srv.getsockname(), fd=cli.fileno())
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(5))
    h.tick(2_000)
    req, peer = srv.recvfrom(64)
    assert req == SESSION + (2).to_bytes(8, "big") + (3).to_bytes(2, "big") and peer == cli.getsockname()
    assert h.c[C.RETRANS_REQUESTS] == 1
    h.tick(500_000)
    assert h.c[C.RETRANS_RETRIES] == 0
    h.tick(600_000)                     # past timeout_ns: sent again
    assert srv.recvfrom(64)[0] == req and h.c[C.RETRANS_RETRIES] == 1
    h.feed(SRC_R, pkt(2, 3))
    assert h.seqs() == [1, 2, 3, 4, 5]
    assert [r[1] for r in h.rows()][1:4] == [SRC_R] * 3
    assert h.c[C.RECOVERED] == 3 and h.c[C.ARB_MISSING_BOTH] == 3 and h.c[C.UNRECOVERABLE] == 0
    h.feed(SRC_R, pkt(2, 3))            # the answer to the retry: already had
    assert h.c[C.RETRANS_DUPLICATES] == 3 and h.seqs() == [1, 2, 3, 4, 5]


def test_bad_responses_are_counted_and_ignored(server_sock):
    srv, cli = server_sock
    h = Harness(server=srv.getsockname(), fd=cli.fileno())
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(5))
    h.tick(2_000)
    h.feed(SRC_R, pkt(2, 3, session=b"OTHERSESS1"))
    assert h.c[C.RETRANS_WRONG_SESSION] == 1
    h.feed(SRC_R, pkt(40, 2))           # never asked for
    assert h.c[C.RETRANS_UNASKED] == 2
    h.feed(SRC_R, pkt(2, 3)[:-4])       # truncated: the last message runs past the end
    assert h.c[C.RETRANS_TRUNCATED] == 1
    h.feed(SRC_R, pkt(2)[:12])          # shorter than the header
    assert h.c[C.RETRANS_TRUNCATED] == 2
    assert h.seqs() == [1, 2, 3]        # the intact messages before the damage are used
    h.tick(20_000_000)                  # retries exhausted, deadline: 4 given up, 5 delivered
    assert h.rows()[3] == (4, SRC_GAP, 1) and h.seqs() == [1, 2, 3, 5]
    assert h.c[C.RETRANS_RETRIES] <= 2 and h.c[C.UNRECOVERABLE] == 1


def test_outstanding_requests_are_capped(server_sock):
    srv, cli = server_sock
    h = Harness(server=srv.getsockname(), fd=cli.fileno())
    for s in range(1, 30, 3):           # holes 2-3, 5-6, ... : 9 holes, cap 4
        h.feed(SRC_A, pkt(s))
    h.tick(2_000)
    assert h.c[C.RETRANS_REQUESTS] == 4 and h.c[C.ARB_MISSING_BOTH] == 18


def test_window_overflow_forces_gaps_counted():
    h = Harness(capacity=8)
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, pkt(3))
    h.feed(SRC_A, pkt(20))              # 12 beyond the 8-slot window
    assert h.seqs() == [1, 3] and (2, SRC_GAP, 1) in h.rows()
    assert (4, SRC_GAP, 9) in h.rows()
    assert h.c[C.REORDER_OVERFLOW] == 10 and h.c[C.UNRECOVERABLE] == 10
    h.feed(SRC_A, pkt(13))
    assert h.seqs() == [1, 3, 13] and h.arb.held() == 1  # 14..19 still awaited, 20 held


def test_heartbeat_reveals_lost_tail_and_stale_feed_is_counted():
    h = Harness(stale_ns=5_000_000)
    h.feed(SRC_A, pkt(1))
    h.feed(SRC_A, M.mold_heartbeat(SESSION, 4))   # 2, 3 were sent: lost on both lines
    h.tick(2_000)
    assert h.c[C.ARB_MISSING_BOTH] == 2 and h.c[C.HEARTBEATS] == 1
    h.tick(6_000_000)
    assert h.c[C.STALE_FEED] == 1 and h.arb.stats(h.now)["stale"]
    h.tick(1_000_000)
    assert h.c[C.STALE_FEED] == 1       # once per silence
    h.feed(SRC_B, M.mold_heartbeat(SESSION, 4))
    assert not h.arb.stats(h.now)["stale"]
    h.tick(20_000_000)
    assert h.c[C.STALE_FEED] == 2


def test_bad_line_packets_are_counted():
    h = Harness(session=SESSION)
    h.feed(SRC_A, b"short")
    h.feed(SRC_A, pkt(1, session=b"ELSEWHERE1"))
    h.feed(SRC_A, pkt(1, 2)[:-3])
    assert h.c[C.MALFORMED_PACKETS] == 2 and h.c[C.WRONG_SESSION] == 1
    assert h.seqs() == [1]


def test_message_longer_than_a_slot_stays_a_hole():
    h = Harness(slot_bytes=8)
    h.feed(SRC_A, pkt(2))               # 9 bytes, ahead of next: cannot be held
    assert h.c[C.REORDER_OVERFLOW] == 1 and h.arb.held() == 0
    h.feed(SRC_B, pkt(1))
    h.feed(SRC_B, pkt(2))               # in order: delivered straight, no slot needed
    assert h.seqs() == [1, 2]


@pytest.mark.parametrize("kw", [dict(capacity=0), dict(slot_bytes=4), dict(wait_ns=-1),
                                dict(stage_bytes=100), dict(max_holes=0), dict(first_seq=-2)])
def test_bad_arbiter_settings(kw):
    with pytest.raises(ConfigError):
        Arbiter(**kw)


@pytest.mark.parametrize("kw", [dict(timeout_ns=10), dict(retries=-1), dict(max_outstanding=0),
                                dict(server=("nohost", 1), fd=3), dict(server=("127.0.0.1", 0), fd=3),
                                dict(server=("127.0.0.1", 9), fd=-1), dict(deadline_ns=2_000_000, wait_ns=5_000_000)])
def test_bad_recovery_settings(kw):
    with pytest.raises(ConfigError):
        make_recovery(**kw)
