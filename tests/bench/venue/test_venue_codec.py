"""The venue's encoders against the references: its numba ITCH writer byte for byte
against the project's runtime.feed.itch encoder, its numba OUCH formatter and parser
against its own table-driven codec (ouch.py), SoupBinTCP framing."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from tickpath.bench.venue import itch_out as W
from tickpath.bench.venue import layout as L
from tickpath.bench.venue import ouch, refdata, soupbin, wire
from tickpath.bench.venue.timestamps import new_in_log
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.ipc.ring import Ring

TS = 34_200 * 10**9 + 987_654_321
REF = refdata.build([refdata.Instrument("AAA", 100_0000), refdata.Instrument("ZZTOP", 20_0000)])


@njit(cache=True)
def _write_all(w, sym):
    W.add_order(w, TS, 1, 7, 66, 300, sym, 99_0000, 0)
    W.add_order(w, TS, 2, 8, 83, 100, sym, 20_0100, 0x55535231)        # "USR1"
    W.executed(w, TS, 1, 7, 120, 42)
    W.cancel(w, TS, 1, 7, 30)
    W.delete(w, TS, 2, 8)
    W.replace(w, TS, 1, 7, 9, 150, 99_5000)
    W.trade(w, TS, 2, 83, 40, sym, 20_0000, 43)
    W.system_event(w, TS, 81)
    W.flush(w)


def test_itch_encoders_equal_the_projects_encoder():
    w = W.new_mold_out(1 << 16, 64, b"SESS")
    _write_all(w, REF.symbols)
    expected = [
        itch.encode_add(1, 0, TS, 7, "B", 300, "AAA", 99_0000),
        itch.encode_add_mpid(2, 0, TS, 8, "S", 100, "ZZTOP", 20_0100, "USR1"),
        itch.encode_executed(1, 0, TS, 7, 120, 42),
        itch.encode_cancel(1, 0, TS, 7, 30),
        itch.encode_delete(2, 0, TS, 8),
        itch.encode_replace(1, 0, TS, 7, 9, 150, 99_5000),
        itch.encode_trade(2, 0, TS, 0, "S", 40, "ZZTOP", 20_0000, 43),
        itch.encode_system_event(0, 0, TS, "Q"),
    ]
    assert W.messages(w) == expected
    n = int(w.state[W.N_PKTS])
    assert n == 1
    pkt = w.buf[w.pkt_off[0]:w.pkt_off[0] + w.pkt_len[0]].tobytes()
    assert pkt == M.mold_packet(b"SESS", 1, expected)        # one MoldUDP64 packet, seq 1


def test_packets_split_at_the_payload_limit():
    w = W.new_mold_out(1 << 20, 4096, b"S", max_payload=200)
    for _ in range(20):
        _write_all(w, REF.symbols)
    firsts = w.pkt_first[:w.state[W.N_PKTS]]
    assert (w.pkt_len[:w.state[W.N_PKTS]] <= 200).all()
    assert list(firsts) == sorted(firsts) and int(w.pkt_count[:w.state[W.N_PKTS]].sum()) == 160


def _resp(kind, **f):
    r = np.zeros(1, L.RESP_DTYPE)
    r["kind"] = ord(kind)
    r["ts_ns"] = TS
    r["user"] = 1
    r["locate"] = 2
    r["token"] = -1
    for k, v in f.items():
        if k == "clordid":
            r["clordid"] = np.frombuffer(v.ljust(14), np.uint8)
        else:
            r[k] = ord(v) if isinstance(v, str) else v
    return r[0]


@pytest.mark.parametrize("rec, expected", [
    (_resp("A", uref=5, side="S", qty=300, price=20_0100, tif="0", display="Y", order_ref=77,
           capacity="P", iso="N", cross="N", state="L", clordid=b"abc"),
     dict(uref=5, side="S", qty=300, symbol="ZZTOP", price=20_0100, tif="0", display="Y",
          order_ref=77, capacity="P", iso="N", cross="N", state="L", clordid=b"abc", appendage_len=0)),
    (_resp("U", orig_uref=5, uref=6, side="B", qty=200, price=19_9900, tif="3", display="N",
           order_ref=78, capacity="A", iso="Y", cross="N", state="L", clordid=b"r"),
     dict(orig_uref=5, uref=6, side="B", qty=200, symbol="ZZTOP", price=19_9900, tif="3",
          display="N", order_ref=78, capacity="A", iso="Y", cross="N", state="L", clordid=b"r",
          appendage_len=0)),
    (_resp("C", uref=6, qty=50, reason_c="Q"), dict(uref=6, qty=50, reason="Q")),
    (_resp("E", uref=6, qty=10, price=20_0000, liquidity="A", match=99),
     dict(uref=6, qty=10, price=20_0000, liquidity="A", match=99, appendage_len=0)),
    (_resp("J", uref=7, reason=L.REJ_FAT_FINGER, clordid=b"bad"),
     dict(uref=7, reason=L.REJ_FAT_FINGER, clordid=b"bad")),
    (_resp("M", uref=6, side="T", qty=5), dict(uref=6, side="T", qty=5)),
    (_resp("S", reason_c="E"), dict(event="E")),
])
def test_ouch_formatter_equals_the_table_codec(rec, expected):
    ob = np.zeros((2, 4096), np.uint8)
    off = np.zeros((2, 16), np.int64)
    tok = np.zeros((2, 16), np.int64)
    st = np.zeros((2, wire.N_ST), np.int64)
    assert wire.format_one(ob, off, tok, st, np.full(2, -1, np.int64), rec, REF.symbols, 0) == 1
    data = ob[1, :st[1, wire.ST_WPOS]].tobytes()
    [(t, payload)], rest = soupbin.split(data)
    assert t == soupbin.SEQUENCED and rest == b""
    kind = chr(rec["kind"])
    want = ouch.encode_outbound(kind, ts=TS, **expected)
    assert payload == want and len(payload) == ouch.OUTBOUND_BYTES[kind]


def test_inbound_parser_turns_ouch_into_commands():
    ring = Ring.create(16, L.CMD_DTYPE)
    stop = np.zeros(1, np.int64)
    log = new_in_log(16)
    tok = np.zeros(1, np.int64)
    uc = np.zeros((2, wire.N_USER_COUNTERS), np.int64)
    last = np.zeros(2, np.int64)
    status = np.zeros(2, np.int64)
    msgs = [ouch.encode_inbound("O", uref=3, side="S", qty=200, symbol="ZZTOP", price=20_0100,
                                tif="3", display="A", capacity="R", iso="Y", cross="N", clordid=b"cl",
                                appendage_len=0),
            ouch.encode_inbound("U", orig_uref=3, uref=4, qty=300, price=20_0200, tif="0",
                                display="Y", iso="N", clordid=b"  00012345", appendage_len=0),
            ouch.encode_inbound("X", uref=4, qty=100),
            ouch.encode_inbound("M", uref=4, side="T", qty=50),
            ouch.encode_inbound("O", uref=2, side="B", qty=1, symbol="AAA", price=1)]  # uref 2 < 4: ignored
    data = b"".join(soupbin.packet(soupbin.UNSEQUENCED, m) for m in msgs) + soupbin.packet(soupbin.CLIENT_HEARTBEAT)
    buf = np.frombuffer(data + b"\x00\x10U", np.uint8).copy()      # and the start of a packet
    used = wire.parse_inbound(buf, len(buf), 1, 555, ring.hdr, ring.data, stop, REF.sym_keys,
                              REF.sym_locs, last, log, tok, uc, status)
    assert used == len(data) and status[0] == wire.PS_OK
    out = np.zeros(8, L.CMD_DTYPE)
    from tickpath.runtime.ipc.ring import pop_into
    n = pop_into(ring.hdr, ring.data, out)
    assert n == 4 and uc[1, wire.U_UREF_IGNORED] == 1 and uc[1, wire.U_HEARTBEATS] == 1
    o, u, x, m = out[:4]
    assert (chr(o["kind"]), o["uref"], chr(o["side"]), o["qty"], o["locate"], o["price"], chr(o["tif"]),
            chr(o["display"]), chr(o["capacity"]), chr(o["iso"]), bytes(o["clordid"]), o["recv_ns"],
            o["token"]) == ("O", 3, "S", 200, 2, 20_0100, "3", "A", "R", "Y", b"cl".ljust(14), 555, 0)
    assert (chr(u["kind"]), u["orig_uref"], u["uref"], u["qty"], u["price"], u["token"]) == ("U", 3, 4, 300, 20_0200, 1)
    # a ClOrdID of digits is logged as its number (how a tick-to-trade run names a trigger)
    assert list(log["clordid"][:4]) == [0, 12345, 0, 0]
    assert (chr(x["kind"]), x["uref"], x["qty"]) == ("X", 4, 100)
    assert (chr(m["kind"]), m["uref"], chr(m["side"]), m["qty"]) == ("M", 4, "T", 50)
    assert list(log["uref"][:4]) == [3, 4, 4, 4] and list(log["recv_ns"][:4]) == [555] * 4


def test_soupbin_login_round_trip():
    pk = soupbin.login_request("TEST1", "pw", "SESS", 42, 1500)
    [(t, payload)], _ = soupbin.split(pk)
    assert t == soupbin.LOGIN_REQUEST and len(payload) == soupbin.LOGIN_PAYLOAD_41
    assert soupbin.parse_login(payload) == {"username": "TEST1", "password": "pw", "session": "SESS",
                                            "seq": 42, "timeout_ms": 1500}
    assert soupbin.login_accepted(b"SESS", 7) == b"\x00\x1fASESS      " + b"7".rjust(20)


def test_inbound_parser_reads_post_only_from_the_appendage():
    """OUCH 5.0 appendage: {len (tag + value), tag, value}; PostOnly is tag 12 = 'P'."""
    ring = Ring.create(16, L.CMD_DTYPE)
    stop = np.zeros(1, np.int64)
    uc = np.zeros((2, wire.N_USER_COUNTERS), np.int64)
    min_qty = bytes([5, 3]) + (100).to_bytes(4, "big")            # MinQty 100: read over
    apps = [bytes([2, 12]) + b"P" + min_qty,                         # post-only
            min_qty + bytes([2, 12]) + b"N",                         # PostOnly = N
            bytes([9, 3]) + b"\x00\x00",                             # element past the end
            bytes([0])]                                              # empty element
    msgs = [ouch.encode_inbound("O", uref=10 + i, side="B", qty=100, symbol="AAA", price=10_0000,
                                tif="0", display="Y", capacity="A", iso="N", cross="N",
                                appendage_len=len(a)) + a for i, a in enumerate(apps)]
    msgs.append(ouch.encode_inbound("U", orig_uref=10, uref=20, qty=100, price=10_0100, tif="0",
                                    display="Y", iso="N", appendage_len=3) + bytes([2, 12]) + b"P")
    data = b"".join(soupbin.packet(soupbin.UNSEQUENCED, m) for m in msgs)
    buf = np.frombuffer(data, np.uint8).copy()
    wire.parse_inbound(buf, len(buf), 1, 1, ring.hdr, ring.data, stop, REF.sym_keys, REF.sym_locs,
                       np.zeros(2, np.int64), new_in_log(16), np.zeros(1, np.int64), uc,
                       np.zeros(2, np.int64))
    out = np.zeros(8, L.CMD_DTYPE)
    from tickpath.runtime.ipc.ring import pop_into
    n = pop_into(ring.hdr, ring.data, out)
    assert [(chr(c["kind"]), int(c["uref"]), int(c["flags"])) for c in out[:n]] == [
        ("O", 10, L.FLAG_POST_ONLY), ("O", 11, 0), ("U", 20, L.FLAG_POST_ONLY)]
    assert uc[1, wire.U_BAD_APPENDAGE] == 2 and uc[1, wire.U_BAD_LENGTH] == 0
