"""The one network-header parser (runtime/feed/netheaders.py): payloads, every refusal
reason, and no read outside the frame on any truncation or random damage.

The bounds checks run the parser's Python function over a buffer exactly as long as the
frame: Python indexing raises IndexError where the compiled code would read past the end.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

from frames import eth, ipv4, udp, udp_frame
from tickpath.runtime.feed import netheaders as NH

PORT = 9000
SRC, DST = "198.18.0.1", "198.18.0.2"
PAYLOAD = bytes(range(40))


def parse(frame: bytes, link=NH.LINK_ETHERNET, port=PORT, lead: int = 0):
    buf = np.frombuffer(b"\xee" * lead + frame, np.uint8).copy()
    return NH.udp_payload(buf, lead, len(frame), link, port)


def payload_of(frame: bytes, link=NH.LINK_ETHERNET, port=PORT):
    off, n, _d, _v = parse(frame, link, port)
    assert off >= 0, NH.REASON_NAMES.get(off)
    return frame[off:off + n]


def test_plain_vlan_options_and_raw_ipv4_give_the_payload():
    assert payload_of(udp_frame(SRC, DST, PORT, PAYLOAD)) == PAYLOAD
    off, n, dport, vlan = parse(udp_frame(SRC, DST, PORT, PAYLOAD, vlan=7))
    assert (n, dport, vlan) == (len(PAYLOAD), PORT, 1)
    assert payload_of(udp_frame(SRC, DST, PORT, PAYLOAD, options=b"\x01" * 8)) == PAYLOAD
    raw = ipv4(SRC, DST, 17, udp(1, PORT, PAYLOAD))
    assert payload_of(raw, NH.LINK_RAW_IPV4) == PAYLOAD
    # an offset into a bigger buffer: the payload offset is absolute
    off, n, _d, _v = parse(udp_frame(SRC, DST, PORT, PAYLOAD), lead=100)
    assert off == 100 + 14 + 20 + 8 and n == len(PAYLOAD)


def test_padding_after_the_ip_datagram_is_ignored():
    frame = udp_frame(SRC, DST, PORT, b"x") + bytes(30)   # a short frame padded on the wire
    assert payload_of(frame) == b"x"


def test_port_zero_accepts_any_port_and_says_which():
    off, n, dport, _v = parse(udp_frame(SRC, DST, 1234, PAYLOAD), port=0)
    assert off > 0 and dport == 1234


@pytest.mark.parametrize("frame, reason", [
    (udp_frame(SRC, DST, PORT, PAYLOAD)[:13], NH.NH_SHORT),
    (eth(0x8100, b"\x00\x07"), NH.NH_SHORT),                               # tag cut short
    (eth(0x86DD, bytes(60)), NH.NH_NOT_IPV4),
    (eth(0x0806, bytes(28)), NH.NH_NOT_IPV4),
    (eth(0x0800, bytes(10)), NH.NH_SHORT),                                 # IP header cut
    (eth(0x0800, b"\x65" + ipv4(SRC, DST, 17, udp(1, PORT, PAYLOAD))[1:]), NH.NH_NOT_IPV4),
    (eth(0x0800, b"\x44" + ipv4(SRC, DST, 17, udp(1, PORT, PAYLOAD))[1:]), NH.NH_SHORT),  # IHL 4
    (eth(0x0800, ipv4(SRC, DST, 6, bytes(20))), NH.NH_NOT_UDP),
    (udp_frame(SRC, DST, PORT, PAYLOAD, frag=0x2000), NH.NH_FEED_FRAGMENT),  # MF, offset 0
    (udp_frame(SRC, DST, 1234, PAYLOAD, frag=0x2000), NH.NH_FRAGMENT),
    (udp_frame(SRC, DST, PORT, PAYLOAD, frag=0x0010), NH.NH_FRAGMENT),       # a later fragment
    (udp_frame(SRC, DST, 1234, PAYLOAD), NH.NH_WRONG_PORT),
    (udp_frame(SRC, DST, PORT, PAYLOAD)[:-1], NH.NH_SHORT),                 # IP total past the end
])
def test_refusals_name_their_reason(frame, reason):
    assert parse(frame)[0] == reason


def test_bad_udp_lengths_are_short():
    good = udp_frame(SRC, DST, PORT, PAYLOAD)
    for ulen in (0, 7, 8 + len(PAYLOAD) + 1, 0xFFFF):
        bad = good[:38] + struct.pack("!H", ulen) + good[40:]
        assert parse(bad)[0] == NH.NH_SHORT, ulen
    bad = good[:38] + struct.pack("!H", 8) + good[40:]          # an empty datagram is fine
    assert parse(bad)[:2] == (14 + 28, 0)


def _no_read_past(frame: bytes, link=NH.LINK_ETHERNET, port=PORT):
    buf = np.frombuffer(frame, np.uint8).copy()
    py = NH.udp_payload.py_func(buf, 0, len(frame), link, port)   # IndexError = a read past
    jit = NH.udp_payload(buf, 0, len(frame), link, port)
    assert tuple(int(v) for v in py) == tuple(int(v) for v in jit)
    off, n = int(py[0]), int(py[1])
    if off >= 0:
        assert off + n <= len(frame)
    return off


def test_every_truncation_reads_inside_the_frame():
    for frame, link in ((udp_frame(SRC, DST, PORT, PAYLOAD, vlan=3, options=b"\x01" * 4),
                         NH.LINK_ETHERNET),
                        (ipv4(SRC, DST, 17, udp(1, PORT, PAYLOAD)), NH.LINK_RAW_IPV4)):
        for k in range(len(frame)):
            assert _no_read_past(frame[:k], link) < 0
        assert _no_read_past(frame, link) >= 0


def test_random_damage_reads_inside_the_frame():
    rng = np.random.default_rng(12)
    base = np.frombuffer(udp_frame(SRC, DST, PORT, PAYLOAD, vlan=3), np.uint8)
    outcomes = set()
    for _ in range(3000):
        f = base.copy()
        idx = rng.integers(0, 50, size=rng.integers(1, 4))   # the header bytes
        f[idx] = rng.integers(0, 256, size=idx.shape[0])
        cut = int(rng.integers(0, len(f) + 1))
        outcomes.add(_no_read_past(f[:cut].tobytes()))
    assert {NH.NH_SHORT, NH.NH_NOT_IPV4}.issubset(outcomes) and max(outcomes) > 0
