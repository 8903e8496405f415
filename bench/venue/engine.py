"""The matching engine: price-time priority limit books in numba, one writer thread.

`process(e, w, rh, rd, stop, cmds, i, now_ns)` applies one command (layout.CMD_DTYPE:
enter, replace, cancel, modify) to the books of book.py, writes every book change as the
ITCH 5.0 message NASDAQ would send into the MoldUDP64 writer `w` (itch_out.py), and every
OUCH response the command causes into the SPSC ring (rh, rd) of layout.RESP_DTYPE records
for the network thread. It never raises and never allocates; bad input is a reject
(OUCH J, counted by reason) or a counter.

Semantics (OUCH 5.0; REFERENCE.md):
* Enter: validated (stock, side, quantity, TIF, display, capacity, ISO, cross type, price on
  the tick grid and inside the band), accepted (A, with the venue's order reference
  number), then matched against the opposite side from its best price while it crosses:
  each fill executes at the resting order's price, with one match number shared by both
  sides' E responses and the ITCH E (or P for a non-displayed resting order). What is left
  rests (ITCH A, or F when Display = A) for a day order or is canceled (C, reason I) for
  IOC. Market orders (price MARKET_PRICE) are IOC limited to the band.
* Self-match prevention (a switch): an incoming order of user u meeting a resting order
  of the same user cancels the resting one (C reason Q, ITCH D) and matching goes on.
  The background flow (user 0) stands for many participants and is exempt.
* Cancel (X, new intended size): 0 cancels all (ITCH D); a smaller size reduces in place
  and keeps time priority (ITCH X); a size >= the open size changes nothing (counted), an
  unknown or dead order is ignored (counted), as the spec says.
* Replace (U): the new UserRefNum takes over the order with a new order reference number
  and loses priority (it goes to the back of its new level); the quantity is the total of
  the chain, executions included, so the new open size is quantity - executed (<= 0 is
  rejected). ITCH: U when old and new are displayed and the new one rests; otherwise D of
  the old and A of what rests. A marketable replace trades first.
* Modify (M): a new side within the sell family (S, T, E) and/or a smaller size, keeping
  priority (ITCH X for the decrement); anything else is refused (counted).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.ipc import ring as R
from tickpath.runtime.sys.intrinsics import borrow, cpu_relax, load_acquire

from tickpath.bench.venue import itch_out as W
from tickpath.bench.venue import layout as L
from tickpath.bench.venue.book import borrow_engine
from tickpath.bench.venue.book import S_BG_N, S_HASH_SHIFT, S_N_FREE, S_NEXT_MATCH, S_NEXT_REF, \
    S_OPEN, S_SMP

_FIB = np.uint64(11400714819323198485)
_B, _S = 0, 1
_CH_B, _CH_S = ord("B"), ord("S")


# ---------------------------------------------------------------- user order hash

@njit(nogil=True, inline="always")
def _hkey(user, uref):
    return (np.uint64(user + 1) << np.uint64(32)) | np.uint64(uref)   # never 0 (= empty)


@njit(nogil=True, inline="always")
def _hhome(e, key):
    """Home slot: blocks of 16 consecutive keys in 16 consecutive slots, blocks scattered
    (Fibonacci hashing of key >> 4). Why: UserRefNums rise, so a user's (and the flow's)
    recent orders share a few cache lines instead of a miss per insert and per delete."""
    block = ((key >> np.uint64(4)) * _FIB) >> np.uint64(e.state[S_HASH_SHIFT])
    return np.int64((block << np.uint64(4)) | (key & np.uint64(15)))


@njit(nogil=True, inline="always")
def h_find(e, user, uref):
    """Slot of the live order (user, uref), or -1."""
    key = _hkey(user, uref)
    mask = e.h_key.shape[0] - 1
    j = _hhome(e, key)
    while True:
        k = e.h_key[j]
        if k == 0:
            return -1
        if k == key:
            return e.h_val[j]
        j = (j + 1) & mask


@njit(nogil=True, inline="always")
def _h_insert(e, user, uref, slot):
    key = _hkey(user, uref)
    mask = e.h_key.shape[0] - 1
    j = _hhome(e, key)
    while e.h_key[j] != 0 and e.h_key[j] != key:
        j = (j + 1) & mask
    e.h_key[j] = key
    e.h_val[j] = slot


@njit(nogil=True, inline="always")
def _h_delete(e, user, uref):
    key = _hkey(user, uref)
    mask = e.h_key.shape[0] - 1
    i = _hhome(e, key)
    while True:
        k = e.h_key[i]
        if k == 0:
            return
        if k == key:
            break
        i = (i + 1) & mask
    j = i
    while True:   # backward shift (Knuth 6.4 algorithm R): no tombstones
        j = (j + 1) & mask
        if e.h_key[j] == 0:
            break
        h = _hhome(e, e.h_key[j])
        if (i <= j and (h <= i or h > j)) or (i > j and h <= i and h > j):
            e.h_key[i] = e.h_key[j]
            e.h_val[i] = e.h_val[j]
            i = j
    e.h_key[i] = 0
    e.h_val[i] = -1


# ---------------------------------------------------------------- price ladder

@njit(nogil=True, inline="always")
def _lslot(e, loc, side, gi):
    return e.loc_base[loc] + side * e.loc_npx[loc] + gi


@njit(nogil=True, inline="always")
def _gi(e, loc, price):
    return (price - e.loc_lo[loc]) // e.loc_tick[loc]


@njit(nogil=True, inline="always")
def _link(e, j):
    """Append order j at the back of its level (time priority: last)."""
    loc, side = e.ord[j].loc, e.ord[j].side
    gi = _gi(e, loc, e.ord[j].price)
    s = _lslot(e, loc, side, gi)
    t = e.lv_tail[s]
    e.ord[j].prev = t
    e.ord[j].next = -1
    if t >= 0:
        e.ord[t].next = j
    else:
        e.lv_head[s] = j
    e.lv_tail[s] = j
    if e.ord[j].disp != L.DISPLAY_HIDDEN:
        e.lv_qty[s] += e.ord[j].qty
        e.lv_cnt[s] += 1
    e.lv_n[s] += 1
    if e.lv_n[s] == 1:
        e.nlev[loc, side] += 1
        b = e.best[loc, side]
        if b < 0 or (side == _B and gi > b) or (side == _S and gi < b):
            e.best[loc, side] = gi


@njit(nogil=True, inline="always")
def _unlink(e, j):
    """Take order j out of its level (its open shares leave the displayed total)."""
    loc, side = e.ord[j].loc, e.ord[j].side
    gi = _gi(e, loc, e.ord[j].price)
    s = _lslot(e, loc, side, gi)
    p, n = e.ord[j].prev, e.ord[j].next
    if p >= 0:
        e.ord[p].next = n
    else:
        e.lv_head[s] = n
    if n >= 0:
        e.ord[n].prev = p
    else:
        e.lv_tail[s] = p
    if e.ord[j].disp != L.DISPLAY_HIDDEN:
        e.lv_qty[s] -= e.ord[j].qty
        e.lv_cnt[s] -= 1
    e.lv_n[s] -= 1
    if e.lv_n[s] == 0:
        e.nlev[loc, side] -= 1
        if e.best[loc, side] == gi:
            if e.nlev[loc, side] == 0:
                e.best[loc, side] = -1
            else:
                step = -1 if side == _B else 1
                g = gi + step
                base = _lslot(e, loc, side, 0)
                while e.lv_n[base + g] == 0:   # ends: nlev > 0 says a level is left
                    g += step
                e.best[loc, side] = g


# ---------------------------------------------------------------- order slots

@njit(nogil=True, inline="always")
def _alloc(e):
    n = e.state[S_N_FREE]
    if n == 0:
        return -1
    e.state[S_N_FREE] = n - 1
    return e.free[n - 1]


@njit(nogil=True, inline="always")
def _release_slot(e, j):
    """Order j is dead: out of the lookup, the background list and the slot table."""
    u = e.ord[j].user
    _h_delete(e, u, e.ord[j].uref)
    if u == 0:
        k = e.ord[j].bg
        if k >= 0:
            n = e.state[S_BG_N] - 1
            last = e.bg_slots[n]
            e.bg_slots[k] = last
            e.ord[last].bg = k
            e.state[S_BG_N] = n
            e.ord[j].bg = -1
    e.ord[j].qty = 0
    e.free[e.state[S_N_FREE]] = j
    e.state[S_N_FREE] += 1


# ---------------------------------------------------------------- responses

@njit(nogil=True, cache=True)
def _resp_write(rh, rd, stop, counters, kind, user, uref, loc, och, tif, disp, cap, iso, qty,
                price, ref, now, token):
    """Claim a response slot and fill the fields A, U, E, C, M share; returns it or -1.
    Not inlined, and given plain values rather than the engine: its many copies inlined
    cost compile time, and a call passing the 37-array engine tuple would cost 125 ns."""
    k = R.try_claim(rh)
    while k < 0:
        if load_acquire(stop, 0) != 0:
            counters[L.C_RESP_DROPPED] += 1
            return -1
        cpu_relax()
        k = R.try_claim(rh)
    r = rd[k]
    r.kind = kind
    r.user = user
    r.uref = uref
    r.orig_uref = 0
    r.locate = loc
    r.side = och
    r.tif = tif
    r.display = disp
    r.capacity = cap
    r.iso = iso
    r.cross = L.CROSS_CONTINUOUS
    r.state = L.STATE_LIVE
    r.qty = qty
    r.price = price
    r.order_ref = ref
    r.match = 0
    r.liquidity = 0
    r.reason_c = 0
    r.reason = 0
    r.ts_ns = now
    r.token = token
    return k


@njit(nogil=True, inline="always")
def _resp_order(e, rh, rd, stop, kind, j, now, token):
    """A response about order j (A, U, E, C, M share these fields)."""
    return _resp_write(rh, rd, stop, e.counters, kind, e.ord[j].user, e.ord[j].uref, e.ord[j].loc,
                       e.ord[j].och, e.ord[j].tif, e.ord[j].disp, e.ord[j].cap, e.ord[j].iso, e.ord[j].qty,
                       e.ord[j].price, e.ord[j].ref, now, token)


@njit(nogil=True, inline="always")
def _publish(rh):
    R.publish(rh, 1)


@njit(nogil=True, inline="always")
def _reject(e, rh, rd, stop, cmd, reason, now):
    e.counters[L.C_REJECTED] += 1
    e.counters[L.REJ_BASE + reason] += 1
    if cmd.user != 0:
        _reject_write(rh, rd, stop, e.counters, cmd, reason, now)


@njit(nogil=True, cache=True)
def _reject_write(rh, rd, stop, counters, cmd, reason, now):
    k = R.try_claim(rh)
    while k < 0:
        if load_acquire(stop, 0) != 0:
            counters[L.C_RESP_DROPPED] += 1
            return
        cpu_relax()
        k = R.try_claim(rh)
    r = rd[k]
    r.kind = L.R_REJECTED
    r.user = cmd.user
    r.uref = cmd.uref
    r.orig_uref = cmd.orig_uref
    r.locate = cmd.locate
    r.reason = reason
    r.ts_ns = now
    r.token = cmd.token
    r.qty = cmd.qty
    r.price = cmd.price
    for b in range(14):
        r.clordid[b] = cmd.clordid[b]
    R.publish(rh, 1)


@njit(nogil=True, inline="always")
def _canceled(e, rh, rd, stop, j, dec, reason, now, token):
    if e.ord[j].user == 0:
        return
    k = _resp_order(e, rh, rd, stop, L.R_CANCELED, j, now, token)
    if k >= 0:
        rd[k].qty = dec
        rd[k].reason_c = reason
        _publish(rh)


# ---------------------------------------------------------------- ITCH of a resting order

@njit(nogil=True, inline="always")
def _itch_add(e, w, j, now):
    if e.ord[j].disp == L.DISPLAY_HIDDEN:
        return
    side_ch = _CH_B if e.ord[j].side == _B else _CH_S
    mpid = e.ord[j].mpid if e.ord[j].disp == L.DISPLAY_ATTRIBUTABLE else 0
    W.add_order(w, now, e.ord[j].loc, e.ord[j].ref, side_ch, e.ord[j].qty, e.symbols, e.ord[j].price, mpid)


@njit(nogil=True, inline="always")
def _kill(e, w, rh, rd, stop, j, reason, now, token):
    """Cancel all of resting order j: ITCH D, OUCH C, slot freed."""
    if e.ord[j].disp != L.DISPLAY_HIDDEN:
        W.delete(w, now, e.ord[j].loc, e.ord[j].ref)
    q = e.ord[j].qty
    _unlink(e, j)
    _canceled(e, rh, rd, stop, j, q, reason, now, token)
    e.counters[L.C_CANCELS] += 1
    _release_slot(e, j)


# ---------------------------------------------------------------- matching

@njit(nogil=True, inline="always")
def _match(e, w, rh, rd, stop, a, limit, now, token):
    """Trade aggressor slot a (not on the book) against the opposite side while it crosses
    limit; returns the shares left."""
    loc = e.ord[a].loc
    side = e.ord[a].side
    opp = 1 - side
    q = e.ord[a].qty
    user = e.ord[a].user
    smp = e.state[S_SMP] != 0 and user != 0
    lo = e.loc_lo[loc]
    tick = e.loc_tick[loc]
    while q > 0:
        gi = e.best[loc, opp]
        if gi < 0:
            break
        px = lo + gi * tick
        if (side == _B and px > limit) or (side == _S and px < limit):
            break
        s = _lslot(e, loc, opp, gi)
        j = e.lv_head[s]
        while j >= 0 and q > 0:
            nxt = e.ord[j].next
            if smp and e.ord[j].user == user:
                e.counters[L.C_SELF_MATCH] += 1
                _kill(e, w, rh, rd, stop, j, L.CANCEL_SELF_MATCH, now, token)
                j = nxt
                continue
            x = min(q, e.ord[j].qty)
            m = e.state[S_NEXT_MATCH]
            e.state[S_NEXT_MATCH] = m + 1
            if e.ord[j].disp != L.DISPLAY_HIDDEN:
                W.executed(w, now, loc, e.ord[j].ref, x, m)
                e.lv_qty[s] -= x
            else:
                W.trade(w, now, loc, _CH_B if opp == _B else _CH_S, x, e.symbols, px, m)
            e.ord[j].qty -= x
            e.ord[j].exec += x
            q -= x
            e.ord[a].qty = q
            e.ord[a].exec += x
            e.counters[L.C_EXECUTIONS] += 1
            e.counters[L.C_EXEC_SHARES] += x
            if e.ord[j].user != 0:
                k = _resp_order(e, rh, rd, stop, L.R_EXECUTED, j, now, -1)
                if k >= 0:
                    rd[k].qty = x
                    rd[k].price = px
                    rd[k].match = m
                    rd[k].liquidity = L.LIQ_ADDED
                    _publish(rh)
            if user != 0:
                k = _resp_order(e, rh, rd, stop, L.R_EXECUTED, a, now, token)
                if k >= 0:
                    rd[k].qty = x
                    rd[k].price = px
                    rd[k].match = m
                    rd[k].liquidity = L.LIQ_REMOVED
                    _publish(rh)
            if e.ord[j].qty == 0:   # filled: its shares already left lv_qty above
                _unlink(e, j)
                _release_slot(e, j)
            j = nxt
    return q


# ---------------------------------------------------------------- validation

@njit(nogil=True, inline="always")
def _check_price(e, loc, price):
    if price <= 0 or price % e.loc_tick[loc] != 0:
        return L.REJ_INVALID_PRICE
    if price < e.loc_lo[loc] or price > e.loc_hi[loc]:
        return L.REJ_PRICE_OUTSIDE_BANDS
    return 0


@njit(nogil=True, inline="always")
def _check_common(e, cmd):
    if cmd.qty <= 0 or cmd.qty > L.MAX_ORDER_QTY:
        return L.REJ_INVALID_QUANTITY
    if cmd.tif != L.TIF_DAY and cmd.tif != L.TIF_IOC:
        return L.REJ_INVALID_TIF
    d = cmd.display
    if d != L.DISPLAY_VISIBLE and d != L.DISPLAY_HIDDEN and d != L.DISPLAY_ATTRIBUTABLE:
        return L.REJ_INVALID_DISPLAY
    if cmd.iso != 89 and cmd.iso != 78:   # Y, N
        return L.REJ_INVALID_ISO
    return 0


@njit(nogil=True, inline="always")
def _check_enter(e, cmd):
    loc = cmd.locate
    if loc <= 0 or loc >= e.loc_npx.shape[0]:
        return L.REJ_INVALID_STOCK
    s = cmd.side
    if s != L.SIDE_BUY and s != L.SIDE_SELL and s != L.SIDE_SHORT and s != L.SIDE_EXEMPT:
        return L.REJ_INVALID_SIDE
    r = _check_common(e, cmd)
    if r != 0:
        return r
    c = cmd.capacity
    if c != 65 and c != 80 and c != 82 and c != 79:   # A P R O
        return L.REJ_INVALID_CAPACITY
    if cmd.cross != L.CROSS_CONTINUOUS:
        return L.REJ_INVALID_CROSS
    if cmd.price != L.MARKET_PRICE:
        r = _check_price(e, loc, cmd.price)
        if r != 0:
            return r
    if e.state[S_OPEN] == 0:
        return L.REJ_CLOSED
    if e.state[S_N_FREE] == 0:
        return L.REJ_VENUE_FULL
    return 0


# ---------------------------------------------------------------- commands

@njit(nogil=True, inline="always")
def _rest_or_cancel(e, w, rh, rd, stop, j, now, token):
    """After matching: a day order rests (ITCH A/F), an IOC's rest is canceled (C, I)."""
    if e.ord[j].qty == 0:
        _release_slot(e, j)
        return
    if e.ord[j].tif == L.TIF_IOC or e.ord[j].price == L.MARKET_PRICE:
        e.counters[L.C_IOC_CANCELS] += 1
        _canceled(e, rh, rd, stop, j, e.ord[j].qty, L.CANCEL_IOC, now, token)
        _release_slot(e, j)
        return
    _link(e, j)
    _itch_add(e, w, j, now)


