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
