"""Bounded soak on loopback: lines A and B with seeded loss, a retransmission server, every
message delivered exactly once and in order, gaps explicit, memory flat, no fd left."""
from __future__ import annotations

import pytest

from tickpath.bench.scenarios.soak import run_soak


def _check(r, n):
    assert r["out_of_order"] == 0
    assert r["delivered_messages"] + r["gap_messages"] == n and r["next_expected"] == n + 1
    assert r["counters"]["duplicates"] == 0 and r["counters"]["ring_dropped"] == 0
    assert r["fds_after"] == r["fds_before"]


def test_soak_loss_on_both_lines_recovers_everything():
    n = 60_000
    r = run_soak(n_messages=n, rate_msgs_per_s=100_000, loss_a=0.01, loss_b=0.01, seed=3,
                 drop_both_every=997)
    _check(r, n)
    ln = r["lines"]
    assert r["delivered_messages"] == n and ln["unrecoverable"] == 0
    assert ln["first_on_b"] > 0 and ln["missing_on_both"] > 0
    # declared missing after the wait; a late line copy may still fill some before the answer
    assert 0 < ln["recovered_by_retransmission"] <= ln["missing_on_both"]
    assert r["latency_by_source"]["retransmission"]["n"] == ln["recovered_by_retransmission"]


def test_soak_silent_server_flags_every_unrecoverable_gap():
    n = 40_000
    r = run_soak(n_messages=n, loss_a=0.0, loss_b=0.0, seed=4, drop_both_every=500,
                 server_mode="silent", deadline_ns=50_000_000)
    _check(r, n)
    ln = r["lines"]
    lost = r["sent"]["dropped_both"]
    assert ln["unrecoverable_gaps"] == lost and r["counters"]["gaps"] == lost
    assert r["gap_messages"] == ln["unrecoverable"] == 4 * lost
    assert ln["retries"] > 0 and r["server"]["refused"] == ln["requests"] + ln["retries"]


@pytest.mark.slow
def test_soak_two_million():
    n = 2_000_000
    r = run_soak(n_messages=n, rate_msgs_per_s=200_000, loss_a=0.01, loss_b=0.01, seed=5)
    _check(r, n)
    assert r["lines"]["unrecoverable"] == 0
    # after warm-up nothing grows per message (books fill pages lazily: 8 MiB headroom).
    # Not yet shown to hold: a 60 k run grew 15 MiB between 25 % and the end (lazy first
    # touch of preallocated book/latency arrays is the suspect, not verified).
    assert r["rss_end_bytes"] - r["rss_after_warmup_bytes"] < 8 << 20
