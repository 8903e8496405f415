"""The hot path on hand-made rings (no kernel): parsing, counters, recycling, bounds.

The RX ring, fill ring and UMEM are plain numpy arrays laid out as the kernel lays them
out, so every branch of afxdp_poll is driven deterministically.
"""
from __future__ import annotations

import numpy as np
import pytest

from frames import eth, ipv4, udp_frame
from tickpath.runtime.core import counters as C
from tickpath.runtime.backends.afxdp import poll as P

PORT = 9000
FRAME = 2048
RX_SIZE = 8
FILL_SIZE = 8
N_FRAMES = 16
SRC, DST = "198.18.0.1", "198.18.0.2"
HEADROOM = 256   # the kernel puts packet data after XDP_PACKET_HEADROOM in copy mode


class FakeXsk:
    def __init__(self, slot_bytes=2048, n_slots=8, busy_poll=0):
        self.rx_prod = np.zeros(1, np.uint32)
        self.rx_cons = np.zeros(1, np.uint32)
        self.rx_desc = np.zeros(2 * RX_SIZE, np.uint64)
        self.fill_prod = np.zeros(1, np.uint32)
        self.fill_cons = np.zeros(1, np.uint32)
        self.fill_flags = np.zeros(1, np.uint32)
        self.fill_desc = np.zeros(FILL_SIZE, np.uint64)
        self.umem = np.zeros(N_FRAMES * FRAME, np.uint8)
        self.stash = np.zeros(N_FRAMES, np.int64)
        self.cursors = np.zeros(P.N_CURSORS, np.int64)
        self.params = np.zeros(P.N_PARAMS, np.int64)
        self.params[P.P_FD] = -1
        self.params[P.P_UDP_PORT] = PORT
        self.params[P.P_FRAME_MASK] = ~(FRAME - 1)
        self.params[P.P_RX_MASK] = RX_SIZE - 1
        self.params[P.P_FILL_SIZE] = FILL_SIZE
        self.params[P.P_UMEM_BYTES] = N_FRAMES * FRAME
        self.params[P.P_BUSY_POLL] = busy_poll
        self.counters = C.new_counters()
        self.detail = np.zeros(P.N_DETAIL, np.int64)
        # the kernel holds all frames: the fill ring was consumed entirely
        self.next_frame = 0
        self.payload = np.zeros((n_slots, slot_bytes), np.uint8)
        self.lengths = np.zeros(n_slots, np.int32)
        self.recv_ns = np.zeros(n_slots, np.int64)

    def state(self):
        return P.XskState(self.rx_prod, self.rx_cons, self.rx_desc, self.fill_prod,
                          self.fill_cons, self.fill_flags, self.fill_desc, self.umem, self.stash,
                          self.cursors, self.params, self.counters, self.detail)

    def deliver(self, frame: bytes, addr: int | None = None, length: int | None = None):
        """The kernel's side: copy a frame into a UMEM frame and publish an RX descriptor."""
        if addr is None:
            addr = (self.next_frame % N_FRAMES) * FRAME + HEADROOM
            self.next_frame += 1
            self.umem[addr: addr + len(frame)] = np.frombuffer(frame, np.uint8)
        p = int(self.rx_prod[0])
        self.rx_desc[2 * (p % RX_SIZE)] = addr
        self.rx_desc[2 * (p % RX_SIZE) + 1] = len(frame) if length is None else length
        self.rx_prod[0] = (p + 1) & 0xFFFFFFFF
        return addr

    def poll(self):
        n = P.afxdp_poll(self.state(), self.payload, self.lengths, self.recv_ns)
        # the kernel consumes whatever was put on the fill ring
        self.fill_cons[0] = self.fill_prod[0]
        return n

    def got(self, n):
        return [bytes(self.payload[i, : self.lengths[i]]) for i in range(n)]

    def check_accounting(self):
        d, c = self.detail, self.counters
        assert d[P.D_DESCS] == c[C.FRAMES] + c[C.FRAMES_NOT_FEED] + c[C.FRAMES_DROPPED] + d[P.D_BAD_DESC]


