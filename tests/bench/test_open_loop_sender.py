"""The one open-loop send core (bench/load/sender.py `send_paced`) on loopback: schedule
kept whatever the receiver does, every message stamped with its scheduled time, loss masks
per line, the stop slot, and the progress slots the three senders report from."""
from __future__ import annotations

import socket
import time

import numpy as np

from tickpath.bench.load import market
from tickpath.bench.load import sender as S
from tickpath.runtime.feed import moldudp64 as mold
from tickpath.runtime.sys.byteorder import load_be48


def _packets(n_msgs=2000):
    m = market.generate(5, n_msgs, 20)
    return market.pack_mold(m, "SENDTEST01", max_messages_per_packet=8)


def _sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.settimeout(2.0)
    return s


def _drain(s, n):
    out = []
    for _ in range(n):
        try:
            out.append(s.recv(65536))
        except socket.timeout:
            break
    return out


def test_rate_schedule_is_the_message_index_over_the_rate():
    msg_first = np.array([0, 3, 10, 11], np.int64)
    assert list(S.rate_schedule(msg_first, 1000.0)) == [0, 3_000_000, 10_000_000, 11_000_000]
    assert list(S.rate_schedule(msg_first, 3e6, first_pkt=1)) == [-1000, 0, 2333, 2666]


def test_two_lines_with_loss_masks_and_stamped_schedule():
    pk = _packets()
    a, b = _sock(), _sock()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        n = pk.n_packets
        drops = np.zeros((2, n), np.uint8)
        drops[0, ::3] = 1                      # line A loses every third packet
        drops[1, 1] = 1
        addrs = S.line_addrs(a.getsockname(), b.getsockname())
        sched = S.rate_schedule(pk.msg_first, 200_000.0)
        prog = np.zeros(S.N_PROGRESS, np.int64)
        buf = pk.buf.copy()
        from tickpath.runtime.engine.pipeline import utc_midnight_ns
        midnight = utc_midnight_ns()
        start = time.clock_gettime_ns(time.CLOCK_REALTIME) + 20_000_000
        sent = S.send_paced(tx.fileno(), addrs, buf, pk.offsets, pk.lengths, pk.msg_first,
                            pk.msg_count, pk.ts_offsets, 0, n, start, sched, 1, midnight,
                            start + 10**10, drops, prog)
        assert sent == n and prog[S.S_NEXT_PKT] == n and prog[S.S_SENT_PKTS] == n
        assert prog[S.S_DROPPED_A] == len(range(0, n, 3)) and prog[S.S_DROPPED_B] == 1
        assert prog[S.S_SENT_MSGS] == pk.msg_count.sum() and prog[S.S_SEND_ERRORS] == 0
        got_a, got_b = _drain(a, n), _drain(b, n)
        assert len(got_a) == n - len(range(0, n, 3)) and len(got_b) == n - 1
        # every message carries its packet's scheduled time (ns since midnight)
        for p in got_b[:20]:
            seq = mold.parse_header(p)[1]
            k = int(np.searchsorted(pk.first_seq, seq))
            arr = np.frombuffer(p, np.uint8)
            ts = load_be48(arr, mold.HEADER_BYTES + 2 + 5)
            assert ts == (start + sched[k] - midnight) & 0xFFFFFFFFFFFF
    finally:
        a.close(), b.close(), tx.close()


def test_stop_slot_and_send_errors():
    pk = _packets(500)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        prog = np.zeros(S.N_PROGRESS, np.int64)
        prog[S.S_STOP] = 1
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        sched = np.zeros(pk.n_packets, np.int64)
        addrs = S.line_addrs(("127.0.0.1", 9))
        assert S.send_paced(tx.fileno(), addrs, pk.buf.copy(), pk.offsets, pk.lengths,
                            pk.msg_first, pk.msg_count, pk.ts_offsets, 0, pk.n_packets, now,
                            sched, 0, 0, now + 10**10, S.NO_DROPS, prog) == 0
        prog[:] = 0                            # a closed fd: every send fails, is counted
        assert S.send_paced(-1, addrs, pk.buf.copy(), pk.offsets, pk.lengths, pk.msg_first,
                            pk.msg_count, pk.ts_offsets, 0, 5, now, sched, 0, 0, now + 10**10,
                            S.NO_DROPS, prog) == 0
        assert prog[S.S_SEND_ERRORS] == 5 and prog[S.S_NEXT_PKT] == 5 and prog[S.S_SENT_MSGS] == 0
    finally:
        tx.close()
