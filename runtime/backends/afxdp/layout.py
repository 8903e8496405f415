"""Where the bytes are for AF_XDP: constants and struct layouts, nothing that moves data.

Sources: include/uapi/linux/if_xdp.h, include/uapi/linux/bpf.h, include/uapi/linux/if_link.h
and Documentation/networking/af_xdp.rst. The kernel structs grew over versions, so every
getsockopt result is decoded by its returned length (xdp_mmap_offsets: 128 bytes with the
ring `flags` word, 96 without; xdp_statistics: 48 bytes, 24 on old kernels).

The four rings share one shape, mapped from the socket fd at a fixed page offset:

    +----------+----------+--------+---------------------------------------+
    | producer | consumer | flags  | desc[0] desc[1] ... desc[size-1]      |
    |   u32    |   u32    |  u32   | RX: xdp_desc{u64 addr,u32 len,u32 opt}|
    +----------+----------+--------+ FILL: u64 frame address               |
     (each word at the offset XDP_MMAP_OFFSETS gives; desc at `desc`)

Producer/consumer are free-running u32 counters; slot = counter & (size - 1).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

# --- sockets (uapi/linux/socket.h, if_xdp.h) ---
AF_XDP = 44
SOL_XDP = 283
XDP_MMAP_OFFSETS = 1
XDP_RX_RING = 2
XDP_TX_RING = 3
XDP_UMEM_REG = 4
XDP_UMEM_FILL_RING = 5
XDP_UMEM_COMPLETION_RING = 6
XDP_STATISTICS = 7
XDP_OPTIONS = 8
XDP_OPTIONS_ZEROCOPY = 1

# bind flags (sockaddr_xdp.sxdp_flags)
XDP_SHARED_UMEM = 1 << 0
XDP_COPY = 1 << 1
XDP_ZEROCOPY = 1 << 2
XDP_USE_NEED_WAKEUP = 1 << 3

XDP_RING_NEED_WAKEUP = 1 << 0

# mmap page offsets of the rings
XDP_PGOFF_RX_RING = 0
XDP_PGOFF_TX_RING = 0x80000000
XDP_UMEM_PGOFF_FILL_RING = 0x100000000
XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000

# busy poll (uapi/asm-generic/socket.h)
SOL_SOCKET = 1
SO_BUSY_POLL = 46
SO_PREFER_BUSY_POLL = 69
SO_BUSY_POLL_BUDGET = 70

MSG_DONTWAIT = 0x40

# --- XDP attach flags (uapi/linux/if_link.h) ---
XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4

# XDP actions
XDP_ABORTED = 0
XDP_DROP = 1
XDP_PASS = 2
XDP_TX = 3
XDP_REDIRECT = 4

# --- struct layouts ---
# struct xdp_umem_reg {u64 addr; u64 len; u32 chunk_size; u32 headroom; u32 flags;
#                      u32 tx_metadata_len}  (32 bytes; the last word is 0 = none)
UMEM_REG = struct.Struct("=QQIIII")
# struct sockaddr_xdp {u16 family; u16 flags; u32 ifindex; u32 queue_id; u32 shared_umem_fd}
SOCKADDR_XDP = struct.Struct("=HHIII")
# struct xdp_ring_offset {u64 producer, consumer, desc, flags}; xdp_mmap_offsets = rx,tx,fr,cr
RING_OFFSET_V2 = struct.Struct("=QQQQ")
RING_OFFSET_V1 = struct.Struct("=QQQ")          # before Linux 5.4: no flags word
MMAP_OFFSETS_V2_BYTES = 4 * RING_OFFSET_V2.size   # 128
MMAP_OFFSETS_V1_BYTES = 4 * RING_OFFSET_V1.size   # 96
# struct xdp_statistics {rx_dropped, rx_invalid_descs, tx_invalid_descs, rx_ring_full,
#                        rx_fill_ring_empty_descs, tx_ring_empty_descs}
STATS_FIELDS = ("rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full",
                "rx_fill_ring_empty_descs", "tx_ring_empty_descs")
STATS_V2_BYTES = 8 * len(STATS_FIELDS)   # 48
STATS_V1_BYTES = 24                      # rx_dropped, rx_invalid_descs, tx_invalid_descs
XDP_DESC_BYTES = 16                      # struct xdp_desc {u64 addr; u32 len; u32 options}
FILL_DESC_BYTES = 8                      # u64 frame address
XDP_OPTIONS_BYTES = 4                    # struct xdp_options {u32 flags}

FRAME_SIZES = (2048, 4096)   # aligned-mode chunk sizes (power of two, <= page size)

# --- packet layout read by the hot path (network byte order) ---
ETH_HLEN = 14
ETH_TYPE_OFF = 12
VLAN_HLEN = 4
ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
IPV4_MIN_HLEN = 20
IP_TOTLEN_OFF = 2
IP_FRAG_OFF = 6          # 3 flag bits + 13-bit offset
IP_PROTO_OFF = 9
IP_MF_OFFSET_MASK = 0x3FFF   # MF flag + fragment offset: non-zero means a fragment
IPPROTO_UDP = 17
UDP_HLEN = 8
UDP_DPORT_OFF = 2
UDP_LEN_OFF = 4


@dataclass(frozen=True)
class RingOffsets:
    producer: int
    consumer: int
    desc: int
    flags: int          # -1 when the kernel has no flags word (need-wakeup unavailable)


@dataclass(frozen=True)
class MmapOffsets:
    rx: RingOffsets
    tx: RingOffsets
    fill: RingOffsets
    completion: RingOffsets


def decode_mmap_offsets(raw: bytes) -> MmapOffsets:
    """Decode getsockopt(XDP_MMAP_OFFSETS) by its length (128 or 96 bytes)."""
    if len(raw) >= MMAP_OFFSETS_V2_BYTES:
        rings = [RingOffsets(*RING_OFFSET_V2.unpack_from(raw, i * RING_OFFSET_V2.size)) for i in range(4)]
    elif len(raw) >= MMAP_OFFSETS_V1_BYTES:
        # old layout: producer, consumer, desc; no flags
        rings = [RingOffsets(*RING_OFFSET_V1.unpack_from(raw, i * RING_OFFSET_V1.size), -1) for i in range(4)]
    else:
        raise ValueError(f"xdp_mmap_offsets too short: optlen={len(raw)}")
    return MmapOffsets(*rings)


def decode_statistics(raw: bytes) -> dict:
    """Decode getsockopt(XDP_STATISTICS) by its length; missing fields are absent."""
    n = min(len(raw) // 8, len(STATS_FIELDS))
    vals = struct.unpack_from(f"={n}Q", raw, 0)
    return dict(zip(STATS_FIELDS[:n], vals))


def is_power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0
