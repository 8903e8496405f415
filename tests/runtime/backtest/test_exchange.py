"""The simulated exchange, event by event: queue position (L3 FIFO exact from order refs,
risk-averse and power-law L2), fills by queue, trade-through and crossing, marketable
orders walking the book and removing what they took, cancels, rejects — and the RESPONSE
records it answers with (what the live OUCH client would deliver)."""
from __future__ import annotations

import numpy as np
import pytest

from tickpath.runtime.backtest import exchange as X
from tickpath.runtime.backtest.records import (
    CTR, MODEL_L3_FIFO, MODEL_POWER, MODEL_RISK_AVERSE, REJECT_LOCATE, REJECT_PRICE, REJECT_QTY,
    ST_N_FILLS, ST_N_OWN, ST_RSP_HEAD, ST_RSP_TAIL,
)
from tickpath.runtime.book.layout import new_books
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.trading import records as R

LOC = 3


class Sim:
    def __init__(self, model=MODEL_L3_FIFO, trade_through=True):
        self.books = new_books(8, 1024, 32)
        self.ctr = C.new_counters()
        self.ex = X.new_exchange(8, model=model, trade_through=trade_through, power_n=2.0)
        self.ex.valid_loc[LOC] = 1
        self.t = 1_000
        self.uref = 0

    def ev(self, t, **f):
        e = np.zeros(1, dtype=EVENT_DTYPE)
        e["msg_type"] = ord(t)
        e["locate"] = LOC
        e["ts_exch"] = self.t
        for k, v in f.items():
            e[k] = v
        self.t += 10
        X.ex_on_market_py(self.ex, self.books, e, 0, self.ctr, self.t)   # as the loop calls it

    def add(self, ref, side, shares, price):
        self.ev("A", order_ref=ref, side=ord(side), shares=shares, price=price)

    def intent(self, kind=R.INTENT_NEW, side="B", qty=100, price=0, tif=R.TIF_DAY, uref=None, locate=LOC,
               orig=0):
        it = np.zeros(1, dtype=R.INTENT_DTYPE)
        if uref is None:
            self.uref += 1
            uref = self.uref
        it["kind"], it["uref"], it["side"], it["qty"] = kind, uref, ord(side), qty
        it["price"], it["tif"], it["locate"] = price, tif, locate
        self.t += 10
        X.ex_on_intent_py(self.ex, self.books, it[0], orig, self.t - 5, self.t)
        return uref

    def responses(self):
        h, t = self.ex.st[ST_RSP_HEAD], self.ex.st[ST_RSP_TAIL]
        out = [self.ex.rsp[i % len(self.ex.rsp)].copy() for i in range(h, t)]
        self.ex.st[ST_RSP_HEAD] = t
        return out

    def fills(self):
        n = self.ex.st[ST_N_FILLS]
        return [(int(f["price"]), int(f["qty"]), chr(f["liquidity"])) for f in self.ex.fills[:n]]

    def ahead(self):
        return [float(self.ex.ahead[i]) for i in range(self.ex.st[ST_N_OWN])]


def kinds(rs):
    return "".join(chr(r["kind"]) for r in rs)


def test_l3_joins_behind_and_fills_when_an_order_behind_is_executed():
    s = Sim()
    s.add(1, "B", 100, 10_0000)
    s.add(2, "B", 200, 10_0000)
    s.intent(price=10_0000, qty=100)
    rs = s.responses()
    assert kinds(rs) == "A" and rs[0]["state"] == ord("L") and rs[0]["ref"] > 0
    assert s.ahead() == [300.0]
    s.ev("E", order_ref=1, shares=100, ref2=1)          # ahead of us: the queue moves up
    assert s.ahead() == [200.0] and s.fills() == []
    s.add(3, "B", 500, 10_0000)                         # joins behind us
    s.ev("X", order_ref=2, shares=50)                   # a cancel ahead
    assert s.ahead() == [150.0]
    s.ev("E", order_ref=2, shares=150, ref2=2)
    assert s.ahead() == [0.0] and s.fills() == []       # at the front, nobody traded with us yet
    s.ev("E", order_ref=3, shares=10, ref2=3)           # the aggressor reached behind us
    assert s.fills() == [(10_0000, 100, "A")]
    rs = s.responses()
    assert kinds(rs) == "E" and rs[0]["qty"] == 100 and rs[0]["price"] == 10_0000
    assert s.ex.pos[LOC] == 100 and s.ex.st[ST_N_OWN] == 0


