"""Order types beyond day and IOC (single thread, no sockets): post-only (OUCH 5.0 appendage
option 12), hidden orders queued behind displayed ones at the same price, Display Z, and the
day-like TIFs 5 (GTX) and E (after hours) of the venue's one session."""
from __future__ import annotations

import pytest
from venue_helpers import Bench, cancel, enter, parse_itch, replace

from tickpath.bench.venue import book as B
from tickpath.bench.venue import layout as L

AAA = 1


@pytest.fixture
def b():
    return Bench()


def post_only(rec):
    rec["flags"] = L.FLAG_POST_ONLY
    return rec


def test_post_only_rests_when_it_does_not_cross(b):
    r, m = b.run(post_only(enter(1, "B", 100, 99_0000)))
    assert [x["kind"] for x in r] == ["A"] and parse_itch(m[0])["type"] == "A"
    assert b.levels(AAA, 0) == [(99_0000, 100, 1)]


@pytest.mark.parametrize("display", ["Y", "N"])
def test_post_only_that_would_trade_is_canceled_untouched(b, display):
    b.run(enter(1, "S", 100, 100_0000, user=2, display=display))
    r, m = b.run(post_only(enter(1, "B", 300, 100_0000)))
    assert [(x["kind"], x["user"], x["qty"], x["reason_c"]) for x in r] == [
        ("A", 1, 300, 0), ("C", 1, 300, ord("G"))]
    assert m == [] and b.e.counters[L.C_POST_ONLY_CANCELS] == 1 and b.e.counters[L.C_EXECUTIONS] == 0
    assert b.levels(AAA, 0) == [] and B.live_orders(b.e) == 1        # the resting sell only


def test_post_only_replace_that_would_trade_is_canceled(b):
    b.run(enter(1, "S", 100, 100_0000, user=2), enter(1, "B", 100, 99_0000))
    r, m = b.run(post_only(replace(1, 2, 100, 100_0000)))
    assert [(x["kind"], x["uref"], x["reason_c"]) for x in r] == [("U", 2, 0), ("C", 2, ord("G"))]
    assert [parse_itch(x)["type"] for x in m] == ["D"]               # the old one leaves the book
    assert b.levels(AAA, 0) == [] and b.levels(AAA, 1) == [(100_0000, 100, 1)]


def test_hidden_orders_trade_after_displayed_ones_at_the_same_price(b):
    b.run(enter(1, "S", 100, 100_0000, display="N"),                 # hidden, first in time
          enter(2, "S", 100, 100_0000),                              # displayed, later
          enter(3, "S", 100, 100_0000, display="N"),
          enter(4, "S", 100, 100_0000))
    assert [int(b.e.ord["uref"][j]) for j in B.queue(b.e, AAA, 1, 100_0000)] == [2, 4, 1, 3]
    assert b.levels(AAA, 1) == [(100_0000, 200, 2)]
    r, m = b.run(enter(1, "B", 350, 100_0000, user=2))
    assert [(x["uref"], x["qty"]) for x in r if x["kind"] == "E" and x["user"] == 1] == [
        (2, 100), (4, 100), (1, 100), (3, 50)]
    assert [parse_itch(x)["type"] for x in m] == ["E", "E", "P", "P"]
    assert b.levels(AAA, 1) == [] and [int(b.e.ord["uref"][j]) for j in B.queue(b.e, AAA, 1, 100_0000)] == [3]


def test_displayed_order_goes_ahead_of_hidden_ones_and_queues_survive_cancels(b):
    b.run(enter(1, "B", 100, 99_0000, display="N"), enter(2, "B", 100, 99_0000))
    b.run(cancel(2))                                                 # the last displayed leaves
    b.run(enter(3, "B", 100, 99_0000), enter(4, "B", 100, 99_0000, display="N"),
          enter(5, "B", 100, 99_0000))
    assert [int(b.e.ord["uref"][j]) for j in B.queue(b.e, AAA, 0, 99_0000)] == [3, 5, 1, 4]
    b.run(cancel(5), cancel(3))
    b.run(enter(6, "B", 100, 99_0000))
    assert [int(b.e.ord["uref"][j]) for j in B.queue(b.e, AAA, 0, 99_0000)] == [6, 1, 4]
    assert b.levels(AAA, 0) == [(99_0000, 100, 1)]


def test_display_z_is_shown_anonymously(b):
    r, m = b.run(enter(1, "B", 100, 99_0000, display="Z"))
    assert r[0]["display"] == ord("Z")
    a = parse_itch(m[0])
    assert (a["type"], a["shares"]) == ("A", 100) and b.levels(AAA, 0) == [(99_0000, 100, 1)]


@pytest.mark.parametrize("tif", ["5", "E"])
def test_gtx_and_after_hours_rest_like_day_orders(b, tif):
    r, m = b.run(enter(1, "B", 100, 99_0000, tif=tif))
    assert r[0]["kind"] == "A" and r[0]["tif"] == ord(tif) and parse_itch(m[0])["type"] == "A"
    assert b.levels(AAA, 0) == [(99_0000, 100, 1)]
