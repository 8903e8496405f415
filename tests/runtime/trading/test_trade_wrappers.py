"""`tickpath trade` over a wrapped backend (fault injection, capture) is refused with a clear
error naming the key: its generated loop imports the poll by name, and a wrapper's poll lives
in a generated module that a new process cannot import that way."""
from __future__ import annotations

import pytest

from tickpath.runtime.backends.faults import FaultBackend, FaultConfig
from tickpath.runtime.backends.socket import SocketBackend
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.trading.live import loop_module
from tickpath.runtime.trading.strategy import load_strategy


def test_trade_refuses_a_fault_injection_wrapper_naming_the_key():
    wrapped = FaultBackend(SocketBackend(port=0), FaultConfig(drop_rate=0.1), 4, 2048)
    assert wrapped.loop is not None    # it has its own cached loop: just not one trade can use
    with pytest.raises(ConfigError) as err:
        loop_module(load_strategy("market_maker"), wrapped)
    assert err.value.fields.get("key") == "backend.kind" and "wrapper" in str(err.value)
