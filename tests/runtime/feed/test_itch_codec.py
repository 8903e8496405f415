"""MoldUDP64 + ITCH 5.0 codec: encoder layout, decoder round trips, stream semantics and
every bad input, against expectations built from the encoded fields (never from the
decoder itself). All decoding goes through the numba-compiled functions."""
from __future__ import annotations

import numpy as np
import pytest
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold
from tickpath.runtime.feed.decoder import (
    MOLD_ENDED,
    MOLD_NEXT_SEQ,
    MOLD_SESSION_SET,
    check_decoder_buffers,
    decode_buffer,
    decode_frame,
    decode_frames,
    decode_packet,
    max_events_per_packet,
    new_mold_state,
)
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import (
    EVENT_DTYPE,
    EVENT_VERSION,
    FLAG_ATTRIBUTED,
    FLAG_CROSS,
    FLAG_GAP,
    empty_events,
    stock_symbol,
)

SESSION = b"TEST000001"
SPEC_BYTES = dict(S=12, R=39, H=25, Y=20, L=26, V=35, W=12, K=28, J=35, h=21, A=36, F=40,
                  E=31, C=36, X=23, D=19, U=35, P=44, Q=40, B=19, I=50, N=20, O=48)
BIG_REF = 0xFEDCBA9876543210      # top bit set: u64 fields must survive unsigned
TS = 0xABCDEF012345              # 48-bit timestamp using all 6 bytes


class Stream:
    """One decoder stream: state, counters and an event array, driven packet by packet."""

    def __init__(self, capacity=64, session=None, next_seq=1):
        self.mold, self.session = new_mold_state(session=session, next_seq=next_seq)
        self.counters = C.new_counters()
        self.events = empty_events(capacity)
        self.n = 0

    def feed(self, pkt: bytes, recv_ns: int = 777) -> np.ndarray:
        start = self.n
        arr = np.frombuffer(pkt, dtype=np.uint8)
        self.n = decode_packet(arr, recv_ns, self.mold, self.session, self.events, self.n,
                               self.counters)
        return self.events[start:self.n]

    def c(self, name: str) -> int:
        return int(self.counters[getattr(C, name)])

    def nonzero(self) -> dict:
        return {k: v for k, v in C.as_dict(self.counters).items() if v}


def assert_identity(counters: np.ndarray) -> None:
    """Every walked message is accounted for exactly once (decoder.py's identity)."""
    c = counters
    assert c[C.MESSAGES] == (c[C.DUPLICATES] + c[C.MALFORMED_MESSAGES] + c[C.UNKNOWN_TYPES]
                             + c[C.SKIPPED_TYPES] + c[C.EVENTS] + c[C.EVENTS_DROPPED]
                             - c[C.GAPS])


def expect(seq, msg_type, locate=0, tracking=0, ts=0, recv=777, **fields) -> dict:
    base = dict(seq=seq, ts_exch=ts, ts_recv=recv, order_ref=0, ref2=0, shares=0, price=0,
                locate=locate, tracking=tracking, msg_type=ord(msg_type) if msg_type else 0,
                side=0, version=EVENT_VERSION, aux=0, flags=0)
    base.update(fields)
    return base


def assert_event(ev, want: dict) -> None:
    got = {name: int(ev[name]) for name in EVENT_DTYPE.names}
    assert got == want


# ---- encoder layout ----

def test_message_lengths_match_spec():
    assert itch.MESSAGE_BYTES == SPEC_BYTES
    for t, n in SPEC_BYTES.items():
        assert len(itch.encode(t)) == n
        assert itch.LENGTH_BY_TYPE[ord(t)] == n


def test_add_encoding_bytes_by_hand():
    msg = itch.encode_add(0x0102, 0x0304, TS, BIG_REF, "S", 0x0A0B0C0D, "MSFT", 0x11223344)
    want = (b"A" + b"\x01\x02" + b"\x03\x04" + bytes.fromhex("abcdef012345")
            + bytes.fromhex("fedcba9876543210") + b"S" + bytes.fromhex("0a0b0c0d")
            + b"MSFT    " + bytes.fromhex("11223344"))
    assert msg == want


