"""A message storm: the background flow at `storm_factor` times the rate for `storm_s`
seconds — scheduled (`storm_at_s`) or started on demand (`storm_now`, the CLI's SIGUSR1) —
then back to the rate. Counted from the venue's own background-event total."""
from __future__ import annotations

import time

import pytest
from ouch_client import Capture
from venue_net import make_venue

from tickpath.runtime.core.errors import ConfigError

RATE = 4_000.0


def _events_after(seconds, **kw):
    cap = Capture()
    v = make_venue(cap, rate=RATE, **kw)
    try:
        t0 = time.monotonic()
        if kw.get("storm_at_s", -1) < 0 and kw.get("storm_s", 0) > 0:
            time.sleep(0.5)
            v.storm_now()
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        elapsed = time.monotonic() - t0
    finally:
        summary = v.stop()
        cap.close()
    return summary["background"]["events"], elapsed, summary["background"]


@pytest.mark.parametrize("how", ["scheduled", "on_demand"])
def test_storm_is_factor_times_the_rate_for_its_length_only(how):
    kw = dict(storm_s=1.0, storm_factor=10.0)
    if how == "scheduled":
        kw["storm_at_s"] = 0.5
    n, elapsed, bg = _events_after(3.0, **kw)
    want = RATE * (elapsed + 9.0 * 1.0)     # 1 s at 10x = 9 s' worth of extra flow
    assert 0.85 * want <= n <= 1.1 * want, (n, want, bg)
    assert bg["storm"] is not None and bg["storm"]["factor"] == 10.0


def test_no_storm_is_the_rate():
    n, elapsed, bg = _events_after(1.5)
    assert 0.85 * RATE * elapsed <= n <= 1.1 * RATE * elapsed and bg["storm"] is None


def test_bad_storm_is_refused():
    cap = Capture()
    try:
        with pytest.raises(ConfigError, match="storm"):
            make_venue(cap, rate=RATE, storm_s=1.0, storm_factor=0.5)
    finally:
        cap.close()
