"""A scripted strategy for the trading core's tests: on each book update (and timer, and
order response) it emits the intents a test put into its script, then forgets them. Named in
a config as "trading_scripted:Scripted" (tests/support is on pytest's pythonpath)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.intents import cancel_all, order_cancel, order_new, order_replace


class ScriptState(NamedTuple):
    script: np.ndarray   # INTENT_DTYPE[n]: what to ask for next
    n: np.ndarray        # int64[4]: [0] entries in script, [1] book calls, [2] order calls, [3] timer calls


@njit(nogil=True, cache=True)
def _emit(tctx, s, now_ns):
    for i in range(s.n[0]):
        it = s.script[i]
        if it.kind == R.INTENT_NEW:
            order_new(tctx, np.int64(it.locate), it.side, np.int64(it.qty), it.price, it.tif, now_ns)
        elif it.kind == R.INTENT_CANCEL:
            order_cancel(tctx, it.uref, it.qty, now_ns)
        elif it.kind == R.INTENT_REPLACE:
            order_replace(tctx, it.uref, it.qty, it.price, now_ns)
        elif it.kind == R.INTENT_CANCEL_ALL:
            cancel_all(tctx, np.int64(it.locate), now_ns)
    s.n[0] = 0


@njit(nogil=True, cache=True)
def _on_book(tctx, s, pipe, loc, now_ns):
    s.n[1] += 1
    _emit(tctx, s, now_ns)


@njit(nogil=True, cache=True)
def _on_order(tctx, s, resp, j, now_ns):
    s.n[2] += 1


@njit(nogil=True, cache=True)
def _on_timer(tctx, s, pipe, now_ns):
    s.n[3] += 1
    _emit(tctx, s, now_ns)


def _new_state(n_locates, params):
    return ScriptState(R.new_intents(64), np.zeros(4, dtype=np.int64))


class Scripted:
    PARAMS = {"unused": 0}
    new_state = staticmethod(_new_state)
    on_book = _on_book
    on_order = _on_order
    on_timer = _on_timer
