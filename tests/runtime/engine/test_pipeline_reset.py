"""Pipeline.reset() gives back exactly what a new Pipeline holds (a backtest reuses one per
file), process_span over pieces of a batch equals process_events over the whole, and
P_BOOKS_ONLY keeps the books identical while leaving the indicators untouched, and
process_events_tops_after (replay's: tops once per call) leaves what process_events leaves."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from numba import njit

from tickpath.bench.load.market import generate
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.engine.pipeline import (
    OUT_MID, OUT_UPDATES, P_BOOKS_ONLY, P_LAT_MIN_SEQ, P_MIDNIGHT_NS, Pipeline, new_touched,
    process_events, process_events_tops_after, process_span,
)
from tickpath.runtime.feed.itchfile import decode_messages, frame_messages
from tickpath.runtime.trading.ref import ref

N_INSTR = 6
KW = dict(n_locates=N_INSTR + 1, max_orders=1 << 12, max_levels=32)


@pytest.fixture(scope="module")
def events():
    m = generate(5, 6_000, N_INSTR, levels_per_side=40, depth="uniform")
    block = b"".join(struct.pack(">H", len(x)) + x for x in m.messages())
    buf = np.frombuffer(block, dtype=np.uint8)
    pos = np.zeros(len(buf) // 2 + 1, dtype=np.int64)
    n, _used = frame_messages(buf, len(buf), pos)
    ev = np.zeros(n, dtype=EVENT_DTYPE)
    k, _done = decode_messages(buf, pos, 0, n, 1, np.zeros(1, np.int64), ev, C.new_counters())
    return ev[:k]


@njit(nogil=True)
def _span(pipe, events, lo, hi):
    process_span(ref(pipe), events, lo, hi)   # as the backtest calls it: the pipeline by pointer


def _arrays(p: Pipeline) -> list:
    out = []
    for name, v in zip(p.arrays._fields, p.arrays):
        if isinstance(v, tuple):
            out += [(f"books.{f}", a) for f, a in zip(v._fields, v)]
        else:
            out.append((name, v))
    return out


def _same(a: Pipeline, b: Pipeline) -> None:
    for (name, x), (_, y) in zip(_arrays(a), _arrays(b)):
        if name == "params":
            x, y = x.copy(), y.copy()
            x[P_MIDNIGHT_NS] = y[P_MIDNIGHT_NS] = 0   # the clock's midnight, read at creation
        assert x.tobytes() == y.tobytes(), name


@pytest.mark.parametrize("ring", [0, 64])
def test_reset_equals_a_new_pipeline(events, ring):
    p = Pipeline(out_ring_capacity=ring, warmup_seq=3, **KW)
    process_events(p.arrays, events, len(events))
    assert p.books.state.any() and p.counters.any()
    p.params[P_BOOKS_ONLY] = 1
    p.reset()
    _same(p, Pipeline(out_ring_capacity=ring, warmup_seq=3, **KW))
    # and it works as new: the same events give the same state as in a new pipeline
    q = Pipeline(out_ring_capacity=ring, warmup_seq=3, **KW)
    for x in (p, q):
        x.params[P_LAT_MIN_SEQ] = np.iinfo(np.int64).max   # no wall-clock latency: comparable
        process_events(x.arrays, events, len(events))
    _same(p, q)


def test_process_span_in_pieces_equals_process_events(events):
    whole, pieces = Pipeline(**KW), Pipeline(**KW)
    for x in (whole, pieces):
        x.params[P_LAT_MIN_SEQ] = np.iinfo(np.int64).max
    process_events(whole.arrays, events, len(events))
    rng = np.random.default_rng(1)
    cuts = np.unique(np.concatenate([[0, len(events)], rng.integers(0, len(events), 400)]))
    arrays = pieces.arrays
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        _span(arrays, events, int(lo), int(hi))
    _same(whole, pieces)
    assert np.nanmax(whole.out[:, OUT_UPDATES]) > 100


def test_books_only_leaves_indicators_untouched(events):
    full, books_only = Pipeline(**KW), Pipeline(**KW)
    books_only.params[P_BOOKS_ONLY] = 1
    for x in (full, books_only):
        x.params[P_LAT_MIN_SEQ] = np.iinfo(np.int64).max
        process_events(x.arrays, events, len(events))
    for f, a in zip(full.books._fields, full.books):
        assert a.tobytes() == getattr(books_only.books, f).tobytes(), f
    assert np.isnan(books_only.out[:, :OUT_UPDATES]).all() and not books_only.out[:, OUT_UPDATES].any()
    assert np.isfinite(full.out[1:, :OUT_UPDATES]).any()


@pytest.mark.parametrize("block", [1, 7, 512, 100_000])
def test_tops_after_each_call_equal_tops_after_each_event(events, block):
    """Whatever the call size, the state between calls is the per-event pipeline's, bit for
    bit (floats included), and the marks are left clear for the next call."""
    eager, lazy = Pipeline(**KW), Pipeline(**KW)
    for x in (eager, lazy):
        x.params[P_LAT_MIN_SEQ] = np.iinfo(np.int64).max
    touched, marks = new_touched(KW["n_locates"])
    checked = 0
    for lo in range(0, len(events), block):
        blk = events[lo:lo + block]
        process_events(eager.arrays, blk, len(blk))
        process_events_tops_after(lazy.arrays, blk, len(blk), touched, marks)
        if checked < 40:   # between calls, not only at the end
            _same(eager, lazy)
            checked += 1
        assert not marks.any()
    _same(eager, lazy)
    assert np.isfinite(lazy.out[1:, OUT_MID]).sum() >= N_INSTR - 1


def test_tops_after_with_books_only_or_short_marks(events):
    """Books only: no indicator is touched. Marks shorter than the instruments: the
    locates past them keep their books but get no indicators (never a write out of range)."""
    lazy = Pipeline(**KW)
    lazy.params[P_BOOKS_ONLY] = 1
    touched, marks = new_touched(KW["n_locates"])
    process_events_tops_after(lazy.arrays, events, len(events), touched, marks)
    assert np.isnan(lazy.out[:, :OUT_UPDATES]).all() and not lazy.out[:, OUT_UPDATES].any()
    short = Pipeline(**KW)
    t2, m2 = new_touched(3)
    process_events_tops_after(short.arrays, events, len(events), t2, m2)
    assert short.out[3:, OUT_UPDATES].sum() == 0 and short.out[1:3, OUT_UPDATES].sum() > 0
    assert short.books.sides["n_levels"][3:].any()   # books of every locate still kept
