"""UniverseBatcher: events in, per-instrument series, scheduled batch runs, counted drops."""
from __future__ import annotations

import numpy as np
import pytest

import tickpath.kernels as K
from tickpath.kernels.universe import UniverseBatcher
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_DTYPE, empty_events


def _trades(locs, prices, shares, msg=b"P"):
    ev = empty_events(len(locs))
    ev["locate"] = locs
    ev["price"] = np.round(np.asarray(prices) * 1e4).astype(np.uint32)
    ev["shares"] = shares
    ev["msg_type"] = ord(msg)
    return ev


def test_series_and_indicators_follow_the_prints():
    rng = np.random.default_rng(4)
    n_inst, window, steps = 5, 64, 200
    px = np.round(50 + np.cumsum(rng.normal(0, 0.1, (n_inst, steps)), axis=1), 4)
    sh = rng.integers(1, 500, (n_inst, steps))
    ub = UniverseBatcher(n_inst, window, interval_ns=1_000_000)
    for t in range(steps):
        locs = np.arange(n_inst - 1)            # instrument 4 never trades
        ub.ingest(_trades(locs, px[:-1, t], sh[:-1, t], b"PCQ"[t % 3:t % 3 + 1]))
    prices, volumes = ub.series()
    np.testing.assert_allclose(prices[:4], px[:4, -window:], rtol=0, atol=5e-9)
    assert np.isnan(prices[4]).all() and ub.points(4) == 0 and ub.points(0) == window
    res = ub.run()
    ref = K.ema(np.ascontiguousarray(prices[:4]), 20)
    np.testing.assert_array_equal(res["ema20"][:4], ref)
    assert np.isnan(ub.last["rsi14"][4])
    assert ub.stats()["trades"] == 4 * steps


def test_partial_history_is_left_padded_with_nan():
    ub = UniverseBatcher(2, 10, 0, indicators={"sma5": lambda p, v: K.sma(p, 5)})
    ub.ingest(_trades([1, 1, 1], [10.0, 10.5, 11.0], [1, 1, 1]))
    prices, _ = ub.series()
    assert np.isnan(prices[1, :7]).all()
    np.testing.assert_allclose(prices[1, 7:], [10.0, 10.5, 11.0])


def test_drops_are_counted_not_silent():
    ub = UniverseBatcher(3, 8, 0, indicators={})
    ev = np.concatenate([_trades([0, 7, 2], [1.0, 2.0, 0.0], [1, 1, 1]),
                         _trades([1], [5.0], [1], b"A")])
    ub.ingest(ev)
    assert ub.stats() == {"events": 4, "trades": 1, "not_trade": 1, "bad_locate": 1,
                          "zero_price": 1}
    ub.push_prices([0, 9], [1.5, 2.5])
    assert ub.stats()["bad_locate"] == 2


def test_schedule_runs_once_per_interval():
    ub = UniverseBatcher(2, 64, interval_ns=5_000_000)
    ub.ingest(_trades([0] * 32, 10 + np.arange(32) * 0.01, [1] * 32))
    assert ub.maybe_run(1_000_000_000) is not None
    assert ub.maybe_run(1_004_000_000) is None
    assert ub.maybe_run(1_005_000_000) is not None
    assert ub.runs == 2


def test_bad_configuration_and_input():
    with pytest.raises(ConfigError, match="n_instruments"):
        UniverseBatcher(0, 10, 0)
    with pytest.raises(ConfigError, match="window"):
        UniverseBatcher(1, 1, 0)
    with pytest.raises(ConfigError, match="interval_ns"):
        UniverseBatcher(1, 10, -1)
    with pytest.raises(ConfigError, match="indicator='vwap50'.*window=32"):
        UniverseBatcher(2, 32, 0)       # the default VWAP(50) needs 50 points
    ub = UniverseBatcher(1, 10, 0, indicators={})
    with pytest.raises(ConfigError, match="EVENT_DTYPE"):
        ub.ingest(np.zeros(3))
    with pytest.raises(ConfigError, match="differ in shape"):
        ub.push_prices([0, 0], [1.0])
    with pytest.raises(ConfigError, match="finite"):
        ub.push_prices([0], [np.inf])
    assert EVENT_DTYPE.itemsize == 64


def test_fused_pass_equals_separate_calls_bitwise():
    from tickpath.kernels import fused
    rng = np.random.default_rng(8)
    xs = 100 + np.cumsum(rng.normal(size=(9, 300)), axis=1)
    xs[2, :30] = np.nan
    s, e, r = fused.sma_ema_rsi(xs, 20, 10, 14)
    np.testing.assert_array_equal(s, K.sma(xs, 20))
    np.testing.assert_array_equal(e, K.ema(xs, 10))
    np.testing.assert_array_equal(r, K.rsi(xs, 14))
    xs[4, 100] = np.inf
    with pytest.raises(ConfigError, match=r"index=\(4, 100\)"):
        fused.sma_ema_rsi(xs)
    with pytest.raises(ConfigError, match="out\\[1\\]"):
        fused.sma_ema_rsi(xs[:, :50].copy(), out=(np.empty((9, 50)), np.empty((9, 49)), np.empty((9, 50))))
