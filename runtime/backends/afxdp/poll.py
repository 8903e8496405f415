"""The AF_XDP hot path: RX ring → UDP payloads in the frame buffer → fill ring (numba).

One call: acquire-load the RX producer; for each new descriptor (at most one per free frame
slot) parse Ethernet / one optional 802.1Q tag / IPv4 / UDP, every length checked before the
read it guards, copy the UDP payload of feed datagrams into payload[slot]; release-store
the RX consumer; give every frame back to the fill ring in one batch (one release store of
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


import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.sys.intrinsics import load_acquire, load_relaxed, realtime_ns, store_release
from tickpath.runtime.sys.libc import libc_recvfrom
from tickpath.runtime.backends.afxdp.layout import (
    ETH_P_8021Q,
    ETH_P_IP,
    IPPROTO_UDP,
    MSG_DONTWAIT,
    XDP_RING_NEED_WAKEUP,
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



@njit(nogil=True, inline="always")
def _be16(buf, i):
    return (np.int64(buf[i]) << 8) | np.int64(buf[i + 1])


@njit(nogil=True, cache=True)
def _deliver(umem, a, flen, port, slot_bytes, detail):
    """Classify one frame. Returns (payload_offset, payload_len) for a feed datagram, else
    (-1, 0) not feed, or (-2, 0) feed but dropped. Every read is inside [a, a + flen)."""
    end = a + flen
    if flen < 14:
        detail[D_SHORT] += 1
        return -1, 0
    et = _be16(umem, a + 12)
    l3 = a + 14
    if et == ETH_P_8021Q:
        if flen < 18:
            detail[D_SHORT] += 1
            return -1, 0
        detail[D_VLAN] += 1
        et = _be16(umem, a + 16)
        l3 = a + 18
    if et != ETH_P_IP:
        detail[D_NOT_IPV4] += 1
        return -1, 0
    if l3 + 20 > end:
        detail[D_SHORT] += 1
        return -1, 0
    vihl = np.int64(umem[l3])
    if (vihl >> 4) != 4:
        detail[D_NOT_IPV4] += 1
        return -1, 0
    ihl = (vihl & 0x0F) * 4
    totlen = _be16(umem, l3 + 2)
    # IP total length, not frame length: short frames are padded on the wire
    if ihl < 20 or totlen < ihl + 8 or l3 + totlen > end:
        detail[D_SHORT] += 1
        return -1, 0
    if np.int64(umem[l3 + 9]) != IPPROTO_UDP:
        detail[D_NOT_UDP] += 1
        return -1, 0
    l4 = l3 + ihl                       # l4 + 8 <= l3 + totlen <= end (checked above)
    frag = _be16(umem, l3 + 6) & 0x3FFF
    if frag != 0:
        detail[D_FRAGMENTS] += 1
        # only a first fragment carries the UDP header: if it is the feed's, we lost feed data
        if (frag & 0x1FFF) == 0 and _be16(umem, l4 + 2) == port:
            return -2, 0
        return -1, 0
    if _be16(umem, l4 + 2) != port:
        detail[D_WRONG_PORT] += 1
        return -1, 0
    ulen = _be16(umem, l4 + 4)
    if ulen < 8 or ulen > totlen - ihl:
        detail[D_SHORT] += 1
        return -1, 0
    plen = ulen - 8
    if plen > slot_bytes:
        detail[D_OVERSIZE] += 1
        return -2, 0
    return l4 + 8, plen


@njit(nogil=True, cache=True)
def afxdp_poll(state, payload, lengths, recv_ns):
    """The backend's poll (kind FRAMES): fills slots [0, n) and returns n (never raises)."""
    (rx_prod, rx_cons, rx_desc, fill_prod, fill_cons, fill_flags, fill_desc,
     umem, stash, cursors, params, counters, detail) = state
    counters[C.POLLS] += 1
    n_slots = min(lengths.shape[0], payload.shape[0], recv_ns.shape[0])
    slot_bytes = payload.shape[1]
    port = params[P_UDP_PORT]
    umem_bytes = params[P_UMEM_BYTES]
    frame_mask = params[P_FRAME_MASK]
    stash_cap = stash.shape[0]

    cons = np.int64(rx_cons[0])                      # ours: plain read
    prod = np.int64(load_acquire(rx_prod, 0))        # kernel's: acquire, descriptors visible
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
        store_release(rx_cons, 0, (cons + n) & _U32)  # frames are ours now; slots reusable
        counters[C.FRAMES] += out
    else:
        counters[C.EMPTY_POLLS] += 1

    if top > 0:
        fprod = np.int64(fill_prod[0])
        fcons = np.int64(load_acquire(fill_cons, 0))
        fill_size = params[P_FILL_SIZE]
        k = min(fill_size - ((fprod - fcons) & _U32), top)
        for j in range(k):
            fill_desc[(fprod + j) & (fill_size - 1)] = np.uint64(stash[top - 1 - j])
        top -= k
        store_release(fill_prod, 0, (fprod + k) & _U32)  # one publish per batch
    cursors[C_STASH_TOP] = top

    if (load_relaxed(fill_flags, 0) & XDP_RING_NEED_WAKEUP) != 0 \
            or (params[P_BUSY_POLL] != 0 and n == 0):
        detail[D_KICKS] += 1
        if libc_recvfrom(params[P_FD], 0, 0, MSG_DONTWAIT, 0, 0) < 0:
            detail[D_KICK_ERRORS] += 1
    return out
