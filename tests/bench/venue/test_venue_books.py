"""The ITCH stream the venue publishes, captured on loopback and rebuilt with tickpath's
own books and with itch-book (an independent C++ implementation), equals the venue's
final books level by level — under background flow and a client's orders together."""
from __future__ import annotations

import struct
import time

import numpy as np
import pytest
from venue_net import make_venue
from ouch_client import Capture, Client, cancel_msg, enter_msg, replace_msg

from tickpath.bench.venue import book as VB
from tickpath.runtime.book import orderbook as OB
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.feed import decoder as D

P = 10_000


@pytest.fixture(scope="module")
def finished_day():
    cap = Capture()
    v = make_venue(cap, rate=20_000.0)
    c = Client(v.server.address, "TEST1", "tickpath")
    c.next_msg()
    rng = np.random.default_rng(7)
    uref = 0
    for _ in range(300):
        uref += 1
        sym, ref = (b"AAA", 100 * P) if rng.random() < 0.6 else (b"BBB", 20 * P)
        side = b"B" if rng.random() < 0.5 else b"S"
        off = int(rng.integers(-3, 12)) * 100
        px = ref - off if side == b"B" else ref + off
        c.send(enter_msg(uref, side, 100 * int(rng.integers(1, 6)), sym, px,
                         display=b"Y" if rng.random() < 0.9 else b"N"))
        if uref % 7 == 0:
            c.send(cancel_msg(uref - 3, 0))
        if uref % 11 == 0:
            uref += 1
            c.send(replace_msg(uref - 2, uref, 300, px))
        time.sleep(0.002)
    time.sleep(0.5)
    summary = v.stop()
    cap.wait_for(lambda m: False, timeout=0.3)
    cap.close()
    c.close()
    return v, cap, summary


def _stream(cap):
    msgs = dict(cap.messages())
    seqs = sorted(msgs)
    return seqs, [msgs[s] for s in seqs]


def test_the_feed_is_complete_and_ends_the_session(finished_day):
    v, cap, summary = finished_day
    seqs, _ = _stream(cap)
    assert seqs == list(range(1, summary["itch"]["messages"] + 1))     # nothing lost, nothing twice
    assert any(struct.unpack_from(">H", p, 18)[0] == 0xFFFF for p in cap.packets)
    assert summary["engine"]["client_commands"] > 300 and summary["background"]["events"] > 10_000
    assert summary["engine"]["executions"] > 100


def test_tickpath_books_rebuilt_from_itch_equal_the_venues(finished_day):
    v, cap, _ = finished_day
    books = OB.new_books(v.ref.n + 1, 1 << 17, 4096)
    mold, sess = D.new_mold_state()
    events = np.zeros(D.max_events_per_packet(65536), EVENT_DTYPE)
    counters = np.zeros(C.N_COUNTERS, np.int64)
    for p in cap.packets:
        n = D.decode_packet(np.frombuffer(p, np.uint8), 0, mold, sess, events, 0, counters)
        OB.book_apply_all(books, events[:n], counters)
    assert counters[C.GAPS] == 0 and counters[C.BOOK_UNKNOWN_ORDER] == 0
    assert counters[C.BOOK_LEVELS_FULL] == 0 and counters[C.BOOK_BAD_ADD] == 0
    venue = VB.all_levels(v.engine)
    assert len(venue) == v.ref.n
    for loc in range(1, v.ref.n + 1):
        for side in (0, 1):
            mine = [tuple(int(x) for x in row) for row in OB.depth(books, loc, side, 4096)]
            theirs = VB.levels(v.engine, loc, side)
            assert mine == theirs, (loc, side)


def test_itch_book_rebuilt_from_itch_equals_the_venues(finished_day):
    import itch_book
    v, cap, _ = finished_day
    _, msgs = _stream(cap)
    blob = b"".join(struct.pack(">H", len(m)) + m for m in msgs)   # NASDAQ's binary file framing
    depth = 50
    s = itch_book.Session(tables=["bbo"], depth=depth, symbols=[])
    s.reserve(len(msgs) + 16)
    s.feed(blob)
    st = s.stats()
    assert st["missing_ref"] == 0 and st["malformed"] == 0 and st["crossed_books"] == 0
    d = s.take_depth()
    last = {}
    for i, loc in enumerate(d["locate"]):
        last[int(loc)] = i
    for loc in range(1, v.ref.n + 1):
        i = last[loc]
        for side, name in ((0, "bid"), (1, "ask")):
            theirs = []
            for k in range(depth):
                px = int(d[f"{name}_px_{k:02d}"][i])
                if px == 0:
                    break
                theirs.append((px, int(d[f"{name}_sz_{k:02d}"][i]), int(d[f"{name}_ct_{k:02d}"][i])))
            assert theirs == VB.levels(v.engine, loc, side)[:depth], (loc, side)
