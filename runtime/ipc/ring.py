"""A single-producer single-consumer ring of fixed-size records, lock-free, usable from two
numba nogil loops on two threads or two processes (layout in ring_layout.py).

Disruptor-style claim/publish: the producer asks for a slot (`try_claim`), writes the record
in place, then `publish`es with a release store; the consumer reads how many are
`available` (acquire load), reads them in place, then `release`s them. No copy through an
intermediate, no lock, no allocation. A full ring follows the ring's policy: `claim` either
waits (bounded by a stop flag) or drops the new record and counts it — never overwrites.
"""
from __future__ import annotations

import mmap
import os
from multiprocessing import shared_memory

import numpy as np
from numba import njit

from tickpath.runtime.ipc import ring_layout as L
from tickpath.runtime.core.errors import ConfigError, ResourceError
from tickpath.runtime.sys.intrinsics import cpu_relax, load_acquire, store_release


def _check(capacity: int, record_bytes: int, policy: str) -> None:
    if capacity < 2 or capacity & (capacity - 1):
        raise ConfigError("ring capacity must be a power of two >= 2", capacity=capacity,
                          nearest=1 << max(1, int(capacity - 1).bit_length()))
    if record_bytes <= 0 or record_bytes % 8:
        raise ConfigError("record size must be a positive multiple of 8", record_bytes=record_bytes)
    if policy not in L.POLICIES:
        raise ConfigError("unknown ring policy", policy=policy, allowed=sorted(L.POLICIES))


class Ring:
    """Python handle: owns the memory; `hdr` (int64) and `data` are what the jitted code uses."""

    def __init__(self, buf, dtype, shm=None, owner=True):
        self._buf = buf
        self._shm = shm
        self._owner = owner
        raw = np.frombuffer(buf, dtype=np.uint8)
        self.hdr = raw[: L.HEADER_BYTES].view(np.int64)
        cap = int(self.hdr[L.CAPACITY])
        self.dtype = np.dtype(dtype)
        if self.hdr[L.MAGIC] != L.MAGIC_VALUE or self.hdr[L.RECORD_BYTES] != self.dtype.itemsize:
            raise ConfigError("not a tickpath ring, or records of another size",
                              record_bytes=int(self.hdr[L.RECORD_BYTES]), dtype_bytes=self.dtype.itemsize)
        self.data = raw[L.HEADER_BYTES: L.HEADER_BYTES + cap * self.dtype.itemsize].view(self.dtype)

    @classmethod
    def create(cls, capacity: int, dtype, policy: str = "wait", shared_name: str | None = None):
        dtype = np.dtype(dtype)
        _check(capacity, dtype.itemsize, policy)
        size = L.HEADER_BYTES + capacity * dtype.itemsize
        if shared_name is None:
            buf, shm = mmap.mmap(-1, size), None
        else:
            try:
                shm = shared_memory.SharedMemory(name=shared_name, create=True, size=size)
            except FileExistsError as exc:
                raise ResourceError("shared ring already exists", name=shared_name) from exc
            buf = shm.buf
        hdr = np.frombuffer(buf, dtype=np.int64, count=L.HEADER_SLOTS)
        hdr[:] = 0
        hdr[L.VERSION] = L.LAYOUT_VERSION
        hdr[L.CAPACITY] = capacity
        hdr[L.RECORD_BYTES] = dtype.itemsize
        hdr[L.POLICY] = L.POLICIES[policy]
        hdr[L.MAGIC] = L.MAGIC_VALUE  # last: an attacher seeing MAGIC sees a complete header
        return cls(buf, dtype, shm=shm, owner=True)

    @classmethod
    def attach(cls, shared_name: str, dtype):
        try:
            shm = shared_memory.SharedMemory(name=shared_name, create=False)
        except FileNotFoundError as exc:
            raise ResourceError("no shared ring of that name", name=shared_name) from exc
        return cls(shm.buf, dtype, shm=shm, owner=False)

    @property
    def capacity(self) -> int:
        return int(self.hdr[L.CAPACITY])

    def stats(self) -> dict:
        return {
            "capacity": self.capacity,
            "written": int(self.hdr[L.WRITE_SEQ]),
            "read": int(self.hdr[L.READ_SEQ]),
            "dropped": int(self.hdr[L.DROPPED]),
            "full_waits": int(self.hdr[L.WAITS]),
        }

    def close(self) -> None:
        self.hdr = self.data = None
        if self._shm is not None:
            self._shm.close()
            if self._owner:
                try:
                    self._shm.unlink()
                except FileNotFoundError:
                    pass
            self._shm = None


