"""The matching engine alone: single thread, no sockets, deterministic (price-time
priority, partial fills, replace loses priority, reduce keeps it, self-match prevention,
every reject reason), with the ITCH messages and OUCH responses checked field by field."""
from __future__ import annotations

import pytest
from venue_helpers import NOW, Bench, cancel, cmd, enter, modify, parse_itch, replace

from tickpath.bench.venue import book as B
from tickpath.bench.venue import layout as L

AAA = 1


@pytest.fixture
def b():
    return Bench()


def kinds(resps):
    return [(r["kind"], r["user"], r["uref"]) for r in resps]


def test_rest_then_cross_partial_fill_field_by_field(b):
    r, m = b.run(enter(1, "B", 300, 99_0000, clordid=b"buy-1"))
    assert kinds(r) == [("A", 1, 1)]
    a = r[0]
    assert (a["side"], a["qty"], a["price"], a["order_ref"], a["state"], a["tif"], a["display"],
            a["capacity"], a["iso"], a["cross"]) == (ord("B"), 300, 99_0000, 1, ord("L"),
                                                     ord("0"), ord("Y"), ord("A"), ord("N"), ord("N"))
    assert a["clordid"] == b"buy-1".ljust(14) and a["ts_ns"] == NOW and a["locate"] == AAA
    assert [parse_itch(x) for x in m] == [{
        "type": "A", "locate": AAA, "tracking": 0, "ts": NOW, "order_ref": 1, "side": b"B",
        "shares": 300, "stock": b"AAA     ", "price": 99_0000}]
    r, m = b.run(enter(7, "S", 120, 98_0000, user=2))      # crosses: trades at the resting 99.00
    assert kinds(r) == [("A", 2, 7), ("E", 1, 1), ("E", 2, 7)]
    e_rest, e_agg = r[1], r[2]
    assert (e_rest["qty"], e_rest["price"], e_rest["match"], e_rest["liquidity"]) == (120, 99_0000, 1, ord("A"))
    assert (e_agg["qty"], e_agg["price"], e_agg["match"], e_agg["liquidity"]) == (120, 99_0000, 1, ord("R"))
    assert [parse_itch(x) for x in m] == [{
        "type": "E", "locate": AAA, "tracking": 0, "ts": NOW, "order_ref": 1, "shares": 120, "match": 1}]
    assert b.levels(AAA, 0) == [(99_0000, 180, 1)] and b.levels(AAA, 1) == []


def test_price_then_time_priority(b):
    b.run(enter(1, "B", 100, 99_0000), enter(2, "B", 100, 99_5000), enter(3, "B", 100, 99_5000),
          enter(4, "B", 100, 99_0000))
    r, m = b.run(enter(1, "S", 250, 99_0000, user=2))
    fills = [(x["uref"], x["qty"]) for x in r if x["kind"] == "E" and x["user"] == 1]
    assert fills == [(2, 100), (3, 100), (1, 50)]              # better price first, then time
    assert [parse_itch(x)["order_ref"] for x in m] == [2, 3, 1]
    assert [parse_itch(x)["match"] for x in m] == [1, 2, 3]
    assert b.levels(AAA, 0) == [(99_0000, 150, 2)]
    assert [int(b.e.ord["uref"][j]) for j in B.queue(b.e, AAA, 0, 99_0000)] == [1, 4]


def test_walks_levels_and_residual_rests(b):
    b.run(enter(1, "S", 100, 100_0000), enter(2, "S", 100, 100_0100))
    r, m = b.run(enter(3, "B", 250, 100_0100, user=2))
    assert [(x["kind"], x["user"], x["price"], x["qty"]) for x in r if x["kind"] == "E"] == [
        ("E", 1, 100_0000, 100), ("E", 2, 100_0000, 100), ("E", 1, 100_0100, 100), ("E", 2, 100_0100, 100)]
    assert [x[:1] for x in m] == [b"E", b"E", b"A"]
    add = parse_itch(m[2])
    assert (add["side"], add["shares"], add["price"], add["order_ref"]) == (b"B", 50, 100_0100, 3)
    assert b.levels(AAA, 0) == [(100_0100, 50, 1)] and b.levels(AAA, 1) == []


