"""Emulator datapath vs the software decoder: byte-for-byte records, identical counters."""
from __future__ import annotations

import struct

import pytest
from fpga_helpers import SESSION, decode_all, emulate_all, runtime_view
from hypothesis import given, settings
from hypothesis import strategies as st

from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold
from tickpath.runtime.feed import decoder


def _same(payloads, recv_ns=None, adopt=False):
    recv_ns = recv_ns if recv_ns is not None else [1_700_000_000_000_000_000 + i for i in range(len(payloads))]
    ev, dc = decode_all(payloads, recv_ns, adopt)
    rec, model = emulate_all(payloads, recv_ns, adopt_first_seq=adopt)
    assert len(rec) == len(ev)
    assert rec.tobytes() == ev.tobytes()
    emu_c = runtime_view(model.counters())
    assert emu_c == {k: dc[k] for k in emu_c}
    return ev, dc, model


def _all_types():
    """One message of every ITCH 5.0 type, fields non-zero so a mis-routed byte shows."""
    msgs = []
    for i, t in enumerate(sorted(itch.BODY_FIELDS)):
        fields = {}
        for name, code in itch.BODY_FIELDS[t]:
            if code == "c":
                fields[name] = chr(ord("A") + i % 26)
            elif code.endswith("s"):
                fields[name] = f"X{i}"[: int(code[:-1])]
            elif code == "H":
                fields[name] = 0x1234 + i
            elif code == "I":
                fields[name] = 0x01020304 + i
            else:
                fields[name] = 0x0102030405060708 + i
        msgs.append(itch.encode(t, locate=100 + i, tracking=7 + i, ts_ns=0x123456789A + i, **fields))
    return msgs


def test_every_message_type_is_equal():
    msgs = _all_types()
    assert len(msgs) == len(itch.BODY_FIELDS)
    pkts = [mold.mold_packet(SESSION, 1 + i, [m]) for i, m in enumerate(msgs)]
    ev, dc, _ = _same(pkts)
    assert dc["events"] == len(itch.DECODED_TYPES)
    assert dc["skipped_types"] == len(itch.BODY_FIELDS) - len(itch.DECODED_TYPES)
    assert sorted(chr(t) for t in ev["msg_type"]) == sorted(itch.DECODED_TYPES)


def test_all_types_in_one_packet_and_longer_than_spec():
    msgs = [m + b"\xEE" * 3 for m in _all_types()]    # extra bytes past the spec length are legal
    _same([mold.mold_packet(SESSION, 1, msgs)])


def test_long_random_feed_is_equal():
    from tickpath.bench.load import market
    m = market.generate(11, 120_000, 64)
    pk = market.pack_mold(m, SESSION)
    payloads = [pk.packet(k) for k in range(pk.n_packets)]
    ev, dc, _ = _same(payloads)
    assert len(ev) == m.n_messages and dc["gaps"] == 0


def test_gaps_duplicates_heartbeats_end_of_session():
    a = itch.encode_add(5, 1, 100, 42, "B", 100, "AAPL", 1_000_000)
    pkts = [
        mold.mold_packet(SESSION, 3, [a, a]),       # late join: gap of 2 (expected starts at 1)
        mold.mold_packet(SESSION, 4, [a, a, a]),    # one duplicate, two new
        mold.mold_heartbeat(SESSION, 10),           # heartbeat ahead: gap 7..9
        mold.mold_packet(SESSION, 2, [a]),          # all duplicates
        mold.mold_packet(SESSION, 12, [a]),         # gap of 2
        mold.mold_end_of_session(SESSION, 13),
        mold.mold_packet(b"OTHERSESS1", 13, [a]),   # wrong session
    ]
    _ev, dc, _ = _same(pkts)
    assert dc["gaps"] == 3 and dc["duplicates"] == 2 and dc["wrong_session"] == 1
    _same(pkts, adopt=True)


def _hdr(seq, count, session=SESSION):
    return session + struct.pack(">QH", seq, count)


def test_malformed_packets_counted_identically():
    a = itch.encode_add(5, 1, 100, 42, "B", 100, "AAPL", 1_000_000)
    m = lambda b: struct.pack(">H", len(b)) + b
    pkts = [
        b"",                                         # empty
        SESSION[:7],                                 # shorter than the header
        _hdr(1, 2) + m(a),                           # count says 2, holds 1
        _hdr(2, 1) + struct.pack(">H", 200) + a,     # length runs past the end
        _hdr(2, 2) + struct.pack(">H", 0) + m(a),    # zero-length message
        _hdr(4, 1) + m(a[:20]),                      # too short for its type
        _hdr(5, 1) + m(b"Z" + a[1:]),                # undefined type
        _hdr(6, 1) + m(a) + b"\x01\x02\x03",         # trailing bytes
        _hdr(7, 0) + b"\x00",                        # heartbeat with a body
        _hdr(1 << 63, 1) + m(a),                     # nonsense sequence number
        _hdr(7, 1) + b"\x00",                        # one byte of a length field
    ]
    _ev, dc, _ = _same(pkts)
    assert dc["malformed_packets"] >= 7 and dc["malformed_messages"] >= 3 and dc["unknown_types"] == 1


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_fuzzed_packets_are_equal(data):
    """Random damage to valid packets: records and counters still agree."""
    a = itch.encode_add(5, 1, 100, 42, "S", 100, "MSFT", 2_000_000)
    e = itch.encode_executed(5, 2, 200, 42, 10, 77)
    pkts = []
    seq = 1
    for _ in range(data.draw(st.integers(1, 8))):
        n = data.draw(st.integers(0, 4))
        p = bytearray(mold.mold_packet(SESSION, seq, [a, e, a, e][:n]) if n
                      else mold.mold_heartbeat(SESSION, seq))
        for _ in range(data.draw(st.integers(0, 3))):
            if p:
                i = data.draw(st.integers(0, len(p) - 1))
                p[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(p)))
        pkts.append(bytes(p[:cut]) if data.draw(st.booleans()) else bytes(p))
        seq += data.draw(st.integers(-2, 4)) + n
        seq = max(seq, 1)
    _same(pkts)