@njit(nogil=True, inline="always")
def _limit_of(e, j):
    p = e.ord[j].price
    if p == L.MARKET_PRICE:
        return e.loc_hi[e.ord[j].loc] if e.ord[j].side == _B else e.loc_lo[e.ord[j].loc]
    return p


@njit(nogil=True, inline="always")
def enter(e, w, rh, rd, stop, cmd, now):
    r = _check_enter(e, cmd)
    if r != 0:
        _reject(e, rh, rd, stop, cmd, r, now)
        return
    j = _alloc(e)
    user = cmd.user
    e.ord[j].ref = e.state[S_NEXT_REF]
    e.state[S_NEXT_REF] += 1
    e.ord[j].loc = cmd.locate
    e.ord[j].side = _B if cmd.side == L.SIDE_BUY else _S
    e.ord[j].price = cmd.price
    e.ord[j].qty = cmd.qty
    e.ord[j].exec = 0
    e.ord[j].user = user
    e.ord[j].uref = cmd.uref
    e.ord[j].disp = cmd.display
    e.ord[j].och = cmd.side
    e.ord[j].cap = cmd.capacity
    e.ord[j].iso = cmd.iso
    e.ord[j].tif = cmd.tif
    e.ord[j].mpid = e.user_mpid[user] if user < e.user_mpid.shape[0] else 0
    e.counters[L.C_ACCEPTED] += 1
    _h_insert(e, user, cmd.uref, j)
    if user != 0:
        e.ord[j].bg = -1
        k = _resp_order(e, rh, rd, stop, L.R_ACCEPTED, j, now, cmd.token)
        if k >= 0:
            for b in range(14):
                rd[k].clordid[b] = cmd.clordid[b]
            rd[k].cross = cmd.cross
            _publish(rh)
    else:
        n = e.state[S_BG_N]
        e.bg_slots[n] = j
        e.ord[j].bg = n
        e.state[S_BG_N] = n + 1
    _match(e, w, rh, rd, stop, j, _limit_of(e, j), now, cmd.token)
    _rest_or_cancel(e, w, rh, rd, stop, j, now, cmd.token)


