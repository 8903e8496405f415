"""Register map of the tickpath FPGA parser (the AXI-Lite user BAR, /dev/xdma<N>_user).

One module says where the bytes are; the emulator, the backend and `fpga status` use it.
The register file is REGFILE_BYTES (16 KiB) long: a 4 KiB page of identity, control, status
and 64-bit counters, then an 8 KiB bitmap with one bit per stock locate (all 65536).

    0x0000 +---------------------------------------------+
           | ID        VERSION   RECORD_B  EVENT_VER     |  RO identity      (32-bit)
    0x0010 | FIFO_DEP  C2H_ALIGN REGFILE_B (rsvd)        |  RO geometry      (32-bit)
    0x0020 | CONTROL   UDP_PORT  COMMAND   (rsvd)        |  RW / RW / WS     (32-bit)
    0x0030 | STATUS    FIFO_LVL  FIFO_HIGH (rsvd)        |  RO status        (32-bit)
    0x0040 | ALIVE_NS (64)       EXPECTED_SEQ (64)       |  RO               (64-bit)
    0x0050 | SESSION (10 bytes ASCII, 6 pad)             |  RO
    0x0060 |                 reserved                    |
    0x0100 | COUNTERS[0..N_COUNTERS) (64-bit each)       |  RO, cleared by COMMAND.RESET_COUNTERS
           |                 reserved                    |
    0x2000 | LOCATE_BITMAP: 65536 bits (8 KiB)           |  RW: bit (loc & 31) of u32 word loc >> 5
    0x4000 +---------------------------------------------+

Access: RO = the card writes, the host only reads. RW = the host writes, the card reads.
WS = write-1-to-start strobe: the host sets bits, the card performs the action and clears
the register to 0 (the host waits for 0 as the acknowledgement). The emulator shares the
file with the host through mmap, so each 32-bit word has one writer only - that is why the
card's acknowledgements (STATUS) live apart from the host's requests (CONTROL, COMMAND).

64-bit registers are read with one aligned 8-byte load (PCIe memory reads of a BAR may be
8 bytes wide); `read_u64_split` gives the hi/lo/hi recipe for a 32-bit-only bus.

Locate filter: with CONTROL.LOCATE_FILTER clear every message passes; with it set, a message
whose locate is not 0 passes only if its bitmap bit is 1. Locate 0 (system-wide messages:
S, and gap records) always passes. UDP_PORT 0 accepts any destination port.
"""
from __future__ import annotations

import numpy as np
from tickpath.runtime.core import counters as rc
from tickpath.runtime.core.errors import ConfigError

REGFILE_BYTES = 0x4000
ID_MAGIC = 0x54504641           # "TPFA": tickpath FPGA
VERSION = (1 << 16) | 0         # major 1, minor 0 of this register map

