"""The "afxdp" backend (kind FRAMES): open/close/stats around the jitted `afxdp_poll`.

open(), in order (teardown in reverse, also when open fails half-way):
  validate config → interface/queue check → UMEM (tickpath.runtime.sys.buffers: NUMA-local,
  huge pages when reserved, mlocked) → XSKMAP → XDP program (filtered or plain redirect)
  → attach (BPF link: detaches when our fd closes, even on SIGKILL) → AF_XDP socket
  bound in the mode the attach got → XSKMAP[queue] = socket → multicast join (a kernel
  UDP socket holds the IGMP membership while frames arrive through AF_XDP).
close() is idempotent and also runs at exit; when the kernel forced the netlink fallback
(no BPF links) a SIGTERM handler detaches too, since that attachment outlives us.
"""
from __future__ import annotations

import atexit
import os
import signal
import socket as _pysocket
import threading
import weakref

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.backends.registry import FRAMES, BackendInfo, register_backend
from tickpath.runtime.config.sections import RuntimeConfig
from tickpath.runtime.core.errors import BackendError, ConfigError
from tickpath.runtime.backends.afxdp import bpf as _bpf
from tickpath.runtime.backends.afxdp.attach import Attachment, attach
from tickpath.runtime.backends.afxdp.config import AfxdpConfig
from tickpath.runtime.backends.afxdp.layout import XDP_COPY, XDP_USE_NEED_WAKEUP, XDP_ZEROCOPY
from tickpath.runtime.backends.afxdp.poll import (
    C_STASH_TOP,
    DETAIL_NAMES,
    N_CURSORS,
    N_DETAIL,
    N_PARAMS,
    P_BUSY_POLL,
    P_FD,
    P_FILL_SIZE,
    P_FRAME_MASK,
    P_RX_MASK,
    P_UDP_PORT,
    P_UMEM_BYTES,
    XskState,
    afxdp_poll,
)
from tickpath.runtime.backends.afxdp.socket import XskSocket
from tickpath.runtime.sys.topology import nic_numa_node
from tickpath.runtime.engine.loop import run_frames

BPF_PATH = "raw bpf() syscall, hand-encoded XDP program"
_OPEN: "weakref.WeakSet[AfxdpBackend]" = weakref.WeakSet()


def _bind_flags(requested: str, attached: str) -> int:
    if attached == "skb":
        return XDP_COPY | XDP_USE_NEED_WAKEUP            # generic XDP can only copy
    if requested == "zerocopy":
        return XDP_ZEROCOPY | XDP_USE_NEED_WAKEUP
    if requested == "drv":
        return XDP_COPY | XDP_USE_NEED_WAKEUP
    return XDP_USE_NEED_WAKEUP                          # auto: zero-copy if offered, else copy


@njit(nogil=True, cache=True, _nrt=False)
def afxdp_loop(bstate, payload, lengths, recv_ns, mold, session, events, pipe, ctrl, idle_params,
               idle_state):
    """The receive loop for this backend, cached on disk (runtime/engine/loop.py says why)."""
    return run_frames(afxdp_poll, bstate, payload, lengths, recv_ns, mold, session, events, pipe, ctrl,
                      idle_params, idle_state)