def feed(payload: bytes, **kw) -> bytes:
    return udp_frame(SRC, DST, PORT, payload, **kw)


def test_feed_datagrams_arrive_exact_in_order_and_frames_go_back():
    x = FakeXsk()
    msgs = [bytes([i]) * (i + 1) for i in range(5)]
    addrs = [x.deliver(feed(m)) for m in msgs]
    n = x.poll()
    assert n == 5 and x.got(n) == msgs
    assert x.counters[C.FRAMES] == 5 and x.counters[C.FRAMES_NOT_FEED] == 0
    assert int(x.rx_cons[0]) == 5
    assert (x.recv_ns[:5] > 0).all()
    # every frame went back to the fill ring, as its frame base address
    returned = sorted(int(v) for v in x.fill_desc[:5])
    assert returned == sorted(a - HEADROOM for a in addrs)
    assert int(x.fill_prod[0]) == 5
    x.check_accounting()


def test_never_more_than_the_frame_slots_and_rest_next_poll():
    x = FakeXsk(n_slots=3)
    for i in range(7):
        x.deliver(feed(b"m%d" % i))
    assert x.poll() == 3 and x.got(3) == [b"m0", b"m1", b"m2"]
    assert x.poll() == 3 and x.got(3) == [b"m3", b"m4", b"m5"]
    assert x.poll() == 1 and x.got(1) == [b"m6"]
    assert x.poll() == 0
    assert x.counters[C.EMPTY_POLLS] == 1 and x.counters[C.POLLS] == 4


def test_ring_counters_wrap_at_u32():
    x = FakeXsk()
    start = 0xFFFFFFFE
    x.rx_prod[0] = x.rx_cons[0] = start
    x.fill_prod[0] = x.fill_cons[0] = start
    for i in range(4):
        x.deliver(feed(b"w%d" % i))
    assert int(x.rx_prod[0]) == 2          # wrapped
    n = x.poll()
    assert x.got(n) == [b"w0", b"w1", b"w2", b"w3"]
    assert int(x.rx_cons[0]) == 2 and int(x.fill_prod[0]) == 2


@pytest.mark.parametrize("frame, detail_slot, counter", [
    (b"\x00" * 10, P.D_SHORT, C.FRAMES_NOT_FEED),                               # shorter than Ethernet
    (eth(0x0800, b"\x45" + b"\x00" * 10), P.D_SHORT, C.FRAMES_NOT_FEED),         # IPv4 header cut
    (eth(0x8100, b"\x00\x05"), P.D_SHORT, C.FRAMES_NOT_FEED),                    # VLAN tag cut
    (eth(0x0806, b"\x00" * 28), P.D_NOT_IPV4, C.FRAMES_NOT_FEED),                # ARP
    (eth(0x86DD, b"\x60" + b"\x00" * 60), P.D_NOT_IPV4, C.FRAMES_NOT_FEED),      # IPv6
    (eth(0x8100, b"\x00\x05\x81\x00" + b"\x00" * 40), P.D_NOT_IPV4, C.FRAMES_NOT_FEED),  # QinQ
    (eth(0x0800, ipv4(SRC, DST, 6, b"\x00" * 20)), P.D_NOT_UDP, C.FRAMES_NOT_FEED),      # TCP
    (udp_frame(SRC, DST, PORT + 1, b"x"), P.D_WRONG_PORT, C.FRAMES_NOT_FEED),
    (udp_frame(SRC, DST, PORT, b"frag", frag=0x2000), P.D_FRAGMENTS, C.FRAMES_DROPPED),  # MF, feed
    (udp_frame(SRC, DST, PORT, b"frag", frag=0x0010), P.D_FRAGMENTS, C.FRAMES_NOT_FEED), # offset
    (udp_frame(SRC, DST, PORT, b"a" * 100), P.D_OVERSIZE, C.FRAMES_DROPPED),     # > 64-byte slot
])
def test_frames_that_are_not_feed_are_counted_and_recycled(frame, detail_slot, counter):
    x = FakeXsk(slot_bytes=64)
    addr = x.deliver(frame)
    x.deliver(feed(b"after"))
    n = x.poll()
    assert x.got(n) == [b"after"]               # the bad frame did not stop the good one
    assert x.detail[detail_slot] == 1
    assert x.counters[counter] == 1
    assert addr - HEADROOM in [int(v) for v in x.fill_desc[:2]]   # recycled
    x.check_accounting()


