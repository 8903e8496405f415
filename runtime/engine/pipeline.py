"""What happens to each event after it is decoded (or DMA'd from the FPGA): book update,
streaming indicators, latency record, publish to the out ring. Jitted, allocation-free.

`Pipeline` (Python) preallocates everything once from the configuration; `.arrays` is the
tuple the hot loop receives. Indicators are the kernels library's streaming functions over
per-instrument state rows (tickpath.kernels.stream), so any of its indicators plugs in the
same way. Latency is send→indicator: the loop's completion time (CLOCK_REALTIME) minus the
send time the load generator stamped into the ITCH timestamp (ns since midnight, UTC).
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.kernels import stream as S

from tickpath.runtime.core import counters as C
from tickpath.runtime.engine import latency
from tickpath.runtime.book.orderbook import (
    book_apply,
    book_prefetch,
    last_trade,
    top_stats,
)
from tickpath.runtime.book.layout import Books, clear_books, new_books
from tickpath.runtime.core.event import EVENT_DTYPE, FLAG_GAP
from tickpath.runtime.sys.intrinsics import realtime_ns
from tickpath.runtime.ipc.ring import Ring, claim, publish

# per-instrument indicator outputs, float64 [n_locates, N_OUT]
OUT_EMA, OUT_RSI, OUT_VWAP, OUT_MID, OUT_MICRO, OUT_IMBALANCE, OUT_LAST, OUT_UPDATES = range(8)
N_OUT = 8
OUT_NAMES = ("ema", "rsi", "vwap", "mid", "microprice", "imbalance", "last_trade", "updates")

# params int64 slots
P_MIDNIGHT_NS = 0      # CLOCK_REALTIME of the last UTC midnight (ITCH ts are ns since then)
P_PUBLISH = 1          # 1: copy each event to the out ring
P_LAT_MIN_SEQ = 2      # events below this seq are warm-up: not recorded
P_BOOKS_ONLY = 3       # 1: books only, no indicators (a backtest whose strategy reads none)
N_PARAMS = 4

_DAY_NS = 86_400_000_000_000
_E, _C, _P = ord("E"), ord("C"), ord("P")


def utc_midnight_ns(now_ns: int | None = None) -> int:
    now = time.clock_gettime_ns(time.CLOCK_REALTIME) if now_ns is None else now_ns
    return now - now % _DAY_NS


def prefault(*arrays) -> None:
    """Touch every page of each array now: np.zeros maps zero pages lazily, and a first
    write in the hot loop would be a page fault (microseconds) on a live message."""
    for a in arrays:
        if isinstance(a, np.ndarray) and a.nbytes:
            flat = a.reshape(-1).view(np.uint8) if a.flags.c_contiguous else None
            if flat is None:
                continue
            # a write per page faults it in, values unchanged; from a copy, because numpy
            # skips assigning an array to itself (that was a no-op: no page was touched)
            flat[::4096] = flat[::4096].copy()


class PipeState(NamedTuple):
    """What the hot loop receives: every array of one pipeline, by name (numba types a
    namedtuple like a tuple, so names cost nothing at run time)."""
    books: Books
    ema: np.ndarray
    rsi: np.ndarray
    vwap: np.ndarray
    out: np.ndarray           # float64[n_locates, N_OUT], OUT_* columns
    hist: np.ndarray          # the latency histogram (runtime/engine/latency.py)
    counters: np.ndarray      # runtime/core/counters.py slots
    params: np.ndarray        # P_* slots
    ring_hdr: np.ndarray      # the out ring's cursors
    ring_data: np.ndarray     # the out ring's records
    stop: np.ndarray          # stop[0]: the ring's wait policy gives up when set


class Pipeline:
    """Preallocated state for one feed's books, indicators, latency and out ring."""

    def __init__(self, n_locates: int = 1024, max_orders: int = 1 << 20, max_levels: int = 64,
                 ema_period: int = 20, rsi_period: int = 14, out_ring_capacity: int = 0,
                 out_ring_policy: str = "drop-newest", warmup_seq: int = 0,
                 prefault_pages: bool = True):
        self.books = new_books(n_locates, max_orders, max_levels)
        self.ema = S.new_states(S.ema_init, S.EMA_STATE_SIZE, n_locates, ema_period)
        self.rsi = S.new_states(S.rsi_init, S.RSI_STATE_SIZE, n_locates, rsi_period)
        self.vwap = S.new_states(S.vwap_init, S.VWAP_STATE_SIZE, n_locates)
        self.out = np.full((n_locates, N_OUT), np.nan)
        self.out[:, OUT_UPDATES] = 0
        self.hist = latency.new_histogram()
        self.counters = C.new_counters()
        self.params = np.zeros(N_PARAMS, dtype=np.int64)
        self.params[P_MIDNIGHT_NS] = utc_midnight_ns()
        self.params[P_LAT_MIN_SEQ] = warmup_seq
        if out_ring_capacity:
            self.ring = Ring.create(out_ring_capacity, EVENT_DTYPE, policy=out_ring_policy)
            self.params[P_PUBLISH] = 1
        else:  # a 2-slot ring nobody reads; P_PUBLISH=0 keeps the loop off it
            self.ring = Ring.create(2, EVENT_DTYPE)
        self.stop = np.zeros(8, dtype=np.int64)  # the ring's wait policy watches stop[0]
        self._fresh = (n_locates, ema_period, rsi_period, self.params.copy(),
                       self.ring.hdr.copy())   # what reset() restores
        if prefault_pages:   # live: no page fault on a message; offline runs may skip it
            prefault(*self.books, self.ema, self.rsi, self.vwap, self.out, self.hist,
                     self.counters, self.ring.data)

    def reset(self) -> None:
        """Back to the state __init__ leaves, in the same memory: a backtest's next file
        reuses these pages instead of faulting in new ones (milliseconds a file).
        tests/runtime/engine/test_pipeline_reset.py compares it with a new Pipeline."""
        n_locates, ema_period, rsi_period, params, ring_hdr = self._fresh
        clear_books(self.books)
        self.ema[:] = S.new_states(S.ema_init, S.EMA_STATE_SIZE, n_locates, ema_period)
        self.rsi[:] = S.new_states(S.rsi_init, S.RSI_STATE_SIZE, n_locates, rsi_period)
        self.vwap[:] = S.new_states(S.vwap_init, S.VWAP_STATE_SIZE, n_locates)
        self.out[:] = np.nan
        self.out[:, OUT_UPDATES] = 0
        self.hist[:] = 0
        self.counters[:] = 0
        self.params[:] = params
        self.params[P_MIDNIGHT_NS] = utc_midnight_ns()
        self.ring.hdr[:] = ring_hdr
        self.ring.data.view(np.uint8)[:] = 0   # as bytes: a record array zeroes field by field
        self.stop[:] = 0

    @property
    def arrays(self):
        return PipeState(self.books, self.ema, self.rsi, self.vwap, self.out, self.hist,
                         self.counters, self.params, self.ring.hdr, self.ring.data, self.stop)

    def indicators(self, locate: int) -> dict:
        return {name: float(self.out[locate, i]) for i, name in enumerate(OUT_NAMES)}


