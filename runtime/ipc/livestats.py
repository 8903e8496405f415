"""Live counters: a running instance's counter array lives in a shared-memory file,
/dev/shm/tickpath-<pid>-stats, so `tickpath stats [--pid N]` reads it while the hot loop
writes — no socket, no thread, no copy in the loop (the loop's counter array IS the file).

    byte 0       8        12       16       24       32
         +-------+--------+--------+--------+--------+---------------------------+
         | magic | version| n_cnt  |  pid   |started | counters int64[n_cnt] ... |
         | 8 B   | u32    | u32    |  i64   |ns i64  | (runtime/counters.py)     |
         +-------+--------+--------+--------+--------+---------------------------+

Readers copy the array once (values are int64, each read whole on x86-64; a snapshot is
not atomic across slots). The owner unlinks the file on close; a file whose pid is gone is
reported as stale and skipped by discovery.
"""
from __future__ import annotations

import ctypes
import glob
import mmap
import os
import re
import time

import numpy as np

from tickpath.runtime.core import counters as C
from tickpath.runtime.core.errors import ResourceError, translate_oserror

MAGIC = b"TPSTATS1"
VERSION = 1
HEADER_BYTES = 32
SHM_DIR = "/dev/shm"

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]


def path_for(pid: int, shm_dir: str = SHM_DIR) -> str:
    return os.path.join(shm_dir, f"tickpath-{pid}-stats")


class LiveStats:
    """Owner side: creates the file and exposes `counters` (an int64 view of it)."""

    def __init__(self, n_counters: int = C.N_COUNTERS, shm_dir: str = SHM_DIR):
        self.path = path_for(os.getpid(), shm_dir)
        size = HEADER_BYTES + 8 * n_counters
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.ftruncate(fd, size)
                # libc mmap, not Python's (which keeps a dup of the fd open: one leaked fd
                # per runtime); the mapping outlives the fd and is never unmapped, because
                # arrays handed to the loop and to callers may still point into it (one page)
                addr = _mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
                if addr in (None, ctypes.c_void_p(-1).value):
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            finally:
                os.close(fd)
        except OSError as exc:
            raise translate_oserror(exc, "creating the live stats file", path=self.path) from exc
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(addr))
        hdr = raw[:HEADER_BYTES]
        hdr[:8] = np.frombuffer(MAGIC, np.uint8)
        hdr[8:16].view(np.uint32)[:] = (VERSION, n_counters)
        hdr[16:32].view(np.int64)[:] = (os.getpid(), time.clock_gettime_ns(time.CLOCK_REALTIME))
        self.counters = raw[HEADER_BYTES:].view(np.int64)

    def close(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def read(path: str) -> dict:
    """{pid, started_ns, counters{name: value}} from a stats file (ResourceError if unreadable)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise translate_oserror(exc, "reading the live stats file", path=path) from exc
    if len(raw) < HEADER_BYTES or raw[:8] != MAGIC:
        raise ResourceError("not a tickpath stats file", path=path, bytes=len(raw))
    version, n = np.frombuffer(raw[8:16], np.uint32)
    pid, started = np.frombuffer(raw[16:32], np.int64)
    if version != VERSION or len(raw) < HEADER_BYTES + 8 * int(n):
        raise ResourceError("stats file version or size not understood", path=path,
                            version=int(version), n_counters=int(n))
    arr = np.frombuffer(raw, np.int64, count=int(n), offset=HEADER_BYTES)
    counters = {name: int(arr[i]) for i, name in sorted(C.NAMES.items()) if i < n}
    return {"pid": int(pid), "started_ns": int(started), "alive": _alive(int(pid)),
            "counters": counters}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(shm_dir: str = SHM_DIR) -> list[int]:
    """Pids of running instances that publish stats."""
    pids = []
    for p in glob.glob(os.path.join(shm_dir, "tickpath-*-stats")):
        m = re.search(r"tickpath-(\d+)-stats$", p)
        if m and _alive(int(m.group(1))):
            pids.append(int(m.group(1)))
    return sorted(pids)
