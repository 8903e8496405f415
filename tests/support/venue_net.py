"""A venue on loopback for the socket tests (tests/bench/venue)."""
from __future__ import annotations

from tickpath.bench.venue.venue import Venue, VenueParams

REFDATA = [{"symbol": "AAA", "ref_price": 100.00, "band": 0.10},
           {"symbol": "BBB", "ref_price": 20.00},
           {"symbol": "CCC", "ref_price": 5.00, "tick": 0.01}]
USERS = [("TEST1", "tickpath"), ("TEST2", "pw2"), ("SLOW", "slow"), ("CYCLE", "cycle")]


def make_venue(capture, rate=0.0, **kw) -> Venue:
    p = VenueParams(refdata=REFDATA, rate_msgs_per_s=rate, itch_to=capture.address, users=USERS,
                    max_orders=1 << 16, history_bytes=64 << 20, store_bytes=8 << 20, **kw)
    return Venue(p).start()