def test_ioc_and_market_orders_cancel_the_rest(b):
    b.run(enter(1, "S", 100, 100_0000))
    r, m = b.run(enter(2, "B", 150, 100_0000, user=2, tif="3"))
    assert kinds(r) == [("A", 2, 2), ("E", 1, 1), ("E", 2, 2), ("C", 2, 2)]
    assert (r[3]["qty"], r[3]["reason_c"]) == (50, ord("I"))
    assert [x[:1] for x in m] == [b"E"]                       # nothing rests: no A
    b.run(enter(3, "S", 100, 105_0000), enter(4, "S", 100, 109_0000))
    r, m = b.run(enter(5, "B", 300, L.MARKET_PRICE, user=2))
    assert [(x["kind"], x["price"], x["qty"]) for x in r if x["user"] == 2] == [
        ("A", L.MARKET_PRICE, 300), ("E", 105_0000, 100), ("E", 109_0000, 100), ("C", L.MARKET_PRICE, 100)]
    assert b.levels(AAA, 1) == [] and b.levels(AAA, 0) == []


def test_reduce_keeps_priority_replace_loses_it(b):
    b.run(enter(1, "B", 100, 99_0000), enter(2, "B", 100, 99_0000), enter(3, "B", 100, 99_0000))
    r, m = b.run(cancel(1, qty=40))                           # reduce to 40: X 60, stays first
    assert kinds(r) == [("C", 1, 1)] and (r[0]["qty"], r[0]["reason_c"]) == (60, ord("U"))
    assert [parse_itch(x) for x in m] == [{"type": "X", "locate": AAA, "tracking": 0, "ts": NOW,
                                           "order_ref": 1, "shares": 60}]
    r, m = b.run(replace(2, 10, 100, 99_0000, clordid=b"rep"))  # same price and size: to the back
    assert kinds(r) == [("U", 1, 10)]
    u = r[0]
    assert (u["orig_uref"], u["qty"], u["price"], u["order_ref"], u["clordid"]) == (2, 100, 99_0000, 4, b"rep".ljust(14))
    assert [parse_itch(x) for x in m] == [{"type": "U", "locate": AAA, "tracking": 0, "ts": NOW,
                                           "order_ref": 2, "new_order_ref": 4, "shares": 100, "price": 99_0000}]
    assert [int(b.e.ord["uref"][j]) for j in B.queue(b.e, AAA, 0, 99_0000)] == [1, 3, 10]
    r, _ = b.run(enter(1, "S", 150, 99_0000, user=2))
    assert [(x["uref"], x["qty"]) for x in r if x["kind"] == "E" and x["user"] == 1] == [(1, 40), (3, 100), (10, 10)]
    assert b.levels(AAA, 0) == [(99_0000, 90, 1)]
    r, m = b.run(cancel(10, qty=0))                           # cancel all: D
    assert (r[0]["kind"], r[0]["qty"]) == ("C", 90) and parse_itch(m[0])["type"] == "D"
    assert b.levels(AAA, 0) == [] and B.live_orders(b.e) == 0


def test_replace_quantity_counts_the_chain_and_can_trade(b):
    b.run(enter(1, "B", 100, 99_0000))
    b.run(enter(1, "S", 30, 99_0000, user=2))                 # 30 executed of the chain
    r, m = b.run(replace(1, 2, 100, 99_5000))                 # total 100 -> 70 open
    assert r[0]["kind"] == "U" and r[0]["qty"] == 70
    assert parse_itch(m[0])["shares"] == 70
    b.run(enter(2, "S", 50, 100_0000, user=2))
    r, m = b.run(replace(2, 4, 100, 100_0000))                # marketable replace: D, then E, rest A
    assert [x["kind"] for x in r if x["user"] == 1] == ["U", "E"]
    assert [x[:1] for x in m] == [b"D", b"E", b"A"]
    assert parse_itch(m[2])["shares"] == 20
    assert b.levels(AAA, 0) == [(100_0000, 20, 1)]
    r, m = b.run(replace(4, 5, 80, 100_0000))                 # total 80 <= 80 executed: invalid
    assert [(x["kind"], x["uref"], x["qty"], x["reason_c"]) for x in r] == [("C", 4, 20, ord("Z"))]
    assert [x[:1] for x in m] == [b"D"] and b.levels(AAA, 0) == []