@njit(nogil=True, inline="always")
def trade_indicators(pipe, msg_type, loc):
    """After an event of type msg_type changed the book of loc: a trade (E C P) moves the
    last price and the trade-driven indicators (EMA, RSI, VWAP), in trade order."""
    if msg_type == _E or msg_type == _C or msg_type == _P:
        px4, sh = last_trade(pipe.books, loc)
        trade_update(pipe, loc, px4, sh)


@njit(nogil=True, inline="always")
def trade_update(pipe, loc, px4, sh):
    """The trade indicators of loc after a trade of sh shares at px4 (Price(4))."""
    out = pipe.out
    px = px4 * 1e-4
    out[loc, OUT_LAST] = px
    out[loc, OUT_EMA] = S.ema_update(pipe.ema[loc], px)
    out[loc, OUT_RSI] = S.rsi_update(pipe.rsi[loc], px)
    out[loc, OUT_VWAP] = S.vwap_update(pipe.vwap[loc], px, np.float64(sh))


@njit(nogil=True, inline="always")
def top_indicators(books, out, loc):
    """Mid, microprice and imbalance of loc's book as it is now: functions of its top alone."""
    write_top_stats(out, loc, top_stats(books, loc))


@njit(nogil=True, inline="always")
def write_top_stats(out, loc, stats):
    """(mid, microprice, imbalance) in Price(4) units into loc's row of out, in dollars."""
    mid, micro, imb = stats
    out[loc, OUT_MID] = mid * 1e-4
    out[loc, OUT_MICRO] = micro * 1e-4
    out[loc, OUT_IMBALANCE] = imb


@njit(nogil=True, inline="always")
def _process(pipe, events, lo, hi):
    """events[lo:hi] through books, indicators, ring and latency: the one body of both entry
    points below. Fields are read as pipe.name, so `pipe` may be the PipeState or a Ref."""
    books, out, counters, params = pipe.books, pipe.out, pipe.counters, pipe.params
    n_loc = out.shape[0]
    indicators = params[P_BOOKS_ONLY] == 0
    for i in range(lo, hi):
        ev = events[i]
        # start the order-table cache misses of a later event now (any index is safe)
        book_prefetch(books, events, i + 6)
        loc = book_apply(books, events, i, counters)
        if indicators and loc >= 0 and loc < n_loc:
            trade_indicators(pipe, ev.msg_type, loc)
            top_indicators(books, out, loc)
            out[loc, OUT_UPDATES] += 1.0
        if params[P_PUBLISH] != 0:
            slot = claim(pipe.ring_hdr, pipe.stop, 0)
            if slot >= 0:
                pipe.ring_data[slot] = ev
                publish(pipe.ring_hdr, 1)
            else:
                counters[C.RING_DROPPED] += 1
        if (ev.flags & FLAG_GAP) == 0 and ev.ts_exch != 0 and ev.seq >= params[P_LAT_MIN_SEQ]:
            lat = realtime_ns() - (params[P_MIDNIGHT_NS] + np.int64(ev.ts_exch))
            if lat < -_DAY_NS // 2:
                lat += _DAY_NS   # the send was stamped before midnight, completion after
            counters[C.LATENCY_RECORDED] += 1
            counters[C.LATENCY_OVERFLOW] += latency.record(pipe.hist, max(lat, 0))


