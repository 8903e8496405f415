"""The simulated exchange: own orders against the recorded L3 book, answering with the same
RESPONSE records (A E C U J I) as the live OUCH client, so the order manager and the
strategy cannot tell a backtest from live.

The exchange keeps its own copy of the recorded book (runtime/book, applied at each event's
exchange timestamp, ahead of what the strategy has seen) and a small table of own orders.

* **Joining**: a resting own order joins behind the displayed quantity at its price
  (`ahead` = the recorded level's shares when it arrives) and remembers the largest
  recorded order ref seen so far (`limit_ref`). NASDAQ order refs rise through the day, so a
  recorded order is ahead of us exactly when its ref is <= limit_ref (a replace gets a new,
  larger ref: it goes to the back, as at the exchange). A ref that does not rise is counted
  (`refs_not_rising`): the exact model's assumption is then broken for that file.
* **Queue models** (`[backtest] queue_model`): `l3_fifo` — a reduction (E C X D U) of an
  order ahead shrinks `ahead`; an execution of an order *behind* us means the aggressor
  went through our place first: we fill completely, at our price. `risk_averse` and `power`
  are the L2 models for data without order refs (hftbacktest's): executions at our price
  shrink `ahead` and fill what goes past zero; cancels shrink it never (risk-averse) or by
  the share a power law of front/back quantities attributes to the front.
* **Trade-through** (`trade_through = true`): an execution at a price worse than ours on
  our side (a recorded bid below our bid executed, a hidden P print below it) fills us
  completely — the aggressor would have met our better price first.
* **Crossing**: a recorded order added at a price that crosses a resting own order fills it
  completely at our price (the incoming order would have traded with us).
* **Marketable own orders** fill on arrival against the recorded book, walking levels best
  first up to the limit, each fill at the level's price; what they take is remembered per
  level (`taken`) and not offered to later own orders until recorded reductions at that level
  have consumed as much. IOC remainders are cancelled; DAY remainders rest.

The limit of replay, stated: our orders do not change what others did. A recorded
aggressor that would have traded with us still executes the recorded orders it hit, and the
liquidity we took is still there for the recorded flow; with small own sizes relative to the
book this is the usual and accepted error of every replay backtester.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.backtest import latency as L
from tickpath.runtime.backtest.records import (
    C_CANCEL_NOOP, C_CANCEL_REJECTS, C_CANCELED_SHARES, C_CANCELS, C_FILLED_SHARES, C_FILLS,
    C_MAKER_FILLS, C_ORDERS, C_OWN_FULL, C_REFS_NOT_RISING, C_REJECTS, C_REPLACES,
    C_RESPONSE_QUEUE_FULL, C_TAKEN_FULL, C_TAKER_FILLS, C_UNKNOWN_INTENTS, FILL_DTYPE,
    FP_CASH, FP_FEES, FP_MAKER_FEE, FP_POWER_N, FP_TAKER_FEE, MODEL_L3_FIFO,
    MODEL_RISK_AVERSE, N_CTR, N_FP, N_OI, N_ST, OI_LIMIT_REF, OI_LOC, OI_OPEN, OI_PRICE,
    OI_EXEC, OI_REF, OI_SENT_NS, OI_SIDE, OI_TIF, OI_UREF, OWN_MATCH_BASE, OWN_REF_BASE, REJECT_LOCATE,
    REJECT_PRICE, REJECT_QTY, REJECT_SIDE, REJECT_TABLE_FULL, ST_MAX_REF, ST_MODEL,
    ST_N_FILLS, ST_N_OWN, ST_N_TAKEN, ST_NEXT_MATCH, ST_NEXT_REF, ST_RSP_HEAD,
    ST_RSP_LAST_T, ST_RSP_TAIL, ST_SEQ, ST_TRADE_THROUGH, TK_LOC, TK_PRICE, TK_QTY, TK_SIDE,
)
from tickpath.runtime.sys.intrinsics import borrow
from tickpath.runtime.trading.ref import ref
from tickpath.runtime.book.orderbook import (
    _borrowed, best_ask, best_bid, book_apply, find_order, level_at, shares_at,
)
from tickpath.runtime.trading.records import (
    INTENT_CANCEL, INTENT_CANCEL_ALL, INTENT_NEW, INTENT_REPLACE, RESP_ACCEPTED,
    RESP_CANCEL_REJECT, RESP_CANCELED, RESP_EXECUTED, RESP_REJECTED, RESP_REPLACED,
    RESPONSE_DTYPE, TIF_IOC, ALL_LOCATES,
)

_A, _F, _E, _C, _X, _D, _U, _P = (ord(c) for c in "AFECXDUP")
_B, _S = ord("B"), ord("S")
_LIVE, _DEAD = ord("L"), ord("D")
_CANCEL_USER, _CANCEL_IOC = ord("U"), ord("I")
_ADDED, _REMOVED = ord("A"), ord("R")
BID, ASK = 0, 1


class ExState(NamedTuple):
    """Everything the simulated exchange owns (preallocated; see records.py for slots)."""
    oi: np.ndarray          # int64[K, N_OI] live own orders, rows [0, st[ST_N_OWN])
    ahead: np.ndarray       # float64[K] shares ahead of each own order
    taken: np.ndarray       # int64[T, 4]
    st: np.ndarray          # int64[N_ST]
    fp: np.ndarray          # float64[N_FP]
    own_count: np.ndarray   # int64[n_locates] live own orders per locate (skip the rest fast)
    valid_loc: np.ndarray   # uint8[n_locates] 1: in the stock directory (orders accepted)
    pos: np.ndarray         # int64[n_locates] positions, shares
    fills: np.ndarray       # FILL_DTYPE[F] the fill log (the loop flushes it when near full)
    ctr: np.ndarray         # int64[N_CTR]
    rsp: np.ndarray         # RESPONSE_DTYPE[R] response channel ring
    rsp_t: np.ndarray       # int64[R] each response's arrival time at the strategy
    rsp_lat: np.ndarray     # quantile table, ns (latency.py)
    rng: np.ndarray         # uint64[1] the run's random stream


def new_exchange(n_locates: int, *, model: int = MODEL_L3_FIFO, power_n: float = 2.0,
                 trade_through: bool = True, maker_fee: float = 0.0, taker_fee: float = 0.0,
                 response_latency=None, seed: int = 1, max_own_orders: int = 1024,
                 taken_slots: int = 256, fill_capacity: int = 1 << 16,
                 response_capacity: int = 1 << 14, buffers=None) -> ExState:
    """buffers: (fills, rsp, rsp_t) of a finished run to reuse, uncleared: the loop reads
    only the fills and responses this run writes (a fresh 4.7 MB is page faults a file)."""
    if buffers is None:
        buffers = (np.zeros(fill_capacity, dtype=FILL_DTYPE),
                   np.zeros(response_capacity, dtype=RESPONSE_DTYPE),
                   np.zeros(response_capacity, dtype=np.int64))
    fills, rsp, rsp_t = buffers
    st = np.zeros(N_ST, dtype=np.int64)
    st[ST_NEXT_REF] = OWN_REF_BASE
    st[ST_NEXT_MATCH] = OWN_MATCH_BASE
    st[ST_MODEL] = model
    st[ST_TRADE_THROUGH] = 1 if trade_through else 0
    fp = np.zeros(N_FP, dtype=np.float64)
    fp[FP_POWER_N] = power_n
    fp[FP_MAKER_FEE] = maker_fee
    fp[FP_TAKER_FEE] = taker_fee
    return ExState(
        oi=np.zeros((max_own_orders, N_OI), dtype=np.int64),
        ahead=np.zeros(max_own_orders, dtype=np.float64),
        taken=np.zeros((taken_slots, 4), dtype=np.int64),
        st=st, fp=fp,
        own_count=np.zeros(n_locates, dtype=np.int64),
        valid_loc=np.zeros(n_locates, dtype=np.uint8),
        pos=np.zeros(n_locates, dtype=np.int64),
        fills=fills,
        ctr=np.zeros(N_CTR, dtype=np.int64),
        rsp=rsp,
        rsp_t=rsp_t,
        rsp_lat=L.constant(0) if response_latency is None else response_latency,
        rng=np.array([(int(seed) * 0x9E3779B97F4A7C15 + 7) % (1 << 64)],
                     dtype=np.uint64),
    )


@njit(nogil=True, inline="always")
def borrow_ex(ex):
    """The same state without reference counts on its arrays (see intrinsics.borrow): every
    call that passes ExState by value would otherwise pay an atomic incref/decref per array."""
    return ExState(borrow(ex.oi), borrow(ex.ahead), borrow(ex.taken), borrow(ex.st), borrow(ex.fp),
                   borrow(ex.own_count), borrow(ex.valid_loc), borrow(ex.pos), borrow(ex.fills),
                   borrow(ex.ctr), borrow(ex.rsp), borrow(ex.rsp_t), borrow(ex.rsp_lat),
                   borrow(ex.rng))


# ---------------------------------------------------------------- recorded levels

@njit(nogil=True, cache=True, _nrt=False)
def level_shares(books, loc, side, price):
    """Recorded shares resting at price on (loc, side) (0: no such level)."""
    return shares_at(books, loc, side, price)


@njit(nogil=True, cache=True, _nrt=False)
def _taken_at(ex, loc, side, price):
    for k in range(ex.st[ST_N_TAKEN]):
        t = ex.taken[k]
        if t[TK_LOC] == loc and t[TK_SIDE] == side and t[TK_PRICE] == price:
            return k
    return -1


@njit(nogil=True, cache=True, _nrt=False)
def _take(ex, loc, side, price, qty):
    k = _taken_at(ex, loc, side, price)
    if k < 0:
        k = ex.st[ST_N_TAKEN]
        if k >= ex.taken.shape[0]:
            ex.ctr[C_TAKEN_FULL] += 1   # counted: later own orders may see that liquidity again
            return
        ex.st[ST_N_TAKEN] = k + 1
        ex.taken[k, TK_LOC] = loc
        ex.taken[k, TK_SIDE] = side
        ex.taken[k, TK_PRICE] = price
        ex.taken[k, TK_QTY] = 0
    ex.taken[k, TK_QTY] += qty


@njit(nogil=True, cache=True, _nrt=False)
def _untake(ex, loc, side, price, qty):
    """Recorded reductions at a level consume what we took there first (FIFO: we took the
    front of the queue)."""
    k = _taken_at(ex, loc, side, price)
    if k < 0:
        return
    left = ex.taken[k, TK_QTY] - qty
    if left > 0:
        ex.taken[k, TK_QTY] = left
        return
    n = ex.st[ST_N_TAKEN] - 1
    for c in range(ex.taken.shape[1]):   # element by element: a row copy needs the NRT
        ex.taken[k, c] = ex.taken[n, c]
    ex.st[ST_N_TAKEN] = n


# ---------------------------------------------------------------- responses and fills

@njit(nogil=True, cache=True, _nrt=False)
def respond(ex, now_ns, kind, uref, orig_uref, qty, price, ref, side, tif, state, reason,
            reason_code, liquidity, venue_ts):
    """Queue one response for the strategy at now + response latency (FIFO, like one TCP
    session: never before the previous one). False when the channel is full (counted)."""
    head = ex.st[ST_RSP_HEAD]
    tail = ex.st[ST_RSP_TAIL]
    cap = ex.rsp.shape[0]
    if tail - head >= cap:
        ex.ctr[C_RESPONSE_QUEUE_FULL] += 1
        return False
    t = max(now_ns + L.draw_ns(ex.rsp_lat, ex.rng), ex.st[ST_RSP_LAST_T])
    ex.st[ST_RSP_LAST_T] = t
    ex.st[ST_SEQ] += 1
    r = ex.rsp[tail % cap]
    r.price = price
    r.ref = ref
    r.venue_ts = venue_ts
    r.recv_ns = t
    r.seq = ex.st[ST_SEQ]
    r.uref = uref
    r.orig_uref = orig_uref
    r.qty = qty
    r.reason = reason
    r.kind = kind
    r.side = side
    r.liquidity = liquidity
    r.reason_code = reason_code
    r.state = state
    r.tif = tif
    ex.rsp_t[tail % cap] = t
    ex.st[ST_RSP_TAIL] = tail + 1
    return True


@njit(nogil=True, cache=True, _nrt=False)
def _fill(ex, row, qty, price, now_ns, liquidity):
    """Execute qty of own order `row` at price: fill log, position, cash, fees, E response."""
    o = ex.oi[row]
    loc = o[OI_LOC]
    side_ch = _B if o[OI_SIDE] == BID else _S
    match = ex.st[ST_NEXT_MATCH]
    ex.st[ST_NEXT_MATCH] = match + 1
    signed = qty if o[OI_SIDE] == BID else -qty
    ex.pos[loc] += signed
    fee = (ex.fp[FP_MAKER_FEE] if liquidity == _ADDED else ex.fp[FP_TAKER_FEE]) * qty
    ex.fp[FP_CASH] -= signed * (price * 1e-4)
    ex.fp[FP_FEES] += fee
    o[OI_OPEN] -= qty
    o[OI_EXEC] += qty
    ex.ctr[C_FILLS] += 1
    ex.ctr[C_FILLED_SHARES] += qty
    ex.ctr[C_MAKER_FILLS if liquidity == _ADDED else C_TAKER_FILLS] += 1
    ok = respond(ex, now_ns, RESP_EXECUTED, o[OI_UREF], 0, qty, price, match, side_ch, 0, 0,
                 0, 0, liquidity, now_ns)
    n = ex.st[ST_N_FILLS]
    if n < ex.fills.shape[0]:   # the loop flushes long before this can fail
        f = ex.fills[n]
        f.exch_ns = now_ns
        f.recv_ns = ex.st[ST_RSP_LAST_T] if ok else -1
        f.sent_ns = o[OI_SENT_NS]
        f.price = price
        f.match = match
        f.uref = o[OI_UREF]
        f.qty = qty
        f.locate = loc
        f.side = side_ch
        f.liquidity = liquidity
        ex.st[ST_N_FILLS] = n + 1


@njit(nogil=True, cache=True, _nrt=False)
def _remove(ex, row):
    """Drop own order row (swap-remove keeps rows [0, n) live)."""
    n = ex.st[ST_N_OWN] - 1
    ex.own_count[ex.oi[row, OI_LOC]] -= 1
    for c in range(ex.oi.shape[1]):      # element by element: a row copy needs the NRT
        ex.oi[row, c] = ex.oi[n, c]
    ex.ahead[row] = ex.ahead[n]
    ex.st[ST_N_OWN] = n


@njit(nogil=True, cache=True, _nrt=False)
def _fill_all(ex, row, now_ns):
    """Fill what is open of row at its own price (a maker fill) and drop it."""
    q = ex.oi[row, OI_OPEN]
    if q > 0:
        _fill(ex, row, q, ex.oi[row, OI_PRICE], now_ns, _ADDED)
    _remove(ex, row)


@njit(nogil=True, cache=True, _nrt=False)
def _find(ex, uref):
    for r in range(ex.st[ST_N_OWN]):
        if ex.oi[r, OI_UREF] == uref:
            return r
    return -1


# ---------------------------------------------------------------- recorded events

@njit(nogil=True, cache=True, _nrt=False)
def _better(side, a, b):
    """a is a strictly better price than b on side."""
    return a > b if side == BID else a < b


@njit(nogil=True, cache=True, _nrt=False, inline="always")   # per recorded add
def _cross_check(ex, loc, side, price, now_ns):
    """A recorded order added at price on side: own orders of the other side it crosses fill."""
    r = 0
    while r < ex.st[ST_N_OWN]:
        o = ex.oi[r]
        if o[OI_LOC] == loc and o[OI_SIDE] != side and (
                (side == BID and o[OI_PRICE] <= price) or (side == ASK and o[OI_PRICE] >= price)):
            _fill_all(ex, r, now_ns)
            continue          # row r now holds another order
        r += 1


@njit(nogil=True, cache=True, _nrt=False, inline="always")   # per recorded reduction
def _reduction(ex, books, loc, side, price, ref, qty, is_exec, now_ns):
    """A recorded order at (loc, side, price) loses qty shares (executed or cancelled)."""
    model = ex.st[ST_MODEL]
    # the L2 models' cancel rules need the level as it was; L3 FIFO never reads it
    level_before = level_shares(books, loc, side, price) if model != MODEL_L3_FIFO else 0
    r = 0
    while r < ex.st[ST_N_OWN]:
        o = ex.oi[r]
        if o[OI_LOC] != loc or o[OI_SIDE] != side:
            r += 1
            continue
        if o[OI_PRICE] == price:
            if model == MODEL_L3_FIFO:
                if np.uint64(ref) <= np.uint64(o[OI_LIMIT_REF]):
                    ex.ahead[r] = max(ex.ahead[r] - qty, 0.0)
                elif is_exec:
                    _fill_all(ex, r, now_ns)   # the aggressor reached an order behind us
                    continue
            elif is_exec:
                ex.ahead[r] -= qty
                if ex.ahead[r] < 0.0:
                    q = min(np.int64(-ex.ahead[r] + 0.5), o[OI_OPEN])
                    ex.ahead[r] = 0.0
                    if q > 0:
                        _fill(ex, r, q, o[OI_PRICE], now_ns, _ADDED)
                        if o[OI_OPEN] <= 0:
                            _remove(ex, r)
                            continue
            else:
                new_level = level_before - qty
                front = ex.ahead[r]
                if model == MODEL_RISK_AVERSE:
                    ex.ahead[r] = min(front, new_level)
                else:   # power law: the cancel is ahead of us with probability f(back)/(...)
                    back = max(level_before - front, 0.0)
                    n = ex.fp[FP_POWER_N]
                    fb = back ** n
                    ff = front ** n
                    prob = fb / (fb + ff) if fb + ff > 0 else 1.0
                    est = front - (1.0 - prob) * qty + min(back - prob * qty, 0.0)
                    ex.ahead[r] = max(min(est, np.float64(new_level)), 0.0)
        elif is_exec and ex.st[ST_TRADE_THROUGH] != 0 and _better(side, o[OI_PRICE], price):
            _fill_all(ex, r, now_ns)   # the market traded through our (better) price
            continue
        r += 1


@njit(nogil=True, cache=True, _nrt=False, inline="always")   # once per recorded event
def _before_book(ex, books, ev, loc, now_ns):
    """Queue moves and fills implied by a recorded event, seen before the book applies it.
    Returns (side, price) of an order the event adds (for the crossing check), side -1 if none."""
    t = ev.msg_type
    if t == _A or t == _F:
        if np.uint64(ev.order_ref) <= np.uint64(ex.st[ST_MAX_REF]):
            ex.ctr[C_REFS_NOT_RISING] += 1
        else:
            ex.st[ST_MAX_REF] = np.int64(ev.order_ref)
        return BID if ev.side == _B else ASK, np.int64(ev.price)
    if t == _P:
        if ex.st[ST_TRADE_THROUGH] != 0 and 0 <= loc < ex.own_count.shape[0] and ex.own_count[loc] > 0:
            # a hidden order on `side` executed at price: own orders better than it go first
            side = BID if ev.side == _B else ASK
            r = 0
            while r < ex.st[ST_N_OWN]:
                o = ex.oi[r]
                if o[OI_LOC] == loc and o[OI_SIDE] == side and _better(side, o[OI_PRICE],
                                                                       np.int64(ev.price)):
                    _fill_all(ex, r, now_ns)
                    continue
                r += 1
        return -1, np.int64(0)
    if t == _E or t == _C or t == _X or t == _D or t == _U:
        found, oloc, side, price, shares, _counted = find_order(books, loc, ev.order_ref)
        if not found:
            return -1, np.int64(0)
        qty = shares if (t == _D or t == _U) else min(np.int64(ev.shares), shares)
        if ex.own_count[oloc] > 0:
            _reduction(ex, books, oloc, side, price, np.int64(ev.order_ref), qty,
                       t == _E or t == _C, now_ns)
        if ex.st[ST_N_TAKEN] > 0:
            _untake(ex, oloc, side, price, qty)
        if t == _U:
            if np.uint64(ev.ref2) <= np.uint64(ex.st[ST_MAX_REF]):
                ex.ctr[C_REFS_NOT_RISING] += 1
            else:
                ex.st[ST_MAX_REF] = np.int64(ev.ref2)
            return side, np.int64(ev.price)
    return -1, np.int64(0)


@njit(nogil=True, cache=True, _nrt=False)
def ex_on_market(ex, books, events, i, book_counters, now_ns):
    """Apply recorded events[i] to the exchange's book, moving own orders' queues and
    filling them as the event implies (see the module doc). Returns the book_apply result."""
    ev = events[i]
    loc = np.int64(ev.locate)
    add_side, add_price = _before_book(ex, books, ev, loc, now_ns)
    res = book_apply(books, events, i, book_counters)
    if add_side >= 0 and res >= 0 and res < ex.own_count.shape[0] and ex.own_count[res] > 0:
        _cross_check(ex, res, add_side, add_price, now_ns)
    return res


# ---------------------------------------------------------------- own orders arriving

@njit(nogil=True, cache=True, _nrt=False)
def _walk(ex, books, row, now_ns):
    """Fill own order `row` against the recorded contra side up to its limit, best first."""
    o = ex.oi[row]
    loc = o[OI_LOC]
    contra = ASK if o[OI_SIDE] == BID else BID
    k = 0
    while o[OI_OPEN] > 0:
        px, shares, _n = level_at(books, loc, contra, k)
        if shares <= 0:
            break
        if (o[OI_SIDE] == BID and px > o[OI_PRICE]) or (o[OI_SIDE] == ASK and px < o[OI_PRICE]):
            break
        avail = shares
        j = _taken_at(ex, loc, contra, px)
        if j >= 0:
            avail -= ex.taken[j, TK_QTY]
        q = min(avail, o[OI_OPEN])
        if q > 0:
            _fill(ex, row, q, px, now_ns, _REMOVED)
            _take(ex, loc, contra, px, q)
        k += 1


@njit(nogil=True, cache=True, _nrt=False)
def _reject(ex, it, now_ns, reason):
    ex.ctr[C_REJECTS] += 1
    respond(ex, now_ns, RESP_REJECTED, it.uref, 0, it.qty, it.price, 0, it.side, it.tif, 0,
            reason, 0, 0, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def _enter(ex, books, uref, loc, side, qty, price, tif, sent_ns, now_ns, kind, orig_uref, executed):
    """A new (or replacing) order reaches the book: accept, walk if marketable, rest or
    cancel the remainder. Returns the row it rests in, or -1."""
    n = ex.st[ST_N_OWN]
    ref = ex.st[ST_NEXT_REF]
    ex.st[ST_NEXT_REF] = ref + 1
    side_ch = _B if side == BID else _S
    respond(ex, now_ns, kind, uref, orig_uref, qty, price, ref, side_ch, tif, _LIVE, 0, 0, 0,
            now_ns)
    o = ex.oi[n]
    o[OI_UREF] = uref
    o[OI_LOC] = loc
    o[OI_SIDE] = side
    o[OI_PRICE] = price
    o[OI_OPEN] = qty
    o[OI_REF] = ref
    o[OI_LIMIT_REF] = ex.st[ST_MAX_REF]
    o[OI_SENT_NS] = sent_ns
    o[OI_TIF] = tif
    o[OI_EXEC] = executed
    ex.st[ST_N_OWN] = n + 1
    ex.own_count[loc] += 1
    _walk(ex, books, n, now_ns)
    if o[OI_OPEN] > 0 and tif == TIF_IOC:
        ex.ctr[C_CANCELS] += 1
        ex.ctr[C_CANCELED_SHARES] += o[OI_OPEN]
        respond(ex, now_ns, RESP_CANCELED, uref, 0, o[OI_OPEN], 0, 0, side_ch, 0, 0, 0,
                _CANCEL_IOC, 0, now_ns)
        o[OI_OPEN] = 0
    if o[OI_OPEN] <= 0:
        _remove(ex, n)
        return -1
    ex.ahead[n] = np.float64(level_shares(books, loc, side, price))
    return n


@njit(nogil=True, cache=True, _nrt=False)
def _cancel_row(ex, r, new_qty, now_ns, reason_code):
    o = ex.oi[r]
    dec = o[OI_OPEN] - max(new_qty, 0)
    if dec <= 0:
        ex.ctr[C_CANCEL_NOOP] += 1
        return
    ex.ctr[C_CANCELS] += 1
    ex.ctr[C_CANCELED_SHARES] += dec
    respond(ex, now_ns, RESP_CANCELED, o[OI_UREF], 0, dec, 0, 0,
            _B if o[OI_SIDE] == BID else _S, 0, 0, 0, reason_code, 0, now_ns)
    o[OI_OPEN] -= dec
    if o[OI_OPEN] <= 0:
        _remove(ex, r)


@njit(nogil=True, cache=True, _nrt=False)
def ex_on_intent(ex, books, it, orig_uref, sent_ns, now_ns):
    """One intent from the order channel reaches the exchange at now_ns. A REPLACE names its
    replacement in it.uref and the order it replaces in orig_uref; its qty is the chain's total
    (OUCH 5.0: shares already executed count), so the replacement is open for qty - executed."""
    k = it.kind
    if k == INTENT_NEW:
        ex.ctr[C_ORDERS] += 1
        loc = np.int64(it.locate)
        if it.side != _B and it.side != _S:
            _reject(ex, it, now_ns, REJECT_SIDE)
        elif it.qty == 0:
            _reject(ex, it, now_ns, REJECT_QTY)
        elif it.price <= 0:
            _reject(ex, it, now_ns, REJECT_PRICE)
        elif loc >= ex.valid_loc.shape[0] or ex.valid_loc[loc] == 0:
            _reject(ex, it, now_ns, REJECT_LOCATE)
        elif ex.st[ST_N_OWN] >= ex.oi.shape[0]:
            ex.ctr[C_OWN_FULL] += 1
            _reject(ex, it, now_ns, REJECT_TABLE_FULL)
        else:
            _enter(ex, books, it.uref, loc, BID if it.side == _B else ASK, np.int64(it.qty),
                   np.int64(it.price), np.int64(it.tif), sent_ns, now_ns, RESP_ACCEPTED, 0, 0)
    elif k == INTENT_CANCEL:
        r = _find(ex, it.uref)
        if r < 0:
            ex.ctr[C_CANCEL_REJECTS] += 1   # filled or cancelled meanwhile: the race live has too
            respond(ex, now_ns, RESP_CANCEL_REJECT, it.uref, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    now_ns)
        else:
            _cancel_row(ex, r, np.int64(it.qty), now_ns, _CANCEL_USER)
    elif k == INTENT_REPLACE:
        r = _find(ex, orig_uref)
        if r < 0:
            ex.ctr[C_CANCEL_REJECTS] += 1   # filled or cancelled meanwhile
            respond(ex, now_ns, RESP_CANCEL_REJECT, orig_uref, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    now_ns)
        elif it.price <= 0:
            _reject(ex, it, now_ns, REJECT_PRICE)
        else:
            o = ex.oi[r]
            loc, side, executed = o[OI_LOC], o[OI_SIDE], o[OI_EXEC]
            open_new = np.int64(it.qty) - executed
            if open_new <= 0:     # nothing left to replace with: the order is cancelled
                _cancel_row(ex, r, 0, now_ns, _CANCEL_USER)
            else:
                ex.ctr[C_REPLACES] += 1
                _remove(ex, r)   # loses priority: the replacement joins at the back
                _enter(ex, books, it.uref, loc, side, open_new, np.int64(it.price),
                       np.int64(it.tif), sent_ns, now_ns, RESP_REPLACED, orig_uref, executed)
    elif k == INTENT_CANCEL_ALL:
        r = 0
        while r < ex.st[ST_N_OWN]:
            if it.locate == ALL_LOCATES or ex.oi[r, OI_LOC] == it.locate:
                n0 = ex.st[ST_N_OWN]
                _cancel_row(ex, r, 0, now_ns, _CANCEL_USER)
                if ex.st[ST_N_OWN] < n0:
                    continue
            r += 1
    else:
        ex.ctr[C_UNKNOWN_INTENTS] += 1


@njit(nogil=True, cache=True, _nrt=False)
def mark_to_market(ex, books, mids):
    """Equity (dollars) = cash - fees + sum(position * mid); mids keeps the last known mid of
    each locate (a one-sided book marks at the last mid)."""
    eq = ex.fp[FP_CASH] - ex.fp[FP_FEES]
    net = np.int64(0)
    gross = np.int64(0)
    for loc in range(ex.pos.shape[0]):
        p = ex.pos[loc]
        if p == 0:
            continue
        bp, bs = best_bid(books, loc)
        ap, as_ = best_ask(books, loc)
        if bs > 0 and as_ > 0:
            mids[loc] = 0.5 * (bp + ap) * 1e-4
        eq += p * mids[loc]
        net += p
        gross += abs(p)
    return eq, net, gross


# ---------------------------------------------------------------- from Python

@njit(nogil=True, cache=True, _nrt=False)
def ex_on_market_py(ex, books, events, i, book_counters, now_ns):
    """ex_on_market with its arguments as the backtest loop passes them (state by pointer,
    borrowed arrays): a Python caller (tests, tools) runs the loop's own compiled
    specialization instead of compiling a second one of the whole book (~25 s cold)."""
    return ex_on_market(ref(borrow_ex(ex)), ref(_borrowed(books)), borrow(events), i,
                        borrow(book_counters), now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def ex_on_intent_py(ex, books, it, orig_uref, sent_ns, now_ns):
    """ex_on_intent as the backtest loop calls it (see ex_on_market_py; a uref is uint32)."""
    return ex_on_intent(ref(borrow_ex(ex)), ref(_borrowed(books)), it, np.uint32(orig_uref),
                        sent_ns, now_ns)