def test_modify_side_and_size(b):
    b.run(enter(1, "S", 100, 101_0000), enter(2, "S", 100, 101_0000))
    r, m = b.run(modify(1, "T", 60))
    assert kinds(r) == [("M", 1, 1)] and (r[0]["side"], r[0]["qty"]) == (ord("T"), 60)
    assert parse_itch(m[0])["type"] == "X" and parse_itch(m[0])["shares"] == 40
    assert [int(b.e.ord["uref"][j]) for j in B.queue(b.e, AAA, 1, 101_0000)] == [1, 2]
    for bad in (modify(1, "B", 50), modify(1, "T", 80), modify(1, "T", 0), modify(99, "S", 1)):
        r, m = b.run(bad)
        assert r == [] and m == []
    assert b.e.counters[L.C_MODIFY_BAD] == 3 and b.e.counters[L.C_CANCEL_UNKNOWN] == 1


def test_self_match_prevention_cancels_the_resting_order(b):
    b.run(enter(1, "S", 100, 100_0000), enter(1, "S", 100, 100_0000, user=2))
    r, m = b.run(enter(2, "B", 150, 100_0000))
    assert [(x["kind"], x["user"], x["uref"]) for x in r] == [
        ("A", 1, 2), ("C", 1, 1), ("E", 2, 1), ("E", 1, 2)]
    assert r[1]["reason_c"] == ord("Q") and r[1]["qty"] == 100
    assert [x[:1] for x in m] == [b"D", b"E", b"A"]
    assert b.e.counters[L.C_SELF_MATCH] == 1


def test_self_match_allowed_when_switched_off():
    b = Bench(smp=False)
    b.run(enter(1, "S", 100, 100_0000))
    r, _ = b.run(enter(2, "B", 100, 100_0000))
    assert [(x["kind"], x["uref"], x["liquidity"]) for x in r] == [
        ("A", 2, 0), ("E", 1, ord("A")), ("E", 2, ord("R"))]


def test_hidden_orders_trade_as_p(b):
    r, m = b.run(enter(1, "S", 100, 100_0000, display="N"))
    assert kinds(r) == [("A", 1, 1)] and m == [] and b.levels(AAA, 1) == []
    r, m = b.run(enter(2, "B", 40, 100_0000, user=2))
    p = parse_itch(m[0])
    assert (p["type"], p["order_ref"], p["side"], p["shares"], p["price"], p["match"]) == (
        "P", 0, b"S", 40, 100_0000, 1)


def test_attributable_orders_are_f_with_the_users_mpid(b):
    _, m = b.run(enter(1, "B", 100, 99_0000, display="A"))
    f = parse_itch(m[0])
    assert (f["type"], f["attribution"], f["shares"]) == ("F", b"USR1", 100)


@pytest.mark.parametrize("command, reason", [
    (cmd(locate=0), L.REJ_INVALID_SYMBOL),
    (cmd(locate=9), L.REJ_INVALID_SYMBOL),
    (cmd(side="X"), L.REJ_INVALID_SIDE),
    (cmd(qty=0), L.REJ_INVALID_QUANTITY),
    (cmd(qty=L.MAX_ORDER_QTY + 1), L.REJ_SHARES_EXCEED_THRESHOLD),
    (cmd(tif="6"), L.REJ_OTHER),                              # GTT: no expiry timer here
    (cmd(display="Q"), L.REJ_INVALID_DISPLAY),
    (cmd(capacity="Z"), L.REJ_OTHER),
    (cmd(iso="Q"), L.REJ_ISO_NOT_ALLOWED),
    (cmd(cross="O"), L.REJ_INVALID_CROSS),
    (cmd(price=99_0050), L.REJ_INVALID_PRICE),                # off the one-cent grid
    (cmd(price=0), L.REJ_INVALID_PRICE),
    (cmd(price=110_0100), L.REJ_FAT_FINGER),                  # band: 90.00 .. 110.00
    (cmd(price=89_9900), L.REJ_FAT_FINGER),
])
def test_every_reject_reason(b, command, reason):
    r, m = b.run(command)
    assert [x["kind"] for x in r] == ["J"] and r[0]["reason"] == reason and m == []
    assert b.e.counters[L.REJ_BASE + reason] == 1 and b.e.counters[L.C_REJECTED] == 1


