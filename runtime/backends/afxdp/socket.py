"""One AF_XDP socket: UMEM registration, ring setup, the rings as numpy views, bind.

Setup order (Documentation/networking/af_xdp.rst): socket → XDP_UMEM_REG on the
page-aligned frame memory → ring sizes (fill, completion, RX) → XDP_MMAP_OFFSETS → mmap
each ring → pre-fill the fill ring → bind(ifindex, queue, copy|zerocopy|need-wakeup).
Teardown runs in reverse. The hot path never calls into this module: it gets the ring
words and descriptor arrays (`ring_views`) and works on them with atomics.

Python's socket.bind() does not know AF_XDP addresses, so bind (and the kick from the hot
path, see poll.py) go through libc by ctypes.
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import time
import socket as _pysocket
from dataclasses import dataclass, field

import numpy as np

from tickpath.runtime.core.errors import BackendError, PrivilegeError, ResourceError
from tickpath.runtime.backends.afxdp import layout as L

_libc = ctypes.CDLL(None, use_errno=True)
_libc.bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
_libc.bind.restype = ctypes.c_int

BIND_BUSY_WAIT_S = 1.0
_BIND_HINTS = {
    95: "the driver offers no zero-copy for this queue (EOPNOTSUPP): use mode=drv or skb",
    16: "another AF_XDP socket is bound to this queue (EBUSY)",
    19: "interface gone or down (ENODEV)",
    22: "bad queue id or flags (EINVAL)",
}


@dataclass
class RingViews:
    """numpy views over the mapped rings (u32 words, descriptor arrays)."""

    rx_producer: np.ndarray      # uint32[1]
    rx_consumer: np.ndarray      # uint32[1]
    rx_desc: np.ndarray          # uint64[2*rx_size]: addr, len|options<<32
    fill_producer: np.ndarray    # uint32[1]
    fill_consumer: np.ndarray    # uint32[1]
    fill_flags: np.ndarray       # uint32[1] (a private zero word when the kernel has none)
    fill_desc: np.ndarray        # uint64[fill_size]


@dataclass
class XskSocket:
    ifindex: int
    queue_id: int
    umem: np.ndarray             # uint8, page-aligned, n_frames * frame_size bytes
    frame_size: int
    rx_ring_size: int
    fill_ring_size: int
    sock: _pysocket.socket | None = None
    rings: RingViews | None = None
    zero_copy: bool = False
    need_wakeup: bool = False
    busy_poll_notes: list = field(default_factory=list)
    _maps: list = field(default_factory=list)

    @property
    def fd(self) -> int:
        return self.sock.fileno()

    # --- setup ---------------------------------------------------------------
    def open(self, bind_flags: int, busy_poll: bool = False, busy_poll_budget: int = 64,
             busy_poll_us: int = 20) -> "XskSocket":
        addr = self.umem.ctypes.data
        if addr % mmap.PAGESIZE:
            raise ResourceError("UMEM is not page-aligned", address=hex(addr), page=mmap.PAGESIZE)
        if not self.umem.flags.writeable:
            raise ResourceError("UMEM buffer is read-only")
        try:
            self.sock = _pysocket.socket(L.AF_XDP, _pysocket.SOCK_RAW, 0)
        except OSError as exc:
            if exc.errno in (1, 13):
                raise PrivilegeError("AF_XDP socket refused", errno=exc.errno,
                                     hint="needs CAP_NET_RAW (or root)") from exc
            raise BackendError("AF_XDP socket unavailable", errno=exc.errno, reason=exc.strerror,
                               hint="kernel built without CONFIG_XDP_SOCKETS?") from exc
        try:
            self._setup(bind_flags)
        except BaseException:
            self.close()
            raise
        if busy_poll:
            self._busy_poll(busy_poll_us, busy_poll_budget)
        return self

    def _setsockopt(self, opt: int, value: bytes | int, what: str) -> None:
        try:
            self.sock.setsockopt(L.SOL_XDP, opt, value)
        except OSError as exc:
            hint = "RLIMIT_MEMLOCK too low for the UMEM (ulimit -l) or no CAP_IPC_LOCK" \
                if exc.errno in (1, 12, 11) and opt == L.XDP_UMEM_REG else ""
            cls = PrivilegeError if exc.errno in (1, 13) or hint else BackendError
            raise cls(f"setsockopt {what} failed", errno=exc.errno, reason=exc.strerror,
                      **({"hint": hint} if hint else {})) from exc

    def _setup(self, bind_flags: int) -> None:
        reg = L.UMEM_REG.pack(self.umem.ctypes.data, self.umem.nbytes, self.frame_size, 0, 0, 0)
        self._setsockopt(L.XDP_UMEM_REG, reg, "XDP_UMEM_REG")
        self._setsockopt(L.XDP_UMEM_FILL_RING, self.fill_ring_size, "XDP_UMEM_FILL_RING")
        # bind requires a completion ring even for receive-only sockets
        self._setsockopt(L.XDP_UMEM_COMPLETION_RING, self.fill_ring_size, "XDP_UMEM_COMPLETION_RING")
        self._setsockopt(L.XDP_RX_RING, self.rx_ring_size, "XDP_RX_RING")
        raw = self.sock.getsockopt(L.SOL_XDP, L.XDP_MMAP_OFFSETS, L.MMAP_OFFSETS_V2_BYTES)
        off = L.decode_mmap_offsets(raw)

        rx = self._map(L.XDP_PGOFF_RX_RING, off.rx.desc + self.rx_ring_size * L.XDP_DESC_BYTES)
        fr = self._map(L.XDP_UMEM_PGOFF_FILL_RING, off.fill.desc + self.fill_ring_size * L.FILL_DESC_BYTES)

        def word(mm, o):
            return np.frombuffer(mm, dtype=np.uint32, count=1, offset=o)

        flags = word(fr, off.fill.flags) if off.fill.flags >= 0 else np.zeros(1, np.uint32)
        self.need_wakeup = off.fill.flags >= 0
        self.rings = RingViews(
            rx_producer=word(rx, off.rx.producer), rx_consumer=word(rx, off.rx.consumer),
            rx_desc=np.frombuffer(rx, dtype=np.uint64, count=2 * self.rx_ring_size, offset=off.rx.desc),
            fill_producer=word(fr, off.fill.producer), fill_consumer=word(fr, off.fill.consumer),
            fill_flags=flags,
            fill_desc=np.frombuffer(fr, dtype=np.uint64, count=self.fill_ring_size, offset=off.fill.desc),
        )
        if not self.need_wakeup:
            bind_flags &= ~L.XDP_USE_NEED_WAKEUP

        sa = ctypes.create_string_buffer(L.SOCKADDR_XDP.pack(L.AF_XDP, bind_flags, self.ifindex,
                                                             self.queue_id, 0), L.SOCKADDR_XDP.size)
        deadline = time.monotonic() + BIND_BUSY_WAIT_S
        while _libc.bind(self.fd, ctypes.addressof(sa), L.SOCKADDR_XDP.size) != 0:
            e = ctypes.get_errno()
            if e == errno.EBUSY and time.monotonic() < deadline:
                # a just-closed socket's queue is released by deferred kernel work
                time.sleep(0.01)
                continue
            raise BackendError("AF_XDP bind failed", ifindex=self.ifindex, queue_id=self.queue_id,
                               flags=hex(bind_flags), errno=e, reason=os.strerror(e),
                               hint=_BIND_HINTS.get(e, ""))
        opts = self.sock.getsockopt(L.SOL_XDP, L.XDP_OPTIONS, L.XDP_OPTIONS_BYTES)
        self.zero_copy = bool(int.from_bytes(opts[:4], "little") & L.XDP_OPTIONS_ZEROCOPY)

    def _map(self, pgoff: int, length: int) -> mmap.mmap:
        try:
            mm = mmap.mmap(self.fd, length, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
                           prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=pgoff)
        except OSError as exc:
            raise BackendError("mmap of an AF_XDP ring failed", pgoff=hex(pgoff), length=length,
                               errno=exc.errno, reason=exc.strerror) from exc
        self._maps.append(mm)
        return mm

    def _busy_poll(self, busy_poll_us: int, budget: int) -> None:
        """SO_PREFER_BUSY_POLL / SO_BUSY_POLL / budget where the kernel and privileges allow."""
        for name, opt, val in (("SO_PREFER_BUSY_POLL", L.SO_PREFER_BUSY_POLL, 1),
                               ("SO_BUSY_POLL", L.SO_BUSY_POLL, busy_poll_us),
                               ("SO_BUSY_POLL_BUDGET", L.SO_BUSY_POLL_BUDGET, budget)):
            try:
                self.sock.setsockopt(L.SOL_SOCKET, opt, val)
                self.busy_poll_notes.append(f"{name}={val}")
            except OSError as exc:
                self.busy_poll_notes.append(f"{name} refused ({exc.strerror})")

    # --- slow-path queries ---------------------------------------------------
    def statistics(self) -> dict:
        raw = self.sock.getsockopt(L.SOL_XDP, L.XDP_STATISTICS, L.STATS_V2_BYTES)
        return L.decode_statistics(raw)

    def close(self) -> None:
        """Unmap and close (idempotent). numpy views that outlive this keep their mapping."""
        self.rings = None
        for mm in self._maps:
            try:
                mm.close()
            except BufferError:
                pass  # a view is still alive (e.g. held by a compiled state tuple)
        self._maps.clear()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