@njit(nogil=True, inline="always")
def cancel_slot(e, w, rh, rd, stop, j, new_size, now, token):
    """Cancel order j down to new_size open shares (0 = all); returns 1 if it changed."""
    q = e.ord[j].qty
    if new_size >= q:
        e.counters[L.C_CANCEL_NOOP] += 1
        return 0
    if new_size <= 0:
        _kill(e, w, rh, rd, stop, j, L.CANCEL_USER, now, token)
        return 1
    dec = q - new_size
    if e.ord[j].disp != L.DISPLAY_HIDDEN:
        s = _lslot(e, e.ord[j].loc, e.ord[j].side, _gi(e, e.ord[j].loc, e.ord[j].price))
        e.lv_qty[s] -= dec
        W.cancel(w, now, e.ord[j].loc, e.ord[j].ref, dec)
    e.ord[j].qty = new_size            # a reduce keeps its place in the queue
    e.counters[L.C_CANCELS] += 1
    _canceled(e, rh, rd, stop, j, dec, L.CANCEL_USER, now, token)
    return 1


@njit(nogil=True, inline="always")
def _crosses(e, loc, side, price):
    opp = 1 - side
    gi = e.best[loc, opp]
    if gi < 0:
        return False
    px = e.loc_lo[loc] + gi * e.loc_tick[loc]
    return px <= price if side == _B else px >= price


