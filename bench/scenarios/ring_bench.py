"""`tickpath bench ring`: the SPSC ring between two pinned threads (and two processes),
next to queue.Queue and queue.SimpleQueue in the same run (after rigtorp's
SPSCQueueBenchmark: CPUs on the command line, throughput and round trip).

Workers here are importable module-level functions so a spawned process can run them; every
loop is bounded by a deadline, so a dead peer ends a run instead of hanging it.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
import uuid

import numpy as np
from numba import njit

from tickpath.runtime.core.event import EVENT_DTYPE
from tickpath.runtime.sys.intrinsics import cpu_relax, monotonic_ns
from tickpath.runtime.ipc.ring import (
    Ring,
    available,
    publish,
    read_slot,
    release,
    try_claim,
    try_claim_n,
    write_slot,
)


BATCH = 64  # records claimed and published at once by the throughput producers


@njit(nogil=True, cache=True)
def produce_ints(hdr, data, n, deadline_ns):
    """Push 0..n-1 in claimed batches; returns how many were pushed before the deadline."""
    i = 0
    spins = 0
    while i < n:
        k = try_claim_n(hdr, min(BATCH, n - i))
        if k == 0:
            spins += 1
            if (spins & 1023) == 0 and monotonic_ns() > deadline_ns:
                return i
            cpu_relax()
            continue
        for j in range(k):
            data[write_slot(hdr, j)] = i + j
        publish(hdr, k)
        i += k
    return i


@njit(nogil=True, cache=True)
def produce_ints_single(hdr, data, n, deadline_ns):
    """Push 0..n-1 one record per claim and per release store (rigtorp's try_push shape)."""
    i = 0
    spins = 0
    while i < n:
        slot = try_claim(hdr)
        if slot < 0:
            spins += 1
            if (spins & 1023) == 0 and monotonic_ns() > deadline_ns:
                return i
            cpu_relax()
            continue
        data[slot] = i
        publish(hdr, 1)
        i += 1
    return i


@njit(nogil=True, cache=True)
def consume_ints(hdr, data, n, deadline_ns):
    """Pop n values; returns (count, first out-of-order index or -1, sum)."""
    expect = 0
    bad = -1
    total = 0
    spins = 0
    while expect < n:
        k = available(hdr)
        if k == 0:
            spins += 1
            if (spins & 1023) == 0 and monotonic_ns() > deadline_ns:
                break
            cpu_relax()
            continue
        for j in range(k):
            v = data[read_slot(hdr, j)]
            if v != expect and bad < 0:
                bad = expect
            total += v
            expect += 1
        release(hdr, k)
    return expect, bad, total


@njit(nogil=True, cache=True)
def produce_records(hdr, data, n, deadline_ns):
    """Push n 64-byte event records (seq = i) in claimed batches."""
    i = 0
    spins = 0
    while i < n:
        k = try_claim_n(hdr, min(BATCH, n - i))
        if k == 0:
            spins += 1
            if (spins & 1023) == 0 and monotonic_ns() > deadline_ns:
                return i
            cpu_relax()
            continue
        for j in range(k):
            rec = data[write_slot(hdr, j)]
            rec.seq = i + j
            rec.price = (i + j) & 0xFFFF
        publish(hdr, k)
        i += k
    return i


@njit(nogil=True, cache=True)
def consume_records(hdr, data, n, deadline_ns):
    expect = 0
    bad = -1
    total = 0
    spins = 0
    while expect < n:
        k = available(hdr)
        if k == 0:
            spins += 1
            if (spins & 1023) == 0 and monotonic_ns() > deadline_ns:
                break
            cpu_relax()
            continue
        for j in range(k):
            rec = data[read_slot(hdr, j)]
            if rec.seq != expect and bad < 0:
                bad = expect
            total += rec.price
            expect += 1
        release(hdr, k)
    return expect, bad, total


@njit(nogil=True, cache=True)
def ping(hdr_out, data_out, hdr_in, data_in, n, lat_ns, deadline_ns):
    """Send i, wait for its echo; lat_ns[i] = round trip. Returns completed round trips."""
    for i in range(n):
        t0 = monotonic_ns()
        slot = try_claim(hdr_out)
        while slot < 0:
            slot = try_claim(hdr_out)
        data_out[slot] = i
        publish(hdr_out, 1)
        while available(hdr_in) == 0:
            cpu_relax()
            if monotonic_ns() > deadline_ns:
                return i
        release(hdr_in, 1)
        lat_ns[i] = monotonic_ns() - t0
    return n


@njit(nogil=True, cache=True)
def pong(hdr_in, data_in, hdr_out, data_out, n, deadline_ns):
    done = 0
    while done < n:
        if available(hdr_in) == 0:
            cpu_relax()
            if monotonic_ns() > deadline_ns:
                return done
            continue
        v = data_in[read_slot(hdr_in, 0)]
        release(hdr_in, 1)
        slot = try_claim(hdr_out)
        while slot < 0:
            slot = try_claim(hdr_out)
        data_out[slot] = v
        publish(hdr_out, 1)
        done += 1
    return done


def _pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(threading.get_native_id(), [cpu])


def _deadline(seconds: float) -> int:
    return time.monotonic_ns() + int(seconds * 1e9)


def ring_throughput(n: int, dtype, cpus=(None, None), capacity: int = 4096, timeout_s: float = 60,
                    single: bool = False):
    """Items/s between two threads; returns dict with rate and the integrity check.
    single=True: one claim + one release store per item instead of batches of BATCH."""
    r = Ring.create(capacity, dtype)
    records = np.dtype(dtype) == EVENT_DTYPE
    prod, cons = (produce_records, consume_records) if records else (produce_ints, consume_ints)
    if single and not records:
        prod = produce_ints_single
    prod(r.hdr, r.data, 0, 0), cons(r.hdr, r.data, 0, 0)  # compile outside the timing
    out = {}
    dl = _deadline(timeout_s)

    def consumer():
        _pin(cpus[1])
        out["c"] = cons(r.hdr, r.data, n, dl)

    t = threading.Thread(target=consumer)
    t.start()
    _pin(cpus[0])
    t0 = time.perf_counter()
    pushed = prod(r.hdr, r.data, n, dl)
    t.join()
    el = time.perf_counter() - t0
    count, bad, total = out["c"]
    return {"items": int(count), "pushed": int(pushed), "in_order": bad == -1,
            "checksum": int(total), "seconds": el, "items_per_s": count / el}


def ring_round_trip(n: int, cpus=(None, None), timeout_s: float = 30):
    a, b = Ring.create(64, np.int64), Ring.create(64, np.int64)
    lat = np.zeros(n, np.int64)
    ping(a.hdr, a.data, b.hdr, b.data, 0, lat, 0), pong(a.hdr, a.data, b.hdr, b.data, 0, 0)
    dl = _deadline(timeout_s)
    t = threading.Thread(target=lambda: (_pin(cpus[1]), pong(a.hdr, a.data, b.hdr, b.data, n, dl)))
    t.start()
    _pin(cpus[0])
    done = ping(a.hdr, a.data, b.hdr, b.data, n, lat, dl)
    t.join()
    return lat[n // 10: done]  # first 10 % is warm-up


def _child_pong(name_in, name_out, n, cpu, timeout_s):
    if cpu is not None:
        os.sched_setaffinity(0, [cpu])
    a, b = Ring.attach(name_in, np.int64), Ring.attach(name_out, np.int64)
    pong(a.hdr, a.data, b.hdr, b.data, 0, 0)
    pong(a.hdr, a.data, b.hdr, b.data, n, _deadline(timeout_s))
    a.close(), b.close()


def _child_consume(name, n, cpu, timeout_s, q):
    if cpu is not None:
        os.sched_setaffinity(0, [cpu])
    r = Ring.attach(name, np.int64)
    consume_ints(r.hdr, r.data, 0, 0)   # compile before the clock starts
    q.put("ready")
    q.put(consume_ints(r.hdr, r.data, n, _deadline(timeout_s)))
    r.close()


def process_throughput(n: int, cpus=(None, None), capacity: int = 4096, timeout_s: float = 60):
    """Items/s from this process to a spawned one over a shared-memory ring."""
    name = f"tp-ring-{uuid.uuid4().hex[:10]}"
    r = Ring.create(capacity, np.int64, shared_name=name)
    try:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_child_consume, args=(name, n, cpus[1], timeout_s, q))
        p.start()
        produce_ints(r.hdr, r.data, 0, 0)
        if q.get(timeout=timeout_s) != "ready":
            raise RuntimeError("ring consumer process did not start")
        if cpus[0] is not None:
            os.sched_setaffinity(threading.get_native_id(), [cpus[0]])
        t0 = time.perf_counter()
        pushed = produce_ints(r.hdr, r.data, n, _deadline(timeout_s))
        try:
            count, bad, total = q.get(timeout=timeout_s)
        except queue.Empty:
            count, bad, total = 0, -2, 0
        el = time.perf_counter() - t0
        p.join(10)
        if p.is_alive():
            p.kill()
        return {"items": int(count), "pushed": int(pushed), "in_order": bad == -1,
                "checksum": int(total), "seconds": el, "items_per_s": count / el}
    finally:
        r.close()


def process_round_trip(n: int, cpus=(None, None), timeout_s: float = 30):
    na, nb = f"tp-ping-{uuid.uuid4().hex[:8]}", f"tp-pong-{uuid.uuid4().hex[:8]}"
    a, b = Ring.create(64, np.int64, shared_name=na), Ring.create(64, np.int64, shared_name=nb)
    try:
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_child_pong, args=(na, nb, n, cpus[1], timeout_s))
        p.start()
        lat = np.zeros(n, np.int64)
        ping(a.hdr, a.data, b.hdr, b.data, 0, lat, 0)
        if cpus[0] is not None:
            os.sched_setaffinity(threading.get_native_id(), [cpus[0]])
        done = ping(a.hdr, a.data, b.hdr, b.data, n, lat, _deadline(timeout_s))
        p.join(10)
        if p.is_alive():
            p.kill()
        return lat[n // 10: done]
    finally:
        a.close(), b.close()


def pyqueue_throughput(n: int, cls, cpus=(None, None)):
    q = cls()
    got = {}

    def consumer():
        _pin(cpus[1])
        s = 0
        for _ in range(n):
            s += q.get()
        got["sum"] = s

    t = threading.Thread(target=consumer)
    t.start()
    _pin(cpus[0])
    t0 = time.perf_counter()
    for i in range(n):
        q.put(i)
    t.join()
    el = time.perf_counter() - t0
    return {"items": n, "in_order": got["sum"] == n * (n - 1) // 2, "seconds": el, "items_per_s": n / el}


def run(cpus=(None, None), seconds_hint: float = 1.0, repeats: int = 3) -> dict:
    """All alternatives, side by side, `repeats` times each; medians and ranges."""
    n_ints = 20_000_000
    n_recs = 10_000_000
    n_py = 200_000
    n_rt = 200_000
    res: dict = {"cpus": list(cpus), "repeats": repeats, "throughput": {}, "round_trip_ns": {}}
    rows = {
        "ring int64 (threads)": lambda: ring_throughput(n_ints, np.int64, cpus),
        "ring int64, publish per item (threads)": lambda: ring_throughput(n_ints, np.int64, cpus, single=True),
        "ring 64B record (threads)": lambda: ring_throughput(n_recs, EVENT_DTYPE, cpus),
        "ring int64 (processes)": lambda: process_throughput(n_ints, cpus),
        "queue.Queue": lambda: pyqueue_throughput(n_py, queue.Queue, cpus),
        "queue.SimpleQueue": lambda: pyqueue_throughput(n_py, queue.SimpleQueue, cpus),
    }
    for name, fn in rows.items():
        rates = []
        ok = True
        for _ in range(repeats):
            r = fn()
            ok &= r["in_order"] and r["items"] == r.get("pushed", r["items"])
            rates.append(r["items_per_s"])
        res["throughput"][name] = {"median": float(np.median(rates)), "min": min(rates),
                                   "max": max(rates), "all_delivered_in_order": bool(ok)}
    for name, fn in {"threads": lambda: ring_round_trip(n_rt, cpus),
                     "processes": lambda: process_round_trip(n_rt, cpus)}.items():
        lat = np.concatenate([fn() for _ in range(repeats)])
        res["round_trip_ns"][name] = {"p50": float(np.percentile(lat, 50)),
                                      "p99": float(np.percentile(lat, 99)),
                                      "p99.9": float(np.percentile(lat, 99.9)), "samples": int(lat.size)}
    return res
