"""A quiet venue (no background flow) per test module, on loopback."""
from __future__ import annotations

import pytest
from ouch_client import Capture
from venue_net import make_venue


@pytest.fixture(scope="module")
def quiet_venue():
    """No background flow: every message is the test's."""
    cap = Capture()
    v = make_venue(cap, max_queue_bytes=256 << 10, sndbuf_bytes=32 << 10)
    yield v, cap
    v.stop()
    cap.close()