def test_mold_packet_bytes_by_hand():
    pkt = mold.mold_packet("AB", 0x0102030405060708, [b"xyz", b"q"])
    assert pkt == (b"AB        " + bytes.fromhex("0102030405060708") + b"\x00\x02"
                   + b"\x00\x03xyz" + b"\x00\x01q")
    assert mold.mold_heartbeat("AB", 9)[-10:] == bytes.fromhex("0000000000000009") + b"\0\0"
    assert mold.mold_end_of_session("AB", 9)[-2:] == b"\xff\xff"
    assert mold.parse_header(pkt) == (b"AB        ", 0x0102030405060708, 2)


def _hdr(t: bytes) -> bytes:
    return t + b"\x00\x07\x00\x09" + (12345).to_bytes(6, "big")


def test_skipped_type_shortcuts_bytes_by_hand():
    h = (7, 9, 12345)
    cases = [
        (itch.encode_reg_sho(*h, "AB", "1"), _hdr(b"Y") + b"AB      1"),
        (itch.encode_market_participant(*h, "GSCO", "AB", "Y", "N", "A"),
         _hdr(b"L") + b"GSCOAB      YNA"),
        (itch.encode_mwcb_decline(*h, 1 << 40, 2, 3),
         _hdr(b"V") + (1 << 40).to_bytes(8, "big") + (2).to_bytes(8, "big")
         + (3).to_bytes(8, "big")),
        (itch.encode_mwcb_status(*h, "2"), _hdr(b"W") + b"2"),
        (itch.encode_ipo_quoting(*h, "AB", 3600, "A", 250000),
         _hdr(b"K") + b"AB      " + (3600).to_bytes(4, "big") + b"A"
         + (250000).to_bytes(4, "big")),
        (itch.encode_luld_collar(*h, "AB", 1, 2, 3, 4),
         _hdr(b"J") + b"AB      " + b"".join(i.to_bytes(4, "big") for i in (1, 2, 3, 4))),
        (itch.encode_operational_halt(*h, "AB", "Q", "H"), _hdr(b"h") + b"AB      QH"),
        (itch.encode_noii(*h, 5, 6, "B", "AB", 7, 8, 9, "O", "L"),
         _hdr(b"I") + (5).to_bytes(8, "big") + (6).to_bytes(8, "big") + b"BAB      "
         + b"".join(i.to_bytes(4, "big") for i in (7, 8, 9)) + b"OL"),
        (itch.encode_rpii(*h, "AB", "S"), _hdr(b"N") + b"AB      S"),
        (itch.encode_dlcr(*h, "AB", "Y", 1, 2, 3, 1 << 50, 4, 5),
         _hdr(b"O") + b"AB      Y" + b"".join(i.to_bytes(4, "big") for i in (1, 2, 3))
         + (1 << 50).to_bytes(8, "big") + (4).to_bytes(4, "big") + (5).to_bytes(4, "big")),
    ]
    for got, want in cases:
        assert got == want
        assert len(got) == SPEC_BYTES[chr(got[0])]


@pytest.mark.parametrize("call", [
    lambda: itch.encode("Z"),
    lambda: itch.encode("A", bogus=1),
    lambda: itch.encode("A", shares=1 << 32),
    lambda: itch.encode("A", stock="TOOLONGSYM"),
    lambda: itch.encode("S", ts_ns=1 << 48),
    lambda: itch.encode("A", locate=70000),
    lambda: mold.mold_packet("S", 1, []),
    lambda: mold.mold_packet("S", 1, [b""]),
    lambda: mold.mold_packet("ELEVENBYTES", 1, [b"x"]),
    lambda: mold.mold_packet("S\u00e9", 1, [b"x"]),
    lambda: mold.mold_heartbeat("S", -1),
    lambda: mold.parse_header(b"short"),
    lambda: new_mold_state(next_seq=-1),
])
def test_bad_encoder_input_is_config_error(call):
    with pytest.raises(ConfigError) as exc:
        call()
    assert "=" in str(exc.value)   # key=value message


