"""The AF_XDP hot path: RX ring → UDP payloads in the frame buffer → fill ring (numba).

One call: acquire-load the RX producer; for each new descriptor (at most one per free frame
slot) parse Ethernet / one optional 802.1Q tag / IPv4 / UDP (runtime/feed/netheaders.py,
every length checked before the read it guards), copy the UDP payload of feed datagrams
into payload[slot]; release-store the RX consumer; give every frame back to the fill ring in one batch (one release store of
the fill producer); kick the kernel with recvfrom(MSG_DONTWAIT) only when the fill ring
says NEED_WAKEUP (or, under busy-poll, when the ring was empty: the syscall drives NAPI).

Frames the fill ring has no room for wait in a LIFO stash (frames are interchangeable), so
the UMEM may hold more frames than the fill ring. Nothing raises: every outcome is a counter.

Counter accounting, per RX descriptor (tested as an invariant):
  DESCS = FRAMES + FRAMES_NOT_FEED + FRAMES_DROPPED + BAD_DESC
  FRAMES_NOT_FEED: not IPv4/UDP to the feed port, truncated headers, non-feed fragments
  FRAMES_DROPPED: feed datagrams we could not deliver (first fragment of a fragmented
                  feed datagram; payload longer than a frame slot)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.sys.intrinsics import load_acquire, load_relaxed, realtime_ns, store_release
from tickpath.runtime.sys.libc import libc_recvfrom
from tickpath.runtime.backends.afxdp.layout import MSG_DONTWAIT, XDP_RING_NEED_WAKEUP
from tickpath.runtime.feed.netheaders import (
    LINK_ETHERNET,
    NH_FEED_FRAGMENT,
    NH_NOT_IPV4,
    NH_NOT_UDP,
    NH_SHORT,
    NH_WRONG_PORT,
    udp_payload,
)

# backend-local detail counters (the shared array has the four summary slots)
D_DESCS = 0          # RX descriptors consumed
D_SHORT = 1          # frame shorter than its headers / IP or UDP length past the frame
D_NOT_IPV4 = 2       # other ethertypes (ARP, IPv6, QinQ...) or IP version != 4
D_NOT_UDP = 3        # IPv4, other protocol
D_WRONG_PORT = 4     # UDP to another port
D_FRAGMENTS = 5      # IPv4 fragments (MF or offset != 0)
D_VLAN = 6           # frames carrying one 802.1Q tag (delivered if otherwise feed)
D_OVERSIZE = 7       # feed payload longer than a frame slot
D_BAD_DESC = 8       # descriptor outside the UMEM (kernel bug / corruption)
D_KICKS = 9          # recvfrom wake-ups issued
D_KICK_ERRORS = 10   # wake-ups that returned < 0
N_DETAIL = 16
DETAIL_NAMES = {D_DESCS: "rx_descs", D_SHORT: "short_frames", D_NOT_IPV4: "not_ipv4",
                D_NOT_UDP: "not_udp", D_WRONG_PORT: "wrong_port", D_FRAGMENTS: "ip_fragments",
                D_VLAN: "vlan_frames", D_OVERSIZE: "oversize_payloads", D_BAD_DESC: "bad_descs",
                D_KICKS: "kicks", D_KICK_ERRORS: "kick_errors"}

# params (read-only int64 array)
P_FD = 0
P_UDP_PORT = 1
P_FRAME_MASK = 2     # ~(frame_size - 1): descriptor address → its frame
P_RX_MASK = 3
P_FILL_SIZE = 4
P_UMEM_BYTES = 5
P_BUSY_POLL = 6
N_PARAMS = 8
C_STASH_TOP = 0      # cursors (mutable int64 array): frames waiting for the fill ring
N_CURSORS = 8

_U32 = 0xFFFFFFFF


class XskState(NamedTuple):
    """What afxdp_poll reads and writes (numba types it as a tuple: no run-time cost). The
    ring words are views of the kernel's mmapped rings (layout.py); the rest is ours."""
    rx_prod: np.ndarray      # u32[1], the kernel's: read with an acquire load
    rx_cons: np.ndarray      # u32[1], ours: release-stored after the batch
    rx_desc: np.ndarray      # u64[2 * rx size]: (addr, len | options << 32) per descriptor
    fill_prod: np.ndarray    # u32[1], ours
    fill_cons: np.ndarray    # u32[1], the kernel's
    fill_flags: np.ndarray   # u32[1], XDP_RING_NEED_WAKEUP
    fill_desc: np.ndarray    # u64[fill size]: frame addresses
    umem: np.ndarray         # u8[umem bytes], the frames
    stash: np.ndarray        # int64[n frames]: free frames waiting for fill-ring room (LIFO)
    cursors: np.ndarray      # int64[N_CURSORS]: C_STASH_TOP
    params: np.ndarray       # int64[N_PARAMS], read-only: P_*
    counters: np.ndarray     # int64[N_COUNTERS], the runtime's (runtime/core/counters.py)
    detail: np.ndarray       # int64[N_DETAIL]: D_*


