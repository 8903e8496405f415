"""NUMA buffers, CPU placement and idle strategies."""
from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
import pytest

from tickpath.runtime.sys import buffers
from tickpath.runtime.engine import idle
from tickpath.runtime.sys import placement
from tickpath.runtime.core.errors import ConfigError, ResourceError


def test_region_pages_live_on_the_requested_node():
    node = buffers.numa_nodes()[0]
    r = buffers.allocate(8 << 20, node=node, hugepages="auto")
    try:
        nodes = r.page_nodes()
        assert len(nodes) > 0 and (nodes == node).all(), nodes[:10]
        if len(buffers.numa_nodes()) == 1:
            assert r.binding == "trivial (one node)"
        else:
            assert r.binding == "mbind"
        # /proc/self/numa_maps agrees: the mapping's pages are counted on that node
        with open("/proc/self/numa_maps") as f:
            line = next(l for l in f if l.startswith(f"{r.address:x} "))
        assert f"N{node}=" in line
    finally:
        r.close()


def test_carve_alignment_and_exhaustion():
    r = buffers.allocate(1 << 20, hugepages="off")
    a = r.carve((3,), np.uint8)
    b = r.carve((10,), np.int64)
    c = r.carve((100,), np.uint8, align=buffers.PAGE_BYTES)
    assert a.ctypes.data % 64 == 0 and b.ctypes.data % 64 == 0 and c.ctypes.data % buffers.PAGE_BYTES == 0
    assert (b == 0).all()
    with pytest.raises(ResourceError, match="exhausted"):
        r.carve((2 << 20,), np.uint8)
    r.close()


def test_bad_buffer_requests_are_clear_errors():
    with pytest.raises(ConfigError, match="not a multiple of the record size"):
        buffers.allocate(1000, record_bytes=64)
    with pytest.raises(ConfigError, match="NUMA node does not exist"):
        buffers.allocate(4096, node=max(buffers.numa_nodes()) + 7)
    with pytest.raises(ConfigError):
        buffers.allocate(0)
    if buffers.free_huge_pages(0) == 0:
        with pytest.raises(ResourceError, match="huge pages requested"):
            buffers.allocate(4096, hugepages="require")


def test_hugepage_fallback_is_reported():
    r = buffers.allocate(4 << 20, hugepages="auto")
    if not r.huge_pages:
        assert any("huge pages" in n for n in r.notes)
    r.close()


@contextlib.contextmanager
def _waiting_thread(pin_to=None):
    """A thread that lives (pinned to `pin_to` if given) until the block ends; yields its tid.
    The process's affinity is put back afterwards whatever the block did."""
    before = os.sched_getaffinity(0)
    seen, ready, done = {}, threading.Event(), threading.Event()

    def body():
        if pin_to is not None:
            placement.pin_thread([pin_to])
        seen["tid"] = threading.get_native_id()
        ready.set()
        done.wait(5)

    t = threading.Thread(target=body)
    t.start()
    ready.wait(5)
    try:
        yield seen["tid"]
    finally:
        os.sched_setaffinity(0, before)
        done.set()
        t.join()


def test_pin_thread_by_native_id():
    target = sorted(os.sched_getaffinity(0))[-1]
    with _waiting_thread() as tid:
        assert placement.pin_thread([target], native_id=tid) == [target]
        assert os.sched_getaffinity(tid) == {target}


def test_bad_cpu_is_a_clear_error():
    with pytest.raises(ConfigError, match="CPU does not exist"):
        placement.pin_thread([4096])


def test_sched_fifo_refusal_is_named_or_works():
    res = {}

    def body():
        try:
            res["ok"] = placement.set_fifo(10, strict=True)
        except Exception as e:  # a refusal must name the privilege
            res["err"] = str(e)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "err" in res:
        assert "CAP_SYS_NICE" in res["err"]
    else:
        assert res["ok"] is True
    with pytest.raises(ConfigError, match="priority"):
        placement.set_fifo(1000)


def test_idle_strategies_validate_and_backoff_is_bounded():
    with pytest.raises(ConfigError):
        idle.make_params("sleepy")
    with pytest.raises(ConfigError):
        idle.make_params("backoff", max_park_ns=10**9)
    p = idle.make_params("backoff", spins=2, yields=2, max_park_ns=200_000)
    s = idle.new_state()
    for _ in range(50):
        idle.idle(p, s, 0)
    assert s[1] == 200_000  # the park doubled up to, and stopped at, the bound
    idle.idle(p, s, 5)
    assert s[0] == 0 and s[1] == 0


needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                                    reason="keeping threads off a CPU needs two CPUs allowed")


@needs_two_cpus
def test_keep_off_moves_every_thread_and_restore_gives_it_back():
    before = os.sched_getaffinity(0)
    target = max(before)
    with _waiting_thread() as tid:   # a thread that exists before keep_off
        moved = placement.keep_off(target)
        assert threading.get_native_id() in moved and tid in moved
        assert os.sched_getaffinity(0) == before - {target}
        assert os.sched_getaffinity(tid) == before - {target}
        later = {}
        t2 = threading.Thread(target=lambda: later.setdefault("cpus", os.sched_getaffinity(0)))
        t2.start()
        t2.join()
        assert later["cpus"] == before - {target}        # started afterwards: inherits
        placement.restore(moved)
        assert os.sched_getaffinity(0) == before
        assert os.sched_getaffinity(tid) == before


@needs_two_cpus
def test_keep_off_leaves_a_thread_pinned_to_that_cpu_alone():
    target = max(os.sched_getaffinity(0))
    with _waiting_thread(pin_to=target) as tid:
        moved = placement.keep_off(target)
        assert tid not in moved and os.sched_getaffinity(tid) == {target}
        placement.restore(moved)


@needs_two_cpus
def test_keep_off_names_a_thread_the_kernel_refuses_to_move(monkeypatch):
    target = max(os.sched_getaffinity(0))

    def refuse(tid, cpus):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    with pytest.warns(RuntimeWarning, match=f"could not be moved off CPU {target}: Operation not permitted"):
        moved = placement.keep_off(target)
    assert moved == {}
