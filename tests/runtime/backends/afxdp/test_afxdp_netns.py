"""AF_XDP for real: a veth pair between two network namespaces made by each test.

The sender lives in the tx namespace (a kernel UDP socket, or an AF_PACKET socket for
hand-made frames); the AF_XDP backend opens on vrx inside the rx namespace (generic/skb
copy mode, what veth offers). Each test removes its namespaces even when it fails.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import frames as F
from netns import VethPair, netns_unavailable_reason
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64
from tickpath.runtime.backends.afxdp import bpf as B
from tickpath.runtime.backends.afxdp.attach import _netlink_set, current_xdp
from tickpath.runtime.backends.afxdp.backend import AfxdpBackend
from tickpath.runtime.backends.afxdp.config import AfxdpConfig
from tickpath.runtime.backends.afxdp.layout import XDP_FLAGS_SKB_MODE
from tickpath.runtime.feed.decoder import decode_frames, new_mold_state
from tickpath.runtime.core.errors import BackendError, ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE

pytestmark = pytest.mark.netns
PORT = 26400


@pytest.fixture
def pair():
    why = netns_unavailable_reason()
    if why:
        pytest.skip(why)
    try:
        socket.socket(44, socket.SOCK_RAW, 0).close()
    except OSError as exc:
        pytest.skip(f"AF_XDP sockets unavailable here: {exc}")
    p = VethPair().open()
    try:
        yield p
    finally:
        p.close()
        assert not p.exists(), "namespaces left behind"


def open_rx(pair, **kw) -> AfxdpBackend:
    cfg = dict(interface=pair.if_rx, udp_port=PORT, mode="skb")
    cfg.update(kw)
    with pair.inside(pair.ns_rx):
        return AfxdpBackend(AfxdpConfig(**cfg)).open()


def udp_sender(pair) -> socket.socket:
    with pair.inside(pair.ns_tx):
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def raw_sender(pair) -> socket.socket:
    with pair.inside(pair.ns_tx):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((pair.if_tx, 0))
        return s


class Receiver:
    def __init__(self, backend, n_slots=64, slot_bytes=2048):
        self.b = backend
        self.payload = np.zeros((n_slots, slot_bytes), np.uint8)
        self.lengths = np.zeros(n_slots, np.int32)
        self.recv_ns = np.zeros(n_slots, np.int64)

    def take(self, want: int, timeout_s: float = 5.0, settle_s: float = 0.05):
        """Poll until `want` payloads arrived (then a short settle for extras) or timeout."""
        out, stamps = [], []
        deadline = None
        settle_end = None
        while deadline is None or time.monotonic() < deadline:
            n = self.b.poll(self.b.state, self.payload, self.lengths, self.recv_ns)
            # the clock starts after the first poll returns: compiling it is not receive time
            deadline = deadline or time.monotonic() + timeout_s
            for i in range(n):
                out.append(bytes(self.payload[i, : self.lengths[i]]))
                stamps.append(int(self.recv_ns[i]))
            if len(out) >= want:
                settle_end = settle_end or time.monotonic() + settle_s
                if time.monotonic() >= settle_end:
                    break
            elif n == 0:
                time.sleep(0.0005)
        return out, stamps


def itch_packets(n_packets: int, per_packet: int = 3) -> list[bytes]:
    pkts, seq = [], 1
    for p in range(n_packets):
        msgs = []
        for m in range(per_packet):
            k = p * per_packet + m
            msgs.append(itch.encode_add(locate=1 + k % 7, tracking=k % 100, ts_ns=34_200_000_000_000 + k,
                                        order_ref=1000 + k, side="B" if k % 2 else "S",
                                        shares=100 + k, stock="TICK", price=1_000_000 + k))
        pkts.append(moldudp64.mold_packet("SESSION001", seq, msgs))
        seq += len(msgs)
    return pkts


def decode(pkts: list[bytes], recv_ns) -> np.ndarray:
    payload = np.zeros((len(pkts), 2048), np.uint8)
    lengths = np.zeros(len(pkts), np.int32)
    for i, p in enumerate(pkts):
        payload[i, : len(p)] = np.frombuffer(p, np.uint8)
        lengths[i] = len(p)
    mold, sess = new_mold_state()
    events = np.zeros(len(pkts) * 8, EVENT_DTYPE)
    counters = C.new_counters()
    n = decode_frames(payload, lengths, len(pkts), np.asarray(recv_ns, np.int64), mold, sess,
                      events, 0, counters)
    return events[:n]


def test_itch_stream_arrives_exact_in_order_and_decodes_the_same(pair):
    pkts = itch_packets(300)
    tx = udp_sender(pair)
    b = open_rx(pair)
    try:
        assert b.stats()["xdp_mode"] == "skb" and b.stats()["copy_mode"] == "copy"
        r = Receiver(b)
        for p in pkts:
            tx.sendto(p, (pair.ip_rx, PORT))
        got, stamps = r.take(len(pkts))
        assert got == pkts                                  # every byte, in order, nothing extra
        st = b.stats()
        assert st["frames"] == 300 and st["frames_not_feed"] == 0 and st["frames_dropped"] == 0
        assert st["xdp"]["rx_dropped"] == 0 and st["xdp"]["rx_invalid_descs"] == 0
        ev_rx = decode(got, stamps)
        ev_ref = decode(pkts, np.zeros(len(pkts)))
        assert len(ev_rx) == 900
        for name in EVENT_DTYPE.names:
            if name != "ts_recv":
                assert (ev_rx[name] == ev_ref[name]).all(), name
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        assert ((ev_rx["ts_recv"] > now - 60e9) & (ev_rx["ts_recv"] <= now)).all()
    finally:
        b.close()
        tx.close()
    with pair.inside(pair.ns_rx):
        assert current_xdp(b.attachment.ifindex if b.attachment else _ifindex(pair))["prog_id"] == 0


def _ifindex(pair) -> int:
    with pair.inside(pair.ns_rx):
        return socket.if_nametoindex(pair.if_rx)


def test_more_datagrams_than_frames_recycle_through_the_fill_ring(pair):
    tx = udp_sender(pair)
    b = open_rx(pair, rx_ring_size=256, fill_ring_size=256, n_frames=512)
    try:
        r = Receiver(b)
        total = 0
        for batch in range(12):                  # 12 * 200 = 2400 datagrams through 512 frames
            pkts = [b"%06d" % (batch * 200 + i) + b"x" * (i % 50) for i in range(200)]
            for p in pkts:
                tx.sendto(p, (pair.ip_rx, PORT))
            got, _ = r.take(200, settle_s=0)
            assert got == pkts
            total += len(got)
        st = b.stats()
        assert total == 2400 and st["frames"] == 2400
        assert st["xdp"]["rx_dropped"] == 0 and st["xdp"]["rx_ring_full"] == 0
    finally:
        b.close()
        tx.close()


def test_non_feed_frames_are_counted_and_recycled(pair):
    raw = raw_sender(pair)
    b = open_rx(pair, filter_program=False)       # every frame reaches the hot path
    src, dst = pair.ip_tx, pair.ip_rx
    bad = {
        "arp": F.eth(0x0806, b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\x00" * 20),
        "tcp": F.eth(0x0800, F.ipv4(src, dst, 6, b"\x00" * 20)),
        "wrong_port": F.udp_frame(src, dst, PORT + 1, b"other"),
        "first_fragment": F.udp_frame(src, dst, PORT, b"frag-head", frag=0x2000),
        "later_fragment": F.eth(0x0800, F.ipv4(src, dst, 17, b"frag-tail", frag=0x0003)),
        "short": F.eth(0x0800, b"\x45\x00\x00\x30\x00\x01"),
        "qinq": F.eth(0x8100, b"\x00\x05\x81\x00\x00\x06\x08\x00" + b"\x00" * 40),
    }
    try:
        r = Receiver(b)
        for f in bad.values():
            raw.send(f)
        raw.send(F.udp_frame(src, dst, PORT, b"feed-1"))
        raw.send(F.udp_frame(src, dst, PORT, b"feed-vlan", vlan=7))
        got, _ = r.take(2)
        assert got == [b"feed-1", b"feed-vlan"]
        st = b.stats()
        d = st["detail"]
        assert d["rx_descs"] == 9
        assert st["frames"] == 2
        assert st["frames_not_feed"] == 6            # arp tcp wrong_port later_fragment short qinq
        assert st["frames_dropped"] == 1             # the feed's first fragment
        assert d["not_ipv4"] == 2 and d["not_udp"] == 1 and d["wrong_port"] == 1
        assert d["ip_fragments"] == 2 and d["short_frames"] == 1 and d["vlan_frames"] == 2
        # no frame leaked: the fill ring plus the stash hold them all again (the kernel's
        # published consumer may lag its cache, so in_fill can only over-count)
        r_ = b.xsk.rings
        in_fill = (int(r_.fill_producer[0]) - int(r_.fill_consumer[0])) & 0xFFFFFFFF
        assert in_fill + st["frames_in_stash"] >= b.config.n_frames
    finally:
        b.close()
        raw.close()


def test_filter_program_leaves_other_traffic_to_the_kernel(pair):
    tx = udp_sender(pair)
    with pair.inside(pair.ns_rx):
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind((pair.ip_rx, PORT + 1))
        other.settimeout(3)
    b = open_rx(pair, filter_program=True)
    try:
        r = Receiver(b)
        tx.sendto(b"not-for-xdp", (pair.ip_rx, PORT + 1))
        tx.sendto(b"feed", (pair.ip_rx, PORT))
        assert other.recv(100) == b"not-for-xdp"    # passed on by the program
        got, _ = r.take(1)
        assert got == [b"feed"]
        assert b.stats()["frames_not_feed"] == 0 and b.stats()["detail"]["rx_descs"] == 1
    finally:
        b.close()
        other.close()
        tx.close()


def test_setup_errors_in_the_namespace(pair):
    with pytest.raises(ConfigError, match="does not exist"):
        open_rx(pair, interface="vnope")
    with pytest.raises(ConfigError, match="queue_id beyond.*rx_queues=1"):
        open_rx(pair, queue_id=1)
    with pytest.raises(ConfigError, match="UMEM smaller"):
        open_rx(pair, n_frames=100)
    with pytest.raises(ConfigError, match="power of two"):
        open_rx(pair, rx_ring_size=100)
    with pytest.raises(BackendError):
        open_rx(pair, mode="zerocopy")              # veth has no AF_XDP zero-copy
    with pair.inside(pair.ns_rx):                    # nothing left attached by the failures
        assert current_xdp(socket.if_nametoindex(pair.if_rx))["prog_id"] == 0


def test_foreign_program_refused_unless_replace(pair):
    ifindex = _ifindex(pair)
    map_fd = B.create_xskmap(1)
    prog_fd = B.load_xdp(B.redirect_program(map_fd), name="someone_else")
    with pair.inside(pair.ns_rx):
        _netlink_set(ifindex, prog_fd, XDP_FLAGS_SKB_MODE)
        foreign = current_xdp(ifindex)["prog_id"]
    assert foreign == B.prog_id(prog_fd)
    try:
        with pytest.raises(BackendError, match=f"already attached.*prog_id={foreign}"):
            open_rx(pair)
        with pair.inside(pair.ns_rx):
            assert current_xdp(ifindex)["prog_id"] == foreign      # untouched
        b = open_rx(pair, replace_program=True)
        with pair.inside(pair.ns_rx):
            assert current_xdp(ifindex)["prog_id"] not in (0, foreign)
        # a second backend on the same interface is refused: our BPF link cannot be replaced
        with pytest.raises(BackendError):
            open_rx(pair, replace_program=True)
        b.close()
        with pair.inside(pair.ns_rx):
            assert current_xdp(ifindex)["prog_id"] == 0
    finally:
        import os
        os.close(prog_fd)
        os.close(map_fd)


_CHILD = """
import sys, time
from tickpath.runtime.backends.afxdp.backend import AfxdpBackend
from tickpath.runtime.backends.afxdp.config import AfxdpConfig
b = AfxdpBackend(AfxdpConfig(interface=sys.argv[1], udp_port=1234, mode="skb")).open()
print("ready", b.attachment.prog_id, flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize("sig", ["KILL", "TERM", "INT"])
def test_program_detached_when_the_process_dies(pair, sig):
    ifindex = _ifindex(pair)
    child = subprocess.Popen(["ip", "netns", "exec", pair.ns_rx, sys.executable, "-c", _CHILD, pair.if_rx],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().split()
        assert line and line[0] == "ready", child.stderr.read()
        with pair.inside(pair.ns_rx):
            assert current_xdp(ifindex)["prog_id"] == int(line[1])
        subprocess.run(["kill", f"-{sig}", str(child.pid)], check=True)
        child.wait(timeout=10)
        deadline = time.monotonic() + 3
        with pair.inside(pair.ns_rx):
            while current_xdp(ifindex)["prog_id"] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert current_xdp(ifindex)["prog_id"] == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_multicast_group_is_joined_and_received(pair):
    group = "239.18.0.9"
    with pair.inside(pair.ns_tx):
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(pair.ip_tx))
    b = open_rx(pair, feed_address=group)
    try:
        with pair.inside(pair.ns_rx):
            with open("/proc/net/igmp") as f:
                igmp = f.read()
        hexgroup = socket.inet_aton(group)[::-1].hex().upper()
        assert hexgroup in igmp and pair.if_rx in igmp
        r = Receiver(b)
        pkts = [b"mc-%d" % i for i in range(20)]
        for p in pkts:
            tx.sendto(p, (group, PORT))
        got, _ = r.take(20)
        assert got == pkts
    finally:
        b.close()
        tx.close()
    with pair.inside(pair.ns_rx):
        with open("/proc/net/igmp") as f:
            assert socket.inet_aton(group)[::-1].hex().upper() not in f.read()   # left on close


def test_close_then_reopen_on_the_same_queue(pair):
    tx = udp_sender(pair)
    try:
        for k in range(3):                       # the queue must be free again after close()
            b = open_rx(pair)
            try:
                tx.sendto(b"round-%d" % k, (pair.ip_rx, PORT))
                got, _ = Receiver(b).take(1)
                assert got == [b"round-%d" % k]
            finally:
                b.close()
    finally:
        tx.close()
