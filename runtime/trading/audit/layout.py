"""Where the bytes of an audit log are: the file header and the fixed 80-byte record.

Layout apart from algorithm: writer.py (hot thread → ring), log.py (ring → file) and
reader.py (file → checks) use these tables. One record per event in an order's life:

    DECISION  the strategy asked (t_ns = decision time, t2_ns = the triggering feed event's
              receive time, seq2 = its MoldUDP64 sequence number, code = INTENT_*)
    RISK      the risk gate's verdict (code = VERDICT_*, reason = the gate's reason code)
    SENT      the order left (t_ns = right after send() returned, t2_ns = trigger receive
              time again, so tick-to-trade is one subtraction; code = INTENT_*, aux = the
              replaced UserRefNum)
    RESPONSE  a venue response or order entry's own event (code = RESP_*, t_ns = local
              receive time, t2_ns = the venue's timestamp, seq2 = SoupBinTCP sequence
              number, aux = orig UserRefNum (U), ref = order ref (A/U) or match number (E/B),
              flag = state (A/U), liquidity (E) or reason_code (C/S/B)); a fill is an 'E'.

File:  HEADER (64 bytes) then records back to back, nothing else (append-only).

    HEADER  byte 0        8        12            16          24       56   60   64
                 +--------+--------+-------------+-----------+--------+----+----+
                 | magic  |version |record_bytes |created_ns |  pad   |pid |crc |
                 | 8s     |u4      |u4           |i8         |        |u4  |u4  |
                 +--------+--------+-------------+-----------+--------+----+----+

    RECORD  byte 0     8     16     24     32     40     48    52    56    60    62
                 +-----+-----+------+------+------+------+-----+-----+-----+-----+------+
                 |seq  |t_ns |t2_ns |price |ref   |seq2  |uref |aux  |qty  |reas-|locate|
                 |u8   |i8   |i8    |i8    |u8    |u8    |u4   |u4   |u4   |on u2|u2    |
                 +-----+-----+------+------+------+------+-----+-----+-----+-----+------+
            byte 64   65    66    67    68      76    80
                 +----+-----+-----+-----+-------+-----+
                 |kind|code |side |flag |pad 8  |crc  |
                 |u1  |u1   |u1   |u1   |       |u4   |
                 +----+-----+-----+-----+-------+-----+

seq counts every record the hot thread tried to log, so a record the full ring refused
leaves a visible gap. crc = zlib CRC-32 of bytes [0, 76), computed by the writer thread
(the hot thread never computes it). Little-endian throughout.
"""
from __future__ import annotations

import numpy as np

MAGIC = b"TPAUDIT1"
VERSION = 1

HEADER_DTYPE = np.dtype([
    ("magic", "S8"),
    ("version", "<u4"),
    ("record_bytes", "<u4"),
    ("created_ns", "<i8"),
    ("pad", "u1", (32,)),
    ("pid", "<u4"),
    ("crc", "<u4"),         # CRC-32 of header bytes [0, 60)
], align=True)
assert HEADER_DTYPE.itemsize == 64, HEADER_DTYPE.itemsize
HEADER_BYTES = HEADER_DTYPE.itemsize
HEADER_CRC_BYTES = 60

AUDIT_DTYPE = np.dtype([
    ("seq", "<u8"),
    ("t_ns", "<i8"),
    ("t2_ns", "<i8"),
    ("price", "<i8"),
    ("ref", "<u8"),
    ("seq2", "<u8"),
    ("uref", "<u4"),
    ("aux", "<u4"),
    ("qty", "<u4"),
    ("reason", "<u2"),
    ("locate", "<u2"),
    ("kind", "u1"),
    ("code", "u1"),
    ("side", "u1"),
    ("flag", "u1"),
    ("pad", "u1", (8,)),
    ("crc", "<u4"),
], align=True)
assert AUDIT_DTYPE.itemsize == 80, AUDIT_DTYPE.itemsize
RECORD_BYTES = AUDIT_DTYPE.itemsize
CRC_BYTES = 76              # the CRC covers every byte before it

# record kinds
KIND_DECISION = 1
KIND_RISK = 2
KIND_SENT = 3
KIND_RESPONSE = 4
KIND_NAMES = {KIND_DECISION: "decision", KIND_RISK: "risk", KIND_SENT: "sent",
              KIND_RESPONSE: "response"}

# RISK.code
VERDICT_REJECT = 0
VERDICT_PASS = 1

# writer ctl slots (int64)
W_NEXT_SEQ = 0          # the seq the next record gets
W_DROPPED = 1           # records refused: the ring was full
N_WCTL = 8
