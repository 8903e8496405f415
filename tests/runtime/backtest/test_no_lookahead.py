"""No look-ahead: the strategy never sees an event before its simulated arrival, and a
strategy that could only profit by peeking does not. The probe (`peek`, strategies.py) sends
an IOC buy at the old best ask the moment it sees the ask move up; in this day the ask only
moves up when its whole level is executed away (a buyer took it), so the IOC can fill only if
it reached the exchange before the event it reacts to."""
from __future__ import annotations

import pytest

from tickpath.runtime.backtest.runner import run_file
from tickpath.runtime.backtest.strategies import S_MIN_SLACK


@pytest.mark.parametrize("feed_ns,entry_ns", [(0, 0), (1_000, 2_000), ("uniform:0,5000", "exponential:3000")])
def test_peeking_strategy_never_fills(day_file, feed_ns, entry_ns):
    path, _ = day_file(n_steps=3000, seed=5, mean_gap_ns=1_000_000)
    s = run_file(path, {"strategy": {"name": "peek", "params": {"symbol": "ORCL", "qty": 100}},
                        "backtest": {"feed_latency": feed_ns, "entry_latency": entry_ns,
                                     "response_latency": 1_000, "instruments": 16}})
    assert s["orders"] > 20, "the probe never fired: the test proves nothing"
    assert s["fills"] == 0, "an order reacting to an event filled at the price before it"
    assert s["counters"]["cancels"] == s["orders"]


def test_strategy_clock_never_before_delivery(day_file):
    from tickpath.runtime.backtest import runner
    path, _ = day_file(n_steps=2000, seed=6)
    captured = {}
    orig = runner.new_ctx

    def spy(*a, **kw):
        ctx = orig(*a, **kw)
        captured["ctx"] = ctx
        return ctx
    runner.new_ctx = spy
    try:
        run_file(path, {"strategy": {"name": "peek", "params": {"symbol": "ORCL", "qty": 100}},
                        "backtest": {"feed_latency": 7_000, "instruments": 16}})
    finally:
        runner.new_ctx = orig
    # now - (ts_exch + min feed latency) over every event handed to the strategy
    assert captured["ctx"].st[S_MIN_SLACK] >= 0