def test_reject_codes_are_nasdaqs():
    """OUCH 5.0's Order Rejected reason table (rev 1.05), the codes the venue sends."""
    assert (L.REJ_DESTINATION_CLOSED, L.REJ_INVALID_DISPLAY, L.REJ_FAT_FINGER, L.REJ_HALTED,
            L.REJ_ISO_NOT_ALLOWED, L.REJ_INVALID_SIDE, L.REJ_PROCESSING_ERROR, L.REJ_OTHER,
            L.REJ_INVALID_QUANTITY, L.REJ_INVALID_CROSS, L.REJ_INVALID_SYMBOL, L.REJ_INVALID_PRICE,
            L.REJ_SHARES_EXCEED_THRESHOLD) == (0x02, 0x03, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0F,
                                               0x13, 0x14, 0x17, 0x1D, 0x1E)
    assert all(L.REJ_BASE + code < L.N_ALL_COUNTERS for code in L.REJECT_NAMES)


def test_reject_closed_and_full():
    b = Bench(max_orders=16)
    from tickpath.bench.venue import engine as E
    E.set_open(b.e, False)
    r, _ = b.run(enter(1, "B", 100, 99_0000))
    assert r[0]["kind"] == "J" and r[0]["reason"] == L.REJ_DESTINATION_CLOSED
    E.set_open(b.e, True)
    r, _ = b.run(*[enter(i, "B", 100, 99_0000) for i in range(2, 19)])
    assert [x["kind"] for x in r].count("A") == 16 and r[-1]["reason"] == L.REJ_PROCESSING_ERROR


@pytest.mark.parametrize("bad", [
    replace(1, 2, 100, 99_0050),                              # off the grid
    replace(1, 2, 0, 99_0000),                                # quantity 0
    replace(1, 2, L.MAX_ORDER_QTY + 1, 99_0000),              # above the threshold
    replace(1, 2, 100, 120_0000),                             # outside the band
    replace(1, 2, 100, L.MARKET_PRICE),                       # market price
    replace(1, 2, 100, 99_0000, tif="6"),                     # GTT
    replace(1, 2, 100, 99_0000, display="Q"),
])
def test_replace_with_invalid_details_cancels_the_live_order(b, bad):
    """OUCH 5.0: 'a Cancel Order Message will take the existing order out of the book'."""
    b.run(enter(1, "B", 100, 99_0000))
    r, m = b.run(bad)
    assert [(x["kind"], x["uref"], x["qty"], x["reason_c"]) for x in r] == [("C", 1, 100, ord("Z"))]
    assert [parse_itch(x)["type"] for x in m] == ["D"] and b.levels(AAA, 0) == []
    assert b.e.counters[L.C_REPLACE_INVALID] == 1 and b.e.counters[L.C_REJECTED] == 0
    assert B.live_orders(b.e) == 0


def test_replace_of_an_unknown_or_dead_order_is_silently_ignored(b):
    r, m = b.run(replace(5, 6, 100, 99_0000))
    assert r == [] and m == [] and b.e.counters[L.C_REPLACE_UNKNOWN] == 1
    b.run(enter(1, "B", 100, 99_0000), cancel(1))
    r, m = b.run(replace(1, 2, 100, 99_0000))
    assert r == [] and m == [] and b.e.counters[L.C_REPLACE_UNKNOWN] == 2


def test_cancel_unknown_dead_or_no_change_is_ignored_and_counted(b):
    b.run(enter(1, "B", 100, 99_0000))
    for c in (cancel(42), cancel(1, qty=100), cancel(1, qty=500)):
        r, m = b.run(c)
        assert r == [] and m == []
    b.run(cancel(1))
    r, m = b.run(cancel(1))                                   # dead now
    assert r == [] and m == []
    assert b.e.counters[L.C_CANCEL_UNKNOWN] == 2 and b.e.counters[L.C_CANCEL_NOOP] == 2


def test_user_refs_are_per_user(b):
    b.run(enter(1, "B", 100, 99_0000, user=1), enter(1, "B", 100, 98_0000, user=2))
    r, m = b.run(cancel(1, user=2))
    assert kinds(r) == [("C", 2, 1)] and b.levels(AAA, 0) == [(99_0000, 100, 1)]
