"""Positions and P&L against a plain-Python recomputation; every circuit breaker trips the
kill switch on its condition, after which no new order leaves and every open order is
cancelled (once, and again after a reconnect)."""
from __future__ import annotations

import random

import numpy as np
import pytest
from trading_kit import Kit, python_pnl

from tickpath.runtime.ipc.ring import Ring
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.audit import layout as AL
from tickpath.runtime.trading.audit.writer import AuditWriter
from tickpath.runtime.trading.killswitch import trip_array

MID = 100_000


def _kit(**risk):
    k = Kit(risk=risk, **({} if "fees_per_share" not in risk else {}))
    k.listing(1, "AAPL")
    k.book(1, 99_000, 101_000)
    return k


def _send(k, *intents):
    for it in intents:
        k.intend(*it)
    return k.outbox(k.touch(1))


def _fill(k, side, qty, price):
    out = _send(k, (R.INTENT_NEW, 1, side, qty, price))
    u = out[0]["uref"]
    k.respond(k.resp("A", u, qty, price), k.resp("E", u, qty, price))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pnl_matches_a_plain_python_recomputation(seed):
    rnd = random.Random(seed)
    k = _kit(fees_per_share=0.003)
    fills = []
    for _ in range(60):
        side = rnd.choice("BS")
        qty = rnd.choice([1, 50, 100, 300])
        px = MID + rnd.randint(-50, 50) * 100
        _fill(k, side, qty, px)
        fills.append((side, qty, px))
    pos, avg, realised, fees, unreal = python_pnl(fills, 0.003, mark4=MID)
    p = k.tctx.pnl[1]
    assert k.tctx.loc[1, T.L_POS] == pos
    assert p[T.P_AVG_PX] == pytest.approx(avg)
    assert p[T.P_REALISED] == pytest.approx(realised, abs=1e-6)
    assert p[T.P_FEES] == pytest.approx(fees)
    k.touch(1)   # marks to the mid (99_000 x 101_000 -> 100_000)
    assert p[T.P_UNREALISED] == pytest.approx(unreal, abs=1e-6)
    tot = k.tctx.tot
    assert tot[T.TOT_REALISED] == pytest.approx(realised, abs=1e-6)
    assert tot[T.TOT_UNREALISED] == pytest.approx(unreal, abs=1e-6)
    assert tot[T.TOT_FEES] == pytest.approx(fees)
    assert p[T.P_BOUGHT] == sum(q for s, q, _ in fills if s == "B")


def test_loss_limit_breaker():
    k = _kit(max_loss=50.0)
    _fill(k, "B", 100, MID)
    _fill(k, "S", 100, MID - 4_000)        # -$40 realised
    assert k.tctx.kill[0] == 0
    _fill(k, "B", 100, MID)
    # the market drops: a new BBO far below (80_000 x 80_100 under the old levels' mid)
    k.feed([k.add(1, "S", 80_200)])   # asks now 80_200: mid (99_000 + 80_200) / 2 = 89_600
    # the long 100 @ 10.00 marked at 8.96: -$104 -> with -$40 realised, past -$50
    assert k.tctx.kill[0] == 1 and T.KILL_REASONS[k.tctx.kill[1]] == "loss_limit"


def test_reject_rate_breaker():
    k = _kit(max_venue_rejects_per_s=3)
    out = _send(k, *[(R.INTENT_NEW, 1, "B", 100, MID - i * 100) for i in range(5)])
    for o in out[:3]:
        k.respond(k.resp("J", o["uref"], reason=1))
    assert k.tctx.kill[0] == 0
    k.respond(k.resp("J", out[3]["uref"], reason=1))
    assert k.tctx.kill[0] == 1 and T.KILL_REASONS[k.tctx.kill[1]] == "reject_rate"


def test_breach_count_breaker():
    k = _kit(max_breaches=2, max_order_qty=10)
    _send(k, (R.INTENT_NEW, 1, "B", 11, MID), (R.INTENT_NEW, 1, "B", 11, MID))
    assert k.tctx.kill[0] == 0
    _send(k, (R.INTENT_NEW, 1, "B", 11, MID))
    assert k.tctx.kill[0] == 1 and T.KILL_REASONS[k.tctx.kill[1]] == "breach_count"


