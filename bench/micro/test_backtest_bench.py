"""Backtest speed, side by side in one run: events per second per core of tickpath's backtest
(decode → books → strategy → simulated exchange, from the ITCH file) and of hftbacktest (from
its in-memory L3 event array) on the same generated day with the same fixed-quote strategy
and latencies; and the Ray fan-out (2 workers) against the serial run over 4 files.
Run: .venv/bin/pytest bench/micro/test_backtest_bench.py --benchmark-only -s
The generated day comes from tests/runtime/backtest/conftest.py (the oracle test's data)."""
from __future__ import annotations

import importlib.util
import os
import time

import numpy as np
import pytest

from tickpath.runtime.backtest import fanout
from tickpath.runtime.backtest.runner import run_file
from tickpath.runtime.feed.itchfile import write_itch_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N_STEPS = 200_000
FEED, ENTRY, RESP, STEP = 1_000, 5_003, 4_001, 100_000
ROUNDS = 7


def _load(rel):
    spec = importlib.util.spec_from_file_location(os.path.basename(rel)[:-3], os.path.join(ROOT, rel))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def _cfg(**bt):
    return {"strategy": {"name": "touch", "params": {"symbol": "ORCL", "qty": 100, "timer_ns": STEP}},
            "backtest": {"feed_latency": FEED, "entry_latency": ENTRY, "response_latency": RESP,
                         "instruments": 16, "max_orders": 1 << 16, "trade_through": False, **bt}}


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    cf = _load("tests/runtime/backtest/conftest.py")
    d = cf.make_day(seed=7, n_steps=N_STEPS)
    p = tmp_path_factory.mktemp("bt") / "day.itch"
    write_itch_file(p, d.msgs)
    return str(p), d, cf


def test_backtest_vs_hftbacktest_bench(benchmark, placement, day):
    hbt = pytest.importorskip("hftbacktest", reason="hftbacktest is in the test extra")
    path, d, cf = day
    twin = _load("tests/runtime/backtest/hbt_touch.py")
    data = cf.to_hftbacktest(d, FEED)
    n_msgs = len(d.msgs)

    def ours():
        return run_file(path, _cfg())

    def theirs():
        asset = (hbt.BacktestAsset().data([data]).linear_asset(1.0).constant_order_latency(ENTRY, RESP)
                 .l3_fifo_queue_model().no_partial_fill_exchange().tick_size(0.01).lot_size(1.0)
                 .last_trades_capacity(0))
        h = hbt.HashMapMarketDepthBacktest([asset])
        out = np.zeros((1_000_000, 5))
        n = twin.run(h, STEP, 100.0, out)
        h.close()
        return n
    r = ours()          # compile / load caches outside the timing
    n_theirs = theirs()
    assert r["fills"] == n_theirs
    t_ours, t_theirs = [], []

    def pair():         # one of each per round, alternating: the box's load moves under both
        t0 = time.perf_counter()
        theirs()
        t1 = time.perf_counter()
        ours()
        t2 = time.perf_counter()
        t_theirs.append(t1 - t0)
        t_ours.append(t2 - t1)
    benchmark.pedantic(pair, rounds=ROUNDS, iterations=1)
    ours_s = float(np.median(t_ours))
    theirs_s = float(np.median(t_theirs))
    ratios = [th / o for th, o in zip(t_theirs, t_ours)]
    benchmark.extra_info.update({
        "itch_messages": n_msgs, "fills": r["fills"],
        "tickpath_events_per_s": n_msgs / ours_s, "hftbacktest_events_per_s": n_msgs / theirs_s,
        "tickpath_s": t_ours, "hftbacktest_s": t_theirs, "ratio": theirs_s / ours_s,
        "ratio_per_round": ratios,
    })
    print(f"\ntickpath {n_msgs / ours_s:,.0f} ev/s, hftbacktest {n_msgs / theirs_s:,.0f} ev/s, "
          f"ratio {theirs_s / ours_s:.2f}x (medians of {ROUNDS} alternating rounds; per round "
          f"{min(ratios):.2f}-{max(ratios):.2f}x; {r['fills']} fills)")


@pytest.mark.parametrize("n_steps", [60_000, 200_000, 600_000])
def test_ray_fanout_bench(benchmark, placement, tmp_path, n_steps):
    """4 files, serial vs Ray with 2 workers vs two plain worker processes (no Ray: what two
    processes get from this machine at all, its ceiling), alternating round by round in one
    Ray session (the box's load moves under all three); 60 000 steps is the earlier figure's
    file size (a file then takes ~0.1 s, so Ray's per-task cost shows), 200 000 the day of the
    bench above, 600 000 a file of ~0.2 s (still ~1/500 of a NASDAQ day) where the per-task
    cost shrinks."""
    ray = pytest.importorskip("ray", reason="Ray is the optional extra tickpath[cluster]")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    cf = _load("tests/runtime/backtest/conftest.py")
    paths = []
    for k in range(4):
        p = tmp_path / f"d{k}.itch"
        write_itch_file(p, cf.make_day(seed=100 + k, n_steps=n_steps).msgs)
        paths.append(str(p))
    jobs = [(p, _cfg()) for p in paths]
    serial = fanout.run_serial(jobs)    # compile / load caches outside the timing
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    plain = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    paths_, cfgs = [j[0] for j in jobs], [j[1] for j in jobs]
    t_serial, t_ray, t_plain = [], [], []
    try:
        fanout.run_ray(jobs[:2])         # workers up, caches loaded
        list(plain.map(fanout.run_one, paths_[:2], cfgs[:2]))

        def rounds():
            t0 = time.perf_counter()
            fanout.run_serial(jobs)
            t1 = time.perf_counter()
            res = fanout.run_ray(jobs)
            t2 = time.perf_counter()
            two = list(plain.map(fanout.run_one, paths_, cfgs))
            t3 = time.perf_counter()
            assert [r["fill_log_sha256"] for r in two] == [r["fill_log_sha256"] for r in res]
            t_serial.append(t1 - t0)
            t_ray.append(t2 - t1)
            t_plain.append(t3 - t2)
            return res
        res = benchmark.pedantic(rounds, rounds=5, iterations=1)
    finally:
        plain.shutdown()
        ray.shutdown()
    assert [r["fill_log_sha256"] for r in res] == [r["fill_log_sha256"] for r in serial]
    assert all(r["loop_cache"]["misses"] == 0 for r in res)   # no worker compiled the loop
    serial_s, ray_s = float(np.median(t_serial)), float(np.median(t_ray))
    plain_s = float(np.median(t_plain))
    ratios = [a / b for a, b in zip(t_serial, t_ray)]
    ceiling = [a / b for a, b in zip(t_serial, t_plain)]
    benchmark.extra_info.update({"files": 4, "n_steps": n_steps, "serial_s": t_serial,
                                 "ray_2_workers_s": t_ray, "speedup": serial_s / ray_s,
                                 "speedup_per_round": ratios, "two_plain_processes_s": t_plain,
                                 "plain_speedup": serial_s / plain_s,
                                 "plain_speedup_per_round": ceiling, "cpus": os.cpu_count()})
    print(f"\n{n_steps} steps x 4 files: serial {serial_s:.2f} s, ray 2 workers {ray_s:.2f} s: "
          f"{serial_s / ray_s:.2f}x (per round {min(ratios):.2f}-{max(ratios):.2f}x); two plain "
          f"processes {plain_s:.2f} s: {serial_s / plain_s:.2f}x (per round {min(ceiling):.2f}-"
          f"{max(ceiling):.2f}x) (medians of 5 alternating rounds)")
