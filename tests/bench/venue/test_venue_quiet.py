"""Quiet instruments: listed and tradable, but the background flow never touches them (a
tick-to-trade trigger there is the only message of its instrument)."""
from __future__ import annotations

import struct
import time

import pytest
from venue_net import REFDATA, make_venue
from ouch_client import Capture

from tickpath.runtime.core.errors import ConfigError


def test_the_flow_leaves_a_quiet_instrument_alone():
    cap = Capture()
    v = make_venue(cap, rate=20_000.0, quiet_symbols=["BBB"])
    try:
        time.sleep(1.0)
    finally:
        summary = v.stop()
        cap.close()
    assert summary["background"]["events"] > 5_000
    quiet = v.ref.locate("BBB")
    by_locate = {}
    for _, m in cap.messages():
        if m[:1] in b"AFXDEUCP" and len(m) >= 3:
            loc = struct.unpack_from(">H", m, 1)[0]
            by_locate[loc] = by_locate.get(loc, 0) + 1
    assert by_locate.get(quiet, 0) == 0
    assert all(by_locate.get(v.ref.locate(r["symbol"]), 0) > 0 for r in REFDATA if r["symbol"] != "BBB")


def test_every_instrument_quiet_is_refused():
    cap = Capture()
    try:
        with pytest.raises(ConfigError, match="every instrument is quiet"):
            make_venue(cap, rate=1000.0, quiet_symbols=[r["symbol"] for r in REFDATA])
    finally:
        cap.close()
