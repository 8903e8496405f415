"""Whole-file backtests: deterministic fill logs (ITCH raw, gzip and a pcap of the same day
give the same hash), the summary's fields, and each bad input of the issue reported per
file while the other files still run."""
from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest

from tickpath.runtime.backtest import fanout
from tickpath.runtime.backtest.runner import normalise, run_file
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.feed import pcap
from tickpath.runtime.feed.itchfile import ItchFile, chunk_to_mold

CFG = {"strategy": {"name": "touch", "params": {"symbol": "ORCL", "qty": 100, "timer_ns": 200_000}},
       "backtest": {"feed_latency": 2_000, "entry_latency": "uniform:3000,9000",
                    "response_latency": 4_000, "instruments": 16, "sample_ns": 10_000_000}}


def _pcap_of(itch_path, out_path):
    frames, ts = [], []
    for chunk in ItchFile(itch_path).chunks():
        pk, pts = chunk_to_mold(chunk)
        for k in range(pk.n_packets):
            frames.append(pcap.udp_frame(pk.packet(k), 26400))
            ts.append(int(pts[k]))
    pcap.write_pcap(out_path, frames, ts)


def test_deterministic_across_formats(day_file, tmp_path):
    path, _ = day_file(n_steps=5000, seed=3)
    a = run_file(path, CFG)
    b = run_file(path, CFG)
    assert a["fills"] > 10 and a["fill_log_sha256"] == b["fill_log_sha256"]
    assert a["fill_log"].tobytes() == b["fill_log"].tobytes()
    gz = tmp_path / "day.itch.gz"
    with open(path, "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    assert run_file(str(gz), CFG)["fill_log_sha256"] == a["fill_log_sha256"]
    cap = tmp_path / "day.pcap"
    _pcap_of(path, str(cap))
    c = run_file(str(cap), CFG)
    assert c["format"] == "pcap" and c["fill_log_sha256"] == a["fill_log_sha256"]
    other = dict(CFG, backtest=dict(CFG["backtest"], seed=2))
    assert run_file(path, other)["fill_log_sha256"] != a["fill_log_sha256"]   # the draws matter


def test_summary_fields(day_file):
    path, _ = day_file(n_steps=5000, seed=4)
    s = run_file(path, CFG)
    for key in ("pnl", "orders", "fills", "cancels", "rejects", "fill_ratio", "inventory",
                "risk", "fill_log_sha256", "fill_latency_ns"):
        assert key in s
    for key in ("sharpe_annualised", "sortino_annualised", "max_drawdown", "calmar", "var_95",
                "es_95", "var_99", "es_99", "sample_interval_s"):
        assert key in s["risk"]
    assert s["risk"]["sample_interval_s"] == 0.01
    f = s["fill_log"]
    pos = int(np.where(f["side"] == ord("B"), f["qty"].astype(np.int64), -f["qty"].astype(np.int64)).sum())
    assert s["inventory"]["final_net"] == pos
    # fill latency is at least the entry latency (3 µs here): nothing fills before it arrives
    assert (f["exch_ns"] - f["sent_ns"] >= 3000).all()
    assert (f["recv_ns"] - f["exch_ns"] == 4000).all()
    json.dumps({k: v for k, v in s.items() if k not in ("fill_log", "samples")}, default=str)


def test_bad_files_reported_per_file(day_file, tmp_path):
    good, _ = day_file(n_steps=2000, seed=8)
    raw = open(good, "rb").read()
    trunc = tmp_path / "trunc.itch"
    trunc.write_bytes(raw[:len(raw) - 7])                 # ends inside a message
    corrupt = tmp_path / "corrupt.itch.gz"
    corrupt.write_bytes(gzip.compress(raw)[:3000] + b"\x00garbage" * 50)
    other, _ = day_file(name="other.itch", n_steps=500, seed=9, symbols=("MSFT",))
    res = fanout.run_serial([(good, CFG), (str(trunc), CFG), (str(corrupt), CFG), (other, CFG)])
    assert "error" not in res[0] and res[0]["fills"] > 0
    assert "error" not in res[1] and res[1]["warnings"] and res[1]["itch_file"]["truncated_tail_bytes"] > 0
    assert "corrupt gzip" in res[2]["error"]
    assert "ORCL" in res[3]["error"] and "stock directory" in res[3]["error"]
    tot = fanout.merge(res)
    assert tot["files_failed"] == 2 and tot["files_ok"] == 2


@pytest.mark.parametrize("cfg,key", [
    ({"strategy": {"name": "touch", "params": {"symbol": "X", "qtty": 1}}}, "strategy.params.qtty"),
    ({"strategy": {"name": "touch", "params": {"symbol": "X", "qty": "1"}}}, "strategy.params.qty"),
    ({"strategy": {"name": "touch", "params": {"symbol": "X"}}, "backtest": {"queue_model": "magic"}}, "backtest.queue_model"),
    ({"strategy": {"name": "touch", "params": {"symbol": "X"}}, "backtest": {"seed": 1.5}}, "backtest.seed"),
    ({"strategy": {"name": "touch", "params": {"symbol": "X"}}, "bogus": {}}, "bogus"),
    ({"strategy": {"name": "touch", "params": {}}}, "strategy.params.symbol"),
    ({"strategy": {"name": "touch", "params": {"symbol": "X"}}, "risk": {"max_order_qty": -1}}, "risk.max_order_qty"),
    ({"strategy": {"name": "market_maker", "params": {"gamma": -1.0}}}, "strategy.params.gamma"),
    ({"strategy": {"name": "no_such_strategy"}}, "no_such_strategy"),
])
def test_bad_config(cfg, key):
    from tickpath.runtime.core.errors import TickpathError
    with pytest.raises(TickpathError, match=key.replace(".", r"\.")):
        normalise(cfg)


def test_grid(day_file):
    path, _ = day_file(n_steps=1500, seed=10)
    g = fanout.parse_grid(["strategy.params.qty=100,200", "backtest.queue_model=l3_fifo,risk_averse"])
    pts = fanout.grid_points(CFG, g)
    assert len(pts) == 4 and pts[3][0] == {"strategy.params.qty": 200, "backtest.queue_model": "risk_averse"}
    assert pts[3][1]["strategy"]["params"]["qty"] == 200 and CFG["strategy"]["params"]["qty"] == 100
    res = fanout.run_serial([(path, c) for _, c in pts])
    assert all("error" not in r for r in res) and len({r["fill_log_sha256"] for r in res}) == 4
    for bad in ("strategy.params.nope=1,2", "strategy.qty=1,2", "backtest.nope=1", "risk.nope=1"):
        with pytest.raises(ConfigError, match="grid key does not exist"):
            fanout.grid_points(CFG, fanout.parse_grid([bad]))
    with pytest.raises(ConfigError, match="KEY=V1"):
        fanout.parse_grid(["strategy.params.qty"])


def test_direct_decode_equals_the_packet_path(day_file):
    """ITCH decoded straight from the file's blocks gives the events (receive times included)
    and decoder counters the MoldUDP64 packet path gives, across small blocks and batches."""
    from tickpath.runtime.backtest.source import EventSource
    from tickpath.runtime.core import counters as C
    from tickpath.runtime.core.event import EVENT_DTYPE
    path, _ = day_file(n_steps=4000, seed=6)
    ca, cb = C.new_counters(), C.new_counters()
    old = np.concatenate([e.copy() for e in EventSource(path, chunk_bytes=1 << 18).batches(ca)])
    src = EventSource(path, chunk_bytes=1 << 18)
    buf = np.zeros(5000, dtype=EVENT_DTYPE)     # smaller than a block: fill resumes mid-block
    parts = []
    while True:
        m = src.fill(cb, buf, 0)
        if m < 0:
            break
        parts.append(buf[:m].copy())
    new = np.concatenate(parts)
    assert len(new) == len(old) > 4000 and new.tobytes() == old.tobytes()
    assert C.as_dict(ca) == C.as_dict(cb)


def test_timer_strategy_gets_every_event_in_runs(day_file):
    """A strategy acting on its timer alone (touch without on_events) is handed no event
    call, yet every event goes through its pipeline (in runs, before each callback)."""
    path, _ = day_file(n_steps=3000, seed=8)
    s = run_file(path, CFG)
    c = s["counters"]
    assert c["feed_events"] == c["exchange_events"] == s["events"] > 3000
    assert c["timer_calls"] > 0 and "strategy_calls" not in c
