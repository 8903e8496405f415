"""The hot loop: one numba nogil duty cycle per pinned thread (Agrona's AgentRunner shape).

    while not stopped:  n = do_work();  idle(n)

`run_frames` is compiled once per frame backend (the backend's jitted poll is an argument:
numba specialises the loop per poll function, so there is no branching on backend kind);
`run_events` the same for event backends (the FPGA). Start-up, shutdown and error reporting
live outside, in runtime/runner.py. The stop flag is read with acquire ordering so the loop
sees it within one idle period (bounded park ≤ 1 ms by default: stop < 100 ms).

ctrl int64 slots: STOP (set by the owner), RUNNING, EXIT_CODE (0 ok, <0 -errno from the
backend), ITERATIONS.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.feed.decoder import decode_frames
from tickpath.runtime.engine.idle import idle
from tickpath.runtime.sys.intrinsics import load_acquire, store_release
from tickpath.runtime.engine.pipeline import process_events

STOP, RUNNING, EXIT_CODE, ITERATIONS = 0, 1, 2, 3
N_CTRL = 8


def new_ctrl() -> np.ndarray:
    return np.zeros(N_CTRL, dtype=np.int64)


@njit(nogil=True)
def frame_work(poll, bstate, payload, lengths, recv_ns, mold, session, events, pipe):
    """One duty cycle for a frame backend: poll → decode → process. Returns frames or -errno."""
    n = poll(bstate, payload, lengths, recv_ns)
    if n <= 0:
        return n
    counters = pipe[6]
    m = decode_frames(payload, lengths, n, recv_ns, mold, session, events, 0, counters)
    process_events(pipe, events, m)
    return n


# not cached: frame backends call libc through ctypes pointers, which numba cannot cache
@njit(nogil=True)
def run_frames(poll, bstate, payload, lengths, recv_ns, mold, session, events, pipe, ctrl,
               idle_params, idle_state):
    store_release(ctrl, RUNNING, 1)
    while load_acquire(ctrl, STOP) == 0:
        n = frame_work(poll, bstate, payload, lengths, recv_ns, mold, session, events, pipe)
        ctrl[ITERATIONS] += 1
        if n < 0:
            store_release(ctrl, EXIT_CODE, n)
            break
        idle(idle_params, idle_state, n)
    store_release(ctrl, RUNNING, 0)
    return ctrl[EXIT_CODE]


@njit(nogil=True, cache=True)
def run_events(poll, bstate, events, pipe, ctrl, idle_params, idle_state):
    store_release(ctrl, RUNNING, 1)
    while load_acquire(ctrl, STOP) == 0:
        n = poll(bstate, events)
        ctrl[ITERATIONS] += 1
        if n < 0:
            store_release(ctrl, EXIT_CODE, n)
            break
        if n > 0:
            process_events(pipe, events, n)
        idle(idle_params, idle_state, n)
    store_release(ctrl, RUNNING, 0)
    return ctrl[EXIT_CODE]
