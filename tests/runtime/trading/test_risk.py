"""Each pre-trade check alone: it rejects exactly the intents it should, counts them by
reason, and nothing it rejects reaches the outbox (so nothing reaches order entry)."""
from __future__ import annotations

import numpy as np
import pytest
from trading_kit import Kit

from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R

MID = 100_000   # $10.00: the kit's book is 9.90 x 10.10


def _kit(**risk):
    k = Kit(risk=risk)
    k.listing(1, "AAPL")
    k.listing(2, "MSFT")
    k.book(1, 99_000, 101_000)
    k.book(2, 99_000, 101_000)
    return k


def _run(k, *intents, loc=1):
    """Script the intents, run one step; -> the outbox entries."""
    for it in intents:
        k.intend(*it)
    n = k.touch(loc)
    return k.outbox(n)


def _rejects(k):
    return {n: int(k.tctx.counters[i]) for i, n in enumerate(T.REJECT_NAMES) if k.tctx.counters[i]}


def test_all_off_passes_everything():
    k = _kit()
    out = _run(k, (R.INTENT_NEW, 1, "B", 1_000_000, 1), (R.INTENT_NEW, 1, "S", 7, 10**9))
    assert [o["qty"] for o in out] == [1_000_000, 7]
    assert _rejects(k) == {}


def test_max_order_qty():
    k = _kit(max_order_qty=500)
    out = _run(k, (R.INTENT_NEW, 1, "B", 500, MID), (R.INTENT_NEW, 1, "B", 501, MID),
               (R.INTENT_NEW, 1, "S", 10_000, MID))
    assert [o["qty"] for o in out] == [500]
    assert _rejects(k) == {"max_order_qty": 2}
    assert k.counter("risk_rejects") == 2


def test_max_notional():
    k = _kit(max_notional=1000.0)
    out = _run(k, (R.INTENT_NEW, 1, "B", 100, MID), (R.INTENT_NEW, 1, "B", 101, MID),
               (R.INTENT_NEW, 1, "S", 50, 200_001))
    assert [(o["qty"], o["price"]) for o in out] == [(100, MID)]
    assert _rejects(k) == {"max_notional": 2}


def test_price_collar_against_mid_and_last_trade():
    k = _kit(price_collar_pct=5.0)
    out = _run(k, (R.INTENT_NEW, 1, "B", 100, 105_000), (R.INTENT_NEW, 1, "B", 100, 105_001),
               (R.INTENT_NEW, 1, "S", 100, 95_000), (R.INTENT_NEW, 1, "S", 100, 94_999))
    assert [o["price"] for o in out] == [105_000, 95_000]
    assert _rejects(k) == {"price_collar": 2}
    # locate 3: listed, no book, no trade -> nothing to check against
    k.listing(3, "IBM")
    out = _run(k, (R.INTENT_NEW, 3, "B", 100, MID), loc=3)
    assert out == [] and _rejects(k)["no_reference_price"] == 1


def test_position_limit_counts_open_orders_worst_case():
    k = _kit(max_position=300)
    out = _run(k, (R.INTENT_NEW, 1, "B", 200, MID), (R.INTENT_NEW, 1, "B", 100, MID),
               (R.INTENT_NEW, 1, "B", 1, MID), (R.INTENT_NEW, 1, "S", 300, MID),
               (R.INTENT_NEW, 1, "S", 1, MID))
    assert [(chr(o["side"]), o["qty"]) for o in out] == [("B", 200), ("B", 100), ("S", 300)]
    assert _rejects(k) == {"position_limit": 2}
    # the 200 buy fills: position 200, open buys 100 -> still no room to buy
    b200 = out[0]["uref"]
    k.respond(k.resp("A", b200, 200, MID), k.resp("E", b200, 200, MID))
    assert k.tctx.loc[1, T.L_POS] == 200
    assert _run(k, (R.INTENT_NEW, 1, "B", 1, MID)) == []
    # selling is now allowed down to -300 worst case: 200 - 300(open sell) - 200 = -300
    assert len(_run(k, (R.INTENT_NEW, 1, "S", 200, MID))) == 1
    assert _run(k, (R.INTENT_NEW, 1, "S", 1, MID)) == []
    assert _rejects(k) == {"position_limit": 4}