# (name, offset, width_bits, access, meaning)
REGISTERS = [
    ("ID", 0x000, 32, "RO", "magic 0x54504641 ('TPFA'): this BAR is a tickpath parser"),
    ("VERSION", 0x004, 32, "RO", "register map version, major << 16 | minor"),
    ("RECORD_BYTES", 0x008, 32, "RO", "bytes per C2H record (64)"),
    ("EVENT_VERSION", 0x00C, 32, "RO", "event record version the parser writes"),
    ("FIFO_DEPTH", 0x010, 32, "RO", "output FIFO depth, records"),
    ("C2H_ALIGN", 0x014, 32, "RO", "host buffer alignment the C2H engine needs, bytes"),
    ("REGFILE_BYTES", 0x018, 32, "RO", "size of this register file, bytes"),
    ("CONTROL", 0x020, 32, "RW", "bit0 ENABLE, bit1 DROP_ON_FULL (else back-pressure), bit2 LOCATE_FILTER, bit3 ADOPT_FIRST_SEQ (applies at session reset)"),
    ("UDP_PORT", 0x024, 32, "RW", "UDP destination port accepted; 0 = any"),
    ("COMMAND", 0x028, 32, "WS", "bit0 RESET_COUNTERS, bit1 CLEAR_OVERFLOW, bit2 RESET_SESSION; card clears when done"),
    ("STATUS", 0x030, 32, "RO", "bit0 LINK_UP, bit1 ENABLED, bit2 OVERFLOW (sticky), bit3 SESSION_LOCKED, bit4 INPUT_DONE, bit5 DROP_ON_FULL"),
    ("FIFO_LEVEL", 0x034, 32, "RO", "records in the output FIFO now"),
    ("FIFO_HIGH_WATER", 0x038, 32, "RO", "highest FIFO level since the last counter reset"),
    ("ALIVE_NS", 0x040, 64, "RO", "CLOCK_MONOTONIC ns of the card's last status update (liveness)"),
    ("EXPECTED_SEQ", 0x048, 64, "RO", "next expected MoldUDP64 sequence number"),
    ("SESSION", 0x050, 80, "RO", "locked MoldUDP64 session, 10 ASCII bytes"),
]
REG = {name: off for name, off, _w, _a, _m in REGISTERS}

ID = REG["ID"]
CONTROL = REG["CONTROL"]
UDP_PORT = REG["UDP_PORT"]
COMMAND = REG["COMMAND"]
STATUS = REG["STATUS"]
SESSION = REG["SESSION"]
SESSION_BYTES = 10

# CONTROL bits
CTRL_ENABLE = 1 << 0
CTRL_DROP_ON_FULL = 1 << 1
CTRL_LOCATE_FILTER = 1 << 2
CTRL_ADOPT_FIRST_SEQ = 1 << 3   # else the expected sequence starts at 1 (late join = gap)
# COMMAND bits
CMD_RESET_COUNTERS = 1 << 0
CMD_CLEAR_OVERFLOW = 1 << 1
CMD_RESET_SESSION = 1 << 2
# STATUS bits
ST_LINK_UP = 1 << 0
ST_ENABLED = 1 << 1
ST_OVERFLOW = 1 << 2
ST_SESSION_LOCKED = 1 << 3
ST_INPUT_DONE = 1 << 4
ST_DROP_ON_FULL = 1 << 5

# 64-bit counters at COUNTERS_BASE + 8 * index
COUNTERS_BASE = 0x100
COUNTER_NAMES = [
    ("PACKETS_IN", "frames arriving at the parser's port (any kind)"),
    ("PACKETS_NOT_FEED", "frames that are not IPv4/UDP (or are truncated below UDP)"),
    ("PACKETS_FILTERED", "UDP datagrams to another destination port"),
    ("PACKETS_DISABLED", "frames discarded while CONTROL.ENABLE was clear"),
    ("PACKETS", "MoldUDP64 packets parsed"),
    ("MESSAGES", "ITCH messages walked (any type)"),
    ("MESSAGES_OUT", "records pushed into the output FIFO (gap records included)"),
    ("HEARTBEATS", "packets with message count 0"),
    ("END_OF_SESSION", "packets with message count 0xFFFF"),
    ("GAPS", "sequence gaps (one gap record each)"),
    ("GAP_MESSAGES", "messages missing in those gaps"),
    ("DUPLICATES", "messages with seq below the expected one (not emitted)"),
    ("MALFORMED_PACKETS", "packets shorter than the header, or lengths running past the end"),
    ("MALFORMED_MESSAGES", "zero-length messages or messages too short for their type"),
    ("UNKNOWN_TYPES", "message types ITCH 5.0 does not define"),
    ("SKIPPED_TYPES", "ITCH types walked over without a record"),
    ("WRONG_SESSION", "packets from another MoldUDP64 session"),
    ("LOCATE_FILTERED", "records withheld by the locate filter"),
    ("FIFO_DROPPED", "records dropped at a full output FIFO (drop-on-full)"),
    ("RECORDS_C2H", "records handed to the host over C2H"),
    ("BACKPRESSURE_STALLS", "times ingress stalled on a full FIFO (back-pressure mode)"),
    ("BEATS_IN", "8-byte datapath beats consumed"),
    ("INGRESS_OVERRUN", "packets lost before the parser (emulator: UDP socket buffer overflow, SO_RXQ_OVFL)"),
]
N_COUNTERS = len(COUNTER_NAMES)
CNT = {name: i for i, (name, _m) in enumerate(COUNTER_NAMES)}
COUNTERS_END = COUNTERS_BASE + 8 * N_COUNTERS

