"""Where the bytes of the venue's records are (layout apart from algorithm; engine.py,
wire.py and matcher.py move them).

Two fixed-size records cross threads through SPSC rings (runtime.ipc.ring):

* CMD_DTYPE — one inbound order instruction (network thread -> matching thread), already
  validated for framing and decoded from OUCH; the engine validates its content.
* RESP_DTYPE — one outbound OUCH event for one user (matching thread -> network thread);
  the network thread formats it as an OUCH 5.0 message inside a SoupBinTCP 'S' packet.

Both are 128 bytes (two cache lines), little-endian, aligned. Characters are stored as
their ASCII code (u8). `token` is the index of the inbound command in the OUCH
receive log (timestamps.py) so a response or an ITCH message can be tied to the order that
caused it; -1 for the venue's own background flow.

    CMD  0 kind u8 | side u8 | tif u8 | display u8 | capacity u8 | iso u8 | cross u8 | flags u8
         8 user i32 | uref u32 | orig_uref u32 | locate i32
        24 qty i64 | 32 price i64 (Price, 4 implied decimals) | 40 recv_ns i64 | 48 token i64
        56 clordid [14]u8 | pad to 128
    RESP 0 kind u8 (OUCH type) | side | tif | display | capacity | iso | cross | state
         8 liquidity u8 | reason_c u8 (Canceled reason) | reason u16 (Rejected reason) | pad
        12 user i32 | 16 uref u32 | orig_uref u32 | locate i32 | pad
        32 qty i64 | 40 price i64 | 48 order_ref u64 | 56 match u64 | 64 ts_ns i64
        72 token i64 | 80 clordid [14]u8 | pad to 128
"""
from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- inbound commands
CMD_ENTER = ord("O")
CMD_REPLACE = ord("U")
CMD_CANCEL = ord("X")
CMD_MODIFY = ord("M")

CMD_DTYPE = np.dtype([
    ("kind", "u1"), ("side", "u1"), ("tif", "u1"), ("display", "u1"), ("capacity", "u1"),
    ("iso", "u1"), ("cross", "u1"), ("flags", "u1"),
    ("user", "<i4"), ("uref", "<u4"), ("orig_uref", "<u4"), ("locate", "<i4"),
    ("qty", "<i8"), ("price", "<i8"), ("recv_ns", "<i8"), ("token", "<i8"),
    ("clordid", "u1", (14,)), ("_pad1", "u1", (58,)),
], align=True)
assert CMD_DTYPE.itemsize == 128, CMD_DTYPE.itemsize

# ---------------------------------------------------------------- outbound responses
R_ACCEPTED = ord("A")
R_REPLACED = ord("U")
R_CANCELED = ord("C")
R_EXECUTED = ord("E")
R_REJECTED = ord("J")
R_MODIFIED = ord("M")
R_SYSTEM = ord("S")

RESP_DTYPE = np.dtype([
    ("kind", "u1"), ("side", "u1"), ("tif", "u1"), ("display", "u1"), ("capacity", "u1"),
    ("iso", "u1"), ("cross", "u1"), ("state", "u1"),
    ("liquidity", "u1"), ("reason_c", "u1"), ("reason", "<u2"),
    ("user", "<i4"), ("uref", "<u4"), ("orig_uref", "<u4"), ("locate", "<i4"), ("_pad0", "<i4"),
    ("qty", "<i8"), ("price", "<i8"), ("order_ref", "<u8"), ("match", "<u8"),
    ("ts_ns", "<i8"), ("token", "<i8"),
    ("clordid", "u1", (14,)), ("_pad1", "u1", (34,)),
], align=True)
assert RESP_DTYPE.itemsize == 128, RESP_DTYPE.itemsize

# CMD flags: from the message's optional appendage (OUCH 5.0 Appendix A)
FLAG_POST_ONLY = 1                # option tag 12 PostOnly = 'P'

# OUCH characters the engine interprets
SIDE_BUY = ord("B")
SIDE_SELL = ord("S")
SIDE_SHORT = ord("T")
SIDE_EXEMPT = ord("E")
TIF_DAY = ord("0")
TIF_IOC = ord("3")
TIF_GTX = ord("5")                # good till extended hours: the venue's one session = day
TIF_AFTER_HOURS = ord("E")        # after hours: the venue's one session = day
DISPLAY_VISIBLE = ord("Y")
DISPLAY_HIDDEN = ord("N")
DISPLAY_ATTRIBUTABLE = ord("A")
DISPLAY_CONFORMANT = ord("Z")     # displayed (anonymous): no away markets here to conform to
STATE_LIVE = ord("L")
STATE_DEAD = ord("D")
LIQ_ADDED = ord("A")
LIQ_REMOVED = ord("R")
CROSS_CONTINUOUS = ord("N")
CAPACITIES = (ord("A"), ord("P"), ord("R"), ord("O"))
ISO_VALUES = (ord("Y"), ord("N"))

