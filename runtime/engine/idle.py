"""Idle strategies (after Agrona's IdleStrategy): what a duty-cycle loop does when a pass
did no work. `idle(params, state, work_count)` is jitted and allocation-free.

    BUSY_SPIN        spin with PAUSE: lowest latency, burns the core (deployments).
    SPIN_YIELD       spin `spins` times, then sched_yield() (shares a core politely).
    BACKOFF          spin, then yield, then park (nanosleep) doubling from min to max park
                     (tests and the 2-core CI machine).

params (int64[4]): [strategy, spins, yields, max_park_ns]; state (int64[2]): [idle passes, park_ns].
A pass that did work resets the state. The bounded park keeps stop latency < max_park_ns.
"""
from __future__ import annotations


import numpy as np
from numba import njit

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.sys.intrinsics import cpu_relax
from tickpath.runtime.sys.libc import libc_sched_yield, libc_usleep

BUSY_SPIN, SPIN_YIELD, BACKOFF = 0, 1, 2
NAMES = {"busy-spin": BUSY_SPIN, "spin-yield": SPIN_YIELD, "backoff": BACKOFF}
MIN_PARK_NS = 1_000



def make_params(name: str = "backoff", spins: int = 100, yields: int = 10,
                max_park_ns: int = 1_000_000) -> np.ndarray:
    if name not in NAMES:
        raise ConfigError("unknown idle strategy", idle=name, allowed=sorted(NAMES))
    if spins < 0 or yields < 0:
        raise ConfigError("spins and yields must be >= 0", spins=spins, yields=yields)
    if not MIN_PARK_NS <= max_park_ns <= 50_000_000:
        raise ConfigError("max_park_ns out of range", max_park_ns=max_park_ns,
                          allowed=f"{MIN_PARK_NS}-50000000 (stop latency must stay < 100 ms)")
    return np.array([NAMES[name], spins, yields, max_park_ns], dtype=np.int64)


def new_state() -> np.ndarray:
    return np.zeros(2, dtype=np.int64)


@njit(nogil=True, cache=True, _nrt=False)
def idle(params, state, work_count):
    if work_count > 0:
        state[0] = 0
        state[1] = 0
        return
    kind = params[0]
    n = state[0]
    state[0] = n + 1
    if kind == BUSY_SPIN:
        cpu_relax()
    elif kind == SPIN_YIELD:
        if n < params[1]:
            cpu_relax()
        else:
            libc_sched_yield()
    else:
        if n < params[1]:
            cpu_relax()
        elif n < params[1] + params[2]:
            libc_sched_yield()
        else:
            park = state[1]
            park = MIN_PARK_NS if park == 0 else min(park * 2, params[3])
            state[1] = park
            libc_usleep(max(1, park // 1000))
