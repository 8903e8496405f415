"""Issue 19 finding 2: one far-ahead datagram must not black out a single-line feed.

The decoder's gap window (decoder.py): a packet more than `max_gap_msgs` ahead is dropped and
counted SEQ_SUSPECT, the stream continues from the expected number; `reset_packets`
consistent far-ahead packets in a row are a session reset (one gap event with
aux = GAP_AUX_RESET, counted SEQ_RESETS). In-process here; over a real socket with a
spoofing sender in test_hostile_feed_socket.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import FLAG_GAP, empty_events
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold
from tickpath.runtime.feed.decoder import (
    GAP_AUX_RESET,
    MAX_SEQ,
    MOLD_NEXT_SEQ,
    decode_packet,
    new_mold_state,
    set_gap_policy,
)

SESSION = b"GAPWIN0001"


class Stream:
    def __init__(self, **kw):
        self.mold, self.session = new_mold_state(SESSION, **kw)
        self.counters = C.new_counters()
        self.events = empty_events(64)

    def feed(self, pkt: bytes):
        n = decode_packet(np.frombuffer(pkt, np.uint8), 5, self.mold, self.session, self.events,
                          0, self.counters)
        return self.events[:n].copy()

    def c(self, name: str) -> int:
        return int(self.counters[getattr(C, name)])


def _pkt(seq: int, n: int = 1, ref0: int = 1) -> bytes:
    return mold.mold_packet(SESSION, seq, [itch.encode_delete(1, 0, 0, ref0 + i) for i in range(n)])


def test_one_far_ahead_packet_does_not_black_out_the_feed():
    s = Stream()
    s.feed(_pkt(1, 2))
    assert len(s.feed(_pkt(MAX_SEQ - 1, 1))) == 0        # the finding's 2^62 - 2
    assert s.c("SEQ_SUSPECT") == 1 and s.c("GAPS") == 0
    assert s.mold[MOLD_NEXT_SEQ] == 3
    events = 0
    for k in range(1000):   # 10,000 legitimate messages after it all decode
        events += len(s.feed(_pkt(3 + 10 * k, 10)))
    assert events == 10_000
    assert s.c("DUPLICATES") == 0 and s.c("SEQ_RESETS") == 0


def test_far_ahead_heartbeat_is_not_adopted_either():
    s = Stream()
    s.feed(_pkt(1))
    assert len(s.feed(mold.mold_heartbeat(SESSION, 1 << 40))) == 0
    assert s.c("SEQ_SUSPECT") == 1 and s.c("HEARTBEATS") == 0
    assert len(s.feed(_pkt(2))) == 1


def test_sustained_consistent_jump_is_an_explicit_reset():
    s = Stream(max_gap_msgs=100, reset_packets=3)
    s.feed(_pkt(1))
    far = 1 << 40
    assert len(s.feed(_pkt(far, 2))) == 0
    assert len(s.feed(_pkt(far + 2, 3))) == 0
    out = s.feed(_pkt(far + 5, 1, ref0=77))
    assert s.c("SEQ_SUSPECT") == 2 and s.c("SEQ_RESETS") == 1
    gap, msg = out
    assert gap["flags"] == FLAG_GAP and gap["aux"] == GAP_AUX_RESET
    assert gap["seq"] == 2 and gap["shares"] == far + 5 - 2
    assert msg["seq"] == far + 5 and msg["order_ref"] == 77
    assert s.mold[MOLD_NEXT_SEQ] == far + 6
    assert len(s.feed(_pkt(far + 6))) == 1       # the new numbering goes on
    assert s.c("GAP_MESSAGES") == far + 3 and s.c("GAPS") == 1


def test_inconsistent_or_interrupted_runs_never_reset():
    s = Stream(max_gap_msgs=100, reset_packets=3)
    s.feed(_pkt(1))
    for far in (10_000, 20_000, 30_000, 40_000):   # far ahead, but not continuing each other
        s.feed(_pkt(far, 2))
    assert s.c("SEQ_RESETS") == 0 and s.c("SEQ_SUSPECT") == 4
    nxt = 2
    for _ in range(5):   # consistent run, broken each time by a packet of the live stream
        s.feed(_pkt(50_000, 1))
        s.feed(_pkt(50_001, 1))
        assert len(s.feed(_pkt(nxt))) == 1
        nxt += 1
    assert s.c("SEQ_RESETS") == 0 and s.mold[MOLD_NEXT_SEQ] == nxt


def test_a_jump_inside_the_window_is_an_ordinary_gap():
    s = Stream(max_gap_msgs=100)
    s.feed(_pkt(1))
    out = s.feed(_pkt(101))
    assert out[0]["flags"] == FLAG_GAP and out[0]["shares"] == 99 and out[0]["aux"] == 0
    assert s.c("SEQ_SUSPECT") == 0


def test_window_off_adopts_any_jump():
    s = Stream(max_gap_msgs=0)
    s.feed(_pkt(1))
    s.feed(_pkt(1 << 40))
    assert s.c("SEQ_SUSPECT") == 0 and s.mold[MOLD_NEXT_SEQ] == (1 << 40) + 1


@pytest.mark.parametrize("kw", [dict(max_gap_msgs=-1), dict(reset_packets=0),
                                dict(max_gap_msgs=1.5), dict(reset_packets=True)])
def test_bad_gap_policy_is_refused_naming_the_key(kw):
    with pytest.raises(ConfigError) as ei:
        new_mold_state(**kw)
    assert "feed." in str(ei.value)
    m, _ = new_mold_state()
    with pytest.raises(ConfigError):
        set_gap_policy(m, kw.get("max_gap_msgs", 10), kw.get("reset_packets", 3))