def test_replaced_recorded_order_goes_behind_us():
    s = Sim()
    s.add(1, "S", 100, 10_0100)
    s.intent(side="S", price=10_0100, qty=100)
    s.ev("U", order_ref=1, ref2=2, shares=100, price=10_0100)   # loses its priority
    assert s.ahead() == [0.0]
    s.ev("E", order_ref=2, shares=100, ref2=9)
    assert s.fills() == [(10_0100, 100, "A")]


def test_marketable_order_walks_levels_and_removes_what_it_took():
    s = Sim()
    s.add(1, "S", 100, 10_0100)
    s.add(2, "S", 200, 10_0200)
    s.add(3, "S", 300, 10_0300)
    s.intent(price=10_0200, qty=250, tif=R.TIF_IOC)
    assert s.fills() == [(10_0100, 100, "R"), (10_0200, 150, "R")]
    assert kinds(s.responses()) == "AEE"
    s.intent(price=10_0200, qty=100, tif=R.TIF_IOC)     # only 50 left for us at 10.02
    assert s.fills()[2:] == [(10_0200, 50, "R")]
    rs = s.responses()
    assert kinds(rs) == "AEC" and rs[2]["qty"] == 50 and rs[2]["reason_code"] == ord("I")
    s.ev("X", order_ref=2, shares=200)                  # the recorded flow takes the level away...
    s.add(4, "S", 100, 10_0200)                         # ...and new liquidity arrives there
    s.intent(price=10_0200, qty=100, tif=R.TIF_IOC)
    assert s.fills()[3:] == [(10_0200, 100, "R")]
    assert s.ex.pos[LOC] == 400
    assert s.ex.ctr[CTR["taker_fills"]] == 4


def test_marketable_day_remainder_rests():
    s = Sim()
    s.add(1, "S", 100, 10_0100)
    s.intent(price=10_0100, qty=300)
    assert s.fills() == [(10_0100, 100, "R")]
    assert kinds(s.responses()) == "AE" and s.ex.st[ST_N_OWN] == 1
    assert s.ex.oi[0, 4] == 200


def test_trade_through_fills_better_priced_orders():
    for tt in (True, False):
        s = Sim(trade_through=tt)
        s.add(1, "B", 100, 10_0000)
        s.intent(price=10_0100, qty=100)               # better than the recorded best bid
        s.ev("E", order_ref=1, shares=100, ref2=1)     # a seller hit 10.00: it passed us first
        assert s.fills() == ([(10_0100, 100, "A")] if tt else [])
    s = Sim()
    s.add(1, "B", 100, 10_0000)
    s.intent(price=10_0100, qty=100)
    s.ev("P", side=ord("B"), shares=100, price=9_9900, ref2=2)   # a hidden buyer filled below us
    assert s.fills() == [(10_0100, 100, "A")]


def test_crossing_add_fills_resting_order():
    s = Sim()
    s.add(1, "S", 100, 10_0500)
    s.intent(side="S", price=10_0400, qty=100)
    s.add(2, "B", 300, 10_0400)
    assert s.fills() == [(10_0400, 100, "A")] and s.ex.pos[LOC] == -100


