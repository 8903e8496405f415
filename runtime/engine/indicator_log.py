"""Indicators a block behind, on the other thread: `tickpath replay`'s two-thread path.

On that path the books thread is the busier one, and the replay runs at its pace
(replay_threads.py). So the books thread applies a block and only notes what the trade
indicators will need, in that block's own `IndicatorLog`: each trade's (locate, price,
shares) in feed order. The decode thread folds the log into the pipeline's indicator states
and `out` between two of its blocks (`fold_log`), in block order: the same trades in the
same order and the same arithmetic (pipeline.trade_update) as process_events_tops_after.

The top-of-book indicators (mid, microprice, imbalance) and the update counts are not
logged: they are functions of a book's top and of how many events changed it, and a replay's
`out` is read when the run is over, so the books thread counts each book's changes
(`updates`, its own array) and pipeline.finish_tops writes both once, from the final books,
after the last block. Same values, bit for bit, as writing them after every block (the
one-thread path): a book's top at the end is its top after the last block that changed it.
Reading every touched book's top after each block cost the books thread 7-9 ns an event on
the wide flow (10 k books, most of a block's ~5,600 out of L2 by then; the replay 50.9-61.8
-> 45.0-47.6 ms without it, bench/RESULTS.md, fourteenth session);
tests/runtime/engine/test_replay_threads.py compares `out` with the one-thread path's.

Who writes what: during the run only the books thread writes the books, the pipeline's
counters and `updates`, only the decode thread the indicator states and `out`; a log passes
from one to the other through the replay's queues (a lock each way, so each sees the
other's writes). finish_tops runs after the decode thread ended.

`books_block` and `fold_log` take the pipeline's arrays (PipeState) and one log; nothing is
allocated per block. P_BOOKS_ONLY set: nothing is logged or counted.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.book.orderbook import book_apply, book_prefetch, last_trade
from tickpath.runtime.engine.pipeline import P_BOOKS_ONLY, trade_update

# trades columns
TR_LOC, TR_PRICE, TR_SHARES = range(3)

_E, _C, _P = ord("E"), ord("C"), ord("P")


class IndicatorLog(NamedTuple):
    """What one block left for the indicators (numba types it like a tuple of arrays)."""
    trades: np.ndarray   # int64 [block events, 3]: TR_* columns, feed order
    n_trades: np.ndarray  # int64 [1]: rows of trades in use


def new_log(block_events: int) -> IndicatorLog:
    """A log for blocks of up to block_events events (a trade each at most)."""
    return IndicatorLog(np.zeros((block_events, 3), dtype=np.int64), np.zeros(1, dtype=np.int64))


@njit(nogil=True, cache=True, _nrt=False)
def books_block(pipe, events, n, updates, log):
    """events[:n] through the books (with process_events' prefetch), noting each trade in
    log and counting each changed book's events in updates (int64 per locate, for
    pipeline.finish_tops). At most log.trades' length of events are applied: a block never
    holds more (new_log); returns how many were."""
    books, counters = pipe.books, pipe.counters
    n_loc = min(pipe.out.shape[0], updates.shape[0])
    indicators = pipe.params[P_BOOKS_ONLY] == 0
    trades = log.trades
    n_trades = 0
    m = min(n, events.shape[0], trades.shape[0])
    for i in range(m):
        book_prefetch(books, events, i + 6)
        loc = book_apply(books, events, i, counters)
        if indicators and loc >= 0 and loc < n_loc:
            t = events[i].msg_type
            if t == _E or t == _C or t == _P:   # one row an event at most: there is room
                px4, sh = last_trade(books, loc)
                trades[n_trades, TR_LOC] = loc
                trades[n_trades, TR_PRICE] = px4
                trades[n_trades, TR_SHARES] = sh
                n_trades += 1
            updates[loc] += 1
    log.n_trades[0] = n_trades
    return m


@njit(nogil=True, cache=True, _nrt=False)
def fold_log(pipe, log):
    """The trade indicators of one logged block, its trades in order; the log is emptied."""
    trades = log.trades
    for k in range(min(log.n_trades[0], trades.shape[0])):
        trade_update(pipe, trades[k, TR_LOC], trades[k, TR_PRICE], trades[k, TR_SHARES])
    log.n_trades[0] = 0
