"""Issue 19 finding 11 (the configuration's part): values that used to end in a traceback
(TypeError from setsockopt, ENOMEM, MemoryError, ValueError from int("²")) are refused when
the configuration is read, with a message naming section.key; what memory a configuration may
ask for is bounded by the machine's and the error says how much was asked."""
from __future__ import annotations

import pytest

from tickpath.runtime.backends.faults import FaultConfig
from tickpath.runtime.config import schema as config
from tickpath.runtime.core.errors import ConfigError

BIG = 1 << 40


@pytest.mark.parametrize("over, key", [
    ({"backend": {"rcvbuf_bytes": BIG}}, "backend.rcvbuf_bytes"),
    ({"backend": {"busy_poll_us": BIG}}, "backend.busy_poll_us"),
    ({"buffers": {"ring_capacity": BIG}}, "buffers.ring_capacity"),
    ({"capture": {"path": "x.pcap", "ring_records": BIG}}, "capture.ring_records"),
    ({"faults": {"hold_frames": 10 ** 12, "drop_rate": 0.1}}, "faults.hold_frames"),
    ({"lines": {"enabled": True, "reorder_capacity": 1 << 24, "slot_bytes": 65535}},
     "lines.reorder_capacity x lines.slot_bytes"),
    ({"lines": {"reorder_capacity": BIG}}, "lines.reorder_capacity"),
    ({"book": {"max_orders": BIG}}, "book.max_orders"),
    ({"recovery": {"server": "127.0.0.1:\u00b2"}}, "recovery.server"),
    ({"recovery": {"server": "127.0.0.1:0"}}, "recovery.server"),
    ({"recovery": {"max_request_msgs": 70_000}}, "recovery.max_request_msgs"),
    ({"feed": {"max_gap_msgs": -1}}, "feed.max_gap_msgs"),
    ({"feed": {"reset_packets": 0}}, "feed.reset_packets"),
    ({"feed": {"first_seq": 1 << 62}}, "feed.first_seq"),
])
def test_out_of_range_values_are_refused_naming_the_key(over, key):
    with pytest.raises(ConfigError) as ei:
        config.merge(over)
    assert ei.value.fields["key"] == key, str(ei.value)


def test_memory_a_configuration_asks_for_is_bounded_and_said(monkeypatch):
    monkeypatch.setattr(config, "physical_memory_bytes", lambda: 1 << 30)
    with pytest.raises(ConfigError) as ei:
        config.merge({"book": {"max_orders": 1 << 30}})
    msg = str(ei.value)
    assert "more memory than the machine has" in msg and "asked_bytes=" in msg
    assert ei.value.fields["machine_bytes"] == 1 << 30 and ei.value.fields["key"] == "book.max_orders"
    config.merge({"book": {"max_orders": 1 << 20}})   # a sane size still loads


def test_fault_hold_pool_is_bounded_in_the_fault_config_too():
    with pytest.raises(ConfigError, match="faults.hold_frames"):
        FaultConfig(hold_frames=10 ** 12)