LOCATE_BITMAP = 0x2000
LOCATE_BITMAP_BYTES = 65536 // 8
assert LOCATE_BITMAP + LOCATE_BITMAP_BYTES == REGFILE_BYTES
assert COUNTERS_END <= 0x1000

# FPGA counter -> runtime counter slot (for the runtime's merged stats)
RUNTIME_SLOT = {
    "PACKETS_IN": rc.FRAMES,
    "PACKETS_NOT_FEED": rc.FRAMES_NOT_FEED,
    "PACKETS": rc.PACKETS,
    "MESSAGES": rc.MESSAGES,
    "MESSAGES_OUT": rc.EVENTS,
    "HEARTBEATS": rc.HEARTBEATS,
    "END_OF_SESSION": rc.END_OF_SESSION,
    "GAPS": rc.GAPS,
    "GAP_MESSAGES": rc.GAP_MESSAGES,
    "DUPLICATES": rc.DUPLICATES,
    "MALFORMED_PACKETS": rc.MALFORMED_PACKETS,
    "MALFORMED_MESSAGES": rc.MALFORMED_MESSAGES,
    "UNKNOWN_TYPES": rc.UNKNOWN_TYPES,
    "SKIPPED_TYPES": rc.SKIPPED_TYPES,
    "WRONG_SESSION": rc.WRONG_SESSION,
    "FIFO_DROPPED": rc.EVENTS_DROPPED,
    "INGRESS_OVERRUN": rc.FRAMES_DROPPED,
}


def reg_words(buf) -> tuple[np.ndarray, np.ndarray]:
    """(u32 view, u64 view) of a register-file buffer (an mmap of the BAR or the file)."""
    if len(buf) != REGFILE_BYTES:
        raise ConfigError("register file has the wrong size", n_bytes=len(buf), expected=REGFILE_BYTES)
    u32 = np.frombuffer(buf, dtype="<u4", count=REGFILE_BYTES // 4)
    u64 = np.frombuffer(buf, dtype="<u8", count=REGFILE_BYTES // 8)
    return u32, u64


def counter_word(name: str) -> int:
    """Index of a counter in the u64 view."""
    return (COUNTERS_BASE >> 3) + CNT[name]


def read_u64_split(u32: np.ndarray, offset: int) -> int:
    """A 64-bit register over a 32-bit bus: hi, lo, hi again until hi is stable (no torn reads)."""
    w = offset >> 2
    while True:
        hi = int(u32[w + 1])
        lo = int(u32[w])
        if int(u32[w + 1]) == hi:
            return (hi << 32) | lo


def init_identity(u32: np.ndarray, fifo_depth: int, c2h_align: int, record_bytes: int,
                  event_version: int) -> None:
    """What the card's ROM shows at power-up (the emulator writes it on start)."""
    u32[REG["ID"] >> 2] = ID_MAGIC
    u32[REG["VERSION"] >> 2] = VERSION
    u32[REG["RECORD_BYTES"] >> 2] = record_bytes
    u32[REG["EVENT_VERSION"] >> 2] = event_version
    u32[REG["FIFO_DEPTH"] >> 2] = fifo_depth
    u32[REG["C2H_ALIGN"] >> 2] = c2h_align
    u32[REG["REGFILE_BYTES"] >> 2] = REGFILE_BYTES