@njit(nogil=True, inline="always")
def replace_slot(e, w, rh, rd, stop, j, cmd, now):
    """Replace order j by (cmd.uref, cmd.qty total, cmd.price, tif, display, iso)."""
    loc = e.ord[j].loc
    r = _check_common(e, cmd)
    if r == 0:
        r = L.REJ_INVALID_PRICE if cmd.price == L.MARKET_PRICE else _check_price(e, loc, cmd.price)
    if r == 0 and cmd.qty - e.ord[j].exec <= 0:
        r = L.REJ_QTY_BELOW_EXECUTED
    if r != 0:
        _reject(e, rh, rd, stop, cmd, r, now)
        return
    side = e.ord[j].side
    old_ref = e.ord[j].ref
    old_disp = e.ord[j].disp != L.DISPLAY_HIDDEN
    new_disp = cmd.display != L.DISPLAY_HIDDEN
    marketable = _crosses(e, loc, side, cmd.price)
    use_u = old_disp and new_disp and not marketable and cmd.tif == L.TIF_DAY
    if old_disp and not use_u:
        W.delete(w, now, loc, old_ref)
    _unlink(e, j)
    user = e.ord[j].user
    orig = e.ord[j].uref
    _h_delete(e, user, orig)
    _h_insert(e, user, cmd.uref, j)
    e.ord[j].uref = cmd.uref
    e.ord[j].ref = e.state[S_NEXT_REF]
    e.state[S_NEXT_REF] += 1
    e.ord[j].price = cmd.price
    e.ord[j].qty = cmd.qty - e.ord[j].exec
    e.ord[j].tif = cmd.tif
    e.ord[j].disp = cmd.display
    e.ord[j].iso = cmd.iso
    e.counters[L.C_REPLACES] += 1
    if user != 0:
        k = _resp_order(e, rh, rd, stop, L.R_REPLACED, j, now, cmd.token)
        if k >= 0:
            rd[k].orig_uref = orig
            for b in range(14):
                rd[k].clordid[b] = cmd.clordid[b]
            _publish(rh)
    if marketable:
        _match(e, w, rh, rd, stop, j, cmd.price, now, cmd.token)
    if use_u:
        _link(e, j)
        W.replace(w, now, loc, old_ref, e.ord[j].ref, e.ord[j].qty, e.ord[j].price)
    else:
        _rest_or_cancel(e, w, rh, rd, stop, j, now, cmd.token)