@njit(nogil=True, inline="always")   # inlined into afxdp_poll, which is cached
def _deliver(umem, a, flen, port, slot_bytes, detail):
    """Classify one frame (runtime/feed/netheaders.py parses it) and count why it is not
    delivered. Returns (payload_offset, payload_len) for a feed datagram, else (-1, 0) not
    feed, or (-2, 0) feed but dropped. Every read is inside [a, a + flen)."""
    off, plen, _dport, vlan = udp_payload(umem, a, flen, LINK_ETHERNET, port)
    if vlan != 0:
        detail[D_VLAN] += 1
    if off >= 0:
        if plen > slot_bytes:
            detail[D_OVERSIZE] += 1
            return -2, 0
        return off, plen
    if off == NH_SHORT:
        detail[D_SHORT] += 1
    elif off == NH_NOT_IPV4:
        detail[D_NOT_IPV4] += 1
    elif off == NH_NOT_UDP:
        detail[D_NOT_UDP] += 1
    elif off == NH_WRONG_PORT:
        detail[D_WRONG_PORT] += 1
    else:
        detail[D_FRAGMENTS] += 1
        if off == NH_FEED_FRAGMENT:
            return -2, 0
    return -1, 0


@njit(nogil=True, cache=True, _nrt=False)
def afxdp_poll(state, payload, lengths, recv_ns):
    """The backend's poll (kind FRAMES): fills slots [0, n) and returns n (never raises)."""
    umem, stash, cursors, params = state.umem, state.stash, state.cursors, state.params
    counters, detail, rx_desc = state.counters, state.detail, state.rx_desc
    counters[C.POLLS] += 1
    n_slots = min(lengths.shape[0], payload.shape[0], recv_ns.shape[0])
    slot_bytes = payload.shape[1]
    port = params[P_UDP_PORT]
    umem_bytes = params[P_UMEM_BYTES]
    frame_mask = params[P_FRAME_MASK]
    stash_cap = stash.shape[0]

    cons = np.int64(state.rx_cons[0])                # ours: plain read
    prod = np.int64(load_acquire(state.rx_prod, 0))  # kernel's: acquire, descriptors visible
    n = min((prod - cons) & _U32, n_slots)
    top = cursors[C_STASH_TOP]
    out = 0
    if n > 0:
        now_ns = realtime_ns()
        rx_mask = params[P_RX_MASK]
        for i in range(n):
            idx = (cons + i) & rx_mask
            addr = np.int64(rx_desc[2 * idx])
            flen = np.int64(rx_desc[2 * idx + 1] & np.uint64(_U32))
            detail[D_DESCS] += 1
            base = addr & frame_mask
            if addr < 0 or base >= umem_bytes or addr + flen > umem_bytes \
                    or addr + flen > base - frame_mask:  # frame_mask == -frame_size
                detail[D_BAD_DESC] += 1
                counters[C.RECV_ERRORS] += 1
                if 0 <= base < umem_bytes and top < stash_cap:
                    stash[top] = base
                    top += 1
                continue
            off, plen = _deliver(umem, addr, flen, port, slot_bytes, detail)
            if off == -1:
                counters[C.FRAMES_NOT_FEED] += 1
            elif off == -2:
                counters[C.FRAMES_DROPPED] += 1
            else:
                for b in range(plen):
                    payload[out, b] = umem[off + b]
                lengths[out] = plen
                recv_ns[out] = now_ns
                out += 1
            if top < stash_cap:
                stash[top] = base
                top += 1
        store_release(state.rx_cons, 0, (cons + n) & _U32)  # frames are ours now; slots reusable
        counters[C.FRAMES] += out
    else:
        counters[C.EMPTY_POLLS] += 1

    if top > 0:
        fprod = np.int64(state.fill_prod[0])
        fcons = np.int64(load_acquire(state.fill_cons, 0))
        fill_size = params[P_FILL_SIZE]
        k = min(fill_size - ((fprod - fcons) & _U32), top)
        for j in range(k):
            state.fill_desc[(fprod + j) & (fill_size - 1)] = np.uint64(stash[top - 1 - j])
        top -= k
        store_release(state.fill_prod, 0, (fprod + k) & _U32)  # one publish per batch
    cursors[C_STASH_TOP] = top

    if (load_relaxed(state.fill_flags, 0) & XDP_RING_NEED_WAKEUP) != 0 \
            or (params[P_BUSY_POLL] != 0 and n == 0):
        detail[D_KICKS] += 1
        if libc_recvfrom(params[P_FD], 0, 0, MSG_DONTWAIT, 0, 0) < 0:
            detail[D_KICK_ERRORS] += 1
    return out
