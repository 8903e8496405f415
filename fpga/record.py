"""The card's C2H DMA output format: the tickpath event record, as the FPGA writes it.

The FPGA parser streams one 64-byte record per decoded message over the XDMA card-to-host
AXI-Stream channel. The bytes are exactly `tickpath.runtime.core.event.EVENT_DTYPE` (version 1),
defined once in the runtime (the core owns its contracts); this module only states the rules
a DMA producer and consumer follow, and holds the helpers that enforce them.

    C2H stream (AXI-Stream, 512-bit beats = one record per beat on the card)
    +----------------+----------------+----------------+-----
    | record 0 (64B) | record 1 (64B) | record 2 (64B) | ...     little-endian fields,
    +----------------+----------------+----------------+-----     layout in runtime/event.py
    ^ host buffer address: multiple of C2H_ALIGN_BYTES (4096)

Rules:
* granularity: the stream carries whole records only; every DMA transfer length is a
  multiple of RECORD_BYTES. A consumer that sees a partial record keeps the remainder and
  completes it from the next read (a pipe may split a transfer); a stream that ends inside a
  record is an error (the producer died mid-transfer).
* alignment: host buffers for the real XDMA engine are page aligned (the driver's
  IOCTL_XDMA_ALIGN_GET reports the engine's need; 4096 covers every Alveo shell we know).
  Records are 64-byte aligned inside a buffer (one cache line each: no false sharing).
* fields that do not apply to a message are zero; `version` is EVENT_VERSION; gap records
  are msg_type 0 with FLAG_GAP (see runtime/event.py).
* TLAST (end of packet) follows the last record of each feed packet; opening the C2H node
  with O_TRUNC makes the driver return a read at TLAST (eop flush).
"""
from __future__ import annotations

import mmap

import numpy as np
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import EVENT_BYTES, EVENT_DTYPE, EVENT_VERSION

RECORD_BYTES = EVENT_BYTES          # one cache line
RECORD_DTYPE = EVENT_DTYPE          # re-exported, never redefined
RECORD_VERSION = EVENT_VERSION
C2H_ALIGN_BYTES = 4096              # page: what the XDMA AXI-ST engine needs for host buffers


def aligned_records(n_records: int, align_bytes: int = C2H_ALIGN_BYTES) -> np.ndarray:
    """A zeroed EVENT_DTYPE array of n_records whose data starts at a multiple of align_bytes.

    Backed by an anonymous mmap (page aligned by construction), so it also suits DMA.
    """
    if n_records <= 0:
        raise ConfigError("record buffer must hold at least one record", n_records=n_records)
    if align_bytes <= 0 or align_bytes & (align_bytes - 1) or align_bytes > mmap.PAGESIZE:
        raise ConfigError("alignment must be a power of two up to the page size",
                          align_bytes=align_bytes, page_bytes=mmap.PAGESIZE)
    buf = mmap.mmap(-1, n_records * RECORD_BYTES)
    arr = np.frombuffer(buf, dtype=RECORD_DTYPE, count=n_records)
    return arr


def check_record_buffer(events: np.ndarray, align_bytes: int = RECORD_BYTES, what: str = "events") -> None:
    """Raise ConfigError unless `events` is a contiguous EVENT_DTYPE array aligned to align_bytes."""
    if not isinstance(events, np.ndarray) or events.dtype != RECORD_DTYPE:
        raise ConfigError("record buffer must be an EVENT_DTYPE array", buffer=what,
                          dtype=str(getattr(events, "dtype", type(events).__name__)))
    if events.ndim != 1 or not events.flags.c_contiguous or not events.flags.writeable:
        raise ConfigError("record buffer must be 1-D, contiguous and writeable", buffer=what)
    if len(events) == 0:
        raise ConfigError("record buffer is empty", buffer=what)
    addr = events.ctypes.data
    if addr % align_bytes:
        raise ConfigError("record buffer is not aligned", buffer=what, address=hex(addr),
                          align_bytes=align_bytes)


def check_stream_length(n_bytes: int, node: str) -> None:
    """A DMA transfer length must be a whole number of records."""
    from tickpath.runtime.core.errors import BackendError

    if n_bytes % RECORD_BYTES:
        raise BackendError("record stream not aligned to the record size", node=node,
                           n_bytes=n_bytes, record_bytes=RECORD_BYTES,
                           remainder=n_bytes % RECORD_BYTES)