@njit(nogil=True, inline="always")
def modify_slot(e, w, rh, rd, stop, j, side_ch, new_size, now, token):
    old = e.ord[j].och
    sell_family = side_ch == L.SIDE_SELL or side_ch == L.SIDE_SHORT or side_ch == L.SIDE_EXEMPT
    ok_side = (side_ch == old) or (old != L.SIDE_BUY and sell_family)
    if not ok_side or new_size <= 0 or new_size > e.ord[j].qty:
        e.counters[L.C_MODIFY_BAD] += 1
        return 0
    dec = e.ord[j].qty - new_size
    if dec > 0:
        if e.ord[j].disp != L.DISPLAY_HIDDEN:
            s = _lslot(e, e.ord[j].loc, e.ord[j].side, _gi(e, e.ord[j].loc, e.ord[j].price))
            e.lv_qty[s] -= dec
            W.cancel(w, now, e.ord[j].loc, e.ord[j].ref, dec)
        e.ord[j].qty = new_size
    e.ord[j].och = side_ch
    e.counters[L.C_MODIFIES] += 1
    if e.ord[j].user != 0:
        k = _resp_order(e, rh, rd, stop, L.R_MODIFIED, j, now, token)
        if k >= 0:
            _publish(rh)
    return 1


@njit(nogil=True, inline="always")
def process(e, w, rh, rd, stop, cmd, now):
    """Apply one command record (any user; user 0 = background flow)."""
    e.counters[L.C_CMDS] += 1
    if cmd.user != 0:
        e.counters[L.C_CLIENT_CMDS] += 1
    kind = cmd.kind
    if kind == L.CMD_ENTER:
        enter(e, w, rh, rd, stop, cmd, now)
        return
    j = h_find(e, cmd.user, cmd.orig_uref if kind == L.CMD_REPLACE else cmd.uref)
    if kind == L.CMD_REPLACE:
        if j < 0 and cmd.user == 0:
            e.counters[L.C_BG_MISSED] += 1
        elif j < 0:
            _reject(e, rh, rd, stop, cmd, L.REJ_UNKNOWN_ORDER, now)
        else:
            replace_slot(e, w, rh, rd, stop, j, cmd, now)
    elif kind == L.CMD_CANCEL:
        if j < 0:
            e.counters[L.C_CANCEL_UNKNOWN if cmd.user != 0 else L.C_BG_MISSED] += 1
        else:
            cancel_slot(e, w, rh, rd, stop, j, cmd.qty, now, cmd.token)
    elif kind == L.CMD_MODIFY:
        if j < 0:
            e.counters[L.C_CANCEL_UNKNOWN] += 1
        else:
            modify_slot(e, w, rh, rd, stop, j, cmd.side, cmd.qty, now, cmd.token)