def test_cancel_partial_full_and_unknown():
    s = Sim()
    s.add(1, "B", 100, 10_0000)
    u = s.intent(price=9_9900, qty=300)
    s.responses()
    s.intent(kind=R.INTENT_CANCEL, uref=u, qty=100)     # down to 100
    rs = s.responses()
    assert kinds(rs) == "C" and rs[0]["qty"] == 200 and rs[0]["reason_code"] == ord("U")
    s.intent(kind=R.INTENT_CANCEL, uref=u, qty=0)
    rs = s.responses()
    assert kinds(rs) == "C" and rs[0]["qty"] == 100 and s.ex.st[ST_N_OWN] == 0
    s.intent(kind=R.INTENT_CANCEL, uref=u, qty=0)       # gone: the race live has too
    assert kinds(s.responses()) == "I"


def test_replace_loses_priority_and_can_fill():
    s = Sim()
    s.add(1, "S", 100, 10_0100)
    u = s.intent(price=9_9900, qty=100)
    s.responses()
    s.intent(kind=R.INTENT_REPLACE, uref=u + 100, orig=u, qty=100, price=10_0100)
    rs = s.responses()
    assert kinds(rs) == "UE" and rs[0]["orig_uref"] == u and rs[0]["uref"] == u + 100
    assert s.fills() == [(10_0100, 100, "R")]


def test_replace_quantity_is_the_chain_total():
    s = Sim()
    s.add(1, "S", 40, 10_0100)
    u = s.intent(price=10_0100, qty=100)               # 40 fill on arrival, 60 rest
    s.responses()
    s.intent(kind=R.INTENT_REPLACE, uref=u + 1, orig=u, qty=100, price=9_9900)
    rs = s.responses()
    assert kinds(rs) == "U" and s.ex.oi[0, 4] == 60     # open = total - executed
    s.intent(kind=R.INTENT_REPLACE, uref=u + 2, orig=u + 1, qty=40, price=9_9900)
    assert kinds(s.responses()) == "C" and s.ex.st[ST_N_OWN] == 0


def test_cancel_all():
    s = Sim()
    s.add(1, "B", 100, 10_0000)
    for p in (9_9800, 9_9700, 9_9600):
        s.intent(price=p, qty=100)
    s.responses()
    s.intent(kind=R.INTENT_CANCEL_ALL, uref=0, locate=R.ALL_LOCATES)
    assert kinds(s.responses()) == "CCC" and s.ex.st[ST_N_OWN] == 0


@pytest.mark.parametrize("field,value,reason", [("qty", 0, REJECT_QTY), ("price", 0, REJECT_PRICE),
                                                ("locate", 5, REJECT_LOCATE)])
def test_rejects(field, value, reason):
    s = Sim()
    kw = {"qty": 100, "price": 10_0000, "locate": LOC}
    kw[field] = value
    s.intent(**kw)
    rs = s.responses()
    assert kinds(rs) == "J" and rs[0]["reason"] == reason
    assert s.ex.ctr[CTR["rejects"]] == 1


def test_risk_averse_cancels_never_advance_us():
    s = Sim(model=MODEL_RISK_AVERSE)
    s.add(1, "B", 200, 10_0000)
    s.add(2, "B", 100, 10_0000)
    s.intent(price=10_0000, qty=100)
    s.ev("X", order_ref=2, shares=50)                   # level 300 -> 250: min(300, 250)
    assert s.ahead() == [250.0]
    s.ev("E", order_ref=1, shares=200, ref2=1)
    assert s.ahead() == [50.0]
    s.ev("E", order_ref=2, shares=50, ref2=2)
    assert s.ahead() == [0.0] and s.fills() == []
    s.add(3, "B", 100, 10_0000)
    s.ev("E", order_ref=3, shares=30, ref2=3)           # past zero: we fill what went past
    assert s.fills() == [(10_0000, 30, "A")]


def test_power_law_attributes_part_of_a_cancel_to_the_front():
    s = Sim(model=MODEL_POWER)
    s.add(1, "B", 100, 10_0000)
    s.intent(price=10_0000, qty=100)
    s.add(2, "B", 300, 10_0000)                         # front 100, back 300
    s.ev("X", order_ref=2, shares=200)
    # prob(back) = 300^2 / (300^2 + 100^2) = 0.9: front loses 0.1 * 200
    assert s.ahead() == [pytest.approx(80.0)]
