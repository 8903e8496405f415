"""`tickpath trade` configuration: unknown keys, wrong types, negatives and inconsistent
limits are refused at load time naming section.key; strategies are found by name or
module:attribute and their parameters checked."""
from __future__ import annotations

import pytest

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.trading import config as TC
from tickpath.runtime.trading.strategy import StrategyError, load_strategy

VENUE = {"ouch": "127.0.0.1:26500", "user": "TEST1", "password": "tickpath"}


def _load(**sections):
    raw = {"venue": dict(VENUE)}
    raw.update(sections)
    return TC.from_dict(raw)


def test_example_config_loads():
    import os
    here = os.path.dirname(TC.__file__)
    cfg, t = TC.load(os.path.join(here, "example.toml"))
    assert t["strategy"]["name"] == "market_maker" and cfg["feed"]["port"] == 26400
    load_strategy(t["strategy"]["name"], t["strategy"]["params"])


@pytest.mark.parametrize("raw,key", [
    ({"risk": {"max_position": 100, "max_order_qty": 500}}, "risk.max_position"),
    ({"risk": {"max_total_position": 100, "max_position": 500, "max_order_qty": 50}}, "risk.max_total_position"),
    ({"risk": {"max_order_qty": -1}}, "risk.max_order_qty"),
    ({"risk": {"max_loss": -5.0}}, "risk.max_loss"),
    ({"risk": {"max_orders_per_100ms": 50, "max_orders_per_s": 10}}, "risk.max_orders_per_100ms"),
    ({"risk": {"max_msgs_per_s": 10, "max_msgs_per_100ms": 5, "max_orders_per_s": 20,
               "max_orders_per_100ms": 5}}, "risk.max_msgs_per_s"),
    ({"risk": {"price_collar_pct": 100}}, "risk.price_collar_pct"),
    ({"risk": {"bogus": 1}}, "risk.bogus"),
    ({"risk": {"max_order_qty": "10"}}, "risk.max_order_qty"),
    ({"risk": {"check_book": 1}}, "risk.check_book"),
    ({"risk": {"restricted": ["TOOLONGSYMBOL"]}}, "risk.restricted"),
    ({"trading": {"order_capacity": 1000}}, "trading.order_capacity"),
    ({"trading": {"bogus": 1}}, "trading.bogus"),
    ({"trading": {"timer_ms": -1}}, "trading.timer_ms"),
    ({"venue": {**VENUE, "ouch": "nohost"}}, "venue.ouch"),
    ({"venue": {**VENUE, "bogus": 1}}, "venue.bogus"),
    ({"venue": {**VENUE, "heartbeat_timeout_ms": 10}}, "venue.heartbeat_timeout_ms"),
    ({"strategy": {"nme": "x"}}, "strategy.nme"),
    ({"feed": {"prot": 1}}, "feed.prot"),
])
def test_bad_config_is_refused_naming_the_key(raw, key):
    with pytest.raises(ConfigError) as e:
        _load(**raw)
    assert key in str(e.value)


def test_strategy_params_checked():
    with pytest.raises(ConfigError, match="strategy.params.gama"):
        load_strategy("market_maker", {"gama": 0.1})
    with pytest.raises(ConfigError, match="strategy.params.quote_size"):
        load_strategy("market_maker", {"quote_size": "100"})
    with pytest.raises(ConfigError, match="strategy.params.max_inventory"):
        load_strategy("market_maker", {"max_inventory": 50, "quote_size": 100})
    s = load_strategy("market_maker", {"gamma": 1})
    assert s.params["gamma"] == 1.0 and isinstance(s.params["gamma"], float)


def test_strategy_names():
    assert load_strategy("taker").spec == "taker"
    with pytest.raises(StrategyError, match="not found"):
        load_strategy("no_such_strategy")
    with pytest.raises(StrategyError, match="not found"):
        load_strategy("trading_scripted:Nope")
    with pytest.raises(StrategyError, match="lacks required members"):
        load_strategy("tickpath.runtime.trading.records")
    with pytest.raises(ConfigError):
        load_strategy("bad name!")


def test_bad_strategy_fails_to_compile_with_its_name():
    import numpy as np

    from tickpath.runtime.core.event import EVENT_DTYPE
    from tickpath.runtime.engine.pipeline import Pipeline
    from tickpath.runtime.trading import records as R
    from tickpath.runtime.trading.context import new_trade_ctx
    from tickpath.runtime.trading.risk import validate_risk
    s = load_strategy("trading_badstrat")
    pipe = Pipeline(n_locates=8, max_orders=1 << 10, max_levels=8)
    t = new_trade_ctx(8, validate_risk({}))
    with pytest.raises(StrategyError) as e:
        s.compile(t, s.new_state(8), pipe.arrays, np.zeros(4, EVENT_DTYPE), R.new_responses(4))
    assert "trading_badstrat" in str(e.value) and "does not compile" in str(e.value)
