"""Streaming indicators, one import: the numba functions of stream_ma / stream_osc /
stream_stats, plus `new_states`, the setup-time helper that allocates the runtime's 2-D state
array [n_instruments, size] and initialises every row, raising ConfigError on bad params.

    from tickpath.kernels import stream as S
    ema_state = S.new_states(S.ema_init, S.EMA_STATE_SIZE, n_instruments, 20)
    # in the hot loop (numba):  v = S.ema_update(ema_state[loc], px)
"""
from __future__ import annotations

import numpy as np

from tickpath.runtime.core.errors import ConfigError

from tickpath.kernels.stream.ma import *
from tickpath.kernels.stream.ma import STREAM_MAX_PERIOD
from tickpath.kernels.stream.osc import *
from tickpath.kernels.stream.stats import *


def new_states(init_fn, size: int, n_instruments: int, *params) -> np.ndarray:
    """A zeroed [n_instruments, size] float64 state array, every row initialised."""
    if int(n_instruments) < 1:
        raise ConfigError("need at least one instrument", n_instruments=n_instruments)
    states = np.zeros((int(n_instruments), int(size)), np.float64)
    # the init's Python body: one row at setup, where the jitted init would first load its
    # compiled code (5 ms each; 16 ms of every Pipeline's start, bench/RESULTS.md)
    code = getattr(init_fn, "py_func", init_fn)(states[0], *params)
    if code == -1:
        raise ConfigError("state row too short for these parameters", size=size,
                          params=params, max_period=STREAM_MAX_PERIOD)
    if code != 0:
        raise ConfigError("bad streaming indicator parameter", init=init_fn.__name__,
                          params=params)
    # an init writes only what its params say into a zeroed row, so every row is row 0's
    # copy: one jitted call instead of one per instrument (8,192 in `tickpath replay`)
    states[1:] = states[0]
    return states
