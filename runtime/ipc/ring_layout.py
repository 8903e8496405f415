"""Where the bytes of an SPSC ring are (layout apart from algorithm, after Agrona's
RingBufferDescriptor). The ring is one contiguous block — a private mmap or a shared-memory
segment — so two threads or two processes see the same cursors.

    offset  0   +--------------------------------------------------+
                | line 0: MAGIC  VERSION  CAPACITY  RECORD_BYTES   |  config, read-mostly
                |         POLICY                                   |
    offset 128  +--------------------------------------------------+
                | line 2: WRITE_SEQ  READ_CACHE  DROPPED  WAITS    |  producer-owned
    offset 256  +--------------------------------------------------+
                | line 4: READ_SEQ   WRITE_CACHE                   |  consumer-owned
    offset 384  +--------------------------------------------------+
                | (padding to HEADER_BYTES)                        |
    offset 512  +--------------------------------------------------+
                | CAPACITY records of RECORD_BYTES (slot = seq & (CAPACITY-1))
                +--------------------------------------------------+

Cursors are monotonically increasing int64 sequences (Disruptor style); the slot is the
sequence masked by CAPACITY-1. Producer and consumer lines are 128 bytes apart, not 64,
because the adjacent-line prefetcher pulls pairs of lines (false sharing across the pair).
Each side caches the opposite cursor (rigtorp/SPSCQueue) and re-reads it, with acquire,
only when the cached value says full / empty.
"""
from __future__ import annotations

MAGIC_VALUE = 0x7469636B70617468  # "tickpath"
LAYOUT_VERSION = 1
HEADER_BYTES = 512
HEADER_SLOTS = HEADER_BYTES // 8

# int64 indices into the header
MAGIC = 0
VERSION = 1
CAPACITY = 2
RECORD_BYTES = 3
POLICY = 4
WRITE_SEQ = 16
READ_CACHE = 17
DROPPED = 18
WAITS = 19
READ_SEQ = 32
WRITE_CACHE = 33

# full-ring policies
POLICY_WAIT = 0          # producer spins until the consumer frees a slot (counted in WAITS)
POLICY_DROP_NEWEST = 1   # the new record is dropped and counted in DROPPED
POLICIES = {"wait": POLICY_WAIT, "drop-newest": POLICY_DROP_NEWEST}
