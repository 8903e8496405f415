"""A client on real loopback sockets (plain socket + struct, tests/support/ouch_client.py)
logs in, enters orders that rest, cross, partially fill, are cancelled, replaced, modified
and rejected: every OUCH response and every ITCH message they cause is checked field by
field. Then a reconnect with a sequence number gets exactly what it missed, and the
MoldUDP64 retransmission server answers a gap request from its history."""
from __future__ import annotations

import socket
import struct
import time

from ouch_client import Client, cancel_msg, enter_msg, modify_msg, replace_msg
from venue_helpers import parse_itch

from tickpath.bench.venue import layout as L

P = 10_000   # Price(4) per dollar


def itch_after(cap, first_seq, n, timeout=5.0):
    msgs = cap.wait_for(lambda m: sum(1 for s, _ in m if s >= first_seq) >= n, timeout)
    out = sorted({s: parse_itch(b) for s, b in msgs if s >= first_seq}.items())
    return [d for _, d in out]


def next_seq(cap):
    m = cap.messages()
    return max(s for s, _ in m) + 1 if m else 1


def test_login_and_order_life_cycle_field_by_field(quiet_venue):
    v, cap = quiet_venue
    addr = v.server.address
    c1 = Client(addr, "TEST1", "tickpath")
    t, p = c1.login_reply
    assert t == b"A" and p[:10] == b"TKPVENUE01" and int(p[10:30]) == 1
    assert c1.next_msg()["event"] == b"S"          # OUCH system event: start of day
    c2 = Client(addr, "TEST2", "pw2")
    assert c2.login_reply[0] == b"A"
    assert c2.next_msg()["event"] == b"S"
    preamble = cap.wait_for(lambda m: len(m) >= 3 + 2 * 3 + 2)
    pre = [b for _, b in sorted(preamble)]
    assert [chr(b[0]) for b in pre] == list("SRRRHHHSS")
    assert [chr(b[11]) for b in pre if b[:1] == b"S"] == list("OSQ")   # start of messages, system, market
    assert [parse_itch(b)["stock"] for b in pre[1:4]] == [b"AAA     ", b"BBB     ", b"CCC     "]
    assert [parse_itch(b)["trading_state"] for b in pre[4:7]] == [b"T"] * 3
    aaa = v.ref.locate("AAA")

    # 1. rests
    s0 = next_seq(cap)
    c1.send(enter_msg(1, b"B", 300, b"AAA", 99 * P, clordid=b"c1-buy"))
    a = c1.next_msg()
    assert {k: a[k] for k in a if k != "ts"} == {
        "type": "A", "uref": 1, "side": b"B", "qty": 300, "symbol": b"AAA     ", "price": 99 * P,
        "tif": b"0", "display": b"Y", "order_ref": a["order_ref"], "capacity": b"A", "iso": b"N",
        "cross": b"N", "state": b"L", "clordid": b"c1-buy".ljust(14), "appendage_len": 0}
    assert 0 < a["ts"] < 86_400 * 10**9
    ref1 = a["order_ref"]
    [add] = itch_after(cap, s0, 1)
    assert {k: add[k] for k in add if k != "ts"} == {
        "type": "A", "locate": aaa, "tracking": 0, "order_ref": ref1, "side": b"B", "shares": 300,
        "stock": b"AAA     ", "price": 99 * P}
    assert add["ts"] == a["ts"]

    # 2. crosses: partial fill of the resting order at its price
    s0 = next_seq(cap)
    c2.send(enter_msg(1, b"S", 100, b"AAA", 98 * P, tif=b"3"))
    a2, e2 = c2.msgs(2)
    assert (a2["type"], a2["uref"], a2["side"], a2["price"]) == ("A", 1, b"S", 98 * P)
    assert {k: e2[k] for k in ("type", "uref", "qty", "price", "liquidity")} == {
        "type": "E", "uref": 1, "qty": 100, "price": 99 * P, "liquidity": b"R"}
    e1 = c1.next_msg()
    assert {k: e1[k] for k in ("type", "uref", "qty", "price", "liquidity", "match")} == {
        "type": "E", "uref": 1, "qty": 100, "price": 99 * P, "liquidity": b"A", "match": e2["match"]}
    [ex] = itch_after(cap, s0, 1)
    assert (ex["type"], ex["locate"], ex["order_ref"], ex["shares"], ex["match"]) == ("E", aaa, ref1, 100, e1["match"])

    # 3. reduce (cancel to a smaller size): X, keeps priority
    s0 = next_seq(cap)
    c1.send(cancel_msg(1, 150))
    c = c1.next_msg()
    assert {k: c[k] for k in ("type", "uref", "qty", "reason")} == {"type": "C", "uref": 1, "qty": 50, "reason": b"U"}
    [x] = itch_after(cap, s0, 1)
    assert (x["type"], x["order_ref"], x["shares"]) == ("X", ref1, 50)

    # 4. replace: quantity is the chain's total (100 executed -> 200 open), new ref, U
    s0 = next_seq(cap)
    c1.send(replace_msg(1, 2, 300, 99 * P + 5000, clordid=b"c1-rep"))
    u = c1.next_msg()
    assert {k: u[k] for k in u if k not in ("ts", "order_ref")} == {
        "type": "U", "orig_uref": 1, "uref": 2, "side": b"B", "qty": 200, "symbol": b"AAA     ",
        "price": 99 * P + 5000, "tif": b"0", "display": b"Y", "capacity": b"A", "iso": b"N",
        "cross": b"N", "state": b"L", "clordid": b"c1-rep".ljust(14), "appendage_len": 0}
    [ui] = itch_after(cap, s0, 1)
    assert (ui["type"], ui["order_ref"], ui["new_order_ref"], ui["shares"], ui["price"]) == (
        "U", ref1, u["order_ref"], 200, 99 * P + 5000)

    # 5. rejects: off the tick grid, quantity 0, unknown symbol; a non-increasing UserRefNum is ignored
    s0 = next_seq(cap)
    c1.send(enter_msg(3, b"B", 100, b"AAA", 99 * P + 50, clordid=b"bad-px"))
    j = c1.next_msg()
    assert j == {"type": "J", "ts": j["ts"], "uref": 3, "reason": L.REJ_INVALID_PRICE,
                 "clordid": b"bad-px".ljust(14)}
    c1.send(enter_msg(3, b"B", 100, b"AAA", 99 * P))                # uref 3 again: ignored
    c1.send(enter_msg(4, b"B", 0, b"AAA", 99 * P))
    c1.send(enter_msg(5, b"B", 100, b"ZZZ", 99 * P))
    c1.send(enter_msg(6, b"B", 100, b"AAA", 200 * P))
    assert [(m["type"], m["uref"], m["reason"]) for m in c1.msgs(3)] == [
        ("J", 4, L.REJ_INVALID_QUANTITY), ("J", 5, L.REJ_INVALID_SYMBOL), ("J", 6, L.REJ_FAT_FINGER)]
    time.sleep(0.05)
    assert itch_after(cap, s0, 0, timeout=0.1) == []               # rejects publish nothing
    assert v.server.stats()["users"]["TEST1"]["userrefnum_not_increasing"] == 1

    # 6. modify (sell -> sell short, smaller): M and X; then cancel all: C and D
    s0 = next_seq(cap)
    c1.send(enter_msg(7, b"S", 100, b"BBB", 21 * P))
    a7 = c1.next_msg()
    c1.send(modify_msg(7, b"T", 60))
    m = c1.next_msg()
    assert {k: m[k] for k in ("type", "uref", "side", "qty")} == {"type": "M", "uref": 7, "side": b"T", "qty": 60}
    c1.send(cancel_msg(2, 0))
    c = c1.next_msg()
    assert (c["type"], c["uref"], c["qty"], c["reason"]) == ("C", 2, 200, b"U")
    got = itch_after(cap, s0, 3)
    assert [(d["type"], d["order_ref"], d.get("shares")) for d in got] == [
        ("A", a7["order_ref"], 100), ("X", a7["order_ref"], 40), ("D", u["order_ref"], None)]
    assert v.server.active and c1.sock.fileno() >= 0
    c1.close()
    c2.close()


