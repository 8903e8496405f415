"""NUMA-local, preallocated, pre-faulted buffers exposed as numpy arrays.

One `Region` is one anonymous mmap: 2 MiB huge pages when asked for and reserved (else 4 KiB
pages, and the fallback is reported), bound to a NUMA node with mbind(2) *before* the first
touch (the kernel places a page on first fault), then pre-faulted and mlock'ed where the
RLIMIT_MEMLOCK allows. `Region.carve()` hands out numpy views at cache-line (or page)
aligned offsets, so independent hot fields never share a line. `page_nodes()` asks the
kernel (move_pages(2) with nodes=NULL) where each page really lives, so tests can check.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import resource
from dataclasses import dataclass, field

import numpy as np

from tickpath.runtime.core.errors import ConfigError, ResourceError
from tickpath.runtime.sys.topology import free_huge_pages, numa_nodes  # one sysfs reader

CACHE_LINE_BYTES = 64
PAGE_BYTES = mmap.PAGESIZE
HUGE_PAGE_BYTES = 2 * 1024 * 1024

_MAP_HUGETLB = 0x40000
_MAP_NORESERVE = 0x4000
_MPOL_BIND = 2
_MPOL_MF_STRICT = 1
_MPOL_MF_MOVE = 2
_SYS_MBIND = 237        # x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl)
_SYS_MOVE_PAGES = 279
_MADV_POPULATE_WRITE = 23   # Linux 5.14+

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.munlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _round_up(n: int, to: int) -> int:
    return (n + to - 1) // to * to


@dataclass
class Region:
    """One mmap'd region and the report of how it was placed."""

    size_bytes: int
    node: int | None
    huge_pages: bool
    locked: bool
    binding: str          # "mbind", "trivial (one node)", or "none"
    notes: list[str] = field(default_factory=list)
    _mm: mmap.mmap | None = None
    _next: int = 0

    @property
    def address(self) -> int:
        return ctypes.addressof(ctypes.c_char.from_buffer(self._mm))

    def bytes_view(self) -> np.ndarray:
        return np.frombuffer(self._mm, dtype=np.uint8)

    def carve(self, shape, dtype, align: int = CACHE_LINE_BYTES) -> np.ndarray:
        """A zeroed numpy view of the next free, `align`-aligned bytes of the region."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        start = _round_up(self._next, align)
        if start + nbytes > self.size_bytes:
            raise ResourceError(
                "region exhausted", need_bytes=nbytes, offset=start, size_bytes=self.size_bytes
            )
        self._next = start + nbytes
        view = np.frombuffer(self._mm, dtype=np.uint8, count=nbytes, offset=start)
        return view.view(dtype).reshape(shape)

    def page_nodes(self, max_pages: int = 4096) -> np.ndarray:
        """NUMA node of each page (up to max_pages, sampled evenly) per move_pages(2)."""
        page = HUGE_PAGE_BYTES if self.huge_pages else PAGE_BYTES
        n_pages = self.size_bytes // page
        idx = np.unique(np.linspace(0, n_pages - 1, min(n_pages, max_pages)).astype(np.int64))
        addrs = (ctypes.c_void_p * len(idx))(*[self.address + int(i) * page for i in idx])
        status = (ctypes.c_int * len(idx))()
        rc = _libc.syscall(_SYS_MOVE_PAGES, 0, ctypes.c_ulong(len(idx)), addrs, None, status, 0)
        if rc < 0:
            e = ctypes.get_errno()
            raise ResourceError("move_pages failed", errno=e, reason=os.strerror(e))
        return np.array(status[:], dtype=np.int64)

    def close(self) -> None:
        if self._mm is not None:
            if self.locked:
                _libc.munlock(ctypes.c_void_p(self.address), ctypes.c_size_t(self.size_bytes))
            try:
                self._mm.close()
            except BufferError:
                # numpy views still alive: the mapping goes when they do
                pass
            self._mm = None

    def report(self) -> dict:
        return {
            "size_bytes": self.size_bytes,
            "node": self.node,
            "huge_pages": self.huge_pages,
            "locked": self.locked,
            "binding": self.binding,
            "notes": list(self.notes),
        }


def allocate(
    size_bytes: int,
    node: int | None = None,
    hugepages: str = "auto",
    lock: bool = True,
    record_bytes: int | None = None,
) -> Region:
    """Allocate a NUMA-local, pre-faulted region.

    hugepages: "auto" (use 2 MiB pages if reserved, else fall back and say so),
    "require" (error when none are reserved), "off".
    record_bytes: when given, size_bytes must be a multiple of it (buffers of records).
    """
    if size_bytes <= 0:
        raise ConfigError("buffer size must be positive", size_bytes=size_bytes)
    if record_bytes is not None and size_bytes % record_bytes:
        raise ConfigError(
            "buffer size is not a multiple of the record size",
            size_bytes=size_bytes, record_bytes=record_bytes,
            nearest=size_bytes // record_bytes * record_bytes,
        )
    if hugepages not in ("auto", "require", "off"):
        raise ConfigError("hugepages must be auto, require or off", hugepages=hugepages)
    nodes = numa_nodes()
    if node is not None and node not in nodes:
        raise ConfigError("NUMA node does not exist", node=node, allowed=nodes)
    notes: list[str] = []

    use_huge = False
    if hugepages != "off":
        free = free_huge_pages(node if node is not None else 0)
        need = _round_up(size_bytes, HUGE_PAGE_BYTES) // HUGE_PAGE_BYTES
        if free >= need:
            use_huge = True
        elif hugepages == "require":
            raise ResourceError(
                "huge pages requested but not enough reserved",
                node=node, need_2mib_pages=need, free_2mib_pages=free,
                hint=f"echo {need} > /sys/devices/system/node/node{node or 0}/hugepages/hugepages-2048kB/nr_hugepages",
            )
        else:
            notes.append(f"huge pages: {free} free of {need} needed on node {node or 0}; using 4 KiB pages")

    page = HUGE_PAGE_BYTES if use_huge else PAGE_BYTES
    length = _round_up(size_bytes, page)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | (_MAP_HUGETLB if use_huge else 0)
    try:
        mm = mmap.mmap(-1, length, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError as exc:
        if not use_huge:
            raise ResourceError("mmap failed", size_bytes=length, reason=exc.strerror) from exc
        notes.append(f"huge page mmap failed ({exc.strerror}); using 4 KiB pages")
        use_huge, page = False, PAGE_BYTES
        length = _round_up(size_bytes, page)
        mm = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)

    region = Region(size_bytes=length, node=node, huge_pages=use_huge, locked=False,
                    binding="none", notes=notes, _mm=mm)
    addr = region.address

    # bind before the first touch: the kernel places each page when it is first faulted
    if node is not None:
        if len(nodes) == 1:
            region.binding = "trivial (one node)"
        else:
            mask = ctypes.c_ulong(1 << node)
            rc = _libc.syscall(_SYS_MBIND, ctypes.c_void_p(addr), ctypes.c_ulong(length), _MPOL_BIND,
                               ctypes.byref(mask), ctypes.c_ulong(64), _MPOL_MF_STRICT | _MPOL_MF_MOVE)
            if rc != 0:
                e = ctypes.get_errno()
                region.close()
                raise ResourceError("mbind failed", node=node, errno=e, reason=os.strerror(e))
            region.binding = "mbind"
    else:
        region.binding = "none (no node requested)"

    # pre-fault every page now, not on the hot path
    if _libc.madvise(ctypes.c_void_p(addr), ctypes.c_size_t(length), _MADV_POPULATE_WRITE) != 0:
        region.bytes_view()[::page] = 0

    if lock:
        if _libc.mlock(ctypes.c_void_p(addr), ctypes.c_size_t(length)) == 0:
            region.locked = True
        else:
            e = ctypes.get_errno()
            soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
            region.notes.append(
                f"mlock refused ({os.strerror(e)}): RLIMIT_MEMLOCK={soft} bytes < {length} needed; "
                "raise it (ulimit -l / limits.conf) or run with CAP_IPC_LOCK"
            )
    return region
