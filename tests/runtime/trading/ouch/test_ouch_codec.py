"""The numba OUCH codec against the venue's independent Python codec (bench/venue/ouch.py),
byte for byte on every message type both know; the types the venue does not send (P, I, B,
T) against struct layouts written here from the spec; every truncation of every type is
refused without reading past the message."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from tickpath.bench.venue import ouch as V
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.ouch import codec
from tickpath.runtime.trading.ouch import layout as L

SYM = int.from_bytes(b"AAPL    ", "little")   # the event record's ref2 for 'R' messages


def _framed_body(buf, n):
    raw = bytes(buf[:n])
    assert struct.unpack_from(">H", raw)[0] == n - 2 and raw[2:3] == b"U"
    return raw[3:]


def test_enter_byte_for_byte():
    buf = np.zeros(64, np.uint8)
    n = codec.encode_enter(buf, 0, 4_000_000_001, R.SIDE_SELL, 300, SYM, 1_923_400, R.TIF_IOC,
                           12345678901234)
    assert n == L.O_WIRE == 50
    want = V.encode_inbound("O", uref=4_000_000_001, side=b"S", qty=300, symbol=b"AAPL", price=1_923_400,
                            tif=b"3", display=b"Y", capacity=b"A", iso=b"N", cross=b"N",
                            clordid=b"12345678901234", appendage_len=0)
    assert _framed_body(buf, n) == want
    d = V.decode_inbound(want)
    assert d["clordid"] == b"12345678901234" and d["symbol"] == b"AAPL    "


def test_enter_clordid_is_14_zero_padded_digits():
    buf = np.zeros(64, np.uint8)
    codec.encode_enter(buf, 0, 1, R.SIDE_BUY, 1, SYM, 1, R.TIF_DAY, 42)
    assert bytes(buf[3 + L.O_CLORDID: 3 + L.O_CLORDID + 14]) == b"00000000000042"


def test_replace_cancel_modify_byte_for_byte():
    buf = np.zeros(64, np.uint8)
    n = codec.encode_replace(buf, 0, 7, 8, 500, 99_990_000, R.TIF_DAY)
    assert n == L.U_WIRE
    assert _framed_body(buf, n) == V.encode_inbound(
        "U", orig_uref=7, uref=8, qty=500, price=99_990_000, tif=b"0", display=b"Y", iso=b"N",
        clordid=b"", appendage_len=0)
    n = codec.encode_cancel(buf, 0, 0xFFFFFFFF, 0)
    assert n == L.X_WIRE and _framed_body(buf, n) == V.encode_inbound("X", uref=0xFFFFFFFF, qty=0)
    n = codec.encode_modify(buf, 0, 9, ord("T"), 40)
    assert n == L.M_WIRE and _framed_body(buf, n) == V.encode_inbound("M", uref=9, side=b"T", qty=40)


def test_encoders_write_only_their_bytes():
    buf = np.full(128, 0xEE, np.uint8)
    n = codec.encode_enter(buf, 10, 1, R.SIDE_BUY, 1, SYM, 1, R.TIF_DAY, 1)
    assert (buf[:10] == 0xEE).all() and (buf[10 + n:] == 0xEE).all()


def _decode(msg: bytes, seq=5, recv_ns=123):
    out = np.zeros(2, R.RESPONSE_DTYPE)
    arr = np.frombuffer(msg, np.uint8).copy()        # exactly the message: no slack to read into
    res = codec.decode_into(arr, 0, len(arr), out, 1, seq, recv_ns)
    return res, out[1]


VENUE_CASES = {
    "S": dict(ts=1, event=b"O"),
    "A": dict(ts=34_200_000_000_123, uref=11, side=b"B", qty=200, symbol=b"AAPL", price=1_900_100,
              tif=b"0", display=b"Y", order_ref=987654321, capacity=b"A", iso=b"N", cross=b"N",
              state=b"L", clordid=b"x", appendage_len=0),
    "U": dict(ts=2, orig_uref=11, uref=12, side=b"S", qty=50, symbol=b"AAPL", price=1_900_200,
              tif=b"3", display=b"Y", order_ref=987654322, capacity=b"A", iso=b"N", cross=b"N",
              state=b"D", clordid=b"", appendage_len=0),
    "C": dict(ts=3, uref=12, qty=50, reason=b"U"),
    "E": dict(ts=4, uref=11, qty=100, price=1_900_000, liquidity=b"A", match=0xFEDCBA9876543210,
              appendage_len=0),
    "J": dict(ts=5, uref=13, reason=0x1234, clordid=b"abc"),
    "M": dict(ts=6, uref=11, side=b"T", qty=150),
}


@pytest.mark.parametrize("t", sorted(VENUE_CASES))
def test_decode_every_type_the_venue_sends(t):
    f = VENUE_CASES[t]
    msg = V.encode_outbound(t, **f)
    res, r = _decode(msg)
    assert res == codec.DEC_OK
    assert chr(r["kind"]) == t and r["seq"] == 5 and r["recv_ns"] == 123
    assert r["venue_ts"] == f["ts"]
    want = {
        "S": dict(reason_code=ord("O")),
        "A": dict(uref=11, side=ord("B"), qty=200, price=1_900_100, tif=ord("0"), ref=987654321,
                  state=ord("L")),
        "U": dict(orig_uref=11, uref=12, side=ord("S"), qty=50, price=1_900_200, tif=ord("3"),
                  ref=987654322, state=ord("D")),
        "C": dict(uref=12, qty=50, reason_code=ord("U")),
        "E": dict(uref=11, qty=100, price=1_900_000, liquidity=ord("A"), ref=0xFEDCBA9876543210),
        "J": dict(uref=13, reason=0x1234),
        "M": dict(uref=11, side=ord("T"), qty=150),
    }[t]
    for k, v in want.items():
        assert int(r[k]) == v, k
    # every field not in the message is zero
    for k in ("price", "ref", "uref", "orig_uref", "qty", "reason", "side", "liquidity",
              "reason_code", "state", "tif"):
        if k not in want:
            assert int(r[k]) == 0, k


SPEC_CASES = {   # OUCH 5.0 types the venue never sends: struct layouts from the spec
    "P": (struct.pack(">cQI", b"P", 7, 21), dict(uref=21)),
    "I": (struct.pack(">cQI", b"I", 8, 22), dict(uref=22)),
    "B": (struct.pack(">cQIQc14s", b"B", 9, 23, 777, b"E", b"id"), dict(uref=23, ref=777, reason_code=ord("E"))),
    "T": (struct.pack(">cQIQcQ", b"T", 10, 24, 1_000_100, b"Y", 555), dict(uref=24, price=1_000_100, ref=555)),
}


@pytest.mark.parametrize("t", sorted(SPEC_CASES))
def test_decode_types_from_the_spec(t):
    msg, want = SPEC_CASES[t]
    assert len(msg) == {"P": L.P_LEN, "I": L.I_LEN, "B": L.B_LEN, "T": L.T_LEN}[t]
    res, r = _decode(msg)
    assert res == codec.DEC_OK
    assert chr(r["kind"]) == t and r["venue_ts"] == struct.unpack_from(">Q", msg, 1)[0]
    for k, v in want.items():
        assert int(r[k]) == v, k


ALL_TYPES = [V.encode_outbound(t, **f) for t, f in VENUE_CASES.items()] + [m for m, _ in SPEC_CASES.values()]


@pytest.mark.parametrize("msg", ALL_TYPES, ids=[chr(m[0]) for m in ALL_TYPES])
def test_every_truncation_is_refused(msg):
    for n in range(0, len(msg)):
        res, r = _decode(msg[:n])
        assert res == codec.DEC_TRUNCATED, n
        assert r["kind"] == R.RESP_UNDECODED and r["reason"] == L.BAD_TRUNCATED
        assert r["seq"] == 5                           # the number is still accounted for


def test_appendage_beyond_the_message_is_truncated_and_extra_bytes_are_oversize():
    e = bytearray(V.encode_outbound("E", **VENUE_CASES["E"]))
    e[L.E_APPLEN:L.E_APPLEN + 2] = (6).to_bytes(2, "big")     # says 6 bytes of options follow
    res, r = _decode(bytes(e) + b"\x05\x01abc")               # only 5 arrive
    assert res == codec.DEC_TRUNCATED and r["reason_code"] == ord("E")
    res, r = _decode(bytes(e) + b"\x05\x01abcd")               # all 6: fine
    assert res == codec.DEC_OK and r["qty"] == 100
    res, r = _decode(V.encode_outbound("C", **VENUE_CASES["C"]) + b"xx")   # longer than C
    assert res == codec.DEC_OVERSIZE and r["kind"] == R.RESP_CANCELED and r["qty"] == 50


def test_unknown_type():
    res, r = _decode(b"Q" + bytes(40))
    assert res == codec.DEC_UNKNOWN and r["kind"] == R.RESP_UNDECODED
    assert r["reason"] == L.BAD_UNKNOWN_TYPE and r["reason_code"] == ord("Q")


def test_layout_table_matches_the_venue_sizes():
    assert (L.O_LEN, L.U_LEN, L.X_LEN, L.M_LEN) == tuple(V.INBOUND_BYTES[t] for t in "OUXM")
    assert (L.S_LEN, L.A_LEN, L.RU_LEN, L.C_LEN, L.E_LEN, L.J_LEN, L.MM_LEN) == \
        tuple(V.OUTBOUND_BYTES[t] for t in "SAUCEJM")


def test_replace_names_its_trigger_in_the_clordid_like_an_enter():
    """A replace sent for a feed event carries that event's sequence number (how the
    tick-to-trade bench times a quote that moved); 0 leaves the ClOrdID blank."""
    import numpy as np
    from tickpath.bench.venue import ouch as venue_ouch
    buf = np.zeros(64, np.uint8)
    n = codec.encode_replace(buf, 0, 7, 8, 500, 99_990_000, R.TIF_DAY, 1234567)
    msg = venue_ouch.decode_inbound(bytes(buf[3:n]))
    assert msg["clordid"] == b"00000000001234567"[-14:] and msg["orig_uref"] == 7 and msg["uref"] == 8
    n = codec.encode_replace(buf, 0, 7, 8, 500, 99_990_000, R.TIF_DAY)
    assert venue_ouch.decode_inbound(bytes(buf[3:n]))["clordid"] == b" " * 14
