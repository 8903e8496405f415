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

    CMD  0 kind u8 | side u8 | tif u8 | display u8 | capacity u8 | iso u8 | cross u8 | pad
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
    ("iso", "u1"), ("cross", "u1"), ("_pad0", "u1"),
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

# OUCH characters the engine interprets
SIDE_BUY = ord("B")
SIDE_SELL = ord("S")
SIDE_SHORT = ord("T")
SIDE_EXEMPT = ord("E")
TIF_DAY = ord("0")
TIF_IOC = ord("3")
DISPLAY_VISIBLE = ord("Y")
DISPLAY_HIDDEN = ord("N")
DISPLAY_ATTRIBUTABLE = ord("A")
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

# Canceled reasons (OUCH 5.0 Order Canceled, 1 byte)
CANCEL_USER = ord("U")            # user requested
CANCEL_IOC = ord("I")             # immediate-or-cancel residual
CANCEL_TIMEOUT = ord("T")
CANCEL_SUPERVISORY = ord("S")
CANCEL_SELF_MATCH = ord("Q")      # self-match prevention
CANCEL_SYSTEM = ord("Z")
CANCEL_COLLAR = ord("K")          # market order stopped at the price band
CANCEL_CLOSED = ord("E")          # end of the session

# Rejected reasons (OUCH 5.0 Order Rejected, u16). REFERENCE.md gives the field but not
# NASDAQ's code table, so these numbers are the venue's own, one per cause; a client can
# print REJECT_NAMES[code]. Check them against NASDAQ's specification before relying on
# the numbers against a real exchange.
REJ_HALTED = 2
REJ_INVALID_STOCK = 4
REJ_INVALID_DISPLAY = 5
REJ_CLOSED = 6
REJ_INVALID_PRICE = 10            # zero, negative or off the instrument's tick grid
REJ_INVALID_QUANTITY = 11         # zero or above the maximum order size
REJ_PRICE_OUTSIDE_BANDS = 12      # outside the LULD-like collar around the reference
REJ_INVALID_SIDE = 13
REJ_INVALID_TIF = 14
REJ_INVALID_CROSS = 15
REJ_UNKNOWN_ORDER = 16            # replace of an unknown or dead order
REJ_VENUE_FULL = 17               # the engine's order table is full
REJ_INVALID_CAPACITY = 18
REJ_INVALID_ISO = 19
REJ_QTY_BELOW_EXECUTED = 20       # replace quantity <= what the chain already executed
REJECT_NAMES = {
    REJ_HALTED: "halted", REJ_INVALID_STOCK: "invalid_stock",
    REJ_INVALID_DISPLAY: "invalid_display", REJ_CLOSED: "closed",
    REJ_INVALID_PRICE: "invalid_price", REJ_INVALID_QUANTITY: "invalid_quantity",
    REJ_PRICE_OUTSIDE_BANDS: "price_outside_bands", REJ_INVALID_SIDE: "invalid_side",
    REJ_INVALID_TIF: "invalid_tif", REJ_INVALID_CROSS: "invalid_cross_type",
    REJ_UNKNOWN_ORDER: "unknown_order", REJ_VENUE_FULL: "venue_full",
    REJ_INVALID_CAPACITY: "invalid_capacity", REJ_INVALID_ISO: "invalid_iso",
    REJ_QTY_BELOW_EXECUTED: "quantity_below_executed",
}
MAX_ORDER_QTY = 1_000_000         # shares; more is rejected (a fat-finger threshold)

# ---------------------------------------------------------------- engine counters
(C_CMDS, C_ACCEPTED, C_REJECTED, C_EXECUTIONS, C_EXEC_SHARES, C_CANCELS, C_REPLACES,
 C_MODIFIES, C_CANCEL_UNKNOWN, C_CANCEL_NOOP, C_MODIFY_BAD, C_SELF_MATCH, C_RESP_DROPPED,
 C_ITCH_MSGS, C_HISTORY_FULL, C_BG_ORDERS, C_CLIENT_CMDS, C_IOC_CANCELS, C_BG_MISSED) = range(19)
N_COUNTERS = 32
COUNTER_NAMES = ("commands", "accepted", "rejected", "executions", "executed_shares",
                 "cancels", "replaces", "modifies", "cancel_unknown_order", "cancel_no_change",
                 "modify_refused", "self_match_cancels", "responses_dropped", "itch_messages",
                 "history_full", "background_orders", "client_commands", "ioc_cancels",
                 "background_target_gone")
N_REJECT_SLOTS = 32               # rejects by reason: counters[REJ_BASE + reason]
REJ_BASE = N_COUNTERS
N_ALL_COUNTERS = N_COUNTERS + N_REJECT_SLOTS