class AfxdpBackend:
    kind = FRAMES
    name = "afxdp"
    poll = staticmethod(afxdp_poll)
    loop = staticmethod(afxdp_loop)

    def __init__(self, config: AfxdpConfig | dict):
        self.config = config if isinstance(config, AfxdpConfig) else AfxdpConfig.from_mapping(config)
        self.state = None
        self.counters: np.ndarray | None = None
        self.detail: np.ndarray | None = None
        self.attachment: Attachment | None = None
        self.xsk: XskSocket | None = None
        self.umem_report: dict = {}
        self._region = None
        self._umem_mm = None
        self._map_fd = -1
        self._prog_fd = -1
        self._mcast: _pysocket.socket | None = None
        self._opened = False

    # --- open ---------------------------------------------------------------
    def open(self, payload: np.ndarray | None = None,
             counters: np.ndarray | None = None) -> "AfxdpBackend":
        """payload: the frame buffer the loop will pass to poll (checked here, as every frame
        backend checks it at open); counters: the runtime's counter array."""
        if payload is not None and (payload.ndim != 2 or payload.dtype != np.uint8
                                    or not payload.flags.c_contiguous):
            raise ConfigError("frame buffer must be a C-contiguous uint8[n_slots, slot_bytes]",
                              shape=payload.shape, dtype=str(payload.dtype))
        cfg = self.config.validate()
        ifindex, rx_queues = cfg.check_interface()
        if counters is not None and (counters.dtype != np.int64 or counters.shape[0] < C.N_COUNTERS):
            raise ConfigError("counters must be int64[N_COUNTERS]", shape=counters.shape,
                              dtype=str(counters.dtype))
        self.counters = counters if counters is not None else C.new_counters()
        self.detail = np.zeros(N_DETAIL, np.int64)
        try:
            umem = self._allocate_umem(cfg)
            self._map_fd = _bpf.create_xskmap(max(rx_queues, cfg.queue_id + 1))
            insns = (_bpf.filter_program(self._map_fd, cfg.udp_port) if cfg.filter_program
                     else _bpf.redirect_program(self._map_fd))
            self._prog_fd = _bpf.load_xdp(insns)
            # the map is empty until the socket is in it: the program passes every frame
            self.attachment = attach(cfg.interface, ifindex, self._prog_fd, cfg.mode,
                                     replace=cfg.replace_program)
            self.xsk = XskSocket(ifindex, cfg.queue_id, umem, cfg.frame_size,
                                 cfg.rx_ring_size, cfg.fill_ring_size)
            self.xsk.open(_bind_flags(cfg.mode, self.attachment.mode), cfg.busy_poll,
                          cfg.busy_poll_budget, cfg.busy_poll_us)
            if cfg.mode == "zerocopy" and not self.xsk.zero_copy:
                raise BackendError("zero-copy requested but the socket is in copy mode",
                                   interface=cfg.interface, queue_id=cfg.queue_id)
            self._build_state(cfg, umem)
            _bpf.xskmap_set(self._map_fd, cfg.queue_id, self.xsk.fd)
            if cfg.is_multicast():
                self._join(cfg, ifindex)
        except BaseException:
            self.close()
            raise
        self._opened = True
        _OPEN.add(self)
        atexit.register(self.close)
        if self.attachment.method == "netlink":
            _install_sigterm()
        return self

    def _allocate_umem(self, cfg: AfxdpConfig) -> np.ndarray:
        try:
            from tickpath.runtime.sys import buffers
        except ImportError:       # the runtime's NUMA buffers not present: plain mmap
            buffers = None
        node = cfg.numa_node if cfg.numa_node is not None else nic_numa_node(cfg.interface)
        if buffers is not None:
            self._region = buffers.allocate(cfg.umem_bytes, node=node, hugepages="auto", lock=True)
            self.umem_report = self._region.report()
            return self._region.bytes_view()[: cfg.umem_bytes]
        import mmap
        self._umem_mm = mmap.mmap(-1, cfg.umem_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                                  | getattr(mmap, "MAP_POPULATE", 0))
        self.umem_report = {"size_bytes": cfg.umem_bytes, "node": None, "huge_pages": False}
        return np.frombuffer(self._umem_mm, dtype=np.uint8)

    def _build_state(self, cfg: AfxdpConfig, umem: np.ndarray) -> None:
        r = self.xsk.rings
        params = np.zeros(N_PARAMS, np.int64)
        params[P_FD] = self.xsk.fd
        params[P_UDP_PORT] = cfg.udp_port
        params[P_FRAME_MASK] = ~(cfg.frame_size - 1)
        params[P_RX_MASK] = cfg.rx_ring_size - 1
        params[P_FILL_SIZE] = cfg.fill_ring_size
        params[P_UMEM_BYTES] = cfg.umem_bytes
        params[P_BUSY_POLL] = int(cfg.busy_poll)
        # all frames free: the fill ring takes what it holds, the stash keeps the rest
        stash = np.zeros(cfg.n_frames, np.uint64).view(np.int64)
        frames = np.arange(cfg.n_frames, dtype=np.int64) * cfg.frame_size
        k = min(cfg.fill_ring_size, cfg.n_frames)
        prod = int(r.fill_producer[0])
        for j in range(k):
            r.fill_desc[(prod + j) & (cfg.fill_ring_size - 1)] = frames[j]
        rest = frames[k:]
        stash[: rest.shape[0]] = rest
        cursors = np.zeros(N_CURSORS, np.int64)
        cursors[C_STASH_TOP] = rest.shape[0]
        r.fill_producer[0] = (prod + k) & 0xFFFFFFFF  # before bind/map insert: no reader yet
        self.state = XskState(rx_prod=r.rx_producer, rx_cons=r.rx_consumer, rx_desc=r.rx_desc,
                              fill_prod=r.fill_producer, fill_cons=r.fill_consumer,
                              fill_flags=r.fill_flags, fill_desc=r.fill_desc, umem=umem,
                              stash=stash, cursors=cursors, params=params,
                              counters=self.counters, detail=self.detail)

    def _join(self, cfg: AfxdpConfig, ifindex: int) -> None:
        s = _pysocket.socket(_pysocket.AF_INET, _pysocket.SOCK_DGRAM)
        try:
            s.setsockopt(_pysocket.SOL_SOCKET, _pysocket.SO_REUSEADDR, 1)
            s.bind((cfg.feed_address, cfg.udp_port))
            mreqn = _pysocket.inet_aton(cfg.feed_address) + bytes(4) + ifindex.to_bytes(4, "little")
            s.setsockopt(_pysocket.IPPROTO_IP, _pysocket.IP_ADD_MEMBERSHIP, mreqn)
        except OSError as exc:
            s.close()
            raise BackendError("multicast join failed", group=cfg.feed_address,
                               interface=cfg.interface, errno=exc.errno, reason=exc.strerror) from exc
        self._mcast = s

    # --- slow path ------------------------------------------------------------
    def stats(self) -> dict:
        """Counters merged with the kernel's XDP_STATISTICS, plus mode and path."""
        out = {"backend": self.name, "open": self._opened}
        if self.counters is not None:
            for slot in (C.FRAMES, C.FRAMES_NOT_FEED, C.FRAMES_DROPPED, C.RECV_ERRORS,
                         C.POLLS, C.EMPTY_POLLS):
                out[C.NAMES[slot]] = int(self.counters[slot])
            out["detail"] = {name: int(self.detail[i]) for i, name in DETAIL_NAMES.items()}
        if self.state is not None:
            out["frames_in_stash"] = int(self.state.cursors[C_STASH_TOP])  # free, waiting for fill room
        if self.xsk is not None and self.xsk.sock is not None:
            xdp = self.xsk.statistics()
            out["xdp"] = xdp
            # kernel-side losses: no fill frame (rx_dropped) or RX ring full
            out["frames_dropped"] = out.get("frames_dropped", 0) + xdp.get("rx_dropped", 0) \
                + xdp.get("rx_ring_full", 0)
            out["copy_mode"] = "zero-copy" if self.xsk.zero_copy else "copy"
            out["busy_poll"] = list(self.xsk.busy_poll_notes)
        if self.attachment is not None:
            out["xdp_mode"] = self.attachment.mode
            out["attach_method"] = self.attachment.method
        out["bpf_path"] = BPF_PATH
        out["umem"] = dict(self.umem_report)
        return out

    def close(self) -> None:
        """Detach, unmap, close (idempotent; safe after a half-finished open)."""
        self._opened = False
        if self._mcast is not None:
            self._mcast.close()
            self._mcast = None
        if self.attachment is not None:
            self.attachment.detach()
            self.attachment = None
        self.state = None
        if self._map_fd >= 0:
            # the map holds a socket reference; freeing the map is deferred, so drop it now
            _bpf.xskmap_delete(self._map_fd, self.config.queue_id)
        for attr in ("_prog_fd", "_map_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)
        if self.xsk is not None:
            self.xsk.close()
            self.xsk = None
        if self._region is not None:
            self._region.close()
            self._region = None
        if self._umem_mm is not None:
            try:
                self._umem_mm.close()
            except BufferError:
                pass
            self._umem_mm = None
        try:
            atexit.unregister(self.close)
        except Exception:
            pass

    def __enter__(self):
        return self.open() if not self._opened else self

    def __exit__(self, *exc):
        self.close()


def _install_sigterm() -> None:
    """Detach netlink-attached programs on SIGTERM (a BPF link needs no help)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_term(signum, frame):
        for b in list(_OPEN):
            b.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)


def _factory(config) -> AfxdpBackend:
    return AfxdpBackend(config)


def from_config(cfg: RuntimeConfig) -> AfxdpBackend:
    table = {"interface": cfg.nic.interface, "udp_port": cfg.feed.port,
             "feed_address": cfg.feed.address, **cfg.backend.afxdp}
    return AfxdpBackend(table)


register_backend(BackendInfo(
    name="afxdp", kind=FRAMES, factory=_factory, from_config=from_config,
    requires="root or CAP_NET_ADMIN + CAP_BPF + CAP_NET_RAW; kernel with CONFIG_XDP_SOCKETS "
             "(5.4+ for need-wakeup, 5.9+ for crash-safe BPF links)",
    summary="AF_XDP socket + XDP redirect program; UDP payloads from a UMEM in NUMA-local memory",
))