# ---- round trip of every decoded type ----

def _decoded_cases():
    loc, trk = 0x1234, 0xBEEF
    return [
        (itch.encode_system_event(loc, trk, TS, "Q"), dict(aux=ord("Q"))),
        (itch.encode_stock_directory(loc, trk, TS, "ZVZZT"),
         dict(ref2=int.from_bytes(b"ZVZZT   ", "little"))),
        (itch.encode_trading_action(loc, trk, TS, "ZVZZT", "H", "IPO1"), dict(aux=ord("H"))),
        (itch.encode_add(loc, trk, TS, BIG_REF, "B", 0xFFFFFFFF, "AAPL", 0xFFFFFFFE),
         dict(order_ref=BIG_REF, side=ord("B"), shares=0xFFFFFFFF, price=0xFFFFFFFE)),
        (itch.encode_add_mpid(loc, trk, TS, 42, "S", 300, "AAPL", 1_234_500, "GSCO"),
         dict(order_ref=42, side=ord("S"), shares=300, price=1_234_500,
              flags=FLAG_ATTRIBUTED)),
        (itch.encode_executed(loc, trk, TS, BIG_REF, 77, BIG_REF - 5),
         dict(order_ref=BIG_REF, shares=77, ref2=BIG_REF - 5)),
        (itch.encode_executed_price(loc, trk, TS, 43, 50, 9001, "N", 999_900),
         dict(order_ref=43, shares=50, ref2=9001, aux=ord("N"), price=999_900)),
        (itch.encode_cancel(loc, trk, TS, 44, 25), dict(order_ref=44, shares=25)),
        (itch.encode_delete(loc, trk, TS, BIG_REF), dict(order_ref=BIG_REF)),
        (itch.encode_replace(loc, trk, TS, 45, BIG_REF, 600, 1_000_100),
         dict(order_ref=45, ref2=BIG_REF, shares=600, price=1_000_100)),
        (itch.encode_trade(loc, trk, TS, 0, "S", 400, "AAPL", 1_500_000, 9002),
         dict(side=ord("S"), shares=400, price=1_500_000, ref2=9002)),
        (itch.encode_cross_trade(loc, trk, TS, (1 << 40) + 7, "AAPL", 1_600_000, 9003, "O"),
         dict(shares=(1 << 40) + 7, price=1_600_000, ref2=9003, aux=ord("O"),
              flags=FLAG_CROSS)),
        (itch.encode_broken_trade(loc, trk, TS, 9004), dict(ref2=9004)),
    ]


@pytest.mark.parametrize("msg,fields", _decoded_cases(), ids=lambda x: x[:1].decode()
                         if isinstance(x, bytes) else "")
def test_round_trip_each_decoded_type(msg, fields):
    s = Stream()
    out = s.feed(mold.mold_packet(SESSION, 1, [msg]), recv_ns=-5)
    assert len(out) == 1
    assert_event(out[0], expect(1, msg[:1].decode(), 0x1234, 0xBEEF, TS, recv=-5, **fields))
    assert s.nonzero() == dict(packets=1, messages=1, events=1)


def test_all_decoded_types_in_one_packet_keep_order_and_seq():
    cases = _decoded_cases()
    s = Stream()
    out = s.feed(mold.mold_packet(SESSION, 1, [m for m, _ in cases]))
    assert len(out) == len(cases)
    for i, (m, fields) in enumerate(cases):
        assert_event(out[i], expect(1 + i, m[:1].decode(), 0x1234, 0xBEEF, TS, **fields))
    assert s.mold[MOLD_NEXT_SEQ] == 1 + len(cases)
    assert bytes(s.session) == SESSION


