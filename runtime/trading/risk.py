"""The pre-trade risk gate, inline before an order is handed to order entry, and the
circuit breakers that trip the kill switch. Every check is configurable in `[risk]` (0 = off)
and every rejected intent is counted by the first check it fails (layout.R_* slots).

New order, in this order: kill switch · order-entry session down · malformed intent ·
instrument not listed by the feed · restricted instrument · book marked unreliable · max order qty · max order notional · price
collar against the BBO mid (or the last trade when one side is empty) · position limit per
instrument and in total, counting the worst case of every open order (a buy's limit is
position + open buys + qty) · max open orders per instrument · duplicate guard (same
instrument, side, price and qty within a window) · order and message throttles over sliding
windows of 1 s and 100 ms. A replace passes the same size, price and position checks and the
throttles; a cancel is never refused by risk (it only lowers risk) but counts as a message.

Throttles are exact sliding windows: ring k holds the times of the last `limit` messages;
one more is allowed when the oldest of them is at least the window old. O(1), preallocated.
Each ring keeps its count (S_RATE_HEAD) and that count modulo the ring (S_RATE_POS), so a
check and a note index the ring without an integer division (four of each per order).

Breakers (trip the kill switch): realised + marked-to-market - fees below -max_loss; more
than max_venue_rejects_per_s venue rejects within 1 s; more than max_breaches risk rejects
in total; no market data for market_data_stale_ms; the order-entry session lost; the audit
ring full (step.py and the live loop report those two).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.book.orderbook import best_ask, best_bid, last_trade
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.trading import layout as T
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.killswitch import kill_active

# risk_i int64 slots
RI_MAX_ORDER_QTY = 0
RI_MAX_POSITION = 1
RI_MAX_TOTAL_POSITION = 2
RI_MAX_OPEN_ORDERS = 3
RI_ORDERS_PER_S = 4
RI_ORDERS_PER_100MS = 5
RI_MSGS_PER_S = 6
RI_MSGS_PER_100MS = 7
RI_DUP_WINDOW_NS = 8
RI_CHECK_BOOK = 9
RI_MAX_VENUE_REJECTS_PER_S = 10
RI_MAX_BREACHES = 11
RI_STALE_NS = 12
RI_TIMER_NS = 13          # the strategy's timer period ([trading] timer_ms), 0 = none
N_RI = 16
# risk_f float64 slots (slot 0 is positions.py's fees per share)
RF_FEES_PER_SHARE = 0
RF_MAX_NOTIONAL = 1
RF_COLLAR_FRAC = 2
RF_MAX_LOSS = 3
N_RF = 8

# sliding-window rings (rates[k]); heads in st[S_RATE_HEAD + k]
RATE_ORDERS_1S, RATE_ORDERS_100MS, RATE_MSGS_1S, RATE_MSGS_100MS, RATE_VENUE_REJECTS = range(5)
N_RATES = 5
_S_NS = 1_000_000_000
_100MS_NS = 100_000_000

# [risk] keys: name -> (types, default, meaning); 0 turns a check off
RISK_KEYS = {
    "max_order_qty": ((int,), 10_000, "shares per order"),
    "max_notional": ((int, float), 1_000_000.0, "dollars per order (qty x price)"),
    "price_collar_pct": ((int, float), 5.0, "max distance from the BBO mid / last trade, percent"),
    "max_position": ((int,), 50_000, "shares per instrument, worst case of open orders counted"),
    "max_total_position": ((int,), 500_000, "gross shares over all instruments, worst case"),
    "max_open_orders": ((int,), 20, "open orders per instrument"),
    "max_orders_per_s": ((int,), 1_000, "new + replace per 1 s window"),
    "max_orders_per_100ms": ((int,), 200, "new + replace per 100 ms window"),
    "max_msgs_per_s": ((int,), 2_000, "every message incl. cancels per 1 s window"),
    "max_msgs_per_100ms": ((int,), 400, "every message per 100 ms window"),
    "duplicate_window_ms": ((int,), 0, "same instrument/side/price/qty refused within (0 = off)"),
    "restricted": ((list,), [], "symbols never traded"),
    "check_book": ((bool,), True, "refuse orders in an instrument whose book is unreliable"),
    "max_loss": ((int, float), 10_000.0, "breaker: realised + MTM - fees below -this (dollars)"),
    "max_venue_rejects_per_s": ((int,), 20, "breaker: venue rejects within 1 s"),
    "max_breaches": ((int,), 1_000, "breaker: risk rejects in total"),
    "market_data_stale_ms": ((int,), 0, "breaker: no feed event for this long"),
    "fees_per_share": ((int, float), 0.0, "dollars per executed share (negative: a rebate)"),
}


def risk_defaults() -> dict:
    return {k: (list(v[1]) if isinstance(v[1], list) else v[1]) for k, v in RISK_KEYS.items()}


def validate_risk(table: dict, section: str = "risk") -> dict:
    """Unknown keys, wrong types, negatives and inconsistent limits are refused, naming the key."""
    cfg = risk_defaults()
    for k, v in table.items():
        if k not in RISK_KEYS:
            raise ConfigError("unknown key", key=f"{section}.{k}", known=sorted(RISK_KEYS))
        types = RISK_KEYS[k][0]
        if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
            raise ConfigError("wrong type", key=f"{section}.{k}", value=v,
                              expected="/".join(t.__name__ for t in types))
        cfg[k] = v
    for k, (types, _, _) in RISK_KEYS.items():
        if k in ("fees_per_share", "restricted", "check_book"):
            continue
        if cfg[k] < 0:
            raise ConfigError("negative limit (0 turns a check off)", key=f"{section}.{k}", value=cfg[k])
    for s in cfg["restricted"]:
        if not isinstance(s, str) or not 1 <= len(s) <= 8:
            raise ConfigError("restricted symbols are 1-8 character strings",
                              key=f"{section}.restricted", value=s)
    q, p, tp = cfg["max_order_qty"], cfg["max_position"], cfg["max_total_position"]
    if p and q and p < q:
        raise ConfigError("position limit below the order size limit: no order could ever pass",
                          key=f"{section}.max_position", value=p, max_order_qty=q)
    if tp and p and tp < p:
        raise ConfigError("total position limit below the per-instrument limit",
                          key=f"{section}.max_total_position", value=tp, max_position=p)
    for fast, slow in (("max_orders_per_100ms", "max_orders_per_s"),
                       ("max_msgs_per_100ms", "max_msgs_per_s")):
        if cfg[fast] and cfg[slow] and cfg[fast] > cfg[slow]:
            raise ConfigError("a 100 ms limit above its 1 s limit", key=f"{section}.{fast}",
                              value=cfg[fast], **{slow: cfg[slow]})
    if cfg["max_orders_per_s"] and cfg["max_msgs_per_s"] and cfg["max_msgs_per_s"] < cfg["max_orders_per_s"]:
        raise ConfigError("message limit below the order limit (every order is a message)",
                          key=f"{section}.max_msgs_per_s", value=cfg["max_msgs_per_s"],
                          max_orders_per_s=cfg["max_orders_per_s"])
    if cfg["price_collar_pct"] >= 100:
        raise ConfigError("price collar of 100 % or more checks nothing", key=f"{section}.price_collar_pct",
                          value=cfg["price_collar_pct"])
    for k in ("max_order_qty", "max_position", "max_total_position"):
        if cfg[k] >= 1 << 31:
            raise ConfigError("limit too large (shares are u32)", key=f"{section}.{k}", value=cfg[k])
    return cfg


def risk_arrays(cfg: dict, timer_ms: int = 0):
    """(risk_i int64[N_RI], risk_f float64[N_RF], rates int64[N_RATES, ring]) from a validated [risk]."""
    ri = np.zeros(N_RI, dtype=np.int64)
    rf = np.zeros(N_RF, dtype=np.float64)
    ri[RI_MAX_ORDER_QTY] = cfg["max_order_qty"]
    ri[RI_MAX_POSITION] = cfg["max_position"]
    ri[RI_MAX_TOTAL_POSITION] = cfg["max_total_position"]
    ri[RI_MAX_OPEN_ORDERS] = cfg["max_open_orders"]
    ri[RI_ORDERS_PER_S] = cfg["max_orders_per_s"]
    ri[RI_ORDERS_PER_100MS] = cfg["max_orders_per_100ms"]
    ri[RI_MSGS_PER_S] = cfg["max_msgs_per_s"]
    ri[RI_MSGS_PER_100MS] = cfg["max_msgs_per_100ms"]
    ri[RI_DUP_WINDOW_NS] = cfg["duplicate_window_ms"] * 1_000_000
    ri[RI_CHECK_BOOK] = 1 if cfg["check_book"] else 0
    ri[RI_MAX_VENUE_REJECTS_PER_S] = cfg["max_venue_rejects_per_s"]
    ri[RI_MAX_BREACHES] = cfg["max_breaches"]
    ri[RI_STALE_NS] = cfg["market_data_stale_ms"] * 1_000_000
    ri[RI_TIMER_NS] = int(timer_ms) * 1_000_000
    rf[RF_FEES_PER_SHARE] = cfg["fees_per_share"]
    rf[RF_MAX_NOTIONAL] = cfg["max_notional"]
    rf[RF_COLLAR_FRAC] = cfg["price_collar_pct"] / 100.0
    rf[RF_MAX_LOSS] = cfg["max_loss"]
    ring = 1 + max(cfg["max_orders_per_s"], cfg["max_orders_per_100ms"], cfg["max_msgs_per_s"],
                   cfg["max_msgs_per_100ms"], cfg["max_venue_rejects_per_s"], 1)
    rates = np.zeros((N_RATES, ring), dtype=np.int64)
    return ri, rf, rates


@njit(nogil=True, inline="always")
def rate_full(tctx, k, limit, window_ns, now_ns):
    """True when `limit` events of ring k already fall within the last `window_ns`
    (limit <= the ring's length, as risk_arrays sizes it)."""
    if limit <= 0:
        return False
    if tctx.st[T.S_RATE_HEAD + k] < limit:
        return False
    i = tctx.st[T.S_RATE_POS + k] - limit      # (head - limit) mod ring, head mod ring kept
    if i < 0:
        i += tctx.rates.shape[1]
    return now_ns - tctx.rates[k, i] < window_ns


@njit(nogil=True, inline="always")
def rate_note(tctx, k, now_ns):
    st = tctx.st
    i = st[T.S_RATE_POS + k]
    tctx.rates[k, i] = now_ns
    i += 1
    st[T.S_RATE_POS + k] = 0 if i == tctx.rates.shape[1] else i
    st[T.S_RATE_HEAD + k] += 1


@njit(nogil=True, inline="always")
def _msg_throttled(tctx, now_ns):
    ri = tctx.risk_i
    if rate_full(tctx, RATE_MSGS_1S, ri[RI_MSGS_PER_S], _S_NS, now_ns):
        return T.R_MSG_RATE_1S
    if rate_full(tctx, RATE_MSGS_100MS, ri[RI_MSGS_PER_100MS], _100MS_NS, now_ns):
        return T.R_MSG_RATE_100MS
    return -1


@njit(nogil=True, inline="always")
def _size_price(tctx, books, loc, side, qty, price):
    """The checks a new order and a replace share: size, notional, collar, position."""
    ri = tctx.risk_i
    rf = tctx.risk_f
    if ri[RI_MAX_ORDER_QTY] > 0 and qty > ri[RI_MAX_ORDER_QTY]:
        return T.R_MAX_QTY
    if rf[RF_MAX_NOTIONAL] > 0 and np.float64(qty) * np.float64(price) * 1e-4 > rf[RF_MAX_NOTIONAL]:
        return T.R_MAX_NOTIONAL
    if rf[RF_COLLAR_FRAC] > 0:
        bp, bs = best_bid(books, loc)
        ap, as_ = best_ask(books, loc)
        if bs > 0 and as_ > 0:
            ref = 0.5 * (np.float64(bp) + np.float64(ap))
        else:
            ref = np.float64(last_trade(books, loc)[0])
        if ref <= 0:
            return T.R_NO_REFERENCE
        if abs(np.float64(price) - ref) > rf[RF_COLLAR_FRAC] * ref:
            return T.R_COLLAR
    lim = ri[RI_MAX_POSITION]
    if lim > 0:
        pos = tctx.loc[loc, T.L_POS]
        if side == R.SIDE_BUY:
            if pos + tctx.loc[loc, T.L_OPEN_BUY] + qty > lim:
                return T.R_POSITION
        elif -(pos - tctx.loc[loc, T.L_OPEN_SELL] - qty) > lim:
            return T.R_POSITION
    tl = ri[RI_MAX_TOTAL_POSITION]
    if tl > 0 and tctx.st[T.S_TOTAL_ABS_POS] + tctx.st[T.S_TOTAL_OPEN] + qty > tl:
        return T.R_TOTAL_POSITION
    return -1


@njit(nogil=True, inline="always")
def _order_throttled(tctx, now_ns):
    ri = tctx.risk_i
    if rate_full(tctx, RATE_ORDERS_1S, ri[RI_ORDERS_PER_S], _S_NS, now_ns):
        return T.R_ORDER_RATE_1S
    if rate_full(tctx, RATE_ORDERS_100MS, ri[RI_ORDERS_PER_100MS], _100MS_NS, now_ns):
        return T.R_ORDER_RATE_100MS
    return _msg_throttled(tctx, now_ns)


@njit(nogil=True, inline="always")
def check_new(tctx, books, book_ok, loc, side, qty, price, now_ns):
    """-1 if a new order may go, else the R_* reason. `book_ok`: the book says it is reliable."""
    if kill_active(tctx.kill):
        return T.R_KILL
    if tctx.st[T.S_SESSION_DOWN] != 0:
        return T.R_SESSION_DOWN
    if (loc < 0 or loc >= tctx.loc.shape[0] or qty <= 0 or qty > 0xFFFFFFFF or price <= 0
            or (side != R.SIDE_BUY and side != R.SIDE_SELL)):
        return T.R_BAD_INTENT
    if tctx.symbols[loc] == 0:
        return T.R_NO_SYMBOL
    if tctx.loc[loc, T.L_RESTRICTED] != 0:
        return T.R_RESTRICTED
    if tctx.risk_i[RI_CHECK_BOOK] != 0 and not book_ok:
        return T.R_BOOK_BAD
    r = _size_price(tctx, books, loc, side, qty, price)
    if r >= 0:
        return r
    mo = tctx.risk_i[RI_MAX_OPEN_ORDERS]
    if mo > 0 and tctx.loc[loc, T.L_OPEN_ORDERS] >= mo:
        return T.R_OPEN_ORDERS
    w = tctx.risk_i[RI_DUP_WINDOW_NS]
    if w > 0:
        c = T.L_DUP_PRICE_B if side == R.SIDE_BUY else T.L_DUP_PRICE_S
        lr = tctx.loc
        if lr[loc, c] == price and lr[loc, c + 1] == qty and now_ns - lr[loc, c + 2] < w:
            return T.R_DUPLICATE
    return _order_throttled(tctx, now_ns)


@njit(nogil=True, inline="always")
def note_new(tctx, loc, side, qty, price, now_ns):
    """A new order passed and is being sent: throttles and the duplicate guard remember it."""
    rate_note(tctx, RATE_ORDERS_1S, now_ns)
    rate_note(tctx, RATE_ORDERS_100MS, now_ns)
    note_msg(tctx, now_ns)
    c = T.L_DUP_PRICE_B if side == R.SIDE_BUY else T.L_DUP_PRICE_S
    tctx.loc[loc, c] = price
    tctx.loc[loc, c + 1] = qty
    tctx.loc[loc, c + 2] = now_ns


@njit(nogil=True, inline="always")
def note_msg(tctx, now_ns):
    rate_note(tctx, RATE_MSGS_1S, now_ns)
    rate_note(tctx, RATE_MSGS_100MS, now_ns)


@njit(nogil=True, inline="always")
def check_replace(tctx, books, book_ok, loc, side, qty, price, now_ns):
    """-1 if a replace to `qty` open shares at `price` may go, else the R_* reason. The
    replacement counts as open on top of the original until the venue answers (worst case)."""
    if kill_active(tctx.kill):
        return T.R_KILL
    if tctx.st[T.S_SESSION_DOWN] != 0:
        return T.R_SESSION_DOWN
    if qty <= 0 or qty > 0xFFFFFFFF or price <= 0:
        return T.R_BAD_INTENT
    if tctx.risk_i[RI_CHECK_BOOK] != 0 and not book_ok:
        return T.R_BOOK_BAD
    r = _size_price(tctx, books, loc, side, qty, price)
    if r >= 0:
        return r
    return _order_throttled(tctx, now_ns)


@njit(nogil=True, inline="always")
def note_replace(tctx, now_ns):
    rate_note(tctx, RATE_ORDERS_1S, now_ns)
    rate_note(tctx, RATE_ORDERS_100MS, now_ns)
    note_msg(tctx, now_ns)


@njit(nogil=True, inline="always")
def counts_as_breach(reason):
    """Rejects that say the strategy asked for too much (not: the switch is already off)."""
    return reason != T.R_KILL and reason != T.R_SESSION_DOWN and reason != T.R_OUTBOX_FULL
