"""The event record: THE contract of tickpath (version 1).

One fixed-size record per decoded feed message: 64 bytes (one cache line), little-endian,
a numpy structured dtype. The software decoder, the FPGA's C2H DMA output and the FPGA
emulator all produce exactly these bytes; fields that do not apply to a message are zero.

    byte 0        8        16       24       32       40       48    52   54  56 57 58 59 60    64
         +--------+--------+--------+--------+--------+--------+-----+----+----+--+--+--+--+-----+
         |  seq   |ts_exch |ts_recv |order_  |  ref2  | shares |price|loc-|trk-|ty|si|ve|au|flags|
         |  u64   |  u64   |  i64   |ref u64 |  u64   |  u64   | u32 |ate |ing |u8|u8|u8|u8| u32 |
         +--------+--------+--------+--------+--------+--------+-----+----+----+--+--+--+--+-----+

    seq        MoldUDP64 sequence number of the message
    ts_exch    ITCH timestamp, ns since midnight (the 6-byte field, widened)
    ts_recv    receive time, ns, CLOCK_REALTIME (stamped by the backend per frame)
    order_ref  order reference number (A F E C X D U: the original / affected order)
    ref2       U: new order reference; E C P Q: match number; B: match number;
               R: the 8-byte stock symbol, raw ASCII bytes read as a little-endian u64
    shares     shares (A F E C X U P Q); Q widens ITCH's 8-byte cross shares here
    price      ITCH Price(4): integer, 4 implied decimals (A F C U P Q)
    locate     stock locate code
    tracking   tracking number
    msg_type   ITCH message type, ASCII ('A', 'E', ...); 0 for a synthetic gap event
    side       'B' / 'S' (A F P), else 0
    version    EVENT_VERSION of the producer
    aux        S: event code; H: trading state; Q: cross type; C: printable flag ('Y'/'N')
    flags      FLAG_* bits below

Gap events (msg_type 0, FLAG_GAP): seq = first missing sequence, shares = count missing.
"""
from __future__ import annotations

import numpy as np

EVENT_VERSION = 1
EVENT_BYTES = 64

EVENT_DTYPE = np.dtype(
    [
        ("seq", "<u8"),
        ("ts_exch", "<u8"),
        ("ts_recv", "<i8"),
        ("order_ref", "<u8"),
        ("ref2", "<u8"),
        ("shares", "<u8"),
        ("price", "<u4"),
        ("locate", "<u2"),
        ("tracking", "<u2"),
        ("msg_type", "u1"),
        ("side", "u1"),
        ("version", "u1"),
        ("aux", "u1"),
        ("flags", "<u4"),
    ],
    align=True,
)
assert EVENT_DTYPE.itemsize == EVENT_BYTES, EVENT_DTYPE.itemsize

# Byte offsets, for producers that write raw bytes (the FPGA emulator, DMA readers).
EVENT_OFFSETS = {name: EVENT_DTYPE.fields[name][1] for name in EVENT_DTYPE.names}

# flags
FLAG_GAP = 1 << 0          # synthetic gap event: messages [seq, seq+shares) are missing
FLAG_RETRANSMIT = 1 << 1   # arrived through retransmission
FLAG_LINE_B = 1 << 2       # arrived first on line B (A/B arbitration)
FLAG_CROSS = 1 << 3        # Q cross trade
FLAG_ATTRIBUTED = 1 << 4   # F: add with MPID attribution


def empty_events(n: int) -> np.ndarray:
    """A zeroed event array of n records."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def stock_symbol(ref2: int) -> str:
    """Decode the R message's stock symbol from ref2 (raw ASCII, space padded)."""
    return int(ref2).to_bytes(8, "little").decode("ascii", "replace").rstrip()