def test_stock_symbol_helper_reads_r_event():
    s = Stream()
    out = s.feed(mold.mold_packet(SESSION, 1, [itch.encode_stock_directory(1, 0, 0, "BRK A")]))
    assert stock_symbol(out[0]["ref2"]) == "BRK A"


@pytest.mark.parametrize("t", sorted(set(SPEC_BYTES) - set("SRHAFECXDUPQB")))
def test_skipped_types_are_walked_and_counted(t):
    s = Stream()
    after = itch.encode_delete(1, 0, 5, 99)
    out = s.feed(mold.mold_packet(SESSION, 1, [itch.encode(t, 3, 4, 5), after]))
    assert len(out) == 1
    assert_event(out[0], expect(2, "D", 1, 0, 5, order_ref=99))
    assert s.nonzero() == dict(packets=1, messages=2, events=1, skipped_types=1)


def test_longer_than_spec_message_is_accepted():
    # forward compatibility: the length prefix walks, the spec fields decode
    msg = itch.encode_delete(1, 2, 3, 4) + b"\xff" * 5
    s = Stream()
    out = s.feed(mold.mold_packet(SESSION, 1, [msg, itch.encode_delete(1, 2, 3, 5)]))
    assert [int(e["order_ref"]) for e in out] == [4, 5]


# ---- MoldUDP64 stream semantics ----

def _deletes(first_ref, n):
    return [itch.encode_delete(1, 0, 10 + i, first_ref + i) for i in range(n)]


def test_heartbeat_counts_and_keeps_sequence():
    s = Stream()
    s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 3)))
    assert len(s.feed(mold.mold_heartbeat(SESSION, 4))) == 0
    assert s.mold[MOLD_NEXT_SEQ] == 4
    assert s.nonzero() == dict(packets=2, messages=3, events=3, heartbeats=1)


def test_heartbeat_ahead_reveals_gap():
    s = Stream()
    s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 2)))
    out = s.feed(mold.mold_heartbeat(SESSION, 10), recv_ns=555)
    assert len(out) == 1
    assert_event(out[0], expect(3, None, recv=555, shares=7, flags=FLAG_GAP))
    assert s.mold[MOLD_NEXT_SEQ] == 10
    assert s.c("GAPS") == 1 and s.c("GAP_MESSAGES") == 7
    # a stale heartbeat afterwards changes nothing
    assert len(s.feed(mold.mold_heartbeat(SESSION, 5))) == 0
    assert s.mold[MOLD_NEXT_SEQ] == 10


def test_end_of_session():
    s = Stream()
    s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 2)))
    assert s.mold[MOLD_ENDED] == 0
    assert len(s.feed(mold.mold_end_of_session(SESSION, 3))) == 0
    assert s.mold[MOLD_ENDED] == 1
    assert s.nonzero() == dict(packets=2, messages=2, events=2, end_of_session=1)


def test_end_of_session_ahead_reveals_gap():
    s = Stream()
    out = s.feed(mold.mold_end_of_session(SESSION, 4))
    assert_event(out[0], expect(1, None, shares=3, flags=FLAG_GAP))
    assert s.mold[MOLD_ENDED] == 1 and s.c("END_OF_SESSION") == 1


def test_gap_event_then_messages():
    s = Stream()
    s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 3)))
    out = s.feed(mold.mold_packet(SESSION, 8, _deletes(100, 2)), recv_ns=999)
    assert len(out) == 3
    assert_event(out[0], expect(4, None, recv=999, shares=4, flags=FLAG_GAP))
    assert_event(out[1], expect(8, "D", 1, 0, 10, recv=999, order_ref=100))
    assert_event(out[2], expect(9, "D", 1, 0, 11, recv=999, order_ref=101))
    assert s.nonzero() == dict(packets=2, messages=5, events=6, gaps=1, gap_messages=4)
    assert s.mold[MOLD_NEXT_SEQ] == 10
    assert_identity(s.counters)