# Market orders: OUCH has no order type field; a price of 214748.3647 (0x7FFFFFFF in
# 4-decimal units, OUCH 4.x's "market" value carried into 5.0's 8-byte price) is a market
# order, executed as IOC within the price bands.
MARKET_PRICE = 0x7FFFFFFF

# Canceled reasons (OUCH 5.0 Order Canceled, 1 byte; the same letters as NASDAQ's table)
CANCEL_USER = ord("U")            # user requested
CANCEL_IOC = ord("I")             # immediate-or-cancel residual
CANCEL_TIMEOUT = ord("T")
CANCEL_SUPERVISORY = ord("S")
CANCEL_SELF_MATCH = ord("Q")      # self-match prevention
CANCEL_SYSTEM = ord("Z")          # also: a replace of a live order with invalid details
CANCEL_COLLAR = ord("K")          # market order stopped at the price band
CANCEL_CLOSED = ord("E")          # end of the session
CANCEL_POST_ONLY = ord("G")       # post-only order would have traded on arrival

# Rejected reasons: OUCH 5.0 Order Rejected's Reason (u16), NASDAQ's numbering, checked
# against the OUCH 5.0 specification's reject reason table (rev 1.05: 0x01 Quote
# Unavailable, 0x02 Destination Closed, 0x03 Invalid Display, ..., 0x1D Invalid Price,
# 0x1E Shares Exceed Threshold; as listed by a public Wireshark OUCH 5.0 dissector,
# ouch5.lua, written from that revision). The venue's own cause names map onto them; two
# causes share 0x0F Other where NASDAQ has no closer code (TIF, capacity).
REJ_DESTINATION_CLOSED = 0x02     # the venue is closed
REJ_INVALID_DISPLAY = 0x03
REJ_FAT_FINGER = 0x06             # price outside the LULD-like collar around the reference
REJ_HALTED = 0x07
REJ_ISO_NOT_ALLOWED = 0x08        # InterMarketSweep other than Y/N
REJ_INVALID_SIDE = 0x09
REJ_PROCESSING_ERROR = 0x0A       # the engine's order table is full
REJ_OTHER = 0x0F                  # time in force or capacity the venue does not take
REJ_INVALID_QUANTITY = 0x13       # zero
REJ_INVALID_CROSS = 0x14          # cross type other than N (continuous market only)
REJ_INVALID_SYMBOL = 0x17
REJ_INVALID_PRICE = 0x1D          # zero, negative, off the tick grid; market price on a replace
REJ_SHARES_EXCEED_THRESHOLD = 0x1E  # above MAX_ORDER_QTY
REJECT_NAMES = {
    REJ_DESTINATION_CLOSED: "destination_closed", REJ_INVALID_DISPLAY: "invalid_display",
    REJ_FAT_FINGER: "fat_finger", REJ_HALTED: "halted", REJ_ISO_NOT_ALLOWED: "iso_not_allowed",
    REJ_INVALID_SIDE: "invalid_side", REJ_PROCESSING_ERROR: "processing_error",
    REJ_OTHER: "other", REJ_INVALID_QUANTITY: "invalid_quantity",
    REJ_INVALID_CROSS: "invalid_cross_order", REJ_INVALID_SYMBOL: "invalid_symbol",
    REJ_INVALID_PRICE: "invalid_price", REJ_SHARES_EXCEED_THRESHOLD: "shares_exceed_threshold",
}
MAX_ORDER_QTY = 1_000_000         # shares; more is rejected (a fat-finger threshold)

# ---------------------------------------------------------------- engine counters
(C_CMDS, C_ACCEPTED, C_REJECTED, C_EXECUTIONS, C_EXEC_SHARES, C_CANCELS, C_REPLACES,
 C_MODIFIES, C_CANCEL_UNKNOWN, C_CANCEL_NOOP, C_MODIFY_BAD, C_SELF_MATCH, C_RESP_DROPPED,
 C_ITCH_MSGS, C_HISTORY_FULL, C_BG_ORDERS, C_CLIENT_CMDS, C_IOC_CANCELS, C_BG_MISSED,
 C_REPLACE_UNKNOWN, C_REPLACE_INVALID, C_POST_ONLY_CANCELS) = range(22)
N_COUNTERS = 32
COUNTER_NAMES = ("commands", "accepted", "rejected", "executions", "executed_shares",
                 "cancels", "replaces", "modifies", "cancel_unknown_order", "cancel_no_change",
                 "modify_refused", "self_match_cancels", "responses_dropped", "itch_messages",
                 "history_full", "background_orders", "client_commands", "ioc_cancels",
                 "background_target_gone", "replace_unknown_order",
                 "replace_invalid_canceled", "post_only_cancels")
N_REJECT_SLOTS = 64               # rejects by reason: counters[REJ_BASE + reason]
REJ_BASE = N_COUNTERS
N_ALL_COUNTERS = N_COUNTERS + N_REJECT_SLOTS