def test_reconnect_gets_exactly_what_it_missed(quiet_venue):
    v, cap = quiet_venue
    addr = v.server.address
    time.sleep(0.2)                       # the previous test's sessions are gone
    c1 = Client(addr, "TEST1", "tickpath", seq=0)
    first = int(c1.login_reply[1][10:30])
    c1.send(enter_msg(100, b"B", 500, b"CCC", 4 * P + 9000))
    c1.send(enter_msg(101, b"B", 500, b"CCC", 4 * P + 8000))
    seen = c1.msgs(2)
    c1.close()                            # disconnect mid-stream
    time.sleep(0.1)
    c2 = Client(addr, "TEST2", "pw2", seq=0)
    c2.send(enter_msg(100, b"S", 700, b"CCC", 4 * P + 8000))    # fills 500 + 200 of user 1's
    c2.msgs(3)
    time.sleep(0.1)
    c1 = Client(addr, "TEST1", "tickpath", seq=first + len(seen))
    assert int(c1.login_reply[1][10:30]) == first + len(seen)
    missed = c1.msgs(2)
    assert [(m["type"], m["uref"], m["qty"]) for m in missed] == [("E", 100, 500), ("E", 101, 200)]
    c1.send(cancel_msg(101, 0))           # new traffic after the replay
    assert c1.next_msg()["type"] == "C"
    with __import__("pytest").raises(TimeoutError):
        c1.next_msg(timeout=0.3)          # nothing twice
    c1.close()
    full = Client(addr, "TEST1", "tickpath", seq=first)          # the store replays from any point
    replay = full.msgs(5)
    assert replay[:2] == seen and replay[2:4] == missed
    full.close()
    c2.close()


def test_retransmission_server_answers_from_the_history(quiet_venue):
    v, cap = quiet_venue
    msgs = dict(cap.messages())
    seqs = sorted(msgs)
    lo = seqs[2]
    req = v.session + struct.pack(">QH", lo, 5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(req, v.retransmit.address)
    pkt = s.recv(65536)
    s.close()
    seq, count = struct.unpack_from(">QH", pkt, 10)
    assert pkt[:10] == v.session and seq == lo and count == 5
    o, got = 20, []
    for _ in range(count):
        n = struct.unpack_from(">H", pkt, o)[0]
        got.append(pkt[o + 2:o + 2 + n])
        o += 2 + n
    assert got == [msgs[lo + k] for k in range(5)]
    assert v.retransmit.counts["requests"] >= 1


def test_moldudp64_heartbeats_when_idle_carry_the_next_sequence_number(quiet_venue):
    v, cap = quiet_venue
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        hbs = [p for p in cap.packets if struct.unpack_from(">H", p, 18)[0] == 0]
        if hbs:
            break
        time.sleep(0.05)
    assert hbs, "no heartbeat in 3 s of silence"
    hb = hbs[-1]
    assert len(hb) == 20 and hb[:10] == v.session
    assert struct.unpack_from(">Q", hb, 10)[0] <= next_seq(cap)
