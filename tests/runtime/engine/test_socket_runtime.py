"""The main job's path end to end on loopback: open-loop sender → kernel-socket backend
(recvmmsg from numba) → decoder → books → indicators → out ring, checked against an offline
decode of exactly the bytes that were sent; plus the backend's bad inputs, multicast in a
test-made network namespace, stop latency and backend failure."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tickpath.bench.load.market import generate, pack_mold
from tickpath.bench.load.sender import Sender
from tickpath.runtime.book import orderbook as book
from tickpath.runtime.config import schema as config
from tickpath.runtime.core import counters as C
from tickpath.runtime.book.layout import new_books
from tickpath.runtime.feed.decoder import decode_buffer, new_mold_state
from tickpath.runtime.core.errors import BackendError, ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.ipc.ring import pop_into
from tickpath.runtime.engine.runner import Runtime
from tickpath.runtime.backends.socket import SocketBackend, socket_poll

from netns import VethPair, netns_unavailable_reason  # noqa: E402

SESSION = "TESTSESS01"
N_INSTR = 40


@pytest.fixture(scope="module")
def feed():
    m = generate(11, 30_000, N_INSTR)
    return pack_mold(m, SESSION, max_messages_per_packet=3)


def _cfg(**over):
    base = {"feed": {"port": 0, "session": SESSION}, "cores": {"rx": [sorted(os.sched_getaffinity(0))[-1]]},
            "idle": {"strategy": "backoff"}, "book": {"instruments": N_INSTR + 1, "max_orders": 1 << 16},
            "buffers": {"ring_capacity": 1 << 16, "ring_policy": "wait"}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    return config.merge(base)


def _offline(buf, packets):
    """Decode the sent (stamped) bytes without any socket: the reference."""
    events = np.zeros(packets.msg_count.sum() + packets.n_packets + 8, EVENT_DTYPE)
    mold, sess = new_mold_state(SESSION)
    cnt = C.new_counters()
    recv = np.zeros(packets.n_packets, np.int64)
    n = decode_buffer(buf, packets.offsets, packets.lengths, 0, packets.n_packets, recv, mold, sess,
                      events, 0, cnt)
    return events[:n], cnt


def test_feed_end_to_end_equals_offline_decode(feed):
    with Runtime(_cfg()) as rt:
        rt.open().start()
        s = Sender(feed, "127.0.0.1", rt.backend.port, 50_000, max_seconds=30)
        s.start()
        got = np.zeros(40_000, EVENT_DTYPE)
        n = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            n += pop_into(rt.pipe.ring.hdr, rt.pipe.ring.data, got[n:])
            if s.done() and rt.pipe.counters[C.MESSAGES] >= s.stats()["sent_messages"]:
                n += pop_into(rt.pipe.ring.hdr, rt.pipe.ring.data, got[n:])
                if rt.pipe.ring.stats()["read"] == rt.pipe.ring.stats()["written"]:
                    break
            time.sleep(0.002)
        s.close()
        rt.stop()
        ref, ref_cnt = _offline(s.buf, feed)
        c = rt.pipe.counters
        assert s.stats()["send_errors"] == 0
        assert c[C.MESSAGES] == feed.msg_count.sum() == ref_cnt[C.MESSAGES]
        assert c[C.GAPS] == 0 and c[C.DUPLICATES] == 0 and c[C.MALFORMED_PACKETS] == 0
        assert rt.backend.kernel_drops() == 0
        assert n == len(ref)
        got = got[:n].copy()
        assert (got["ts_recv"] > 0).all()
        got["ts_recv"] = 0
        assert got.tobytes() == ref.tobytes()
        # books: the runtime's equal an offline replay of the same events
        off = new_books(N_INSTR + 1, 1 << 16, 64)
        book.book_apply_all(off, ref, C.new_counters())
        for loc in range(1, N_INSTR + 1):
            assert book.best_bid(rt.pipe.books, loc) == book.best_bid(off, loc)
            assert book.best_ask(rt.pipe.books, loc) == book.best_ask(off, loc)
        # indicators were updated and latency was recorded for every message
        assert np.isfinite(rt.pipe.out[1:, 0]).any()
        assert c[C.LATENCY_RECORDED] == c[C.EVENTS] - c[C.GAPS]
        lat = rt.latency()
        assert lat["count"] == c[C.LATENCY_RECORDED] and lat["p50"] > 0


def test_late_join_and_foreign_session_are_counted(feed):
    with Runtime(_cfg()) as rt:
        rt.open().start()
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for k in (5, 6):  # packets 0-4 never sent: a gap
            tx.sendto(feed.packet(k), ("127.0.0.1", rt.backend.port))
        foreign = b"OTHERSESS1" + feed.packet(7)[10:]
        tx.sendto(foreign, ("127.0.0.1", rt.backend.port))
        tx.sendto(b"short", ("127.0.0.1", rt.backend.port))
        deadline = time.monotonic() + 10
        while rt.pipe.counters[C.PACKETS] < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        rt.stop()
        c = rt.counters()
        tx.close()
    assert c["gaps"] == 1 and c["gap_messages"] == int(feed.msg_first[5])
    assert c["wrong_session"] == 1 and c["malformed_packets"] == 1


def test_oversize_datagram_is_counted_not_read_past_the_slot():
    b = SocketBackend("127.0.0.1", 0)
    payload = np.zeros((4, 128), np.uint8)
    lengths = np.zeros(4, np.int32)
    ts = np.zeros(4, np.int64)
    b.open(payload)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # after an empty poll one datagram comes by recv(), then the rest as a recvmmsg batch:
    # an oversize datagram is -1 (MSG_TRUNC) on either path
    for sizes in ((100, 500, 7), (500, 100, 9)):
        assert socket_poll(b.state, payload, lengths, ts) == 0
        for k in sizes:
            tx.sendto(b"a" * k, ("127.0.0.1", b.port))
        time.sleep(0.05)
        assert socket_poll(b.state, payload, lengths, ts) == 1          # recv()
        first = lengths[0]
        assert socket_poll(b.state, payload, lengths, ts) == 2          # recvmmsg
        want = [k if k <= 128 else -1 for k in sizes]
        assert [first, lengths[0], lengths[1]] == want
    assert socket_poll(b.state, payload, lengths, ts) == 0
    assert b.counters[C.FRAMES] == 6 and b.counters[C.EMPTY_POLLS] == 3
    b.close()
    tx.close()


@pytest.mark.parametrize("kw, words", [
    (dict(address="not-an-ip"), "not an IPv4"),
    (dict(address="::1"), "only IPv4"),
    (dict(port=70000), "port out of range"),
    (dict(busy_poll_us=-1), "busy_poll_us"),
])
def test_socket_backend_bad_config(kw, words):
    with pytest.raises(ConfigError, match=words):
        SocketBackend(**kw)


def test_socket_backend_bad_interface_and_buffer():
    with pytest.raises(ConfigError, match="interface does not exist"):
        SocketBackend("127.0.0.1", 0, interface="nosuchif0").open(np.zeros((2, 64), np.uint8))
    with pytest.raises(ConfigError, match="frame buffer"):
        SocketBackend("127.0.0.1", 0).open(np.zeros(128, np.uint8))


def test_stop_within_100ms_and_backend_failure_is_reported():
    rt = Runtime(_cfg(idle={"strategy": "backoff", "max_park_ns": 1_000_000}))
    rt.open().start()
    time.sleep(0.3)  # parked at the longest backoff by now
    t0 = time.monotonic()
    rt.stop()
    assert time.monotonic() - t0 < 0.1
    rt.close()
    # a socket closed under the loop: recvmmsg fails with EBADF, the loop ends, join reports it
    before = os.sched_getaffinity(0)
    rt = Runtime(_cfg())
    rt.open().start()
    os.close(rt.backend.sock.detach())
    deadline = time.monotonic() + 5
    while rt.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not rt.running
    with pytest.raises(BackendError, match="EBADF"):
        rt.stop()
    assert os.sched_getaffinity(0) == before   # a failed loop's stop gives the CPUs back too
    rt.backend.sock = None
    rt.close()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="keeping threads off the rx CPU needs two CPUs")
@pytest.mark.parametrize("off", [True, False])
def test_other_threads_stay_off_the_rx_cpu_while_the_loop_runs(off):
    before = os.sched_getaffinity(0)
    rx = sorted(before)[-1]
    rt = Runtime(_cfg(cores={"rx": [rx], "others_off_rx": off}))
    try:
        rt.open().start()
        assert os.sched_getaffinity(rt.rx_tid) == {rx}                  # the loop: pinned
        assert os.sched_getaffinity(0) == (before - {rx} if off else before)
        kept = rt.stats()["threads_kept_off_rx"]
        assert kept >= 1 if off else kept == 0
        rt.stop()
        assert os.sched_getaffinity(0) == before                        # given back at stop
    finally:
        rt.close()
        os.sched_setaffinity(0, before)


def test_multicast_feed_in_a_test_made_namespace(feed):
    why = netns_unavailable_reason()
    if why:
        pytest.skip(why)
    group = "239.18.0.7"
    with VethPair() as v:
        with v.inside(v.ns_rx):
            rt = Runtime(_cfg(feed={"address": group, "port": 0}, nic={"interface": v.if_rx}))
            rt.open()
        rt.start()
        port = rt.backend.port
        with v.inside(v.ns_tx):
            s = Sender(feed, group, port, 50_000, max_seconds=20, interface_addr=v.ip_tx)
        s.start(n_pkts=200)
        deadline = time.monotonic() + 20
        want = int(feed.msg_count[:200].sum())
        while rt.pipe.counters[C.MESSAGES] < want and time.monotonic() < deadline:
            time.sleep(0.01)
        s.close()
        rt.stop()
        c = rt.counters()
        rt.close()
    assert c["messages"] == want and c["gaps"] == 0
