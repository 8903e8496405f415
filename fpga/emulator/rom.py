"""The parser's ROMs: ITCH 5.0 message lengths and the field-extraction table, as hardware holds them.

A hardware ITCH parser does not run a `switch` per message: it looks each body byte up in a
ROM indexed by (message type, byte offset) that says which record field the byte feeds
(a shift-in of a big-endian field) - one table lookup per byte lane. This module builds those
tables from the layouts in the NASDAQ TotalView-ITCH 5.0 specification, written out here
independently of the software decoder, so the emulator is a second implementation that the
equality tests can hold against the first.

Tables (numpy, read by the jitted datapath):
  MSG_BYTES[type]   spec length of the message in bytes (type byte included); 0 = undefined
  MSG_CLASS[type]   CLASS_UNDEFINED / CLASS_WALK (spec type, no record) / CLASS_RECORD
  MSG_FLAGS[type]   record flags the type sets (F: ATTRIBUTED, Q: CROSS)
  FIELD_ROM[type, offset]  F_* code of the record field that body byte feeds (offsets < 64)
  LE_SHIFT_ROM[type, offset]  bit shift for little-endian placement (the R stock symbol)

RTL: fpga/rtl/tp_itch_rom.vh is generated from these tables (fpga/sim/gen_include.py) and
read by `tp_parser`; a test fails when the include is stale.
"""
from __future__ import annotations

import numpy as np
from tickpath.runtime.core.event import FLAG_ATTRIBUTED, FLAG_CROSS

ROM_OFFSETS = 64            # longest decoded message is 44 bytes
CLASS_UNDEFINED = 0
CLASS_WALK = 1
CLASS_RECORD = 2

# field codes
F_NONE = 0
F_LOCATE = 1
F_TRACKING = 2
F_TS = 3
F_ORDER_REF = 4
F_REF2 = 5
F_SHARES = 6
F_PRICE = 7
F_SIDE = 8
F_AUX = 9
F_REF2_LE = 10              # raw ASCII bytes read as a little-endian u64

# ITCH 5.0 section 4: type -> length (bytes, type included)
SPEC_BYTES = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35, "h": 21,
    "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44, "Q": 40, "B": 19,
    "I": 50, "N": 20, "O": 48,
}
# types that become records: (first byte, length, field) beyond the common header
_COMMON = [(1, 2, F_LOCATE), (3, 2, F_TRACKING), (5, 6, F_TS)]
RECORD_LAYOUTS = {
    "S": [(11, 1, F_AUX)],
    "R": [(11, 8, F_REF2_LE)],
    "H": [(19, 1, F_AUX)],
    "A": [(11, 8, F_ORDER_REF), (19, 1, F_SIDE), (20, 4, F_SHARES), (32, 4, F_PRICE)],
    "F": [(11, 8, F_ORDER_REF), (19, 1, F_SIDE), (20, 4, F_SHARES), (32, 4, F_PRICE)],
    "E": [(11, 8, F_ORDER_REF), (19, 4, F_SHARES), (23, 8, F_REF2)],
    "C": [(11, 8, F_ORDER_REF), (19, 4, F_SHARES), (23, 8, F_REF2), (31, 1, F_AUX), (32, 4, F_PRICE)],
    "X": [(11, 8, F_ORDER_REF), (19, 4, F_SHARES)],
    "D": [(11, 8, F_ORDER_REF)],
    "U": [(11, 8, F_ORDER_REF), (19, 8, F_REF2), (27, 4, F_SHARES), (31, 4, F_PRICE)],
    # P: the order reference (zeroed by NASDAQ for non-displayed orders) is not kept;
    # the event contract lists order_ref for A F E C X D U only
    "P": [(19, 1, F_SIDE), (20, 4, F_SHARES), (32, 4, F_PRICE), (36, 8, F_REF2)],
    "Q": [(11, 8, F_SHARES), (27, 4, F_PRICE), (31, 8, F_REF2), (39, 1, F_AUX)],
    "B": [(11, 8, F_REF2)],
}
TYPE_FLAGS = {"F": FLAG_ATTRIBUTED, "Q": FLAG_CROSS}


def _build():
    msg_bytes = np.zeros(256, np.int32)
    msg_class = np.zeros(256, np.uint8)
    msg_flags = np.zeros(256, np.uint32)
    field_rom = np.zeros((256, ROM_OFFSETS), np.uint8)
    le_shift = np.zeros((256, ROM_OFFSETS), np.uint8)
    for ch, n in SPEC_BYTES.items():
        t = ord(ch)
        msg_bytes[t] = n
        msg_class[t] = CLASS_RECORD if ch in RECORD_LAYOUTS else CLASS_WALK
        msg_flags[t] = TYPE_FLAGS.get(ch, 0)
        for start, width, field in _COMMON + RECORD_LAYOUTS.get(ch, []):
            assert start + width <= n, (ch, start, width)
            for k in range(width):
                assert field_rom[t, start + k] == F_NONE, (ch, start + k)
                field_rom[t, start + k] = field
                le_shift[t, start + k] = 8 * k
    return msg_bytes, msg_class, msg_flags, field_rom, le_shift


MSG_BYTES, MSG_CLASS, MSG_FLAGS, FIELD_ROM, LE_SHIFT_ROM = _build()
