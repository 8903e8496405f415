"""The loopback tap's reassembly: an answer split over two TCP segments is stamped with the
segment that carried its first byte; non-digit ClOrdIDs (the triggers) are not answers."""
from __future__ import annotations

import struct

from tickpath.bench.t2t.floor import order_packet
from tickpath.bench.t2t.tap import Tap


def _frame(sport: int, seq: int, payload: bytes) -> bytes:
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 20 + len(payload), 0, 0, 64, 6, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    tcp = struct.pack(">HHIIBBHHH", sport, 26500, seq, 0, 5 << 4, 0x18, 65535, 0, 0)
    return b"\x00" * 12 + b"\x08\x00" + ip + tcp + payload


def _answer(clordid: int) -> bytes:
    p = bytearray(order_packet("AAAA", 10000))
    p[34:48] = str(clordid).rjust(14, "0").encode()
    return bytes(p)


def test_split_answers_take_their_first_segments_stamp():
    t = Tap.__new__(Tap)              # no socket: feed frames by hand
    t.answers, t.by_uref, t.duplicates, t.segments, t.resyncs, t.flows = {}, {}, 0, 0, 0, {}
    a1, a2 = _answer(101), _answer(102)
    trigger = bytearray(order_packet("AAAA", 10000))
    trigger[34:48] = b"TRIGGER".ljust(14)
    stream = a1 + a2[:10]
    t._segment(_frame(40000, 1, stream), ts=1_000)
    t._segment(_frame(40000, 1 + len(stream), a2[10:] + bytes(trigger)), ts=2_000)
    t._segment(_frame(40000, 1 + len(stream) + len(a2) - 10 + len(trigger), a1), ts=3_000)
    assert t.answers == {101: 1_000, 102: 1_000} and t.duplicates == 1 and t.resyncs == 0
