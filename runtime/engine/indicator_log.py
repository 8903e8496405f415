"""Indicators a block behind, on the other thread: `tickpath replay`'s two-thread path.

On that path the books thread is the busier one, and the replay runs at its pace
(replay_threads.py). So the books thread applies a block and only notes what the
indicators will need, in that block's own `IndicatorLog`: each trade's (locate, price,
shares) in feed order, and, after the block, each touched book's top and how many of the
block's events changed it. The decode thread folds the log into the pipeline's indicator
states and `out` between two of its blocks (`fold_log`), in block order. Same values as
process_events_tops_after, bit for bit: the same trades in the same order, the same tops
(a block's tops are final when it ends), the same arithmetic (pipeline.trade_update,
orderbook.stats_of_tops); tests/runtime/engine/test_replay_threads.py compares `out`.

Who writes what: during the run only the books thread writes the books and the pipeline's
counters, only the decode thread the indicator states and `out`; a log passes from one to
the other through the replay's queues (a lock each way, so each sees the other's writes).

`books_block` and `fold_log` take the pipeline's arrays (PipeState) and one log; nothing is
allocated per block. P_BOOKS_ONLY set: nothing is logged.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.book.orderbook import (
    best_ask,
    best_bid,
    book_apply,
    book_prefetch,
    last_trade,
    stats_of_tops,
)
from tickpath.runtime.engine.pipeline import (
    OUT_UPDATES,
    P_BOOKS_ONLY,
    mark_touched,
    trade_update,
    write_top_stats,
)

# trades columns
TR_LOC, TR_PRICE, TR_SHARES = range(3)
# tops columns
TP_LOC, TP_UPDATES, TP_BID_PX, TP_BID_SZ, TP_ASK_PX, TP_ASK_SZ = range(6)
# counts slots
N_TRADES, N_TOPS = range(2)

_E, _C, _P = ord("E"), ord("C"), ord("P")


class IndicatorLog(NamedTuple):
    """What one block left for the indicators (numba types it like a tuple of arrays)."""
    trades: np.ndarray   # int64 [block events, 3]: TR_* columns, feed order
    tops: np.ndarray     # int64 [min(locates, block events), 6]: TP_* columns
    counts: np.ndarray   # int64 [2]: N_TRADES, N_TOPS rows in use


def new_log(n_locates: int, block_events: int) -> IndicatorLog:
    """A log for blocks of up to block_events events (a trade each at most)."""
    return IndicatorLog(np.zeros((block_events, 3), dtype=np.int64),
                        np.zeros((min(n_locates, block_events), 6), dtype=np.int64),
                        np.zeros(2, dtype=np.int64))


@njit(nogil=True, cache=True, _nrt=False)
def books_block(pipe, events, n, touched, marks, log):
    """events[:n] through the books (with process_events' prefetch), noting trades and,
    after the last event, the touched books' tops in log. touched and marks are
    pipeline.new_touched's pair (marks all zero between calls)."""
    books, counters = pipe.books, pipe.counters
    n_loc = min(pipe.out.shape[0], touched.shape[0], marks.shape[0])
    indicators = pipe.params[P_BOOKS_ONLY] == 0
    trades = log.trades
    n_trades = 0
    n_touched = 0
    for i in range(min(n, events.shape[0])):
        book_prefetch(books, events, i + 6)
        loc = book_apply(books, events, i, counters)
        if indicators and loc >= 0 and loc < n_loc:
            t = events[i].msg_type
            if (t == _E or t == _C or t == _P) and n_trades < trades.shape[0]:
                px4, sh = last_trade(books, loc)
                trades[n_trades, TR_LOC] = loc
                trades[n_trades, TR_PRICE] = px4
                trades[n_trades, TR_SHARES] = sh
                n_trades += 1
            n_touched = mark_touched(touched, marks, loc, n_touched)
    tops = log.tops
    n_tops = min(n_touched, tops.shape[0])   # equal: a log holds a block's worth
    for k in range(n_tops):
        loc = touched[k]
        bp, bs = best_bid(books, loc)
        ap, as_ = best_ask(books, loc)
        tops[k, TP_LOC] = loc
        tops[k, TP_UPDATES] = marks[loc]
        tops[k, TP_BID_PX] = bp
        tops[k, TP_BID_SZ] = bs
        tops[k, TP_ASK_PX] = ap
        tops[k, TP_ASK_SZ] = as_
    for k in range(n_touched):
        marks[touched[k]] = 0
    log.counts[N_TRADES] = n_trades
    log.counts[N_TOPS] = n_tops


@njit(nogil=True, cache=True, _nrt=False)
def fold_log(pipe, log):
    """The indicators of one logged block: its trades in order, then its books' tops."""
    out = pipe.out
    trades, tops = log.trades, log.tops
    for k in range(min(log.counts[N_TRADES], trades.shape[0])):
        trade_update(pipe, trades[k, TR_LOC], trades[k, TR_PRICE], trades[k, TR_SHARES])
    for k in range(min(log.counts[N_TOPS], tops.shape[0])):
        loc = tops[k, TP_LOC]
        out[loc, OUT_UPDATES] += np.float64(tops[k, TP_UPDATES])
        write_top_stats(out, loc, stats_of_tops(tops[k, TP_BID_PX], tops[k, TP_BID_SZ],
                                                tops[k, TP_ASK_PX], tops[k, TP_ASK_SZ]))
    log.counts[:] = 0
