"""The hot loop: one numba nogil duty cycle per pinned thread (Agrona's AgentRunner shape).

    while not stopped:  n = do_work();  idle(n)

`frames_loop(poll)` is the loop compiled once per frame backend (the backend's jitted poll
is bound into it, so there is no branching on backend kind, and it caches on disk);
`events_loop(poll)` the same for event backends (the FPGA). Start-up, shutdown and error reporting
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


def frames_loop(poll):
    """The receive loop for one frame backend, its poll bound at compile time.

    Why a closure and not a `poll` argument: numba keys its on-disk cache by the argument
    types, and a dispatcher's type is the function object of this process, so a loop taking
    `poll` as an argument recompiles in every new process (2-10 s at start). A closure's
    cache key is a hash of the bound poll instead, the same in every process.
    """
    loop = _FRAME_LOOPS.get(poll)
    if loop is not None:
        return loop

    @njit(nogil=True, cache=True)
    def run_frames(bstate, payload, lengths, recv_ns, mold, session, events, pipe, ctrl,
                   idle_params, idle_state):
        store_release(ctrl, RUNNING, 1)
        while load_acquire(ctrl, STOP) == 0:
            # poll called by name, not passed on: a dispatcher passed as a value is a pointer
            # to a Python object, which numba refuses to cache
            n = poll(bstate, payload, lengths, recv_ns)
            if n > 0:
                m = decode_frames(payload, lengths, n, recv_ns, mold, session, events, 0, pipe.counters)
                process_events(pipe, events, m)
            ctrl[ITERATIONS] += 1
            if n < 0:
                store_release(ctrl, EXIT_CODE, n)
                break
            idle(idle_params, idle_state, n)
        store_release(ctrl, RUNNING, 0)
        return ctrl[EXIT_CODE]

    _FRAME_LOOPS[poll] = run_frames
    return run_frames


def events_loop(poll):
    """The receive loop for one event backend (the FPGA), its poll bound at compile time."""
    loop = _EVENT_LOOPS.get(poll)
    if loop is not None:
        return loop

    @njit(nogil=True, cache=True)
    def run_events(bstate, events, pipe, ctrl, idle_params, idle_state):
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

    _EVENT_LOOPS[poll] = run_events
    return run_events


_FRAME_LOOPS: dict = {}
_EVENT_LOOPS: dict = {}
