"""A strategy whose on_book does not compile (it adds a string to a number): tickpath trade
must refuse it with an error naming it, before it connects to anything."""
from __future__ import annotations

import numpy as np
from numba import njit

PARAMS = {"x": 1}


def new_state(n_locates, params):
    return (np.zeros(1),)


@njit(nogil=True, cache=False)
def on_book(tctx, strat, pipe, loc, now_ns):
    strat[0][0] = "not a number" + 1


@njit(nogil=True, cache=False)
def on_order(tctx, strat, resp, j, now_ns):
    return


@njit(nogil=True, cache=False)
def on_timer(tctx, strat, pipe, now_ns):
    return
