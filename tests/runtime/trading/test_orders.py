"""The order manager's state machine on every response order, including responses racing a
cancel or a replace; open and in-flight quantities always equal a recount of the table."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from trading_kit import Kit

from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.orders import is_open, order_slot
from tickpath.runtime.trading.step import count_open

MID = 100_000


def _kit():
    k = Kit()
    k.listing(1, "AAPL")
    k.book(1, 99_000, 101_000)
    return k


def _send(k, *intents):
    for it in intents:
        k.intend(*it)
    return k.outbox(k.touch(1))


def _order(k, uref):
    j = int(order_slot(k.tctx, uref))
    assert j >= 0
    return k.tctx.orders[j]


def _state(k, uref):
    return T.STATE_NAMES[int(_order(k, uref)["state"])]


def _check_aggregates(k):
    """The running per-locate counts equal a recount from the order table."""
    o = k.tctx.orders
    live = np.array([is_open(int(s)) for s in o["state"]])
    buys = live & (o["side"] == R.SIDE_BUY)
    sells = live & (o["side"] == R.SIDE_SELL)
    L = k.tctx.loc
    assert L[1, T.L_OPEN_ORDERS] == live.sum() == count_open(k.tctx) == k.tctx.st[T.S_N_OPEN]
    assert L[1, T.L_OPEN_BUY] == o["leaves"][buys].sum()
    assert L[1, T.L_OPEN_SELL] == o["leaves"][sells].sum()
    assert L[1, T.L_INFLIGHT] == o["leaves"][live & (o["acked"] == 0)].sum()
    assert k.tctx.st[T.S_TOTAL_OPEN] == L[1, T.L_OPEN_BUY] + L[1, T.L_OPEN_SELL]


def _new(k, qty=100, side="B", price=MID, tif=R.TIF_DAY):
    out = _send(k, (R.INTENT_NEW, 1, side, qty, price, 0, tif))
    assert len(out) == 1
    return out[0]["uref"]


def test_new_live_partial_filled():
    k = _kit()
    u = _new(k)
    assert _state(k, u) == "pending_new" and k.tctx.loc[1, T.L_INFLIGHT] == 100
    _check_aggregates(k)
    k.respond(k.resp("A", u, 100, MID))
    assert _state(k, u) == "live" and k.tctx.loc[1, T.L_INFLIGHT] == 0
    k.respond(k.resp("E", u, 30, MID))
    assert _state(k, u) == "partially_filled" and _order(k, u)["leaves"] == 70
    _check_aggregates(k)
    k.respond(k.resp("E", u, 70, MID))
    assert _state(k, u) == "filled" and k.tctx.loc[1, T.L_POS] == 100
    _check_aggregates(k)
    assert k.counter("impossible_transitions") == 0


def test_rejected_and_dead_on_arrival():
    k = _kit()
    u = _new(k)
    k.respond(k.resp("J", u, reason=3))
    assert _state(k, u) == "rejected"
    v = _new(k, tif=R.TIF_IOC)
    k.respond(k.resp("A", v, 100, MID, state="D"))
    assert _state(k, v) == "cancelled"
    w = _new(k, tif=R.TIF_IOC)   # IOC: accepted, part filled, the rest cancelled by the venue
    k.respond(k.resp("A", w, 100, MID), k.resp("E", w, 40, MID), k.resp("C", w, 60))
    assert _state(k, w) == "cancelled" and _order(k, w)["filled"] == 40
    _check_aggregates(k)
    assert k.counter("impossible_transitions") == 0


def test_cancel_and_cancel_reject():
    k = _kit()
    u = _new(k)
    k.respond(k.resp("A", u, 100, MID))
    out = _send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, u))
    assert out[0]["kind"] == R.INTENT_CANCEL and out[0]["uref"] == u
    assert _state(k, u) == "pending_cancel"
    k.respond(k.resp("I", u))
    assert _state(k, u) == "live"
    _send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, u))
    k.respond(k.resp("P", u), k.resp("C", u, 100))
    assert _state(k, u) == "cancelled"
    _check_aggregates(k)
    # a second cancel of a closed order is a malformed intent, not a message
    assert _send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, u)) == []
    assert k.counter("impossible_transitions") == 0


def test_reduce_keeps_the_order_open():
    k = _kit()
    u = _new(k)
    k.respond(k.resp("A", u, 100, MID))
    out = _send(k, (R.INTENT_CANCEL, 1, "B", 40, 0, u))
    assert out[0]["qty"] == 40
    k.respond(k.resp("C", u, 60))
    assert _state(k, u) == "live" and _order(k, u)["leaves"] == 40
    _check_aggregates(k)


# The venue's view of one 100-share order: accept, fill 30, fill 70. We send a cancel after
# seeing `seen` of those; the venue acts on it after `acted` of them (acted >= seen: it
# cannot act before we sent it). If the order is still open at the venue then, it answers
# C for what is left; else I (too late). Every interleaving ends consistent.
VENUE = [("A", 100), ("E", 30), ("E", 70)]


@pytest.mark.parametrize("seen,acted", [(s, a) for s in range(4) for a in range(s, 4)])
def test_cancel_racing_every_response_order(seen, acted):
    k = _kit()
    u = _new(k)
    for kind, q in VENUE[:seen]:
        k.respond(k.resp(kind, u, q, MID))
    if seen == 3:   # already filled: the strategy cannot even ask
        assert _send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, u)) == []
        return
    assert len(_send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, u))) == 1
    assert _state(k, u) == "pending_cancel"
    for kind, q in VENUE[seen:acted]:
        k.respond(k.resp(kind, u, q, MID))
    filled = sum(q for kind, q in VENUE[:acted] if kind == "E")
    if acted == 0:
        # cancelled before it was accepted: the venue answers A then C (cancel of an order
        # it has just taken), or J; here: A, C
        k.respond(k.resp("A", u, 100, MID), k.resp("C", u, 100))
        final = "cancelled"
    elif acted < 3:
        k.respond(k.resp("C", u, 100 - filled))
        final = "cancelled"
    else:
        k.respond(k.resp("I", u))
        final = "filled"
    assert _state(k, u) == final
    assert k.tctx.loc[1, T.L_POS] == filled
    assert k.counter("impossible_transitions") == 0
    _check_aggregates(k)
    assert k.tctx.loc[1, T.L_OPEN_ORDERS] == 0 and k.tctx.loc[1, T.L_INFLIGHT] == 0


def test_cancel_before_accept_then_rejected():
    k = _kit()
    u = _new(k)
    _send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, u))
    k.respond(k.resp("J", u, reason=1))
    assert _state(k, u) == "rejected"
    _check_aggregates(k)
    assert k.counter("impossible_transitions") == 0


def test_replace_accepted_rejected_and_racing_a_fill():
    k = _kit()
    u = _new(k)
    k.respond(k.resp("A", u, 100, MID), k.resp("E", u, 20, MID))
    out = _send(k, (R.INTENT_REPLACE, 1, "B", 50, MID - 100, u))
    assert len(out) == 1
    r = out[0]
    assert r["kind"] == R.INTENT_REPLACE and r["uref"] > u
    assert r["qty"] == 70   # OUCH: the chain total, 20 executed + 50 wanted open
    from tickpath.runtime.trading.step import replace_orig
    assert replace_orig(k.tctx, 0) == u
    assert _state(k, u) == "pending_replace" and _state(k, r["uref"]) == "pending_new"
    _check_aggregates(k)   # worst case: 80 of the original + 50 of the replacement
    assert k.tctx.loc[1, T.L_OPEN_BUY] == 130
    k.respond(k.resp("U", r["uref"], 50, MID - 100, orig_uref=u))
    assert _state(k, u) == "replaced" and _state(k, r["uref"]) == "live"
    assert _order(k, r["uref"])["leaves"] == 50
    _check_aggregates(k)
    # a refused replace: the original stands as it was
    v = r["uref"]
    out = _send(k, (R.INTENT_REPLACE, 1, "B", 50, MID - 200, v))
    k.respond(k.resp("J", out[0]["uref"], reason=20))
    assert _state(k, v) == "live" and _state(k, out[0]["uref"]) == "rejected"
    _check_aggregates(k)
    # the original fills completely while the replace is in flight: OUCH silently ignores a
    # replace of a dead original, so the replacement never lived and no answer will come
    out = _send(k, (R.INTENT_REPLACE, 1, "B", 60, MID - 300, v))
    k.respond(k.resp("E", v, 50, MID - 100))
    assert _state(k, v) == "filled" and _state(k, out[0]["uref"]) == "cancelled"
    assert k.counter("replaces_ignored") == 1
    assert k.tctx.loc[1, T.L_POS] == 70
    _check_aggregates(k)
    assert k.tctx.loc[1, T.L_OPEN_ORDERS] == 0
    # a venue that answers it with a reject all the same: a late response, not an impossible one
    k.respond(k.resp("J", out[0]["uref"], reason=16))
    assert k.counter("late_responses") == 1 and k.counter("impossible_transitions") == 0


def test_replace_ignored_when_the_original_is_cancelled_first():
    """The original is cancelled in full (say, by the venue) with our replace in flight, and
    the kill switch had already cancelled the replacement too: both close, nothing stays open."""
    k = _kit()
    u = _new(k)
    k.respond(k.resp("A", u, 100, MID))
    v = _send(k, (R.INTENT_REPLACE, 1, "B", 100, MID - 100, u))[0]["uref"]
    _send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, v))
    assert _state(k, v) == "pending_cancel"
    k.respond(k.resp("C", u, 100))
    assert _state(k, u) == "cancelled" and _state(k, v) == "cancelled"
    assert k.counter("replaces_ignored") == 1 and k.counter("impossible_transitions") == 0
    _check_aggregates(k)
    assert k.tctx.loc[1, T.L_OPEN_ORDERS] == 0 and k.tctx.loc[1, T.L_INFLIGHT] == 0


def test_impossible_unknown_and_duplicate_responses_are_counted():
    k = _kit()
    u = _new(k)
    k.respond(k.resp("A", u, 100, MID), k.resp("E", u, 100, MID))
    k.respond(k.resp("A", u, 100, MID))                 # accept after filled
    k.respond(k.resp("U", u, 100, MID, orig_uref=12345))   # replaced, never asked
    assert k.counter("impossible_transitions") == 2
    k.respond(k.resp("E", 777_777, 10, MID))            # nobody's uref
    assert k.counter("unknown_uref") == 1
    k.respond(k.resp(ord("Z"), u))                      # no such kind
    assert k.counter("unknown_response_kind") == 1
    assert _state(k, u) == "filled" and k.tctx.loc[1, T.L_POS] == 100
    # a replayed message (sequence number already applied) is applied once only
    seq = k.resp_seq
    k.respond(k.resp("E", u, 100, MID, seq=seq))
    assert k.counter("duplicate_responses") == 1 and k.tctx.loc[1, T.L_POS] == 100
    assert k.tctx.kill[0] == 0


def test_overfill_is_applied_to_position_and_counted():
    k = _kit()
    u = _new(k)
    k.respond(k.resp("A", u, 100, MID), k.resp("E", u, 150, MID))
    assert k.tctx.loc[1, T.L_POS] == 150      # a fill is never lost
    assert k.counter("impossible_transitions") == 1
    _check_aggregates(k)


def test_sequence_gap_trips_the_kill_switch():
    k = _kit()
    u = _new(k)
    k.respond(k.resp("A", u, 100, MID))
    k.respond(k.resp("E", u, 10, MID, seq=k.resp_seq + 5))
    assert k.counter("response_seq_gaps") == 1
    assert k.tctx.kill[0] == 1 and T.KILL_REASONS[k.tctx.kill[1]] == "state_unsure"


def test_undecoded_response_trips_the_kill_switch():
    k = _kit()
    r = k.resp(R.RESP_UNDECODED, 0)
    k.respond(r)
    assert k.counter("undecoded_responses") == 1 and k.tctx.kill[0] == 1


def test_urefs_rise_and_skip_slots_still_open():
    k = Kit(order_capacity=64)
    k.listing(1, "AAPL")
    k.book(1, 99_000, 101_000)
    first = _new(k)
    k.respond(k.resp("A", first, 100, MID))           # stays open in slot first & 63
    urefs = [first]
    for _ in range(70):
        u = _new(k)
        k.respond(k.resp("A", u, 100, MID), k.resp("C", u, 100))
        urefs.append(u)
    assert all(b > a for a, b in itertools.pairwise(urefs))
    assert (first & 63) not in [u & 63 for u in urefs[1:] if u > first + 63][:1]
    assert _state(k, first) == "live"


def test_replacement_cancelled_before_its_replaced_message():
    """The kill switch cancels a replacement still PendingNew; the venue's U comes first, then C."""
    k = _kit()
    u = _new(k)
    k.respond(k.resp("A", u, 100, MID))
    out = _send(k, (R.INTENT_REPLACE, 1, "B", 100, MID - 100, u))
    v = out[0]["uref"]
    _send(k, (R.INTENT_CANCEL, 1, "B", 0, 0, v))
    assert _state(k, v) == "pending_cancel" and _state(k, u) == "pending_replace"
    k.respond(k.resp("U", v, 100, MID - 100, orig_uref=u))
    assert _state(k, u) == "replaced" and _state(k, v) == "pending_cancel"
    k.respond(k.resp("C", v, 100))
    assert _state(k, v) == "cancelled"
    assert k.counter("impossible_transitions") == 0
    _check_aggregates(k)
    assert k.tctx.loc[1, T.L_OPEN_ORDERS] == 0