def test_total_position_limit():
    k = _kit(max_total_position=500)
    out = _run(k, (R.INTENT_NEW, 1, "B", 300, MID), (R.INTENT_NEW, 2, "S", 200, MID),
               (R.INTENT_NEW, 2, "B", 1, MID))
    assert [o["qty"] for o in out] == [300, 200]
    assert _rejects(k) == {"total_position_limit": 1}


def test_max_open_orders_frees_on_cancel():
    k = _kit(max_open_orders=2)
    out = _run(k, *[(R.INTENT_NEW, 1, "B", 100, MID - i * 100) for i in range(3)])
    assert len(out) == 2 and _rejects(k) == {"max_open_orders": 1}
    u = out[0]["uref"]
    k.respond(k.resp("A", u, 100, MID), k.resp("C", u, 100))
    assert len(_run(k, (R.INTENT_NEW, 1, "B", 100, MID - 500))) == 1
    assert len(_run(k, (R.INTENT_NEW, 2, "B", 100, MID))) == 1   # per instrument


@pytest.mark.parametrize("key,window_ns,limit", [("max_orders_per_100ms", 100_000_000, 3),
                                                 ("max_orders_per_s", 1_000_000_000, 4)])
def test_order_rate_sliding_window(key, window_ns, limit):
    k = _kit(**{key: limit})
    out = _run(k, *[(R.INTENT_NEW, 1, "B", 100, MID - i * 100) for i in range(limit + 2)])
    assert len(out) == limit
    name = "order_rate_100ms" if "100ms" in key else "order_rate_1s"
    assert _rejects(k) == {name: 2}
    k.now += window_ns - 1
    assert _run(k, (R.INTENT_NEW, 1, "B", 100, MID - 10_000)) == []   # still inside the window
    k.now += 1
    assert len(_run(k, (R.INTENT_NEW, 1, "B", 100, MID - 10_100))) == 1


def test_message_rate_counts_cancels_but_never_refuses_them():
    k = _kit(max_msgs_per_100ms=3, max_msgs_per_s=10)
    out = _run(k, (R.INTENT_NEW, 1, "B", 100, MID), (R.INTENT_NEW, 1, "B", 100, MID - 100))
    u0, u1 = out[0]["uref"], out[1]["uref"]
    k.respond(k.resp("A", u0, 100, MID), k.resp("A", u1, 100, MID - 100))
    out = _run(k, (R.INTENT_CANCEL, 1, "B", 0, 0, u0), (R.INTENT_NEW, 1, "B", 100, MID - 200),
               (R.INTENT_CANCEL, 1, "B", 0, 0, u1))
    assert [o["kind"] for o in out] == [R.INTENT_CANCEL, R.INTENT_CANCEL]
    assert _rejects(k) == {"msg_rate_100ms": 1}


def test_duplicate_guard():
    k = _kit(duplicate_window_ms=50)
    out = _run(k, (R.INTENT_NEW, 1, "B", 100, MID), (R.INTENT_NEW, 1, "B", 100, MID),
               (R.INTENT_NEW, 1, "B", 200, MID), (R.INTENT_NEW, 1, "S", 200, MID),
               (R.INTENT_NEW, 2, "B", 200, MID))
    assert [(o["locate"], chr(o["side"]), o["qty"]) for o in out] == [(1, "B", 100), (1, "B", 200),
                                                                     (1, "S", 200), (2, "B", 200)]
    assert _rejects(k) == {"duplicate": 1}
    k.now += 50_000_000
    assert len(_run(k, (R.INTENT_NEW, 1, "B", 200, MID))) == 1


def test_restricted_and_unlisted_instruments():
    k = _kit(restricted=["MSFT"])
    out = _run(k, (R.INTENT_NEW, 2, "B", 100, MID), (R.INTENT_NEW, 1, "B", 100, MID),
               (R.INTENT_NEW, 5, "B", 100, MID))
    assert [o["locate"] for o in out] == [1]
    assert _rejects(k) == {"restricted": 1, "no_symbol": 1}


