"""The strategies of `tickpath trade`, unchanged, through the simulated exchange: the
Avellaneda-Stoikov market maker with its risk gate and order manager runs a generated day;
every response it gets drives a legal transition (no impossible, unknown or out-of-sequence
response: the order manager cannot tell the backtest from live), its replaces go through
as OUCH replaces, and its own positions equal the exchange's fill log."""
from __future__ import annotations

import numpy as np

from tickpath.runtime.backtest.runner import run_file


def test_market_maker_through_the_simulated_exchange(day_file):
    path, _ = day_file(n_steps=8000, seed=31)
    s = run_file(path, {"strategy": {"name": "market_maker",
                                     "params": {"symbols": ["ORCL"], "quote_size": 100, "max_inventory": 500}},
                        "risk": {"max_orders_per_s": 100_000, "max_orders_per_100ms": 100_000,
                                 "max_msgs_per_s": 100_000, "max_msgs_per_100ms": 100_000},
                        "backtest": {"feed_latency": 2_000, "entry_latency": "uniform:3000,8000",
                                     "response_latency": 3_000, "instruments": 16}})
    c = s["trading"]["counters"]
    assert s["fills"] > 5 and c["replace_sent"] > 0 and s["counters"].get("replaces", 0) > 0
    assert c["executions"] == s["fills"] and c["filled_shares"] == s["filled_shares"]
    for bad in ("impossible", "unknown_uref", "dup_response", "seq_gap", "kill_trips"):
        assert c[bad] == 0, bad
    f = s["fill_log"]
    net = int(np.where(f["side"] == ord("B"), f["qty"].astype(np.int64), -f["qty"].astype(np.int64)).sum())
    assert s["trading"]["positions"]["ORCL"]["position"] == net == s["inventory"]["final_net"]
    assert abs(net) <= 500 + 100   # max_inventory (+ one quote in flight)


def test_what_the_kill_switch_catches_after_the_gate_stays_home_as_live(day_file):
    """A breaker that trips mid-step (the second breach, after a good order passed the gate)
    holds back that order and its kill cancel, as the live loop does (step.withheld): the
    simulated exchange receives nothing."""
    path, _ = day_file(n_steps=2000, seed=5)
    s = run_file(path, {"strategy": {"name": "trading_breaker:Breaker", "params": {}},
                        "risk": {"max_order_qty": 500, "max_breaches": 1},
                        "backtest": {"feed_latency": 2_000, "entry_latency": 3_000,
                                     "response_latency": 3_000, "instruments": 16}})
    c = s["trading"]["counters"]
    assert c["kill_trips"] == 1 and c["risk_rejects"] >= 2
    assert c["kill_withheld"] == 2                      # the good order and its kill cancel
    assert c["new_sent"] == 0 and c["cancel_sent"] == 0
    assert s["orders"] == 0 and s["fills"] == 0 and c["responses"] == 0
