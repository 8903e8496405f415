"""The venue's matching engine alone, one core: orders per second.

Run: .venv/bin/pytest bench/micro/test_venue_bench.py --benchmark-enable -p no:cacheprovider
(TICKPATH_BENCH_CPU=N pins it). Target (issue 13): >= 5 M orders/s on a realistic mix
(about 80 % adds and cancels, 20 % marketable). extra_info reports orders_per_s_median.

* engine, precomputed commands: a seeded command stream made here (passive adds 45 %,
  cancels 30 %, reduces 4 %, replaces 4 %, marketable IOCs 17 %, 300 instruments with
  skewed popularity, prices around a drifting reference), applied by
  engine.process_range: validation, matching, the order table, the price ladders and the
  ITCH 5.0 encoding into the MoldUDP64 history (no send) — no generation in the timing.
  Cancels and replaces name orders the stream added; one whose order has meanwhile
  traded away finds nothing (counted), as a real client's late cancel would.
* engine + flow: flow.gen — the background participants deciding each event from the
  live books, then the same engine path.
Each round starts from fresh books (setup, not timed); the history's pages are touched
in setup so page faults of fresh memory are not in the timing.
* whole venue on loopback: bench.venue.load.run_loopback — an open-loop OUCH client at
  100 k orders/s for 5 s (TICKPATH_VENUE_BENCH_RATE / _SECONDS) next to the background
  flow at the same rate, through SoupBinTCP, the network thread, the rings and the
  matching thread. Its time is the schedule's (open loop), not a speed: the figures are
  in extra_info — enters lost (must be 0), and the venue's own OUCH-in -> response
  written / -> ITCH sent latency percentiles (its log2 histogram, timestamps.py).
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from numba import njit

from tickpath.bench.venue import book as B
from tickpath.bench.venue import engine as E
from tickpath.bench.venue import flow as F
from tickpath.bench.venue import itch_out as W
from tickpath.bench.venue import layout as L
from tickpath.bench.venue import refdata
from tickpath.bench.venue.timestamps import new_in_log
from tickpath.runtime.ipc.ring import Ring

N_ORDERS = 1 << 20
N_INSTRUMENTS = 300
NOW = 34_200 * 10**9


@njit(nogil=True, cache=True)
def _stream(seed, cmds, ref_px, lo, hi, cum):
    np.random.seed(seed)
    n = cmds.shape[0]
    mid = ref_px.copy()
    live = np.zeros(n, np.int64)      # urefs added, most recent last
    live_loc = np.zeros(n, np.int64)
    n_live = 0
    uref = 0
    for i in range(n):
        c = cmds[i]
        c.user = 0
        c.capacity = 80
        c.iso = 78
        c.cross = 78
        c.token = -1
        loc = np.int64(np.searchsorted(cum, np.random.random())) + 1
        if np.random.random() < 0.05:
            m = mid[loc] + (100 if np.random.random() < 0.5 else -100)
            if lo[loc] + 6000 <= m <= hi[loc] - 6000:
                mid[loc] = m
        r = np.random.random()
        c.locate = loc
        if r < 0.45 or n_live < 16:
            uref += 1
            c.kind = 79
            c.uref = uref
            buy = np.random.random() < 0.5
            c.side = 66 if buy else 83
            off = (1 + np.int64(-np.log(1.0 - np.random.random()) * 4.0)) * 100
            c.price = min(max(mid[loc] - off if buy else mid[loc] + off, lo[loc]), hi[loc])
            c.qty = 100 * (1 + np.int64(np.random.random() * 10))
            c.tif = 48
            c.display = 89
            live[n_live] = uref
            live_loc[n_live] = loc
            n_live += 1
        elif r < 0.83:
            u = np.random.random()
            k = n_live - 1 - np.int64(n_live * u * u * u)
            c.uref = live[k]
            if r < 0.79:
                c.kind = 88
                c.qty = 0 if r < 0.75 else 100
                live[k] = live[n_live - 1]
                live_loc[k] = live_loc[n_live - 1]
                n_live -= 1
            else:
                c.kind = 85
                c.orig_uref = live[k]
                uref += 1
                c.uref = uref
                live[k] = uref
                jl = live_loc[k]
                c.locate = jl
                c.price = min(max(mid[jl] + (np.int64(np.random.random() * 20) - 10) * 100, lo[jl]), hi[jl])
                c.qty = 5000       # the chain total: above what it can have executed, mostly
                c.tif = 48
                c.display = 89
        else:
            uref += 1
            c.kind = 79
            c.uref = uref
            buy = np.random.random() < 0.5
            c.side = 66 if buy else 83
            t = np.int64(np.random.random() * 4) * 100
            c.price = min(max(mid[loc] + t if buy else mid[loc] - t, lo[loc]), hi[loc])
            c.qty = 100 * (1 + np.int64(np.random.random() * 3))
            c.tif = 51
            c.display = 89
    return uref


@pytest.fixture(scope="module")
def world():
    ref = refdata.generate(N_INSTRUMENTS, 1)
    rng = np.random.default_rng(3)
    pop = 1.0 / np.arange(1, N_INSTRUMENTS + 1) ** 0.8
    cum = np.cumsum(rng.permutation(pop))
    cum /= cum[-1]
    cmds = np.zeros(N_ORDERS, L.CMD_DTYPE)
    _stream(5, cmds, ref.ref_price, ref.band_lo, ref.band_hi, cum)
    ring = Ring.create(1 << 12, L.RESP_DTYPE)
    return ref, cmds, ring


def _fresh(ref, max_orders=1 << 20):
    e = B.new_engine(ref, max_orders=max_orders)
    w = W.new_mold_out(1 << 26, 1 << 21, b"BENCH")
    w.buf.fill(0)           # touch the pages now
    w.msg_off.fill(0)
    return e, w


def _report(benchmark, n, e, w):
    st = benchmark.stats.stats
    benchmark.extra_info["orders_per_s_median"] = round(n / st.median)
    benchmark.extra_info["orders_per_s_max"] = round(n / st.min)
    benchmark.extra_info["ns_per_order_median"] = round(st.median / n * 1e9, 1)
    benchmark.extra_info["itch_messages_last_round"] = int(w.state[W.N_MSGS])
    benchmark.extra_info["executions_last_round"] = int(e.counters[L.C_EXECUTIONS])


@pytest.mark.parametrize("max_orders", [1 << 20, 1 << 17], ids=["table-1M", "table-128k"])
def test_engine_precomputed_commands(benchmark, placement, world, max_orders):
    """table-1M: the venue's default order table; table-128k: sized to this flow (about
    63 k live orders at the end): the same work, a table that stays in the caches more."""
    ref, cmds, ring = world
    stop = np.zeros(1, np.int64)
    log = new_in_log(1)
    state = {}

    def setup():
        state["e"], state["w"] = _fresh(ref, max_orders)
        return (), {}

    def run():
        E.process_range(state["e"], state["w"], ring.hdr, ring.data, stop, cmds, 0, N_ORDERS, NOW, log)

    setup()
    run()   # compile outside the timing
    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    e, w = state["e"], state["w"]
    assert e.counters[L.C_REJECTED] == 0 and w.state[W.FULL] == 0
    assert e.counters[L.C_EXECUTIONS] > N_ORDERS // 20
    _report(benchmark, N_ORDERS, e, w)


def test_engine_with_background_flow(benchmark, placement, world):
    ref, _, ring = world
    stop = np.zeros(1, np.int64)
    state = {}

    def setup():
        state["e"], state["w"] = _fresh(ref)
        state["f"] = F.new_flow(ref, 9)
        return (), {}

    def run():
        F.gen(state["e"], state["w"], ring.hdr, ring.data, stop, *state["f"], N_ORDERS, NOW)

    setup()
    run()
    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    e, w = state["e"], state["w"]
    assert e.counters[L.C_REJECTED] == 0 and w.state[W.FULL] == 0
    _report(benchmark, N_ORDERS, e, w)


def test_whole_venue_on_loopback(benchmark, placement):
    from tickpath.bench.venue.load import run_loopback
    rate = float(os.environ.get("TICKPATH_VENUE_BENCH_RATE", 100_000))
    seconds = float(os.environ.get("TICKPATH_VENUE_BENCH_SECONDS", 5))
    run_loopback(client_orders_per_s=rate / 10, seconds=0.5, background_per_s=rate / 10)  # warm
    out = {}

    def run():
        out["r"] = run_loopback(client_orders_per_s=rate, seconds=seconds, background_per_s=rate)

    benchmark.pedantic(run, rounds=1, iterations=1)
    r = out["r"]
    v = r["venue"]
    info = benchmark.extra_info
    info.update(client_orders=r["client_orders"], enters=r["enters"], lost_enters=r["lost_enters"],
                late_send_slices=r["late_send_slices"], responses=r["responses"],
                itch_messages=v["itch"]["messages"], background_events=v["background"]["events"],
                background_late_passes=v["background"]["late_passes"])
    for name, lat in v["latency_ns"].items():
        info[name] = {k: lat[k] for k in ("p50", "p90", "p99", "p99.9", "max", "count") if k in lat}
    assert r["lost_enters"] == 0, r
    assert v["latency_ns"]["ouch_in_to_response_written"]["count"] > 0