@njit(nogil=True, cache=True, _nrt=False)   # allocates nothing: no reference counting
def process_events(pipe, events, n):
    """Apply events[0:n] to books and indicators, record latency, publish. Returns n."""
    _process(pipe, events, 0, min(n, events.shape[0]))
    return n


@njit(nogil=True, cache=True, _nrt=False)
def process_span(pipe, events, lo, hi):
    """process_events for events[lo:hi] of a longer batch, the pipeline by pointer (a Ref,
    trading/ref.py): a caller that delivers a few events at a time (the backtest's feed)
    pays one pointer per call instead of the ~20 arrays' copy, and the order-table
    prefetch still looks ahead into the rest of the batch."""
    _process(pipe, events, max(lo, 0), min(hi, events.shape[0]))


def new_touched(n_locates: int) -> tuple:
    """(list, marks) for process_events_tops_after: locates touched in one call, and a
    per-locate count of the call's events that changed it (nonzero: already in the list;
    all zero between calls; uint32: a call holds fewer than 2^32 events, 256 GiB of them)."""
    return np.zeros(n_locates, dtype=np.int64), np.zeros(n_locates, dtype=np.uint32)


@njit(nogil=True, inline="always")
def mark_touched(touched, marks, loc, n_touched):
    """Count one more change of loc's book in this call (marks), listing loc in touched the
    first time; returns the list's new length."""
    if marks[loc] == 0:
        touched[n_touched] = loc
        n_touched += 1
    marks[loc] += 1   # counted here, added to out once per call: out's row stays cold
    return n_touched


@njit(nogil=True, inline="always")
def tops_after(books, out, touched, n_touched, marks):
    """The end of a call: each touched book's update count and top indicators into out (its
    top is final for the call), and marks back to zero."""
    for k in range(n_touched):
        loc = touched[k]
        out[loc, OUT_UPDATES] += np.float64(marks[loc])
        marks[loc] = 0
        top_indicators(books, out, loc)


@njit(nogil=True, cache=True, _nrt=False)
def finish_tops(pipe, updates):
    """The end of a run whose `out` is read only when it is over (tickpath replay's two
    threads, indicator_log.py): each changed book's update count (updates, int64 per
    locate) into out and its top indicators from its final book; updates back to zero.
    Nothing with P_BOOKS_ONLY set."""
    books, out = pipe.books, pipe.out
    if pipe.params[P_BOOKS_ONLY] != 0:
        return
    for loc in range(min(out.shape[0], updates.shape[0])):
        if updates[loc] != 0:
            out[loc, OUT_UPDATES] += np.float64(updates[loc])
            updates[loc] = 0
            top_indicators(books, out, loc)


@njit(nogil=True, cache=True, _nrt=False)
def process_events_tops_after(pipe, events, n, touched, marks):
    """process_events for a reader that looks at `out` only between calls (tickpath replay):
    the top-of-book indicators (mid, microprice, imbalance) of each instrument are computed
    once, after the call's last event, instead of after each of its events. Same values:
    they depend only on the book's top, which is final for the call by then (the replay
    tests compare `out` with process_events'). The trade indicators still run per trade,
    in order, and each instrument's update count is added once per call too. No latency
    record and no out ring: offline runs use neither. Measured: replay 7-12 % faster on the
    bench flows (bench/RESULTS.md, tenth session); the count once per call, 0.5-3.6 ns an
    event less (eleventh session)."""
    books, out, counters, params = pipe.books, pipe.out, pipe.counters, pipe.params
    n_loc = min(out.shape[0], touched.shape[0], marks.shape[0])
    indicators = params[P_BOOKS_ONLY] == 0
    n_touched = 0
    for i in range(min(n, events.shape[0])):
        book_prefetch(books, events, i + 6)
        loc = book_apply(books, events, i, counters)
        if indicators and loc >= 0 and loc < n_loc:
            trade_indicators(pipe, events[i].msg_type, loc)
            n_touched = mark_touched(touched, marks, loc, n_touched)
    tops_after(books, out, touched, n_touched, marks)
    return n
