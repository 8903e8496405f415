"""A frame decoded message by message (frame_open, then frame_next until nothing is left: the
trading loop's way, so that it can step each instrument's run before decoding the rest) gives
the same events, counters, stream state and session as decode_frame on the whole frame: on
valid packets, damaged and random bytes, duplicates and gaps, lengths outside the slot, and
an event array too small for the frame."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickpath.bench.load import market
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import empty_events
from tickpath.runtime.feed.decoder import (
    P_LEFT,
    decode_frame,
    frame_next,
    frame_open,
    new_frame_part,
    new_mold_state,
)

SESSION = b"PART000001"
SLOT = 512
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def valid():
    mkt = market.generate(5, 2_000, 8)
    pk = market.pack_mold(mkt, SESSION, max_payload_bytes=400)
    return [pk.packet(k) for k in range(pk.n_packets)]


def _slots(pkts, lengths):
    payload = np.zeros((len(pkts), SLOT), np.uint8)
    for i, p in enumerate(pkts):
        payload[i, :min(len(p), SLOT)] = np.frombuffer(p[:SLOT], np.uint8)
    return payload, np.array(lengths, np.int32), np.arange(len(pkts), dtype=np.int64) + 1000


def _whole(payload, lengths, recv_ns, capacity, session):
    m, sess = new_mold_state(session=session)
    ctr, ev = C.new_counters(), empty_events(capacity)
    out = []
    for f in range(payload.shape[0]):
        n = decode_frame(payload, lengths, f, recv_ns, m, sess, ev, 0, ctr)
        out.append(ev[:n].copy())
    return out, ctr, m, sess


def _parts(payload, lengths, recv_ns, capacity, session):
    m, sess = new_mold_state(session=session)
    ctr, ev, part = C.new_counters(), empty_events(capacity), new_frame_part()
    out = []
    for f in range(payload.shape[0]):
        n = frame_open(payload, lengths, f, recv_ns, m, sess, ev, 0, ctr, part)
        calls = 0
        while part[P_LEFT] > 0:
            n = frame_next(payload, recv_ns, m, ev, n, ctr, part)
            calls += 1
            assert calls <= 0xFFFF
        assert frame_next(payload, recv_ns, m, ev, n, ctr, part) == n   # a closed frame: no-op
        out.append(ev[:n].copy())
    return out, ctr, m, sess


def _same(pkts, lengths, capacity=64, session=SESSION):
    payload, lens, recv = _slots(pkts, lengths)
    a = _whole(payload, lens, recv, capacity, session)
    b = _parts(payload, lens, recv, capacity, session)
    assert len(a[0]) == len(b[0])
    for x, y in zip(a[0], b[0]):
        assert x.tobytes() == y.tobytes()
    for x, y in zip(a[1:], b[1:]):
        assert np.array_equal(x, y)
    return a


def test_valid_stream_same_events_and_counters(valid):
    out, ctr, _, _ = _same(valid, [len(p) for p in valid])
    assert ctr[C.EVENTS] > 1000 and ctr[C.MALFORMED_PACKETS] == 0


def test_repeats_gaps_and_lengths_outside_the_slot(valid):
    pkts = valid[:30]
    order = [0, 1, 1, 0, 5, 3, 4, 9, 2, 29]           # duplicates, a gap, old packets, a jump
    sel = [pkts[k] for k in order] + [pkts[10], pkts[11]]
    lengths = [len(p) for p in sel[:-2]] + [-1, SLOT + 1]
    _, ctr, _, _ = _same(sel, lengths)
    assert ctr[C.DUPLICATES] > 0 and ctr[C.GAPS] > 0 and ctr[C.MALFORMED_PACKETS] == 2


def test_bytes_after_the_last_message(valid):
    p = valid[0]
    lower = p[:18] + (int.from_bytes(p[18:20], "big") - 1).to_bytes(2, "big") + p[20:]
    _, ctr, _, _ = _same([p + b"\x00\x07junk", lower], [len(p) + 6, len(lower)])
    assert ctr[C.MALFORMED_PACKETS] == 2


def test_event_array_smaller_than_a_frame(valid):
    _, ctr, _, _ = _same(valid[:20], [len(p) for p in valid[:20]], capacity=3)
    assert ctr[C.EVENTS_DROPPED] > 0


noise = st.builds(
    lambda seq, count, body: SESSION + seq.to_bytes(8, "big") + count.to_bytes(2, "big") + body,
    st.integers(0, 60), st.sampled_from([0, 1, 2, 5, 0xFFFF]) | st.integers(0, 0xFFFF),
    st.binary(max_size=200))


@FUZZ
@given(st.data())
def test_fuzzed_frames_same_as_whole(valid, data):
    pkts = []
    for _ in range(data.draw(st.integers(1, 10))):
        kind = data.draw(st.sampled_from(["valid", "cut", "flip", "tail", "noise", "bytes"]))
        if kind == "noise":
            pkts.append(data.draw(noise))
        elif kind == "bytes":
            pkts.append(data.draw(st.binary(max_size=80)))
        else:
            b = bytearray(valid[data.draw(st.integers(0, 40))])
            if kind == "cut":
                b = b[:data.draw(st.integers(0, len(b)))]
            elif kind == "tail":
                b += data.draw(st.binary(min_size=1, max_size=20))
            elif kind == "flip":
                b[data.draw(st.integers(0, len(b) - 1))] ^= 1 << data.draw(st.integers(0, 7))
            pkts.append(bytes(b))
    cap = data.draw(st.integers(1, 64))
    _same(pkts, [len(p) for p in pkts], capacity=cap, session=data.draw(st.sampled_from([None, SESSION])))
