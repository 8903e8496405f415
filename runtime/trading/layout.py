"""Where the trading core's bytes are: the own-order record, its states, the per-instrument
and scalar state slots, and the counter slots (layout apart from algorithm: orders.py,
risk.py, positions.py and step.py move these bytes; context.py allocates them).

Own-order table: `ORDER_DTYPE[capacity]` (capacity a power of two), the slot of an order is
`uref & (capacity - 1)`. UserRefNums rise strictly per session; a new order whose slot still
holds a non-terminal order skips to the next uref (urefs need only rise, not be contiguous),
so a lookup is one index and a compare, and no order is ever overwritten while open.

    ORDER (64 bytes)
    byte 0      8          16        24       28    32     36     40      44    48   50 51 52 53 54 64
         +------+----------+---------+--------+-----+------+------+-------+-----+----+--+--+--+--+--+
         |price |trigger_  |sent_ns  |uref    |qty  |leaves|chain_|filled |other|loc |st|si|ti|pr|..|
         | i8   |recv_ns i8| i8      |u4      |u4   |u4    |exec  |u4     |uref |u2  |at|de|f |ev|  |
         +------+----------+---------+--------+-----+------+------+-------+-----+----+--+--+--+--+--+

    qty        shares the order (or this link of a replace chain) was entered/replaced with, open part
    leaves     open shares the worst case counts (PendingNew: all of qty; Live: what rests)
    chain_exec shares executed over the whole replace chain (OUCH replace quantity counts them)
    other      PendingReplace: the new uref; a replacement (PendingNew): the original's uref
    prev       the state to return to when a cancel or replace is rejected
    acked      0 while nothing came back from the venue for it: its leaves count as in flight
"""
from __future__ import annotations

import numpy as np

# -- order states -------------------------------------------------------------------------
FREE = 0             # slot never used
NEW = 1              # accepted by the risk gate, not sent yet (never visible after a step)
PENDING_NEW = 2
LIVE = 3
PARTIAL = 4          # PartiallyFilled
FILLED = 5
PENDING_CANCEL = 6
CANCELLED = 7
PENDING_REPLACE = 8
REJECTED = 9
REPLACED = 10        # the original of a replace chain after the venue's U (its shares moved on)
STATE_NAMES = ("free", "new", "pending_new", "live", "partially_filled", "filled",
               "pending_cancel", "cancelled", "pending_replace", "rejected", "replaced")

ORDER_DTYPE = np.dtype(
    [
        ("price", "<i8"),
        ("trigger_recv_ns", "<i8"),
        ("sent_ns", "<i8"),
        ("uref", "<u4"),
        ("qty", "<u4"),
        ("leaves", "<u4"),
        ("chain_exec", "<u4"),
        ("filled", "<u4"),
        ("other", "<u4"),
        ("locate", "<u2"),
        ("state", "u1"),
        ("side", "u1"),
        ("tif", "u1"),
        ("prev", "u1"),
        ("acked", "u1"),            # 1 once the venue has answered for it (A, E, C, U, M)
        ("pad", "u1", (9,)),
    ],
    align=True,
)
assert ORDER_DTYPE.itemsize == 64, ORDER_DTYPE.itemsize

# -- per-locate integer state, int64[n_locates, N_LOC] --------------------------------------
L_OPEN_ORDERS = 0    # non-terminal own orders
L_OPEN_BUY = 1       # worst-case open buy shares (leaves of every non-terminal buy)
L_OPEN_SELL = 2
L_INFLIGHT = 3       # shares sent and not yet acknowledged (PendingNew / replacement)
L_POS = 4            # position, shares (+ long)
L_DUP_PRICE_B = 5    # duplicate guard: last new buy (price, qty, time)
L_DUP_QTY_B = 6
L_DUP_NS_B = 7
L_DUP_PRICE_S = 8
L_DUP_QTY_S = 9
L_DUP_NS_S = 10
L_RESTRICTED = 11    # 1: no new orders in this instrument
L_TOUCHED = 12       # 1: already in this step's touched list
L_LAST_NEW_NS = 13   # the last new order's decision time (strategies may read it)
L_LAST_UREF_B = 14   # uref of the last buy order (new or replacement) sent in this locate
L_LAST_UREF_S = 15   # ... sell: a one-quote-per-side strategy finds its quotes here
N_LOC = 16