def test_late_join_is_a_gap_by_default_and_adopted_with_next_seq_0():
    s = Stream()
    out = s.feed(mold.mold_packet(SESSION, 50, _deletes(1, 1)))
    assert out[0]["flags"] == FLAG_GAP and out[0]["shares"] == 49
    s = Stream(next_seq=0)
    out = s.feed(mold.mold_packet(SESSION, 50, _deletes(1, 1)))
    assert len(out) == 1 and out[0]["seq"] == 50 and s.c("GAPS") == 0


def test_duplicate_packet_is_counted_not_emitted():
    s = Stream()
    pkt = mold.mold_packet(SESSION, 1, _deletes(1, 3))
    s.feed(pkt)
    assert len(s.feed(pkt)) == 0
    assert s.nonzero() == dict(packets=2, messages=6, events=3, duplicates=3)
    assert s.mold[MOLD_NEXT_SEQ] == 4


def test_overlapping_packet_emits_only_new_messages():
    s = Stream()
    s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 3)))          # seq 1..3
    out = s.feed(mold.mold_packet(SESSION, 2, _deletes(2, 4)))    # seq 2..5
    assert [int(e["seq"]) for e in out] == [4, 5]
    assert [int(e["order_ref"]) for e in out] == [4, 5]
    assert s.c("DUPLICATES") == 2
    assert s.mold[MOLD_NEXT_SEQ] == 6
    assert_identity(s.counters)


def test_wrong_session_is_ignored():
    s = Stream()
    s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 1)))
    assert len(s.feed(mold.mold_packet("OTHER", 2, _deletes(2, 1)))) == 0
    assert len(s.feed(mold.mold_heartbeat("OTHER", 99))) == 0
    assert s.c("WRONG_SESSION") == 2 and s.c("MESSAGES") == 1 and s.c("HEARTBEATS") == 0
    assert s.mold[MOLD_NEXT_SEQ] == 2 and bytes(s.session) == SESSION


def test_preset_session_refuses_first_foreign_packet():
    s = Stream(session=SESSION)
    assert s.mold[MOLD_SESSION_SET] == 1
    assert len(s.feed(mold.mold_packet("OTHER", 1, _deletes(1, 1)))) == 0
    assert s.c("WRONG_SESSION") == 1
    assert len(s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 1)))) == 1


# ---- bad input ----

@pytest.mark.parametrize("n", [0, 1, 19])
def test_truncated_header_is_malformed_packet(n):
    s = Stream()
    pkt = mold.mold_packet(SESSION, 1, _deletes(1, 1))[:n]
    assert len(s.feed(pkt)) == 0
    assert s.nonzero() == dict(packets=1, malformed_packets=1)
    assert s.mold[MOLD_SESSION_SET] == 0   # a runt does not fix the session


def test_message_running_past_end_stops_packet_and_next_packet_shows_gap():
    msgs = _deletes(1, 4)
    pkt = mold.mold_packet(SESSION, 1, msgs)
    cut = pkt[:-5]                     # the 4th message runs past the end
    s = Stream()
    out = s.feed(cut)
    assert [int(e["order_ref"]) for e in out] == [1, 2, 3]
    assert s.nonzero() == dict(packets=1, messages=4, events=3, malformed_messages=1,
                               malformed_packets=1)
    assert s.mold[MOLD_NEXT_SEQ] == 4  # the broken message's number was not consumed
    out = s.feed(mold.mold_packet(SESSION, 5, _deletes(5, 1)))
    assert_event(out[0], expect(4, None, shares=1, flags=FLAG_GAP))
    assert_identity(s.counters)


