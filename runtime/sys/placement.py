"""CPU placement: pin the process or one thread (by native thread id) to CPUs, optional
SCHED_FIFO and mlockall — each refusal named, never a silent no-op.

Which core does what comes from configuration (`[cores]`); `choose_cores` picks them
automatically when the config says "auto", preferring isolated cores on the NIC's NUMA node
(the topology readers live in runtime/sys/topology.py, shared with `tickpath info` and
hostconfig).
"""
from __future__ import annotations

import ctypes
import os
import resource
import threading
import warnings

from tickpath.runtime.core.errors import ConfigError, PrivilegeError, translate_oserror
from tickpath.runtime.sys import topology

_MCL_CURRENT, _MCL_FUTURE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)


def online_cpus() -> set[int]:
    online = topology.online_cpus()
    return set(os.sched_getaffinity(0)) | (set(online) if isinstance(online, list) else set())


def check_cpus(cpus, what: str = "cpus") -> list[int]:
    """Validate CPU ids against the online set; ConfigError names the value and the range."""
    cpus = [int(c) for c in cpus]
    online = online_cpus()
    bad = [c for c in cpus if c not in online]
    if bad or not cpus:
        raise ConfigError("CPU does not exist or is offline", key=what, value=bad or cpus,
                          allowed=f"{min(online)}-{max(online)}" if online else "none")
    return cpus


def pin_thread(cpus, native_id: int | None = None) -> list[int]:
    """Pin one thread (default: the caller) to `cpus`; returns the affinity now in force."""
    cpus = check_cpus(cpus)
    tid = threading.get_native_id() if native_id is None else native_id
    try:
        os.sched_setaffinity(tid, cpus)
    except OSError as exc:
        raise translate_oserror(exc, "sched_setaffinity", tid=tid, cpus=cpus,
                                hint="cpuset of this container/cgroup may exclude these CPUs") from exc
    return sorted(os.sched_getaffinity(tid))


def keep_off(cpu: int) -> dict[int, set[int]]:
    """Move every thread of this process off `cpu`, onto the other CPUs it may use, so the
    thread pinned there (the receive loop) has that core to itself: a Python thread woken on
    it (a writer, a tap, the GC in the main thread) preempts the loop for tens of µs. Threads
    started afterwards inherit the main thread's affinity, so they stay off too. A thread
    allowed only `cpu` is left alone (nowhere else to go). Returns {tid: old affinity} for
    restore(); a thread that ends meanwhile is skipped, and one the kernel refuses to move is
    named in a warning (the loop still runs, with company)."""
    moved: dict[int, set[int]] = {}
    for name in os.listdir("/proc/self/task"):
        tid = int(name)
        try:
            old = os.sched_getaffinity(tid)
            rest = old - {cpu}
            if cpu in old and rest:
                os.sched_setaffinity(tid, rest)
                moved[tid] = old
        except ProcessLookupError:   # the thread ended between listing and setting
            continue
        except OSError as exc:
            warnings.warn(f"thread {tid} could not be moved off CPU {cpu}: {exc.strerror}",
                          RuntimeWarning, stacklevel=2)
    return moved


def restore(moved: dict[int, set[int]]) -> None:
    """Give the threads keep_off moved their old affinity back (ended ones are skipped)."""
    for tid, cpus in moved.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            continue


def set_fifo(priority: int = 50, native_id: int | None = None, strict: bool = False) -> bool:
    """SCHED_FIFO for a thread. Refusal → PrivilegeError if strict, else a warning; returns success."""
    lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
    if not lo <= priority <= hi:
        raise ConfigError("SCHED_FIFO priority out of range", priority=priority, allowed=f"{lo}-{hi}")
    tid = threading.get_native_id() if native_id is None else native_id
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except OSError as exc:
        soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
        err = PrivilegeError("SCHED_FIFO refused", tid=tid, priority=priority, rlimit_rtprio=soft,
                             hint="needs CAP_SYS_NICE or RLIMIT_RTPRIO >= priority",
                             reason=exc.strerror)
        if strict:
            raise err from exc
        warnings.warn(str(err), RuntimeWarning, stacklevel=2)
        return False


def lock_all_memory(strict: bool = False) -> bool:
    """mlockall(MCL_CURRENT|MCL_FUTURE): no page faults from swapping or lazy allocation."""
    if _libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) == 0:
        return True
    e = ctypes.get_errno()
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    err = PrivilegeError("mlockall refused", reason=os.strerror(e), rlimit_memlock_bytes=soft,
                         hint="raise RLIMIT_MEMLOCK (ulimit -l) or grant CAP_IPC_LOCK")
    if strict:
        raise err
    warnings.warn(str(err), RuntimeWarning, stacklevel=2)
    return False


def choose_cores(n: int, nic: str | None = None) -> list[int]:
    """n cores for the hot threads, preferring isolated cores on the NIC's node."""
    allowed = os.sched_getaffinity(0)
    topo = topology.discover()
    if isinstance(topo.cpus_online, topology.Unknown):
        # no sysfs view: avoid cpu 0 (housekeeping, most IRQs) when there is a choice
        cpus = sorted(allowed)
        return ([c for c in cpus if c != 0] + [c for c in cpus if c == 0])[:n]
    # the whole preference order, then keep what this process may run on
    if nic is not None and nic not in topo.nics:
        nic = None  # e.g. an interface in another network namespace: no node preference
    chosen = [c for c in topology.choose_cores(topo, len(topo.cpus_online), nic=nic) if c in allowed]
    return chosen[:n] if len(chosen) >= n else sorted(allowed)[:n]