# -- per-locate P&L, float64[n_locates, N_PNL] (dollars; prices are Price(4)) ---------------
P_AVG_PX = 0         # average entry price of the open position, Price(4)
P_REALISED = 1
P_FEES = 2
P_UNREALISED = 3     # marked to the mid at the last book update
P_BOUGHT = 4         # shares bought / sold (totals)
P_SOLD = 5
P_MARK = 6           # the last mid it was marked to, Price(4) (NaN before the first)
N_PNL = 8

# -- totals, float64[N_TOT] (kept incrementally: the loss breaker reads them per step) -----
TOT_REALISED = 0
TOT_UNREALISED = 1
TOT_FEES = 2
N_TOT = 4

# -- scalar state, int64[N_ST] ------------------------------------------------------------
S_NEXT_UREF = 0      # the next UserRefNum to hand out
S_N_INTENTS = 1      # intents the strategy wrote in this call
S_N_OUT = 2          # entries in the outbox
S_TRIG_SEQ = 3       # the event now being handled (stamped into intents)
S_TRIG_RECV_NS = 4
S_LAST_MD_NS = 5     # receive time of the last feed event (staleness breaker)
S_LAST_RESP_SEQ = 6  # SoupBinTCP sequence of the last applied response
S_TOTAL_ABS_POS = 7  # sum over locates of |position|
S_TOTAL_OPEN = 8     # sum over locates of worst-case open shares (buy + sell)
S_NEXT_TIMER_NS = 9  # when on_timer is next due (0: at the first step)
S_N_TOUCHED = 10
S_SESSION_DOWN = 11  # 1 after RESP_SESSION_LOST until the loop says it reconnected
S_N_OPEN = 12        # non-terminal orders, all locates
S_KILL_DONE = 13     # 1: every open order has had its cancel sent since the kill
S_BREACHES = 14      # risk rejects that count toward the breach breaker
S_AUDIT_ON = 15      # 1: every decision, verdict, send and response goes to tctx.audit
S_RATE_HEAD = 16     # N_RATES slots: ring heads of the sliding-window counters (risk.py)
S_RATE_POS = 24      # N_RATES slots: each head modulo its ring, kept so the hot path never divides
N_ST = 32

# -- kill switch reasons (kill[KILL_REASON]) ----------------------------------------------
K_NONE, K_MANUAL, K_SIGNAL, K_LOSS, K_REJECT_RATE, K_BREACHES, K_STALE, K_SESSION, K_AUDIT, \
    K_UNSURE, K_OTHER_PROCESS = range(11)
KILL_REASONS = ("none", "manual", "signal", "loss_limit", "reject_rate", "breach_count",
                "market_data_stale", "session_lost", "audit_ring_full", "state_unsure",
                "kill_command")

# -- counters, int64[N_TC] ----------------------------------------------------------------
# risk rejects by reason (each rejected intent is counted once, by its first failing check)
R_KILL = 0
R_RESTRICTED = 1
R_BOOK_BAD = 2
R_MAX_QTY = 3
R_MAX_NOTIONAL = 4
R_COLLAR = 5
R_POSITION = 6
R_TOTAL_POSITION = 7
R_OPEN_ORDERS = 8
R_ORDER_RATE_1S = 9
R_ORDER_RATE_100MS = 10
R_MSG_RATE_1S = 11
R_MSG_RATE_100MS = 12
R_DUPLICATE = 13
R_BAD_INTENT = 14       # zero qty, bad side/price/locate, unknown or closed target order
R_TABLE_FULL = 15       # no free own-order slot
R_OUTBOX_FULL = 16
R_SESSION_DOWN = 17
R_NO_REFERENCE = 18     # collar on and neither a BBO nor a last trade to check against
R_NO_SYMBOL = 19        # the feed has not listed the instrument ('R'): nothing to name it by
N_REJECT_REASONS = 20
REJECT_NAMES = ("kill_switch", "restricted", "book_unreliable", "max_order_qty", "max_notional",
                "price_collar", "position_limit", "total_position_limit", "max_open_orders",
                "order_rate_1s", "order_rate_100ms", "msg_rate_1s", "msg_rate_100ms", "duplicate",
                "bad_intent", "order_table_full", "outbox_full", "session_down", "no_reference_price",
                "no_symbol")