def test_length_field_past_end():
    msgs = _deletes(1, 2)
    pkt = bytearray(mold.mold_packet(SESSION, 1, msgs))
    pkt[20:22] = (500).to_bytes(2, "big")     # first message claims 500 bytes
    s = Stream()
    assert len(s.feed(bytes(pkt))) == 0
    assert s.c("MALFORMED_MESSAGES") == 1 and s.c("MALFORMED_PACKETS") == 1
    assert s.mold[MOLD_NEXT_SEQ] == 1


def test_count_promising_more_messages_than_present():
    pkt = bytearray(mold.mold_packet(SESSION, 1, _deletes(1, 2)))
    pkt[18:20] = (5).to_bytes(2, "big")
    s = Stream()
    assert len(s.feed(bytes(pkt))) == 2
    assert s.nonzero() == dict(packets=1, messages=2, events=2, malformed_packets=1)
    assert s.mold[MOLD_NEXT_SEQ] == 3


def test_trailing_bytes_after_count_messages():
    pkt = mold.mold_packet(SESSION, 1, _deletes(1, 2)) + b"\x00\x13junk"
    s = Stream()
    assert len(s.feed(pkt)) == 2
    assert s.nonzero() == dict(packets=1, messages=2, events=2, malformed_packets=1)
    s2 = Stream()
    s2.feed(mold.mold_heartbeat(SESSION, 1) + b"x")
    assert s2.nonzero() == dict(packets=1, heartbeats=1, malformed_packets=1)


def test_zero_length_message_is_skipped_and_numbered():
    d1, d2 = _deletes(1, 2)
    body = b"".join(len(m).to_bytes(2, "big") + m for m in (d1,)) + b"\x00\x00" + \
        len(d2).to_bytes(2, "big") + d2
    pkt = mold._header(SESSION, 1, 3) + body
    s = Stream()
    out = s.feed(pkt)
    assert [(int(e["seq"]), int(e["order_ref"])) for e in out] == [(1, 1), (3, 2)]
    assert s.nonzero() == dict(packets=1, messages=3, events=2, malformed_messages=1)
    assert s.mold[MOLD_NEXT_SEQ] == 4


@pytest.mark.parametrize("t", sorted(SPEC_BYTES))
def test_too_short_message_for_its_type(t):
    short = itch.encode(t)[:-1]
    after = itch.encode_delete(1, 0, 0, 7)
    s = Stream()
    out = s.feed(mold.mold_packet(SESSION, 1, [short, after]))
    assert [(int(e["seq"]), int(e["order_ref"])) for e in out] == [(2, 7)]
    assert s.nonzero() == dict(packets=1, messages=2, events=1, malformed_messages=1)


@pytest.mark.parametrize("t", [b"Z", b"a", b"\x00", b"\xff"])
def test_unknown_type_is_skipped_by_length(t):
    s = Stream()
    out = s.feed(mold.mold_packet(SESSION, 1, [t + b"\x01" * 30, itch.encode_delete(1, 0, 0, 8)]))
    assert [(int(e["seq"]), int(e["order_ref"])) for e in out] == [(2, 8)]
    assert s.nonzero() == dict(packets=1, messages=2, events=1, unknown_types=1)


def test_sequence_number_with_top_bits_is_malformed():
    s = Stream()
    pkt = mold.mold_packet(SESSION, (1 << 63) + 1, _deletes(1, 1))
    assert len(s.feed(pkt)) == 0
    assert s.c("MALFORMED_PACKETS") == 1 and s.c("GAPS") == 0
    assert s.mold[MOLD_NEXT_SEQ] == 1


def test_events_array_full_counts_drops_and_keeps_sequence():
    s = Stream(capacity=3)
    s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 1)))
    out = s.feed(mold.mold_packet(SESSION, 5, _deletes(10, 4)))   # gap + 4 events, room for 2
    assert len(out) == 2
    assert out[0]["flags"] == FLAG_GAP and out[1]["order_ref"] == 10
    assert s.c("EVENTS_DROPPED") == 3 and s.c("EVENTS") == 3
    assert s.mold[MOLD_NEXT_SEQ] == 9
    assert_identity(s.counters)
    # already full: a gap event alone is dropped too
    s.feed(mold.mold_heartbeat(SESSION, 12))
    assert s.c("EVENTS_DROPPED") == 4 and s.c("GAPS") == 2
    assert_identity(s.counters)


