"""SPSC ring (runtime/ring.py) microbenchmarks: the cost of one record through the ring.

* single thread, batches of 64: claim/publish then available/read/release — the ring's own
  bookkeeping with no cache-line transfer between cores;
* two threads: a nogil producer thread and the consumer in the benchmark thread, 2 M ints,
  every value checked in order (a round that lost or reordered one fails).
Run: .venv/bin/pytest bench/micro/test_ring_bench.py --benchmark-enable -p no:cacheprovider
`tickpath bench ring` has the pinned, cross-process and queue.Queue comparison.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from numba import njit
from tickpath.bench.scenarios.ring_bench import consume_ints, produce_ints
from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.ipc.ring import (
    Ring,
    available,
    publish,
    read_slot,
    release,
    try_claim_n,
    write_slot,
)

N_SINGLE = 1 << 20
N_TWO = 2_000_000
BATCH = 64


@njit(nogil=True)
def _through_one_thread(hdr, data, n, batch):
    """Push and pop n records in batches; returns the sum of seqs seen (checked by caller)."""
    total = 0
    i = 0
    while i < n:
        k = try_claim_n(hdr, min(batch, n - i))
        for j in range(k):
            data[write_slot(hdr, j)].seq = i + j
        publish(hdr, k)
        m = available(hdr)
        for j in range(m):
            total += data[read_slot(hdr, j)].seq
        release(hdr, m)
        i += k
    return total


def test_ring_one_thread_batched(benchmark):
    ring = Ring.create(1024, EVENT_DTYPE)
    try:
        _through_one_thread(ring.hdr, ring.data, 128, BATCH)   # compile
        total = benchmark(_through_one_thread, ring.hdr, ring.data, N_SINGLE, BATCH)
        assert total == N_SINGLE * (N_SINGLE - 1) // 2
        benchmark.extra_info["records_per_round"] = N_SINGLE
        benchmark.extra_info["record_bytes"] = EVENT_DTYPE.itemsize
    finally:
        ring.close()


def _two_threads(ring):
    deadline = time.monotonic_ns() + 60_000_000_000
    res = {}
    t = threading.Thread(target=lambda: res.setdefault("pushed", produce_ints(ring.hdr, ring.data, N_TWO, deadline)))
    t.start()
    got, bad, total = consume_ints(ring.hdr, ring.data, N_TWO, deadline)
    t.join()
    return res["pushed"], got, bad, total


def test_ring_two_threads_ints(benchmark):
    ring = Ring.create(4096, np.int64)
    try:
        produce_ints(ring.hdr, ring.data, 0, 0)
        consume_ints(ring.hdr, ring.data, 0, 0)
        pushed, got, bad, total = benchmark.pedantic(_two_threads, args=(ring,), rounds=5, iterations=1)
        assert pushed == got == N_TWO and bad == -1 and total == N_TWO * (N_TWO - 1) // 2
        benchmark.extra_info["items_per_round"] = N_TWO
    finally:
        ring.close()