def test_stale_market_data_breaker():
    k = _kit(market_data_stale_ms=100)
    _send(k, (R.INTENT_NEW, 1, "B", 100, MID))
    k.now += 100_000_000
    k.step()
    assert k.tctx.kill[0] == 0
    k.now += 1
    n = k.step()   # a silent feed: no stale quotes left in the market
    assert k.tctx.kill[0] == 1 and T.KILL_REASONS[k.tctx.kill[1]] == "market_data_stale"
    assert [o["kind"] for o in k.outbox(n)] == [R.INTENT_CANCEL]


def test_kill_switch_cancels_everything_once_and_blocks_new_orders():
    k = _kit()
    out = _send(k, *[(R.INTENT_NEW, 1, "B", 100, MID - i * 100) for i in range(4)])
    urefs = [o["uref"] for o in out]
    k.respond(*[k.resp("A", u, 100, MID) for u in urefs[:3]])   # the 4th still pending
    k.respond(k.resp("E", urefs[0], 100, MID))                 # the 1st filled
    trip_array(k.tctx.kill, T.K_OTHER_PROCESS)
    k.intend(R.INTENT_NEW, 1, "B", 100, MID)
    n = k.touch(1)
    out = k.outbox(n)
    assert sorted(o["uref"] for o in out) == urefs[1:] and all(o["kind"] == R.INTENT_CANCEL for o in out)
    assert k.counter("kill_cancels") == 3 and k.counter("new_sent") == 4
    assert k.step() == 0 and k.touch(1) == 0            # nothing twice, nothing new
    k.respond(*[k.resp("C", u, 100) for u in urefs[1:3]], k.resp("A", urefs[3], 100, MID),
              k.resp("C", urefs[3], 100))
    assert k.tctx.st[T.S_N_OPEN] == 0 and k.step() == 0
    assert k.strat.n[0] == 1   # the scripted new order never even reached the gate


def test_session_lost_cancel_on_reconnect():
    from tickpath.runtime.trading.step import session_restored
    k = _kit()
    out = _send(k, *[(R.INTENT_NEW, 1, "B", 100, MID - i * 100) for i in range(2)])
    a, b = out[0]["uref"], out[1]["uref"]
    k.respond(k.resp("A", a, 100, MID), k.resp("A", b, 100, MID))
    _send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, a))              # in flight when the session drops
    lost = k.resp(R.RESP_SESSION_LOST, 0, seq=0)
    k.respond(lost)
    assert k.tctx.kill[0] == 1 and T.KILL_REASONS[k.tctx.kill[1]] == "session_lost"
    assert k.step() == 0                                      # nothing can go while down
    session_restored(k.tctx)
    out = k.outbox(k.step())                                  # first thing after the re-login
    assert sorted(o["uref"] for o in out) == [a, b] and all(o["kind"] == R.INTENT_CANCEL for o in out)


def test_audit_ring_full_trips_the_kill_switch():
    ring = Ring.create(4, AL.AUDIT_DTYPE, policy="drop-newest")   # nobody drains it
    aw = AuditWriter(ring.hdr, ring.data, np.zeros(AL.N_WCTL, np.int64))
    k = Kit(audit=aw)
    k.listing(1, "AAPL")
    k.book(1, 99_000, 101_000)
    out = _send(k, (R.INTENT_NEW, 1, "B", 100, MID))   # decision + risk: 2 records
    assert len(out) == 1 and k.tctx.kill[0] == 0
    _send(k, (R.INTENT_NEW, 1, "B", 100, MID - 100), (R.INTENT_NEW, 1, "B", 100, MID - 200))
    assert k.counter("audit_ring_full") >= 1
    assert k.tctx.kill[0] == 1 and T.KILL_REASONS[k.tctx.kill[1]] == "audit_ring_full"