def test_event_writes_stay_inside_the_array_slice():
    s = Stream(capacity=8)
    s.events["seq"] = 0xDEAD
    s.n = 5
    out = s.feed(mold.mold_packet(SESSION, 1, _deletes(1, 6)))
    assert len(out) == 3 and s.n == 8
    assert list(s.events["seq"][:5]) == [0xDEAD] * 5
    assert s.c("EVENTS_DROPPED") == 3


def test_max_events_per_packet_is_enough_for_densest_packet():
    payload = mold.MTU1500_PAYLOAD_BYTES
    n = (payload - mold.HEADER_BYTES) // (2 + SPEC_BYTES["S"])
    pkt = mold.mold_packet(SESSION, 10, [itch.encode_system_event(0, 0, i, "O") for i in range(n)])
    cap = max_events_per_packet(len(pkt))
    assert cap == n + 1
    s = Stream(capacity=cap)
    assert len(s.feed(pkt)) == cap                 # gap + n, nothing dropped
    assert s.c("EVENTS_DROPPED") == 0
    assert max_events_per_packet(0) == 1


def test_decode_frames_and_decode_buffer():
    pkts = [mold.mold_packet(SESSION, 1 + 2 * k, _deletes(1 + 2 * k, 2)) for k in range(3)]
    slot = 128
    payload = np.zeros((4, slot), dtype=np.uint8)
    lengths = np.zeros(4, dtype=np.int32)
    for k, p in enumerate(pkts):
        payload[k, :len(p)] = np.frombuffer(p, dtype=np.uint8)
        lengths[k] = len(p)
    lengths[3] = slot + 1                           # a backend bug: longer than its slot
    recv = np.arange(4, dtype=np.int64) * 100
    m, sess = new_mold_state()
    ctr = C.new_counters()
    ev = empty_events(32)
    n = decode_frames(payload, lengths, 4, recv, m, sess, ev, 0, ctr)
    assert n == 6
    assert list(ev["order_ref"][:6]) == [1, 2, 3, 4, 5, 6]
    assert list(ev["ts_recv"][:6]) == [0, 0, 100, 100, 200, 200]
    assert ctr[C.PACKETS] == 4 and ctr[C.MALFORMED_PACKETS] == 1

    buf = np.frombuffer(b"".join(pkts), dtype=np.uint8)
    lens = np.array([len(p) for p in pkts], dtype=np.int64)
    offs = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
    m, sess = new_mold_state()
    ctr = C.new_counters()
    n = decode_buffer(buf, offs, lens, 1, 5, recv, m, sess, ev, 0, ctr)  # packets 1, 2
    assert n == 5 and list(ev["seq"][:5]) == [1, 3, 4, 5, 6]   # gap event, then 3..6
    assert ev["flags"][0] == FLAG_GAP and ctr[C.PACKETS] == 2
    offs[0] = len(buf)                                      # offset past the buffer
    ctr[:] = 0
    decode_buffer(buf, offs, lens, 0, 1, recv, m, sess, ev, 0, ctr)
    assert ctr[C.MALFORMED_PACKETS] == 1


