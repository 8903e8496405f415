"""The EMA-crossover taker, unchanged from `tickpath trade`, through the simulated exchange on
a day whose mid zigzags: it must send one IOC order at each crossing of the fast EMA over the
slow one — a buy at the best ask when fast crosses above, a sell at the best bid when below —
and nothing else. The crossings are found independently with TA-Lib's EMA over the same mids
(the taker uses tickpath.kernels.stream's streaming EMA; TA-Lib is the oracle)."""
from __future__ import annotations

import numpy as np
import pytest

from tickpath.runtime.backtest.runner import run_file
from tickpath.runtime.feed import itch
from tickpath.runtime.feed.itchfile import write_itch_file

talib = pytest.importorskip("talib", reason="TA-Lib (the test extra) is the oracle for the EMAs")

TICK4 = 100
OPEN_NS = 34_200 * 1_000_000_000
FAST, SLOW, QTY = 4, 12, 100
SYM = b"ZIGZ    "


def zigzag_mids(legs=6, leg_len=30, start4=50_0000) -> list[int]:
    mids, m = [], start4
    for leg in range(legs):
        step = TICK4 if leg % 2 == 0 else -TICK4
        for _ in range(leg_len):
            m += step
            mids.append(m)
    return mids


def write_day(path, mids, gap_ns=2_000_000, size=10_000):
    """One bid and one ask one tick either side of each mid; each update deletes both quotes
    before adding the new ones, so no half-updated book is ever whole (the taker sees one
    mid per update)."""
    msgs = [itch.encode_system_event(0, 0, OPEN_NS - 2, "O"),
            itch.encode_stock_directory(1, 0, OPEN_NS - 1, SYM),
            itch.encode_system_event(0, 0, OPEN_NS, "Q")]
    ref, live, ts = 1, [], OPEN_NS
    for m in mids:
        ts += gap_ns
        for r in live:
            msgs.append(itch.encode_delete(1, 0, ts, r))
        live = []
        for side, px in (("B", m - TICK4), ("S", m + TICK4)):
            msgs.append(itch.encode_add(1, 0, ts, ref, side, size, SYM, px))
            live.append(ref)
            ref += 1
    write_itch_file(path, msgs)


def expected_orders(mids) -> list[tuple[str, int]]:
    """(side, price) at each sign change of TA-Lib EMA(fast) - EMA(slow), the first sign not
    counting (the taker waits for a crossing, not a state)."""
    x = np.asarray(mids, dtype=np.float64)
    fast, slow = talib.EMA(x, FAST), talib.EMA(x, SLOW)
    out, prev = [], 0
    for i in range(len(x)):
        if np.isnan(fast[i]) or np.isnan(slow[i]):
            continue
        sign = 1 if fast[i] > slow[i] else (-1 if fast[i] < slow[i] else 0)
        if prev != 0 and sign != 0 and sign != prev:
            out.append(("B", mids[i] + TICK4) if sign > 0 else ("S", mids[i] - TICK4))
        if sign != 0:
            prev = sign
    return out


def test_taker_sends_one_ioc_at_each_crossing_at_the_touch(tmp_path):
    mids = zigzag_mids()
    path = tmp_path / "zigzag.itch"
    write_day(path, mids)
    want = expected_orders(mids)
    assert len(want) >= 4          # the day really crosses, both ways
    s = run_file(str(path), {
        "strategy": {"name": "taker", "params": {"symbols": ["ZIGZ"], "fast": FAST, "slow": SLOW,
                                                 "qty": QTY, "max_position": 10 * QTY}},
        "backtest": {"feed_latency": 1_000, "entry_latency": 2_000, "response_latency": 1_000,
                     "instruments": 4}})
    c = s["trading"]["counters"]
    f = s["fill_log"]
    got = [(chr(int(r["side"])), int(r["price"])) for r in f]
    assert got == want, (got, want)
    assert (f["qty"] == QTY).all() and (f["liquidity"] == ord("R")).all()   # IOC: takes at once
    assert c["new_sent"] == len(want) and c["replace_sent"] == 0
    for bad in ("impossible", "unknown_uref", "dup_response", "seq_gap", "kill_trips"):
        assert c[bad] == 0, bad
    # the crossings alternate, so the position swings between -QTY and 0 (or 0 and +QTY)
    net = np.cumsum(np.where(f["side"] == ord("B"), QTY, -QTY))
    assert set(net.tolist()) <= {-QTY, 0, QTY}
    assert s["trading"]["positions"]["ZIGZ"]["position"] == int(net[-1])


def _net_path(tmp_path, max_position):
    """Answers slower than a leg: the order of one crossing is still in flight at the next
    (which the taker skips), so the crossing after that trades the same way again and the
    position builds up unless max_position stops it."""
    mids = zigzag_mids(legs=8)
    path = tmp_path / f"zigzag-{max_position}.itch"
    write_day(path, mids)
    s = run_file(str(path), {
        "strategy": {"name": "taker", "params": {"symbols": ["ZIGZ"], "fast": FAST, "slow": SLOW,
                                                 "qty": QTY, "max_position": max_position}},
        "backtest": {"feed_latency": 1_000, "entry_latency": 1_000, "response_latency": 90_000_000,
                     "instruments": 4}})
    f = s["fill_log"]
    return np.cumsum(np.where(f["side"] == ord("B"), QTY, -QTY))


def test_taker_respects_max_position(tmp_path):
    free = _net_path(tmp_path, 10 * QTY)
    assert np.abs(free).max() >= 2 * QTY          # the scenario does build a position...
    capped = _net_path(tmp_path, QTY)
    assert len(capped) >= 2 and np.abs(capped).max() <= QTY   # ...which the limit stops
