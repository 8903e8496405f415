"""The kernel-socket backend: UDP unicast or multicast, non-blocking recvmmsg(2) batches
straight into the frame buffer, called from the numba loop through a ctypes function
pointer (no Python per packet).

Setup (Python) builds one `struct mmsghdr` per frame slot whose iovec points at that slot,
once; each poll is one syscall that fills up to n_slots slots. After an empty poll the next
one is a plain recv() of one datagram into slot 0 (~0.35 us a poll here, recvmmsg ~0.5): a
quiet feed is polled faster, so the first packet after a quiet spell is seen sooner, and the
poll after it takes the rest of the burst as a batch. A datagram longer than its
slot comes back with MSG_TRUNC: its length is reported as -1, so the decoder counts it as
a malformed packet (never a read past the slot). The receive timestamp is CLOCK_REALTIME
read right after the call returns (one per batch: the batch arrived by then).
Kernel-side drops (socket buffer overflow) are read from /proc/net/udp at stats() time.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.backends.registry import FRAMES, BackendInfo, register_backend
from tickpath.runtime.config.sections import RuntimeConfig
from tickpath.runtime.core.errors import ConfigError, translate_oserror
from tickpath.runtime.sys.intrinsics import realtime_ns
from tickpath.runtime.sys.libc import libc_errno, libc_recv, libc_recvmmsg
from tickpath.runtime.engine.loop import run_frames

MSG_DONTWAIT = 0x40
MSG_TRUNC = 0x20
SO_BUSY_POLL = 46
SO_RCVBUFFORCE = 33
MMSGHDR_BYTES = 64        # struct mmsghdr on x86-64: msghdr (56) + msg_len (4) + pad
_MSG_IOV = 16             # offsets inside struct msghdr
_MSG_IOVLEN = 24
_MSG_FLAGS = 48
_MSG_LEN = 56






@njit(nogil=True, cache=True, _nrt=False)
def socket_poll(state, payload, lengths, recv_ns):
    """state = (params int64[4]: fd, mmsg address, n_slots, last poll found data (0/1);
    mmsg uint8 view; counters)."""
    params, mmsg, counters = state
    n_slots = min(params[2], payload.shape[0])
    counters[C.POLLS] += 1
    if params[3] == 0 and n_slots > 0:
        # the last poll found nothing: look for one datagram with recv() (~0.27 us empty
        # against recvmmsg's ~0.43): the first packet after a quiet spell is seen sooner
        slot = payload.shape[1]
        got = libc_recv(params[0], payload.ctypes.data, slot, MSG_DONTWAIT | MSG_TRUNC)
        if got >= 0:
            recv_ns[0] = realtime_ns()
            lengths[0] = got if got <= slot else -1   # MSG_TRUNC: the datagram's real length
            params[3] = 1    # more may follow: the next poll takes a batch
            counters[C.FRAMES] += 1
            return 1
        n = got
    else:
        n = libc_recvmmsg(params[0], params[1], n_slots, MSG_DONTWAIT, 0)
    if n <= 0:
        params[3] = 0
        if n == 0:
            counters[C.EMPTY_POLLS] += 1
            return 0
        e = libc_errno()
        if e == errno.EAGAIN or e == errno.EINTR:
            counters[C.EMPTY_POLLS] += 1
            return 0
        # transient: the next call may well succeed (counted, not fatal)
        if e == errno.ENOMEM or e == errno.ENOBUFS or e == errno.ECONNREFUSED:
            counters[C.RECV_ERRORS] += 1
            return 0
        return -e
    t = realtime_ns()
    for i in range(n):
        base = i * MMSGHDR_BYTES
        ln = (np.int32(mmsg[base + _MSG_LEN]) | (np.int32(mmsg[base + _MSG_LEN + 1]) << 8)
              | (np.int32(mmsg[base + _MSG_LEN + 2]) << 16) | (np.int32(mmsg[base + _MSG_LEN + 3]) << 24))
        if mmsg[base + _MSG_FLAGS] & MSG_TRUNC:
            ln = -1   # longer than the slot: the decoder counts it malformed
        lengths[i] = ln
        recv_ns[i] = t
    counters[C.FRAMES] += n
    return n


def _resolve_iface_index(name: str | None) -> int:
    if not name:
        return 0
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise ConfigError("interface does not exist", interface=name) from exc


@njit(nogil=True, cache=True, _nrt=False)
def socket_loop(bstate, payload, lengths, recv_ns, mold, session, events, pipe, ctrl, idle_params,
                idle_state):
    """The receive loop for this backend, cached on disk (runtime/engine/loop.py says why)."""
    return run_frames(socket_poll, bstate, payload, lengths, recv_ns, mold, session, events, pipe, ctrl,
                      idle_params, idle_state)


class SocketBackend:
    """Kernel UDP socket backend (see module docstring)."""

    kind = FRAMES
    poll = staticmethod(socket_poll)
    loop = staticmethod(socket_loop)

    def __init__(self, address: str = "127.0.0.1", port: int = 0, interface: str | None = None,
                 rcvbuf_bytes: int = 8 << 20, busy_poll_us: int = 0, bind_address: str | None = None):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as exc:
            raise ConfigError("feed address is not an IPv4 address", address=address) from exc
        if ip.version != 4:
            raise ConfigError("only IPv4 feeds are supported", address=address)
        if not 0 <= int(port) <= 65535:
            raise ConfigError("UDP port out of range", port=port, allowed="0-65535")
        if busy_poll_us < 0 or rcvbuf_bytes <= 0:
            raise ConfigError("busy_poll_us >= 0 and rcvbuf_bytes > 0 required",
                              busy_poll_us=busy_poll_us, rcvbuf_bytes=rcvbuf_bytes)
        self.address, self.port, self.interface = str(ip), int(port), interface
        self.multicast = ip.is_multicast
        self.bind_address = bind_address
        self.rcvbuf_bytes, self.busy_poll_us = int(rcvbuf_bytes), int(busy_poll_us)
        self.notes: list[str] = []
        self.sock: socket.socket | None = None
        self.counters = C.new_counters()
        self.state = None

    def open(self, payload: np.ndarray, counters: np.ndarray | None = None):
        """Bind the socket and point one mmsghdr at each slot of `payload` (uint8[n, bytes])."""
        if payload.ndim != 2 or payload.dtype != np.uint8 or not payload.flags.c_contiguous:
            raise ConfigError("frame buffer must be a C-contiguous uint8[n_slots, slot_bytes]",
                              shape=payload.shape, dtype=str(payload.dtype))
        if counters is not None:
            self.counters = counters
        ifindex = _resolve_iface_index(self.interface)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._set_rcvbuf(s)
            if self.busy_poll_us:
                try:
                    s.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, self.busy_poll_us)
                except OSError as exc:
                    self.notes.append(f"SO_BUSY_POLL={self.busy_poll_us} refused ({exc.strerror}): "
                                      "needs CAP_NET_ADMIN; kernel default busy_read applies")
            # a multicast socket binds the group address, so it gets only that group's datagrams
            s.bind((self.bind_address or self.address, self.port))
            if self.multicast:
                mreq = struct.pack("=4s4si", socket.inet_aton(self.address),
                                   socket.inet_aton("0.0.0.0"), ifindex)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            s.setblocking(False)
        except OSError as exc:
            s.close()
            raise translate_oserror(exc, "opening the UDP socket", address=self.address,
                                    port=self.port, interface=self.interface) from exc
        self.sock = s
        self.port = s.getsockname()[1]
        n_slots, slot_bytes = payload.shape
        self._iov = np.zeros((n_slots, 2), dtype=np.uint64)
        self._iov[:, 0] = payload.ctypes.data + np.arange(n_slots, dtype=np.uint64) * slot_bytes
        self._iov[:, 1] = slot_bytes
        self._mmsg = np.zeros(n_slots * MMSGHDR_BYTES, dtype=np.uint8)
        hdrs = self._mmsg.view(np.uint64).reshape(n_slots, MMSGHDR_BYTES // 8)
        hdrs[:, _MSG_IOV // 8] = self._iov.ctypes.data + np.arange(n_slots, dtype=np.uint64) * 16
        hdrs[:, _MSG_IOVLEN // 8] = 1
        self._payload = payload  # keep the slots alive as long as the kernel may write them
        params = np.array([s.fileno(), self._mmsg.ctypes.data, n_slots, 0], dtype=np.int64)
        self.state = (params, self._mmsg, self.counters)
        return self

    def _set_rcvbuf(self, s: socket.socket) -> None:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf_bytes)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf_bytes)
        got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # the kernel doubles it
        if got < self.rcvbuf_bytes:
            self.notes.append(f"SO_RCVBUF: asked {self.rcvbuf_bytes} bytes, got {got} "
                              "(net.core.rmem_max caps it without CAP_NET_ADMIN)")

    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped for this socket (the `drops` column of /proc/net/udp)."""
        if self.sock is None:
            return 0
        inode = str(os.fstat(self.sock.fileno()).st_ino)
        try:
            with open("/proc/self/net/udp") as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if len(parts) >= 13 and parts[9] == inode:
                        return int(parts[12])
        except OSError:
            pass
        return 0

    def stats(self) -> dict:
        return {"backend": "kernel", "address": self.address, "port": self.port,
                "multicast": self.multicast, "kernel_drops": self.kernel_drops(),
                "frames": int(self.counters[C.FRAMES]), "recv_errors": int(self.counters[C.RECV_ERRORS]),
                "notes": list(self.notes)}

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.state = None


def _factory(cfg: dict) -> SocketBackend:
    return SocketBackend(**cfg)


def from_config(cfg: RuntimeConfig) -> SocketBackend:
    b = cfg.backend
    return SocketBackend(address=cfg.feed.address, port=cfg.feed.port,
                         interface=cfg.nic.interface or None,
                         rcvbuf_bytes=b.rcvbuf_bytes, busy_poll_us=b.busy_poll_us)


register_backend(BackendInfo(
    name="kernel", kind=FRAMES, factory=_factory, from_config=from_config,
    requires="a UDP socket (no privilege; SO_BUSY_POLL and SO_RCVBUFFORCE want CAP_NET_ADMIN)",
    summary="kernel UDP stack, non-blocking recvmmsg batches from numba"))