# ---- producer side -------------------------------------------------------------------

@njit(nogil=True, inline="always")
def try_claim(hdr):
    """Slot index for the next record, or -1 if the ring is full (nothing counted)."""
    w = hdr[L.WRITE_SEQ]
    cap = hdr[L.CAPACITY]
    if w - hdr[L.READ_CACHE] >= cap:
        hdr[L.READ_CACHE] = load_acquire(hdr, L.READ_SEQ)
        if w - hdr[L.READ_CACHE] >= cap:
            return -1
    return w & (cap - 1)


@njit(nogil=True, inline="always")
def try_claim_n(hdr, want):
    """How many of the next `want` slots are free (0..want): the producer writes records at
    slots (WRITE_SEQ + j) & (CAPACITY-1), j < n, then publish(hdr, n) once — one release
    store per batch instead of one per record (Disruptor's batch claim)."""
    w = hdr[L.WRITE_SEQ]
    cap = hdr[L.CAPACITY]
    free = cap - (w - hdr[L.READ_CACHE])
    if free < want:
        hdr[L.READ_CACHE] = load_acquire(hdr, L.READ_SEQ)
        free = cap - (w - hdr[L.READ_CACHE])
    return min(free, want)


@njit(nogil=True, inline="always")
def write_slot(hdr, j):
    """Slot of the j-th record of a batch claimed with try_claim_n."""
    return (hdr[L.WRITE_SEQ] + j) & (hdr[L.CAPACITY] - 1)


@njit(nogil=True, cache=True, _nrt=False)
def claim(hdr, stop, stop_idx):
    """try_claim + the ring's full policy. Returns a slot, or -1 (dropped, or stop raised)."""
    slot = try_claim(hdr)
    if slot >= 0:
        return slot
    if hdr[L.POLICY] == L.POLICY_DROP_NEWEST:
        hdr[L.DROPPED] += 1
        return -1
    hdr[L.WAITS] += 1
    while slot < 0:
        if load_acquire(stop, stop_idx) != 0:
            return -1
        cpu_relax()
        slot = try_claim(hdr)
    return slot


@njit(nogil=True, inline="always")
def publish(hdr, n):
    """Make the n claimed records visible to the consumer (release: data before cursor)."""
    store_release(hdr, L.WRITE_SEQ, hdr[L.WRITE_SEQ] + n)


# ---- consumer side -------------------------------------------------------------------

@njit(nogil=True, inline="always")
def available(hdr):
    """How many records can be read now (acquire: cursor before data)."""
    r = hdr[L.READ_SEQ]
    if hdr[L.WRITE_CACHE] - r <= 0:
        hdr[L.WRITE_CACHE] = load_acquire(hdr, L.WRITE_SEQ)
    return hdr[L.WRITE_CACHE] - r


@njit(nogil=True, inline="always")
def read_slot(hdr, k):
    """Slot of the k-th available record (0 = oldest)."""
    return (hdr[L.READ_SEQ] + k) & (hdr[L.CAPACITY] - 1)


@njit(nogil=True, inline="always")
def release(hdr, n):
    """Give n read records back to the producer."""
    store_release(hdr, L.READ_SEQ, hdr[L.READ_SEQ] + n)


# ---- convenience for Python callers / tests (not for hot loops) -------------------------

@njit(nogil=True, cache=True)
def push_values(hdr, data, values, stop):
    """Push each element of `values` (same dtype as data); returns how many were pushed."""
    n = 0
    for i in range(values.shape[0]):
        slot = claim(hdr, stop, 0)
        if slot < 0:
            if load_acquire(stop, 0) != 0:
                break
            continue
        data[slot] = values[i]
        publish(hdr, 1)
        n += 1
    return n


@njit(nogil=True, cache=True)
def pop_into(hdr, data, out):
    """Pop up to len(out) records into out; returns how many."""
    n = min(available(hdr), out.shape[0])
    for k in range(n):
        out[k] = data[read_slot(hdr, k)]
    release(hdr, n)
    return n


