"""The generator's knobs (bench/load/market.py): the defaults make the flow every other test
was written against, byte for byte; depth, lifetime, mix and drain each do what they say
(measured on the messages, with an independent dict replay of the orders); bad knobs are
clear errors naming the knob."""
from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
import pytest

from tickpath.bench.load.market import DEFAULT_MIX, FLOWS, generate
from tickpath.runtime.core.errors import ConfigError

N_INSTR = 10
N_MSGS = 40_000
N_PRE = 2 * N_INSTR + 3


def test_defaults_are_the_historical_flow():
    # sha256 of generate(21, 30000, 25).buf from the generator before the knobs existed
    # (checked then against that code side by side, and for two other seeds and sizes)
    got = hashlib.sha256(generate(21, 30_000, 25).buf.tobytes()).hexdigest()
    assert got == "ccc0f5761adbdbe9ee0de86a09ac5af8420631e154e942aa3eb74a6b261b7a3d"
    assert generate(21, 30_000, 25, levels_per_side=20, depth="near", cancels="recent",
                    mix=DEFAULT_MIX).buf.tobytes() == generate(21, 30_000, 25).buf.tobytes()


def _replay(m):
    """An independent dict replay of the orders: (live orders, lifetimes in messages of the
    orders deleted or replaced, most price levels one side of one book held at a checkpoint)."""
    live, done = {}, []
    peak = 0
    for i in range(N_PRE, m.n_messages):
        b = m.message(i)
        t = chr(b[0])
        ref = int.from_bytes(b[11:19], "big")
        if t in "AF":
            live[ref] = [int.from_bytes(b[1:3], "big"), b[19], int.from_bytes(b[32:36], "big"),
                         i, int.from_bytes(b[20:24], "big")]
        elif t in "DU":
            o = live.pop(ref)
            done.append(i - o[3])
            if t == "U":
                live[int.from_bytes(b[19:27], "big")] = [o[0], o[1], int.from_bytes(b[31:35], "big"),
                                                         i, int.from_bytes(b[27:31], "big")]
        elif t in "ECX":
            o = live[ref]
            o[4] -= int.from_bytes(b[19:23], "big")
            if o[4] <= 0:
                del live[ref]
        if i % 2000 == 0:
            per = defaultdict(set)
            for loc, side, px, _, _ in live.values():
                per[(loc, side)].add(px)
            peak = max([peak] + [len(v) for v in per.values()])
    return live, done, peak


def test_depth_knob_spreads_levels():
    _, _, near = _replay(generate(3, N_MSGS, N_INSTR, levels_per_side=5, depth="near"))
    _, _, uniform = _replay(generate(3, N_MSGS, N_INSTR, levels_per_side=300, depth="uniform"))
    assert uniform >= 150 > 40 >= near


def test_random_cancels_touch_older_orders():
    _, recent, _ = _replay(generate(4, N_MSGS, N_INSTR))
    _, rnd, _ = _replay(generate(4, N_MSGS, N_INSTR, cancels="random"))
    assert np.median(rnd) > 10 * np.median(recent)


def test_mix_sets_the_message_shares():
    mix = (0.6, 0.2, 0.05, 0.05, 0.05)
    m = generate(5, 100_000, N_INSTR, mix=mix)
    t = m.types[N_PRE:]
    share = {c: np.mean(np.isin(t, [ord(x) for x in c])) for c in ("AF", "D", "X", "U", "EC", "P")}
    assert share["AF"] == pytest.approx(0.6, abs=0.02) and share["P"] == pytest.approx(0.05, abs=0.01)
    assert share["U"] == pytest.approx(0.05, abs=0.01) and share["EC"] == pytest.approx(0.05, abs=0.01)


def test_drain_deletes_every_order_then_only_trades():
    m = generate(6, N_MSGS, N_INSTR, mix=(0.7, 0.1, 0.05, 0.05, 0.05), drain_from=15_000)
    live, _, _ = _replay(m)
    assert not live
    t = m.types[N_PRE + 15_000:]
    assert set(np.unique(t[t != ord("P")]).tolist()) <= {ord("D"), ord("E"), ord("C")}
    assert t[-1] == ord("P")


def test_flows_are_what_the_benchmarks_say():
    assert FLOWS["wide"]["n_instruments"] == 10_000 and FLOWS["deep"]["depth"] == "uniform"
    m = generate(1, 2 * 10_000 + 3 + 1000, **FLOWS["wide"])
    assert m.n_messages == 21_003 and len(m.symbols) == 10_000


@pytest.mark.parametrize("kw,key", [
    (dict(levels_per_side=0), "levels_per_side"), (dict(levels_per_side=True), "levels_per_side"),
    (dict(depth="deep"), "depth"), (dict(cancels="old"), "cancels"),
    (dict(mix=(0.5, 0.6, 0, 0, 0)), "mix"), (dict(mix=(0, 0.5, 0, 0, 0)), "mix"),
    (dict(mix=(0.5, float("nan"), 0, 0, 0)), "mix"), (dict(mix=(0.5, 0.5)), "mix"),
    (dict(max_live_orders=0), "max_live_orders"), (dict(max_live_orders=1 << 40), "max_live_orders"),
    (dict(drain_from=-1), "drain_from"),
])
def test_bad_knobs_are_clear_errors(kw, key):
    with pytest.raises(ConfigError, match=f"key='{key}'"):
        generate(1, 1000, 5, **kw)
