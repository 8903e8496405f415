"""The trading path's two records: what a strategy asks for, and what the venue answered.

Layout apart from algorithm. Every part of the trading half speaks these two records, so
they can be swapped under each other:

    strategy ──INTENT──▶ risk gate ──▶ order manager ──▶ order entry (OUCH client, or the
                                                          backtest's simulated exchange)
    strategy ◀── order manager ◀──RESPONSE── order entry

* An **intent** is one order action the strategy wants (new, cancel, replace, cancel-all for
  a locate). The strategy writes intents into a preallocated array; the loop passes each
  through the risk gate and, if allowed, to order entry. Prices are ITCH/OUCH Price(4)
  integers (4 implied decimals), quantities shares.
* A **response** is one sequenced message from order entry, decoded: the OUCH 5.0 outbound
  message types, with the SoupBinTCP sequence number it arrived under. The live OUCH client
  and the backtest's simulated exchange both produce exactly these records, so the order
  manager, positions, audit log and the strategy cannot tell them apart.

Both are little-endian numpy structured dtypes with `align=True` (numba reads them as
records, no Python objects). Fields that do not apply to a kind are zero.

    INTENT (48 bytes)
    byte 0      8         16        24        32   36   40   42 43 44 45 46  48
         +------+---------+---------+---------+----+----+----+--+--+--+--+---+
         |price |trigger_ |trigger_ |decision_|uref|qty |loc-|ki|si|ti|pa| . |
         | i8   |seq u8   |recv i8  |ns i8    |u4  |u4  |u2  |nd|de|f |d |   |
         +------+---------+---------+---------+----+----+----+--+--+--+--+---+

    RESPONSE (64 bytes)
    byte 0      8      16       24      32      40   44   48   52   54 55 56 57 58 59 60   64
         +------+------+--------+-------+-------+----+----+----+----+--+--+--+--+--+--+----+
         |price |ref   |venue_  |recv_  |seq    |uref|orig|qty |reas|ki|si|li|rc|st|ti|pad |
         | i8   |u8    |ts i8   |ns i8  |u8     |u4  |_u4 |u4  |u2  |nd|de|q |  |  |f |    |
         +------+------+--------+-------+-------+----+----+----+----+--+--+--+--+--+--+----+
"""
from __future__ import annotations

import numpy as np

# -- intents ------------------------------------------------------------------------------
INTENT_NEW = 1          # a new order: locate, side, qty, price, tif; uref assigned by the order manager
INTENT_CANCEL = 2       # cancel (qty = the new intended size, 0 = all) the order `uref`
INTENT_REPLACE = 3      # replace the order `uref` with qty/price (loses time priority)
INTENT_CANCEL_ALL = 4   # cancel every open order of `locate` (locate 0xFFFF: of every locate)

SIDE_BUY = ord("B")
SIDE_SELL = ord("S")
TIF_DAY = 0             # OUCH TimeInForce '0' is sent as the ASCII digit; these are the values
TIF_IOC = 3
ALL_LOCATES = 0xFFFF

INTENT_DTYPE = np.dtype(
    [
        ("price", "<i8"),           # Price(4)
        ("trigger_seq", "<u8"),     # the feed event that caused it (MoldUDP64 seq); 0 on a timer
        ("trigger_recv_ns", "<i8"),  # that event's receive time, CLOCK_REALTIME
        ("decision_ns", "<i8"),     # when the strategy decided, CLOCK_REALTIME
        ("uref", "<u4"),            # NEW: filled by the order manager; CANCEL/REPLACE: the target
        ("qty", "<u4"),
        ("locate", "<u2"),
        ("kind", "u1"),             # INTENT_*
        ("side", "u1"),             # SIDE_BUY / SIDE_SELL (NEW)
        ("tif", "u1"),              # TIF_DAY / TIF_IOC (NEW, REPLACE)
        ("pad", "u1", (3,)),
    ],
    align=True,
)
assert INTENT_DTYPE.itemsize == 48, INTENT_DTYPE.itemsize

# -- responses ----------------------------------------------------------------------------
# kind: the OUCH 5.0 outbound message type, ASCII
RESP_SYSTEM = ord("S")          # system event (reason_code = event code)
RESP_ACCEPTED = ord("A")
RESP_REPLACED = ord("U")
RESP_CANCELED = ord("C")        # qty = the decrement
RESP_EXECUTED = ord("E")
RESP_REJECTED = ord("J")        # reason = numeric reject code
RESP_CANCEL_PENDING = ord("P")
RESP_CANCEL_REJECT = ord("I")
RESP_BROKEN = ord("B")
RESP_MODIFIED = ord("M")
RESP_PRIORITY = ord("T")
# not from the venue: order entry's own events, so the audit log and strategy see them too
RESP_SESSION_LOST = ord("!")    # the order-entry session dropped (cancel-on-disconnect applies)
RESP_UNDECODED = ord("?")       # a sequenced message order entry could not decode, or messages the
                                # venue skipped: reason = ouch.layout.BAD_* (truncated, unknown type,
                                # sequence gap), reason_code = the raw type byte, seq = its number,
                                # qty = messages missing (gap). Trading on is unsafe: trip the kill switch.

RESPONSE_DTYPE = np.dtype(
    [
        ("price", "<i8"),           # Price(4): A/U order price, E execution price
        ("ref", "<u8"),             # A/U: the order reference number the ITCH feed shows;
                                    # E/B: the match number (as the ITCH E/C message carries)
        ("venue_ts", "<i8"),        # the venue's timestamp, ns since midnight
        ("recv_ns", "<i8"),         # local receive time, CLOCK_REALTIME (simulated time in a backtest)
        ("seq", "<u8"),             # SoupBinTCP sequence number of this sequenced message
        ("uref", "<u4"),            # the UserRefNum it concerns (U: the new one)
        ("orig_uref", "<u4"),       # U: the replaced order's UserRefNum
        ("qty", "<u4"),             # A/U: quantity; C: decrement; E: executed; M: new qty
        ("reason", "<u2"),          # J: numeric reject reason
        ("kind", "u1"),             # RESP_*
        ("side", "u1"),             # A/U/M: 'B'/'S'/...
        ("liquidity", "u1"),        # E: liquidity flag (ASCII)
        ("reason_code", "u1"),      # C: cancel reason (ASCII); S: event code
        ("state", "u1"),            # A/U: 'L' live, 'D' dead
        ("tif", "u1"),              # A/U: time in force
        ("pad", "u1", (4,)),
    ],
    align=True,
)
assert RESPONSE_DTYPE.itemsize == 64, RESPONSE_DTYPE.itemsize


def new_intents(capacity: int) -> np.ndarray:
    return np.zeros(capacity, dtype=INTENT_DTYPE)


def new_responses(capacity: int) -> np.ndarray:
    return np.zeros(capacity, dtype=RESPONSE_DTYPE)
