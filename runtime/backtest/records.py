"""Where the bytes of a backtest are: the fill log record, the P&L sample record, the
counter slots, the own-order table columns and the state slots of the simulated exchange
(layout apart from algorithm: exchange.py and loop.py move these bytes).

    FILL (56 bytes) — one own execution, in the order the exchange made them
    byte 0        8        16       24       32       40     44     48   50 51 52     56
         +--------+--------+--------+--------+--------+------+------+----+--+--+------+
         |exch_ns |recv_ns |sent_ns |price   |match   |uref  |qty   |loc |si|li| pad  |
         |  i8    |  i8    |  i8    |  i8    |  u8    | u4   | u4   |u2  |de|q |      |
         +--------+--------+--------+--------+--------+------+------+----+--+--+------+
    exch_ns   simulated exchange time of the fill (ITCH clock, ns since midnight)
    recv_ns   when the strategy receives the E response (exch_ns + response latency)
    sent_ns   when the strategy sent the order that filled (its decision time)
    liquidity 'A' added (resting order filled), 'R' removed (marketable on arrival)

The hash of a run's fill log (sha256 of these bytes) is its identity: the same files and
config give the same hash, serial or on Ray.
"""
from __future__ import annotations

import numpy as np

FILL_DTYPE = np.dtype(
    [
        ("exch_ns", "<i8"),
        ("recv_ns", "<i8"),
        ("sent_ns", "<i8"),
        ("price", "<i8"),        # Price(4)
        ("match", "<u8"),
        ("uref", "<u4"),
        ("qty", "<u4"),
        ("locate", "<u2"),
        ("side", "u1"),          # 'B' / 'S'
        ("liquidity", "u1"),     # 'A' / 'R'
        ("pad", "u1", (4,)),
    ],
    align=True,
)
assert FILL_DTYPE.itemsize == 56, FILL_DTYPE.itemsize

# one P&L sample per sampling interval of simulated time (the loop writes them)
SAMPLE_DTYPE = np.dtype(
    [
        ("t_ns", "<i8"),          # exchange clock
        ("equity", "<f8"),        # cash + sum(position * mid) - fees, dollars
        ("net_position", "<i8"),  # sum of signed positions, shares
        ("gross_position", "<i8"),  # sum of |position|, shares
    ],
    align=True,
)

# queue models
MODEL_L3_FIFO = 0        # exact: order refs tell who is ahead (ITCH is order by order)
MODEL_RISK_AVERSE = 1    # L2: only trades advance us; cancels never come from ahead
MODEL_POWER = 2          # L2: a cancel is ahead with probability f(front)/(f(front)+f(back)), f = x^n
MODELS = {"l3_fifo": MODEL_L3_FIFO, "risk_averse": MODEL_RISK_AVERSE, "power": MODEL_POWER}

# own-order table columns (int64[K, N_OI]); ahead is a float64[K] beside it
OI_UREF, OI_LOC, OI_SIDE, OI_PRICE, OI_OPEN, OI_REF, OI_LIMIT_REF, OI_SENT_NS, OI_TIF, OI_EXEC = range(10)
N_OI = 10   # OI_EXEC: shares executed over the order's replace chain (OUCH U quantities are totals)
# taken-liquidity table columns (int64[T, 4]): what own marketable orders removed from a level
TK_LOC, TK_SIDE, TK_PRICE, TK_QTY = range(4)

# exchange state slots (int64)
ST_N_OWN = 0          # live own orders (rows [0, n) of the table)
ST_N_TAKEN = 1
ST_MAX_REF = 2        # the largest recorded order ref seen (ITCH refs rise through the day)
ST_NEXT_REF = 3       # order refs the exchange gives own orders (above any recorded one)
ST_NEXT_MATCH = 4
ST_MODEL = 5
ST_TRADE_THROUGH = 6  # 1: a trade at a worse price fills own orders priced better
ST_N_FILLS = 7
ST_RSP_HEAD = 9       # response channel (exchange → strategy): ring cursors
ST_RSP_TAIL = 10
ST_RSP_LAST_T = 11    # last arrival time: the channel is FIFO (one TCP session)
ST_ORD_HEAD = 12      # order channel (strategy → exchange)
ST_ORD_TAIL = 13
ST_ORD_LAST_T = 14
ST_SEQ = 15           # SoupBinTCP sequence number of the last response
N_ST = 16
# float slots
FP_POWER_N = 0
FP_MAKER_FEE = 1      # dollars per share (negative: a rebate)
FP_TAKER_FEE = 2
FP_CASH = 3           # dollars
FP_FEES = 4           # dollars paid
N_FP = 8

# counters (int64), reported by name
CTR_NAMES = (
    "orders", "fills", "filled_shares", "cancels", "canceled_shares", "replaces", "rejects",
    "cancel_rejects", "cancel_noop", "own_table_full", "taken_table_full",
    "refs_not_rising", "order_queue_full", "response_queue_full", "maker_fills", "taker_fills",
    "feed_events", "exchange_events", "strategy_calls", "timer_calls", "outbox_overflow",
    "unknown_intents",
)
CTR = {name: i for i, name in enumerate(CTR_NAMES)}
N_CTR = 32
(C_ORDERS, C_FILLS, C_FILLED_SHARES, C_CANCELS, C_CANCELED_SHARES, C_REPLACES, C_REJECTS,
 C_CANCEL_REJECTS, C_CANCEL_NOOP, C_OWN_FULL, C_TAKEN_FULL, C_REFS_NOT_RISING,
 C_ORDER_QUEUE_FULL, C_RESPONSE_QUEUE_FULL, C_MAKER_FILLS, C_TAKER_FILLS, C_FEED_EVENTS,
 C_EXCHANGE_EVENTS, C_STRATEGY_CALLS, C_TIMER_CALLS, C_OUTBOX_OVERFLOW,
 C_UNKNOWN_INTENTS) = range(len(CTR_NAMES))

# J (reject) reason codes the simulated exchange gives
REJECT_QTY = 1         # quantity 0
REJECT_PRICE = 2       # price <= 0
REJECT_LOCATE = 3      # locate not in the stock directory / beyond the configured instruments
REJECT_TABLE_FULL = 4  # the exchange's own-order table is full
REJECT_SIDE = 5
REJECT_QUEUE_FULL = 6  # the order-entry channel is full (the strategy floods it)
REJECT_NAMES = {REJECT_QTY: "quantity", REJECT_PRICE: "price", REJECT_LOCATE: "locate",
                REJECT_TABLE_FULL: "own order table full", REJECT_SIDE: "side",
                REJECT_QUEUE_FULL: "order queue full"}

OWN_MATCH_BASE = 1 << 60   # match numbers of own executions: never a recorded one
OWN_REF_BASE = 1 << 61     # order refs of own orders: above any recorded ref