def test_decode_frame_one_at_a_time_equals_decode_frames():
    # the trading loop decodes frame by frame: same events, same counters, same bad slot
    pkts = [mold.mold_packet(SESSION, 1 + 2 * k, _deletes(1 + 2 * k, 2)) for k in range(3)]
    slot = 128
    payload = np.zeros((5, slot), dtype=np.uint8)
    lengths = np.zeros(5, dtype=np.int32)
    for k, p in enumerate([pkts[0], pkts[2], b"", pkts[1]]):   # out of order: a gap, then late
        payload[k, :len(p)] = np.frombuffer(p, dtype=np.uint8)
        lengths[k] = len(p)
    lengths[2] = slot + 1                           # a backend bug: longer than its slot
    lengths[4] = -1                                 # truncated (MSG_TRUNC)
    recv = np.arange(5, dtype=np.int64) * 100
    m1, s1 = new_mold_state()
    c1 = C.new_counters()
    e1 = empty_events(32)
    n1 = decode_frames(payload, lengths, 5, recv, m1, s1, e1, 0, c1)
    m2, s2 = new_mold_state()
    c2 = C.new_counters()
    e2 = empty_events(32)
    n2 = 0
    for f in range(5):
        n2 = decode_frame(payload, lengths, f, recv, m2, s2, e2, n2, c2)
    assert n1 == n2 > 0
    assert e1[:n1].tobytes() == e2[:n2].tobytes()
    assert np.array_equal(c1, c2) and np.array_equal(m1, m2)
    assert c2[C.MALFORMED_PACKETS] == 2
    assert decode_frame(payload, lengths, 5, recv, m2, s2, e2, 7, c2) == 7    # no slot 5
    assert decode_frame(payload, lengths, -1, recv, m2, s2, e2, 7, c2) == 7


def test_gap_is_recorded_even_when_the_packet_body_is_missing():
    # found by the fuzz test: seq ahead, count 1, no message bytes
    s = Stream()
    out = s.feed(mold._header(SESSION, 3, 1))
    assert_event(out[0], expect(1, None, shares=2, flags=FLAG_GAP))
    assert s.mold[MOLD_NEXT_SEQ] == 3 and s.c("MALFORMED_PACKETS") == 1
    assert len(s.feed(mold.mold_packet(SESSION, 3, _deletes(1, 1)))) == 1   # no second gap
    assert s.c("GAPS") == 1


def test_strided_packet_view_decodes_like_contiguous():
    # byteorder's fallback for non-contiguous views (a different numba specialisation)
    cases = _decoded_cases()
    raw = np.frombuffer(mold.mold_packet(SESSION, 1, [m for m, _ in cases]), dtype=np.uint8)
    strided = np.repeat(raw, 2)[::2]
    assert not strided.flags.c_contiguous and np.array_equal(strided, raw)
    outs = []
    for pkt in (raw, strided):
        m, sess = new_mold_state()
        ctr = C.new_counters()
        ev = empty_events(32)
        n = decode_packet(pkt, 5, m, sess, ev, 0, ctr)
        outs.append(ev[:n].tobytes())
        assert n == len(cases)
    assert outs[0] == outs[1]


def test_wrong_state_buffers_are_refused_at_setup_and_untouched_in_the_loop():
    m, sess = new_mold_state()
    ctr, ev = C.new_counters(), empty_events(4)
    check_decoder_buffers(m, sess, ev, ctr)          # the right ones pass
    bad = [(m[:2], sess, ev, ctr), (m.astype(np.int32), sess, ev, ctr),
           (m, sess[:9], ev, ctr), (m, sess, ev, ctr[:10]), (m, sess, np.zeros(4), ctr),
           (m, sess, ev.reshape(2, 2), ctr), (m, b"SESSION", ev, ctr)]
    for args in bad:
        with pytest.raises(ConfigError, match="buffer=|events"):
            check_decoder_buffers(*args)
    pkt = np.frombuffer(mold.mold_packet(SESSION, 1, _deletes(1, 2)), dtype=np.uint8)
    short = ctr[:10].copy()
    before = m.copy()
    assert decode_packet(pkt, 0, m, sess, ev, 1, short) == 1
    assert not short.any() and (m == before).all() and not ev["seq"].any()
    assert decode_packet(pkt, 0, m[:2].copy(), sess, ev, 0, ctr) == 0
    assert decode_packet(pkt, 0, m, sess[:5].copy(), ev, 0, ctr) == 0
    assert not ctr.any()