def test_malformed_intents():
    k = _kit()
    out = _run(k, (R.INTENT_NEW, 1, "B", 0, MID), (R.INTENT_NEW, 1, "B", 100, 0),
               (R.INTENT_NEW, 1, "X", 100, MID), (R.INTENT_CANCEL, 1, "B", 0, 0, 999),
               (R.INTENT_REPLACE, 1, "B", 100, MID, 999))
    assert out == [] and _rejects(k) == {"bad_intent": 5}


def test_book_marked_unreliable_is_not_traded():
    from tickpath.runtime.book.orderbook import book_ok
    k = _kit(check_book=True)
    assert book_ok(k.pipe.books, 1) and book_ok(k.pipe.books, 2)
    assert len(_run(k, (R.INTENT_NEW, 1, "B", 100, MID))) == 1
    # more bid levels than the kit's book holds (16 per side): the book refuses one and says so
    k.feed([k.add(2, "B", 90_000 - 100 * i) for i in range(20)])
    assert not book_ok(k.pipe.books, 2)
    out = _run(k, (R.INTENT_NEW, 2, "B", 100, MID), (R.INTENT_NEW, 1, "B", 100, MID - 100), loc=2)
    assert [o["locate"] for o in out] == [1]
    assert _rejects(k) == {"book_unreliable": 1}
    k2 = _kit(check_book=False)   # the check can be turned off
    k2.feed([k2.add(2, "B", 90_000 - 100 * i) for i in range(20)])
    assert len(_run(k2, (R.INTENT_NEW, 2, "B", 100, MID), loc=2)) == 1


def test_replace_passes_size_price_position_checks():
    k = _kit(max_order_qty=500, price_collar_pct=5.0, max_position=600)
    out = _run(k, (R.INTENT_NEW, 1, "B", 300, MID))
    u = out[0]["uref"]
    k.respond(k.resp("A", u, 300, MID))
    out = _run(k, (R.INTENT_REPLACE, 1, "B", 501, MID, u), (R.INTENT_REPLACE, 1, "B", 300, 120_000, u),
               (R.INTENT_REPLACE, 1, "B", 301, MID, u), (R.INTENT_REPLACE, 1, "B", 300, MID - 100, u))
    # worst case while the replace is in flight: 300 (original) + 300 (replacement) = 600
    assert [(o["kind"], o["qty"], o["price"]) for o in out] == [(R.INTENT_REPLACE, 300, MID - 100)]
    assert _rejects(k) == {"max_order_qty": 1, "price_collar": 1, "position_limit": 1}


def test_throttles_over_many_ring_wraps_match_a_plain_sliding_window():
    """The rings index by a kept position, not by a division: over hundreds of orders (the
    ring of 7 slots wraps ~40 times) every verdict equals a plain count of the orders that
    passed within each window, first failing window first."""
    lim = {"max_orders_per_s": 5, "max_orders_per_100ms": 3, "max_msgs_per_s": 6,
           "max_msgs_per_100ms": 3}
    k = _kit(max_venue_rejects_per_s=2, **lim)
    assert k.tctx.rates.shape[1] == 7
    rng = np.random.default_rng(14)
    passed_at = []
    checks = [("order_rate_1s", 1_000_000_000, 5), ("order_rate_100ms", 100_000_000, 3),
              ("msg_rate_1s", 1_000_000_000, 6), ("msg_rate_100ms", 100_000_000, 3)]
    want = {}
    for i in range(300):
        k.now += int(rng.integers(1, 150)) * 1_000_000
        out = _run(k, (R.INTENT_NEW, 1, "B", 1, MID - (i % 50) * 10))
        reason = next((name for name, w, n in checks
                       if sum(1 for t in passed_at if k.now - t < w) >= n), None)
        if reason is None:
            passed_at.append(k.now)
            assert len(out) == 1, i
        else:
            want[reason] = want.get(reason, 0) + 1
            assert out == [], i
    assert _rejects(k) == want and len(passed_at) > 100 and sum(want.values()) > 20
