"""Latency models (constant, distributions, .hgrm from the runtime's own histogram export)
and the summary metrics, against plain recomputations."""
from __future__ import annotations

import numpy as np
import pytest

from tickpath.runtime.backtest import latency as L
from tickpath.runtime.backtest.metrics import realised_pnl, risk_stats
from tickpath.runtime.backtest.records import FILL_DTYPE
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.engine import latency as hist


def _draws(table, n=20000, seed=3):
    rng = np.array([seed], dtype=np.uint64)
    return np.array([L.draw_ns(table, rng) for _ in range(n)])


def test_constant_and_distributions():
    assert (_draws(L.from_spec(1500, "k", 1), 10) == 1500).all()
    assert (_draws(L.from_spec("const:250", "k", 1), 10) == 250).all()
    d = _draws(L.from_spec("normal:10000,1000", "k", 1))
    assert abs(d.mean() - 10000) < 100 and abs(d.std() - 1000) < 100
    d = _draws(L.from_spec("exponential:5000", "k", 1))
    assert abs(d.mean() - 5000) < 250 and d.min() >= 0
    d = _draws(L.from_spec("uniform:100,200", "k", 1))
    assert d.min() >= 100 and d.max() <= 200


def test_hgrm_from_the_runtime_histogram_round_trips(tmp_path):
    h = hist.new_histogram()
    values = np.random.default_rng(1).lognormal(np.log(20_000), 0.3, 50_000).astype(np.int64)
    for v in values:
        hist.record(h, v)
    p = tmp_path / "t2t.hgrm"
    p.write_text(hist.hgrm_text(h))          # microseconds, as tickpath writes it
    table = L.from_spec(f"hgrm:{p}", "backtest.entry_latency", 1)
    d = _draws(table, 50_000)
    for q in (50, 90, 99):
        assert np.percentile(d, q) == pytest.approx(np.percentile(values, q), rel=0.03)


@pytest.mark.parametrize("text", ["", "hello\nworld\n", "       Value     Percentile TotalCount 1/(1-Percentile)\n  12.0 abc 1 1\n",
                                  "       Value     Percentile TotalCount 1/(1-Percentile)\n  12.0 0.5 1 2\n 11.0 0.9 2 10\n"])
def test_bad_histogram_is_a_clear_error(tmp_path, text):
    p = tmp_path / "bad.hgrm"
    p.write_text(text)
    with pytest.raises(ConfigError, match="backtest.feed_latency"):
        L.from_spec(f"hgrm:{p}", "backtest.feed_latency", 1)


@pytest.mark.parametrize("spec", [-5, "gauss:1,2", "normal:1", "normal:a,b", True, "uniform:5,1"])
def test_bad_latency_specs(spec):
    with pytest.raises(ConfigError, match="backtest.entry_latency"):
        L.from_spec(spec, "backtest.entry_latency", 1)


def test_missing_histogram_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read latency histogram"):
        L.from_spec(f"hgrm:{tmp_path}/nope.hgrm", "backtest.response_latency", 1)


def _fills(rows):
    f = np.zeros(len(rows), dtype=FILL_DTYPE)
    for i, (side, qty, px) in enumerate(rows):
        f[i]["side"], f[i]["qty"], f[i]["price"], f[i]["locate"] = ord(side), qty, px, 1
    return f


def test_realised_pnl_average_cost():
    # buy 100 @ 10, buy 100 @ 12 (avg 11), sell 150 @ 13 -> +300, sell 100 @ 9 (flip: 50 closes at -2)
    f = _fills([("B", 100, 10_0000), ("B", 100, 12_0000), ("S", 150, 13_0000), ("S", 100, 9_0000)])
    assert realised_pnl(f) == pytest.approx(300 - 100)


def test_risk_stats_against_plain_formulas():
    rng = np.random.default_rng(2)
    eq = np.cumsum(rng.normal(0.5, 3.0, 2000))
    r = risk_stats(eq, 1.0)
    d = np.diff(eq)
    assert r["sharpe_per_sample"] == pytest.approx(d.mean() / d.std(ddof=1))
    peak = np.maximum.accumulate(eq)
    assert r["max_drawdown"] == pytest.approx((peak - eq).max())
    assert r["var_95"] == pytest.approx(-np.percentile(d, 5))
    assert r["es_99"] >= r["var_99"] >= r["var_95"]
    assert r["sample_interval_s"] == 1.0 and r["sortino_per_sample"] > r["sharpe_per_sample"] * 0


def _realised_reference(fills):
    """The average-cost rule written plainly over Python records (what metrics compiles)."""
    pos, avg, real = {}, {}, 0.0
    for f in fills:
        loc = int(f["locate"])
        q = int(f["qty"]) if f["side"] == ord("B") else -int(f["qty"])
        px = float(f["price"]) * 1e-4
        p, a = pos.get(loc, 0), avg.get(loc, 0.0)
        if p == 0 or (p > 0) == (q > 0):
            avg[loc] = (a * abs(p) + px * abs(q)) / (abs(p) + abs(q))
            pos[loc] = p + q
            continue
        real += min(abs(q), abs(p)) * (px - a) * (1 if p > 0 else -1)
        left = p + q
        pos[loc] = left
        if left != 0 and (left > 0) != (p > 0):
            avg[loc] = px
        elif left == 0:
            avg[loc] = 0.0
    return real


def test_realised_pnl_equals_the_plain_rule_bit_for_bit():
    rng = np.random.default_rng(5)
    n = 3000
    f = np.zeros(n, dtype=FILL_DTYPE)
    f["side"] = np.where(rng.random(n) < 0.5, ord("B"), ord("S"))
    f["qty"] = rng.integers(1, 500, n)
    f["price"] = rng.integers(9_0000, 11_0000, n)
    f["locate"] = rng.integers(1, 5, n)
    assert realised_pnl(f) == _realised_reference(f)
    assert realised_pnl(f[:0]) == 0.0
