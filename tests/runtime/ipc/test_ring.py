"""SPSC ring: deterministic semantics first, then a two-thread and a two-process stress."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tickpath.bench.scenarios import ring_bench
from tickpath.runtime.ipc import ring_layout as L
from tickpath.runtime.core.errors import ConfigError, ResourceError
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.ipc.ring import (
    Ring,
    available,
    claim,
    pop_into,
    publish,
    push_values,
    read_slot,
    release,
    try_claim,
)


@pytest.mark.parametrize("cap", [0, 1, 3, 6, 100])
def test_capacity_must_be_power_of_two(cap):
    with pytest.raises(ConfigError, match="power of two"):
        Ring.create(cap, np.int64)


def test_bad_policy_and_record_size():
    with pytest.raises(ConfigError, match="policy"):
        Ring.create(8, np.int64, policy="overwrite")
    with pytest.raises(ConfigError, match="multiple of 8"):
        Ring.create(8, np.int32)


def test_fifo_order_and_wraparound():
    r = Ring.create(4, np.int64)
    stop = np.zeros(1, np.int64)
    out = np.zeros(4, np.int64)
    got = []
    for base in range(0, 40, 3):
        assert push_values(r.hdr, r.data, np.arange(base, base + 3, dtype=np.int64), stop) == 3
        n = pop_into(r.hdr, r.data, out)
        got.extend(out[:n])
    assert got == list(range(0, 42))[: len(got)] and len(got) == 42


def test_full_ring_try_claim_refuses_and_never_overwrites():
    r = Ring.create(4, np.int64)
    for i in range(4):
        slot = try_claim(r.hdr)
        assert slot == i
        r.data[slot] = 100 + i
        publish(r.hdr, 1)
    assert try_claim(r.hdr) == -1
    assert available(r.hdr) == 4
    assert [r.data[read_slot(r.hdr, k)] for k in range(4)] == [100, 101, 102, 103]
    release(r.hdr, 1)
    assert try_claim(r.hdr) == 0  # the freed slot, and only it


def test_drop_newest_counts_every_drop():
    r = Ring.create(8, np.int64, policy="drop-newest")
    stop = np.zeros(1, np.int64)
    assert push_values(r.hdr, r.data, np.arange(20, dtype=np.int64), stop) == 8
    assert r.stats()["dropped"] == 12
    out = np.zeros(8, np.int64)
    assert pop_into(r.hdr, r.data, out) == 8 and list(out) == list(range(8))


def test_wait_policy_stops_on_stop_flag():
    r = Ring.create(2, np.int64, policy="wait")
    stop = np.zeros(1, np.int64)
    push_values(r.hdr, r.data, np.arange(2, dtype=np.int64), stop)
    stop[0] = 1
    assert claim(r.hdr, stop, 0) == -1
    assert r.stats()["full_waits"] == 1


def test_event_records_roundtrip():
    r = Ring.create(16, EVENT_DTYPE)
    stop = np.zeros(1, np.int64)
    ev = np.zeros(5, EVENT_DTYPE)
    ev["seq"] = np.arange(5) + 10
    ev["price"] = 1234500
    ev["msg_type"] = ord("A")
    assert push_values(r.hdr, r.data, ev, stop) == 5
    out = np.zeros(5, EVENT_DTYPE)
    assert pop_into(r.hdr, r.data, out) == 5
    assert out.tobytes() == ev.tobytes()


def test_cursor_lines_do_not_share_a_cache_line_pair():
    assert L.WRITE_SEQ * 8 // 128 != L.READ_SEQ * 8 // 128
    assert L.CAPACITY * 8 // 128 != L.WRITE_SEQ * 8 // 128


def test_two_threads_every_record_once_in_order():
    n = 2_000_000
    r = ring_bench.ring_throughput(n, np.int64, capacity=1024, timeout_s=60)
    assert r["pushed"] == n and r["items"] == n and r["in_order"]
    assert r["checksum"] == n * (n - 1) // 2


def test_two_threads_event_records():
    n = 500_000
    r = ring_bench.ring_throughput(n, EVENT_DTYPE, capacity=256, timeout_s=60)
    assert r["items"] == n and r["in_order"]
    assert r["checksum"] == sum(i & 0xFFFF for i in range(n))


def test_two_processes_over_shared_memory():
    n = 300_000
    before = set(os.listdir("/dev/shm"))
    r = ring_bench.process_throughput(n, capacity=256, timeout_s=60)
    assert r["items"] == n and r["in_order"] and r["checksum"] == n * (n - 1) // 2
    assert set(os.listdir("/dev/shm")) - before == set()


def test_round_trip_through_two_rings():
    lat = ring_bench.ring_round_trip(2000, timeout_s=30)
    assert len(lat) == 1800 and (lat > 0).all()


def test_attach_missing_shared_ring():
    with pytest.raises(ResourceError, match="no shared ring"):
        Ring.attach("tp-does-not-exist-xyz", np.int64)


def test_batch_claim_never_exceeds_free_slots():
    from tickpath.runtime.ipc.ring import try_claim_n, write_slot
    r = Ring.create(8, np.int64)
    assert try_claim_n(r.hdr, 5) == 5
    for j in range(5):
        r.data[write_slot(r.hdr, j)] = j
    publish(r.hdr, 5)
    assert try_claim_n(r.hdr, 5) == 3      # only 3 free
    release(r.hdr, 2)
    assert try_claim_n(r.hdr, 5) == 5      # the consumer freed 2
    out = np.zeros(8, np.int64)
    assert pop_into(r.hdr, r.data, out) == 3 and list(out[:3]) == [2, 3, 4]