def test_truncated_ip_and_udp_lengths_are_short_frames():
    x = FakeXsk()
    good = bytearray(feed(b"payload!"))
    ip_too_long = bytearray(good); ip_too_long[16:18] = (999).to_bytes(2, "big")
    udp_too_long = bytearray(good); udp_too_long[38:40] = (200).to_bytes(2, "big")
    udp_too_short = bytearray(good); udp_too_short[38:40] = (4).to_bytes(2, "big")
    bad_ihl = bytearray(good); bad_ihl[14] = 0x43
    for f in (ip_too_long, udp_too_long, udp_too_short, bad_ihl):
        x.deliver(bytes(f))
    assert x.poll() == 0
    assert x.detail[P.D_SHORT] == 4 and x.counters[C.FRAMES_NOT_FEED] == 4
    x.check_accounting()


def test_vlan_tagged_feed_is_delivered_and_counted():
    x = FakeXsk()
    x.deliver(feed(b"tagged", vlan=100))
    assert x.got(x.poll()) == [b"tagged"]
    assert x.detail[P.D_VLAN] == 1


def test_ip_options_and_ethernet_padding_use_ip_lengths():
    x = FakeXsk()
    f = feed(b"opt", options=b"\x01\x01\x01\x00") + b"\x00" * 20   # NOP options + pad
    x.deliver(f)
    assert x.got(x.poll()) == [b"opt"]


def test_descriptor_outside_umem_is_a_receive_error_not_a_crash():
    x = FakeXsk()
    x.deliver(b"", addr=N_FRAMES * FRAME + 100, length=60)     # beyond the UMEM
    x.deliver(b"", addr=FRAME - 10, length=60)                  # runs into the next frame
    x.deliver(feed(b"ok"))
    assert x.got(x.poll()) == [b"ok"]
    assert x.detail[P.D_BAD_DESC] == 2 and x.counters[C.RECV_ERRORS] == 2
    x.check_accounting()


def test_full_fill_ring_keeps_frames_in_stash_until_room():
    x = FakeXsk()
    for i in range(6):
        x.deliver(feed(b"s%d" % i))
    x.fill_prod[0] = 4                      # fill ring holds 4 the kernel has not taken yet
    x.fill_cons[0] = 0
    n = P.afxdp_poll(x.state(), x.payload, x.lengths, x.recv_ns)
    assert n == 6
    assert int(x.fill_prod[0]) == 8 and x.cursors[P.C_STASH_TOP] == 2   # 4 fit, 2 wait
    x.fill_cons[0] = 8                      # kernel took them
    P.afxdp_poll(x.state(), x.payload, x.lengths, x.recv_ns)
    assert int(x.fill_prod[0]) == 10 and x.cursors[P.C_STASH_TOP] == 0


def test_need_wakeup_flag_triggers_a_kick():
    x = FakeXsk()
    x.poll()
    assert x.detail[P.D_KICKS] == 0
    x.fill_flags[0] = 1                     # XDP_RING_NEED_WAKEUP
    x.poll()
    assert x.detail[P.D_KICKS] == 1
    assert x.detail[P.D_KICK_ERRORS] == 1   # fd -1 here: recvfrom fails, counted, no crash
