"""The hot loop: one numba nogil duty cycle per pinned thread (Agrona's AgentRunner shape).

    while not stopped:  n = do_work();  idle(n)

`run_frames` / `run_events` are the duty cycles; each backend module inlines one into its
own cached entry point with its poll called by name (`socket_loop`, `afxdp_loop`,
`fpga_loop`), so there is no branching on backend kind and the loop loads from numba's disk
cache; `frames_loop(backend)` / `events_loop(backend)` pick it. Start-up, shutdown and error
reporting live outside, in runtime/engine/runner.py. The stop flag is read with acquire ordering so the loop
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


@njit(nogil=True, inline="always")
def run_frames(poll, bstate, payload, lengths, recv_ns, mold, session, events, pipe, ctrl,
               idle_params, idle_state):
    """The duty cycle of a frame backend: poll -> decode -> books/indicators -> idle.

    Inlined into each backend's own cached entry point (see `frames_loop`), so `poll` is a
    static call there, not a function value (numba cannot cache a dispatcher passed as a value).
    """
    store_release(ctrl, RUNNING, 1)
    while load_acquire(ctrl, STOP) == 0:
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


@njit(nogil=True, inline="always")
def run_events(poll, bstate, events, pipe, ctrl, idle_params, idle_state):
    """The duty cycle of an event backend (the FPGA): poll -> books/indicators -> idle."""
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


def frames_loop(backend):
    """The compiled receive loop for a frame backend.

    A backend module defines its own cached entry point, `loop`, a module-level function that
    calls `run_frames` with its poll by name: numba caches it on disk, so a restart loads it
    in well under a second. Why not a `poll` argument or a closure: numba keys its cache by
    argument types (a dispatcher's type is this process's function object) and a closure by a
    pickle of the dispatcher (which holds a random per-process uuid) — both recompile in every
    process. Wrappers (fault injection, capture) bring a generated cached `loop` too
    (runtime/backends/wrapped.py); only one around a poll that cannot be imported by name
    (a test's local function) has none and gets an uncached closure here.
    """
    loop = getattr(backend, "loop", None)
    if loop is not None:
        return loop
    poll = backend.poll
    loop = _FRAME_LOOPS.get(poll)
    if loop is None:
        @njit(nogil=True)
        def loop(bstate, payload, lengths, recv_ns, mold, session, events, pipe, ctrl,
                 idle_params, idle_state):
            return run_frames(poll, bstate, payload, lengths, recv_ns, mold, session, events, pipe,
                              ctrl, idle_params, idle_state)
        _FRAME_LOOPS[poll] = loop
    return loop


def events_loop(backend):
    """The compiled receive loop for an event backend (its `loop`, as `frames_loop` says)."""
    loop = getattr(backend, "loop", None)
    if loop is not None:
        return loop
    poll = backend.poll
    loop = _EVENT_LOOPS.get(poll)
    if loop is None:
        @njit(nogil=True)
        def loop(bstate, events, pipe, ctrl, idle_params, idle_state):
            return run_events(poll, bstate, events, pipe, ctrl, idle_params, idle_state)
        _EVENT_LOOPS[poll] = loop
    return loop


_FRAME_LOOPS: dict = {}
_EVENT_LOOPS: dict = {}