@njit(nogil=True, cache=True)
def process_range(e, w, rh, rd, stop, cmds, first, n, now, in_log):
    """Apply commands cmds[(first + k) & (len - 1)], k < n (a ring's slots, or an array
    from 0 with len a power of two >= n). For a client command whose token is >= 0 the
    sequence number of the first ITCH message it caused goes into in_log[token]."""
    e = borrow_engine(e)
    w = W.borrow_out(w)
    rh = borrow(rh)
    rd = borrow(rd)
    mask = cmds.shape[0] - 1
    lmask = in_log.shape[0] - 1
    for k in range(n):
        c = cmds[(first + k) & mask]
        seq0 = w.state[W.N_MSGS]
        process(e, w, rh, rd, stop, c, now)
        if c.token >= 0 and w.state[W.N_MSGS] > seq0:
            in_log[c.token & lmask].itch_seq = seq0 + 1
    return n


def process_all(e, w, rh, rd, stop, cmds, now, in_log=None):
    """Apply every command of an array in order (tests, benchmarks)."""
    n = len(cmds)
    size = 1 << max(0, (n - 1).bit_length())
    if size != n:
        padded = np.zeros(size, cmds.dtype)
        padded[:n] = cmds
        cmds = padded
    if in_log is None:
        from tickpath.bench.venue.timestamps import new_in_log
        in_log = new_in_log(1)
    return process_range(e, w, rh, rd, stop, cmds, 0, n, now, in_log)


@njit(nogil=True, cache=True)
def set_open(e, is_open):
    e.state[S_OPEN] = 1 if is_open else 0
