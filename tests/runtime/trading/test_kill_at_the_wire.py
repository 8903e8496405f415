"""The kill switch is checked again at the wire: an order the gate passed does not leave when
the switch tripped in between (from another process, or a breaker later in the same step).
Its order closes as refused, a replacement's original stands and is cancelled, a queued
cancel of it stays home too, and the counters and the audit log say what happened."""
from __future__ import annotations

import numpy as np
from trading_kit import Kit

from tickpath.runtime.ipc.ring import Ring
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.audit import layout as AL
from tickpath.runtime.trading.audit.writer import AuditWriter
from tickpath.runtime.trading.killswitch import trip_array
from tickpath.runtime.trading.step import count_open, withheld

MID = 100_000


def _kit(audit=None, **risk):
    k = Kit(risk=risk, audit=audit)
    k.listing(1, "AAPL")
    k.book(1, 99_000, 101_000)
    return k


def _gate(k, *intents):
    for it in intents:
        k.intend(*it)
    return k.outbox(k.touch(1))


def _audit():
    ring = Ring.create(256, AL.AUDIT_DTYPE, policy="drop-newest")
    return ring, AuditWriter(ring.hdr, ring.data, np.zeros(AL.N_WCTL, np.int64))


def _risk_records(ring, uref):
    d = ring.data
    sel = (d["kind"] == AL.KIND_RISK) & (d["uref"] == uref)
    return [(int(r["code"]), int(r["reason"])) for r in d[sel]]


def test_a_new_order_passed_by_the_gate_stays_home_after_a_kill_from_another_process():
    ring, aw = _audit()
    k = _kit(audit=aw)
    out = _gate(k, (R.INTENT_NEW, 1, "B", 100, MID))
    assert [o["kind"] for o in out] == [R.INTENT_NEW] and k.counter("new_sent") == 1
    u = out[0]["uref"]
    assert not withheld(k.tctx, 0, k.now)             # no kill: it goes
    trip_array(k.tctx.kill, T.K_OTHER_PROCESS)        # between the gate and send()
    assert withheld(k.tctx, 0, k.now)
    assert k.counter("new_sent") == 0 and k.counter("kill_withheld") == 1
    assert k.counter("reject_kill_switch") == 1
    assert count_open(k.tctx) == 0 and k.tctx.st[T.S_N_OPEN] == 0
    assert k.tctx.loc[1, T.L_INFLIGHT] == 0 and k.tctx.loc[1, T.L_OPEN_BUY] == 0
    assert _risk_records(ring, u) == [(AL.VERDICT_PASS, 0), (AL.VERDICT_REJECT, T.R_KILL)]
    assert k.step() == 0                              # nothing open: no kill cancel for it
    assert k.respond(k.resp("A", u, 100, MID)) == 1   # were it to answer, that is impossible
    assert k.counter("impossible_transitions") == 1


def test_cancels_still_leave_after_a_kill():
    k = _kit()
    u = _gate(k, (R.INTENT_NEW, 1, "B", 100, MID))[0]["uref"]
    k.respond(k.resp("A", u, 100, MID))
    out = _gate(k, (R.INTENT_CANCEL, 1, "B", 0, 0, u))
    assert [o["kind"] for o in out] == [R.INTENT_CANCEL]
    trip_array(k.tctx.kill, T.K_OTHER_PROCESS)
    assert not withheld(k.tctx, 0, k.now)
    assert k.counter("kill_withheld") == 0 and k.counter("cancel_sent") == 1


def test_a_withheld_replace_leaves_the_original_standing_and_the_kill_cancels_it():
    k = _kit()
    u = _gate(k, (R.INTENT_NEW, 1, "B", 100, MID - 100))[0]["uref"]
    k.respond(k.resp("A", u, 100, MID - 100))
    out = _gate(k, (R.INTENT_REPLACE, 1, "B", 100, MID - 200, u))
    assert [o["kind"] for o in out] == [R.INTENT_REPLACE]
    v = out[0]["uref"]
    trip_array(k.tctx.kill, T.K_OTHER_PROCESS)
    assert withheld(k.tctx, 0, k.now)
    assert k.counter("replace_sent") == 0 and k.counter("kill_withheld") == 1
    orders = k.tctx.orders
    assert orders[u & (orders.shape[0] - 1)]["state"] == T.LIVE
    assert orders[v & (orders.shape[0] - 1)]["state"] == T.REJECTED
    out = k.outbox(k.step())
    assert [(o["kind"], o["uref"]) for o in out] == [(R.INTENT_CANCEL, u)]


def test_a_breaker_mid_step_holds_back_the_order_and_its_queued_kill_cancel():
    k = _kit(max_order_qty=500, max_breaches=1)
    out = _gate(k, (R.INTENT_NEW, 1, "B", 100, MID), (R.INTENT_NEW, 1, "B", 900, MID),
                (R.INTENT_NEW, 1, "B", 900, MID))   # the second breach trips the switch
    assert k.tctx.kill[0] == 1 and T.KILL_REASONS[k.tctx.kill[1]] == "breach_count"
    assert [o["kind"] for o in out] == [R.INTENT_NEW, R.INTENT_CANCEL]
    assert out[0]["uref"] == out[1]["uref"]
    assert withheld(k.tctx, 0, k.now) and withheld(k.tctx, 1, k.now)
    assert k.counter("kill_withheld") == 2
    assert k.counter("new_sent") == 0 and k.counter("cancel_sent") == 0
    assert count_open(k.tctx) == 0 and k.step() == 0