# activity
C_INTENTS = 24
C_INTENTS_DROPPED = 25  # the strategy wrote more intents than the buffer holds
C_NEW_SENT = 26
C_CANCEL_SENT = 27
C_REPLACE_SENT = 28
C_RISK_REJECTS = 29     # sum of the R_* slots
C_RESPONSES = 30
C_ACCEPTED = 31
C_EXECUTIONS = 32
C_FILLED_SHARES = 33
C_CANCELLED = 34
C_VENUE_REJECTS = 35
C_CANCEL_REJECTS = 36
C_REPLACED = 37
C_IMPOSSIBLE = 38       # a response that no transition allows (counted, order unchanged)
C_UNKNOWN_UREF = 39
C_UNKNOWN_KIND = 40
C_DUP_RESPONSE = 41     # sequence number not above the last applied one: ignored
C_SEQ_GAP = 42          # a response sequence number skipped ahead: state unsure -> kill
C_SESSION_LOST = 43
C_KILL_TRIPS = 44
C_KILL_CANCELS = 45     # cancels the kill switch (or cancel-on-disconnect) sent
C_TIMER_CALLS = 46
C_BOOK_CALLS = 47
C_BROKEN_TRADES = 48
C_SEND_ERRORS = 49      # order entry refused an outbox entry (the live loop counts it)
C_T2T_RECORDED = 50
C_LATE_RESPONSES = 51   # a legal race: a cancel reject / cancel pending after the order closed
C_SYSTEM_EVENTS = 52
C_MODIFIED = 53
C_AUDIT_FULL = 54
C_UNDECODED = 55        # order entry could not decode a venue message (or a gap): kill
C_REPLACE_IGNORED = 56  # the original died (filled/cancelled) first: the venue ignores its replace
C_KILL_WITHHELD = 57    # gated, then held back at the wire: the kill switch tripped in between
N_TC = 64
COUNTER_NAMES = {**{i: f"reject_{n}" for i, n in enumerate(REJECT_NAMES)}, **{
    C_INTENTS: "intents", C_INTENTS_DROPPED: "intents_dropped", C_NEW_SENT: "new_sent",
    C_CANCEL_SENT: "cancel_sent", C_REPLACE_SENT: "replace_sent", C_RISK_REJECTS: "risk_rejects",
    C_RESPONSES: "responses", C_ACCEPTED: "accepted", C_EXECUTIONS: "executions",
    C_FILLED_SHARES: "filled_shares", C_CANCELLED: "cancelled", C_VENUE_REJECTS: "venue_rejects",
    C_CANCEL_REJECTS: "cancel_rejects", C_REPLACED: "replaced", C_IMPOSSIBLE: "impossible_transitions",
    C_UNKNOWN_UREF: "unknown_uref", C_UNKNOWN_KIND: "unknown_response_kind",
    C_DUP_RESPONSE: "duplicate_responses", C_SEQ_GAP: "response_seq_gaps",
    C_SESSION_LOST: "session_lost", C_KILL_TRIPS: "kill_trips", C_KILL_CANCELS: "kill_cancels",
    C_TIMER_CALLS: "timer_calls", C_BOOK_CALLS: "book_calls", C_BROKEN_TRADES: "broken_trades",
    C_SEND_ERRORS: "send_errors", C_T2T_RECORDED: "t2t_recorded", C_LATE_RESPONSES: "late_responses",
    C_SYSTEM_EVENTS: "system_events", C_MODIFIED: "modified", C_AUDIT_FULL: "audit_ring_full",
    C_UNDECODED: "undecoded_responses", C_REPLACE_IGNORED: "replaces_ignored",
    C_KILL_WITHHELD: "kill_withheld"}}


def counters_dict(counters: np.ndarray) -> dict:
    return {name: int(counters[i]) for i, name in sorted(COUNTER_NAMES.items())}
