"""The matching engine: price-time priority limit books in numba, one writer thread.

`process_range(e, w, rh, rd, stop, cmds, first, n, now, in_log)` applies commands
(layout.CMD_DTYPE: enter, replace, cancel, modify) to the books of book.py (primitives in
orders.py), writes every book change as the ITCH 5.0 message NASDAQ would send into the
MoldUDP64 writer `w` (itch_out.py), and every OUCH response the command causes into the
SPSC ring (rh, rd) of layout.RESP_DTYPE records for the network thread. It never raises
and never allocates; bad input is a reject (OUCH J, counted by reason) or a counter.

Semantics (OUCH 5.0; REFERENCE.md and NASDAQ's specification):
* Enter: validated (stock, side, quantity, TIF, display, capacity, ISO, cross type, price on
  the tick grid and inside the band), accepted (A, with the venue's order reference
  number), then matched against the opposite side from its best price while it crosses:
  each fill executes at the resting order's price, with one match number shared by both
  sides' E responses and the ITCH E (or P for a non-displayed resting order). What is left
  rests (ITCH A, or F when Display = A) for a day order (TIF 0, 5, E: the venue has one
  session) or is canceled (C, reason I) for IOC. Market orders (price MARKET_PRICE) are
  IOC limited to the band. A post-only order (appendage option 12) that would trade on
  arrival is canceled instead (C, reason G) and never touches the book.
* Self-match prevention (a switch): an incoming order of user u meeting a resting order
  of the same user cancels the resting one (C reason Q, ITCH D) and matching goes on.
  The background flow (user 0) stands for many participants and is exempt.
* Cancel (X, new intended size): 0 cancels all (ITCH D); a smaller size reduces in place
  and keeps time priority (ITCH X); a size >= the open size changes nothing (counted), an
  unknown or dead order is ignored (counted), as the spec says.
* Replace (U): as the spec's three cases say — an unknown or dead original is silently
  ignored (counted); a live original with invalid new details is canceled (C, reason Z;
  counted); otherwise the new UserRefNum takes over the order with a new order reference
  number and loses priority (it goes to the back of its new level); the quantity is the
  total of the chain, executions included, so the new open size is quantity - executed.
  ITCH: U when old and new are displayed and the new one rests; otherwise D of the old and
  A of what rests. A marketable replace trades first (post-only: canceled, reason G).
* Modify (M): a new side within the sell family (S, T, E) and/or a smaller size, keeping
  priority (ITCH X for the decrement); anything else is refused (counted).

Compile time: what orders do (enter, replace, cancel, the matching and resting tail Enter
and Replace share) is inlined once each into process_range; rare paths are separate cached
functions it calls — modify_cmd, kill_slot (self-match, invalid replace), the response
writers, the ITCH P encoder — so no piece is inlined twice and numba types each once (the
old engine inlined matching and resting twice: 4 min cold; now about 1 min,
bench/RESULTS.md). Why not call more of them: a numba function zero-fills every stack slot
of its variables on entry, and a function holding the engine tuple's inlined copies has a
big frame — calling the matching per order cost ~1 µs a call (measured: ~30 % of the
engine's orders/s). Every function is cached under jit.DEPS_KEY (no stale code after an
edit to a file it inlines).
"""
from __future__ import annotations

import numpy as np

from tickpath.runtime.ipc import ring as R
from tickpath.runtime.sys.intrinsics import borrow, cpu_relax, load_acquire

from tickpath.bench.venue import itch_out as W
from tickpath.bench.venue import layout as L
from tickpath.bench.venue import orders as O
from tickpath.bench.venue.book import S_BG_N, S_N_FREE, S_NEXT_MATCH, S_NEXT_REF, S_OPEN, S_SMP
from tickpath.bench.venue.book import borrow_engine
from tickpath.bench.venue.jit import vjit

_B, _S = O.BID, O.ASK
_CH_B, _CH_S = ord("B"), ord("S")


# ---------------------------------------------------------------- responses

@vjit
def _resp_write(rh, rd, stop, counters, kind, user, uref, loc, och, tif, disp, cap, iso, qty,
                price, ref, now, token):
    """Claim a response slot and fill the fields A, U, E, C, M share; returns it or -1.
    Not inlined, and given plain values rather than the engine: its many copies inlined
    cost compile time, and a call passing the engine tuple would cost more than it saves."""
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


@vjit(inline="always")
def _resp_order(e, rh, rd, stop, kind, j, now, token):
    """A response about order j (A, U, E, C, M share these fields)."""
    return _resp_write(rh, rd, stop, e.counters, kind, e.ord[j].user, e.ord[j].uref, e.ord[j].loc,
                       e.ord[j].och, e.ord[j].tif, e.ord[j].disp, e.ord[j].cap, e.ord[j].iso, e.ord[j].qty,
                       e.ord[j].price, e.ord[j].ref, now, token)


@vjit
def _reject_write(rh, rd, stop, counters, cmd, reason, now):
    counters[L.C_REJECTED] += 1
    counters[L.REJ_BASE + reason] += 1
    if cmd.user == 0:
        return
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


@vjit(inline="always")
def _canceled(e, rh, rd, stop, j, dec, reason, now, token):
    if e.ord[j].user == 0:
        return
    k = _resp_order(e, rh, rd, stop, L.R_CANCELED, j, now, token)
    if k >= 0:
        rd[k].qty = dec
        rd[k].reason_c = reason
        R.publish(rh, 1)


@vjit(inline="always")
def _kill(e, w, rh, rd, stop, j, reason, now, token):
    """Cancel all of resting order j: ITCH D, OUCH C, slot freed."""
    if e.ord[j].disp != L.DISPLAY_HIDDEN:
        W.delete(w, now, e.ord[j].loc, e.ord[j].ref)
    q = e.ord[j].qty
    O.unlink(e, j)
    _canceled(e, rh, rd, stop, j, q, reason, now, token)
    e.counters[L.C_CANCELS] += 1
    O.release(e, j)


# ---------------------------------------------------------------- matching

@vjit(inline="always")
def _fill_resp(e, rh, rd, stop, j, x, px, m, liq, now, token):
    k = _resp_order(e, rh, rd, stop, L.R_EXECUTED, j, now, token)
    if k >= 0:
        rd[k].qty = x
        rd[k].price = px
        rd[k].match = m
        rd[k].liquidity = liq
        R.publish(rh, 1)


@vjit
def kill_slot(e, w, rh, rd, stop, j, reason, now, token):
    """_kill, called (the rare paths: self-match prevention, a replace with invalid details)."""
    _kill(e, w, rh, rd, stop, j, reason, now, token)


@vjit(inline="always")
def _match(e, w, rh, rd, stop, a, limit, now, token):
    """Trade aggressor slot a (not on the book) against the opposite side while it crosses
    limit; returns the shares left. Inlined once, into process's tail shared by Enter and
    Replace (see the module's compile-time note for why not called)."""
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
        s = O.lslot(e, loc, opp, gi)
        j = e.lv_head[s]
        while j >= 0 and q > 0:
            nxt = e.ord[j].next
            if smp and e.ord[j].user == user:
                e.counters[L.C_SELF_MATCH] += 1
                kill_slot(e, w, rh, rd, stop, j, L.CANCEL_SELF_MATCH, now, token)
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
                _fill_resp(e, rh, rd, stop, j, x, px, m, L.LIQ_ADDED, now, -1)
            if user != 0:
                _fill_resp(e, rh, rd, stop, a, x, px, m, L.LIQ_REMOVED, now, token)
            if e.ord[j].qty == 0:   # filled: its shares already left lv_qty above
                O.unlink(e, j)
                O.release(e, j)
            j = nxt
    return q


# ---------------------------------------------------------------- validation

@vjit(inline="always")
def _check_price(e, loc, price):
    if price <= 0 or price % e.loc_tick[loc] != 0:
        return L.REJ_INVALID_PRICE
    if price < e.loc_lo[loc] or price > e.loc_hi[loc]:
        return L.REJ_FAT_FINGER
    return 0


@vjit(inline="always")
def _check_common(cmd):
    if cmd.qty <= 0:
        return L.REJ_INVALID_QUANTITY
    if cmd.qty > L.MAX_ORDER_QTY:
        return L.REJ_SHARES_EXCEED_THRESHOLD
    t = cmd.tif
    if t != L.TIF_DAY and t != L.TIF_IOC and t != L.TIF_GTX and t != L.TIF_AFTER_HOURS:
        return L.REJ_OTHER
    d = cmd.display
    if d != L.DISPLAY_VISIBLE and d != L.DISPLAY_HIDDEN and d != L.DISPLAY_ATTRIBUTABLE \
            and d != L.DISPLAY_CONFORMANT:
        return L.REJ_INVALID_DISPLAY
    if cmd.iso != 89 and cmd.iso != 78:   # Y, N
        return L.REJ_ISO_NOT_ALLOWED
    return 0


@vjit(inline="always")
def _check_enter(e, cmd):
    loc = cmd.locate
    if loc <= 0 or loc >= e.loc_npx.shape[0]:
        return L.REJ_INVALID_SYMBOL
    s = cmd.side
    if s != L.SIDE_BUY and s != L.SIDE_SELL and s != L.SIDE_SHORT and s != L.SIDE_EXEMPT:
        return L.REJ_INVALID_SIDE
    r = _check_common(cmd)
    if r != 0:
        return r
    c = cmd.capacity
    if c != 65 and c != 80 and c != 82 and c != 79:   # A P R O
        return L.REJ_OTHER
    if cmd.cross != L.CROSS_CONTINUOUS:
        return L.REJ_INVALID_CROSS
    if cmd.price != L.MARKET_PRICE:
        r = _check_price(e, loc, cmd.price)
        if r != 0:
            return r
    if e.state[S_OPEN] == 0:
        return L.REJ_DESTINATION_CLOSED
    if e.state[S_N_FREE] == 0:
        return L.REJ_PROCESSING_ERROR
    return 0


# ---------------------------------------------------------------- commands

@vjit(inline="always")
def _rest(e, w, rh, rd, stop, j, u_ref, now, token):
    """After matching: a day order rests (ITCH A/F, or U of order u_ref >= 0 for a replace
    that keeps it displayed), an IOC's rest is canceled (C, I), a filled one is freed."""
    q = e.ord[j].qty
    if q == 0 or e.ord[j].tif == L.TIF_IOC or e.ord[j].price == L.MARKET_PRICE:
        if q > 0:
            e.counters[L.C_IOC_CANCELS] += 1
            _canceled(e, rh, rd, stop, j, q, L.CANCEL_IOC, now, token)
        O.release(e, j)
        return
    O.link(e, j)
    if e.ord[j].disp == L.DISPLAY_HIDDEN:
        return
    loc = e.ord[j].loc
    if u_ref >= 0:
        W.replace(w, now, loc, u_ref, e.ord[j].ref, q, e.ord[j].price)
    else:
        side_ch = _CH_B if e.ord[j].side == _B else _CH_S
        mpid = e.ord[j].mpid if e.ord[j].disp == L.DISPLAY_ATTRIBUTABLE else 0
        W.add_order(w, now, loc, e.ord[j].ref, side_ch, q, e.symbols, e.ord[j].price, mpid)


@vjit(inline="always")
def _post_only_cancel(e, rh, rd, stop, j, now, token):
    """A post-only order that would trade: canceled whole (C, reason G), never on the book."""
    e.counters[L.C_POST_ONLY_CANCELS] += 1
    _canceled(e, rh, rd, stop, j, e.ord[j].qty, L.CANCEL_POST_ONLY, now, token)
    O.release(e, j)


@vjit(inline="always")
def _limit_of(e, j):
    p = e.ord[j].price
    if p == L.MARKET_PRICE:
        return e.loc_hi[e.ord[j].loc] if e.ord[j].side == _B else e.loc_lo[e.ord[j].loc]
    return p


@vjit(inline="always")
def _enter(e, rh, rd, stop, cmd, now):
    """Validate and accept an Enter: the order's slot (not yet on the book), or -1."""
    r = _check_enter(e, cmd)
    if r != 0:
        _reject_write(rh, rd, stop, e.counters, cmd, r, now)
        return -1
    j = O.alloc(e)
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
    e.ord[j].flags = cmd.flags
    e.ord[j].mpid = e.user_mpid[user] if user < e.user_mpid.shape[0] else 0
    e.counters[L.C_ACCEPTED] += 1
    O.h_insert(e, user, cmd.uref, j)
    if user != 0:
        e.ord[j].bg = -1
        k = _resp_order(e, rh, rd, stop, L.R_ACCEPTED, j, now, cmd.token)
        if k >= 0:
            for b in range(14):
                rd[k].clordid[b] = cmd.clordid[b]
            rd[k].cross = cmd.cross
            R.publish(rh, 1)
    else:
        n = e.state[S_BG_N]
        e.bg_slots[n] = j
        e.ord[j].bg = n
        e.state[S_BG_N] = n + 1
    return j


@vjit(inline="always")
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
        s = O.lslot(e, e.ord[j].loc, e.ord[j].side, O.grid(e, e.ord[j].loc, e.ord[j].price))
        e.lv_qty[s] -= dec
        W.cancel(w, now, e.ord[j].loc, e.ord[j].ref, dec)
    e.ord[j].qty = new_size            # a reduce keeps its place in the queue
    e.counters[L.C_CANCELS] += 1
    _canceled(e, rh, rd, stop, j, dec, L.CANCEL_USER, now, token)
    return 1


@vjit(inline="always")
def _replace(e, w, rh, rd, stop, j, cmd, now):
    """Replace live order j by (cmd.uref, cmd.qty total, cmd.price, tif, display, iso) up to
    where it trades and rests (process's shared tail). Returns the old order reference
    number when the tail is to publish ITCH U (old and new displayed, the new one resting
    without trading), -1 for D then A (already sent D when the old one was displayed), -2
    when done (invalid details: the original is canceled)."""
    loc = e.ord[j].loc
    r = _check_common(cmd)
    if r == 0:
        r = L.REJ_INVALID_PRICE if cmd.price == L.MARKET_PRICE else _check_price(e, loc, cmd.price)
    if r == 0 and cmd.qty - e.ord[j].exec <= 0:
        r = L.REJ_INVALID_QUANTITY
    if r != 0:                         # the spec: invalid details cancel the live original
        e.counters[L.C_REPLACE_INVALID] += 1       # not a reject: no J is sent
        kill_slot(e, w, rh, rd, stop, j, L.CANCEL_SYSTEM, now, cmd.token)
        return -2
    old_ref = e.ord[j].ref
    old_disp = e.ord[j].disp != L.DISPLAY_HIDDEN
    marketable = O.crosses(e, loc, e.ord[j].side, cmd.price)
    use_u = old_disp and cmd.display != L.DISPLAY_HIDDEN and not marketable \
        and cmd.tif != L.TIF_IOC
    if old_disp and not use_u:
        W.delete(w, now, loc, old_ref)
    O.unlink(e, j)
    user = e.ord[j].user
    orig = e.ord[j].uref
    O.h_delete(e, user, orig)
    O.h_insert(e, user, cmd.uref, j)
    e.ord[j].uref = cmd.uref
    e.ord[j].ref = e.state[S_NEXT_REF]
    e.state[S_NEXT_REF] += 1
    e.ord[j].price = cmd.price
    e.ord[j].qty = cmd.qty - e.ord[j].exec
    e.ord[j].tif = cmd.tif
    e.ord[j].disp = cmd.display
    e.ord[j].iso = cmd.iso
    e.ord[j].flags = cmd.flags
    e.counters[L.C_REPLACES] += 1
    if user != 0:
        k = _resp_order(e, rh, rd, stop, L.R_REPLACED, j, now, cmd.token)
        if k >= 0:
            rd[k].orig_uref = orig
            for b in range(14):
                rd[k].clordid[b] = cmd.clordid[b]
            R.publish(rh, 1)
    return np.int64(old_ref) if use_u else -1


@vjit
def modify_cmd(e, w, rh, rd, stop, j, side_ch, new_size, now, token):
    old = e.ord[j].och
    sell_family = side_ch == L.SIDE_SELL or side_ch == L.SIDE_SHORT or side_ch == L.SIDE_EXEMPT
    ok_side = (side_ch == old) or (old != L.SIDE_BUY and sell_family)
    if not ok_side or new_size <= 0 or new_size > e.ord[j].qty:
        e.counters[L.C_MODIFY_BAD] += 1
        return 0
    dec = e.ord[j].qty - new_size
    if dec > 0:
        if e.ord[j].disp != L.DISPLAY_HIDDEN:
            s = O.lslot(e, e.ord[j].loc, e.ord[j].side, O.grid(e, e.ord[j].loc, e.ord[j].price))
            e.lv_qty[s] -= dec
            W.cancel(w, now, e.ord[j].loc, e.ord[j].ref, dec)
        e.ord[j].qty = new_size
    e.ord[j].och = side_ch
    e.counters[L.C_MODIFIES] += 1
    if e.ord[j].user != 0:
        k = _resp_order(e, rh, rd, stop, L.R_MODIFIED, j, now, token)
        if k >= 0:
            R.publish(rh, 1)
    return 1


@vjit(inline="always")
def process(e, w, rh, rd, stop, cmd, now):
    """Apply one command record (any user; user 0 = background flow). Enter and Replace
    share one tail (matching, then resting or canceling): one inlined copy of each."""
    e.counters[L.C_CMDS] += 1
    if cmd.user != 0:
        e.counters[L.C_CLIENT_CMDS] += 1
    kind = cmd.kind
    if kind == L.CMD_ENTER:
        j = _enter(e, rh, rd, stop, cmd, now)
        if j < 0:
            return
        u_ref = np.int64(-1)
    else:
        j = O.h_find(e, cmd.user, cmd.orig_uref if kind == L.CMD_REPLACE else cmd.uref)
        if j < 0:
            if cmd.user == 0:
                e.counters[L.C_BG_MISSED] += 1
            elif kind == L.CMD_REPLACE:
                e.counters[L.C_REPLACE_UNKNOWN] += 1      # the spec: silently ignored
            else:
                e.counters[L.C_CANCEL_UNKNOWN] += 1
            return
        if kind == L.CMD_CANCEL:
            cancel_slot(e, w, rh, rd, stop, j, cmd.qty, now, cmd.token)
            return
        if kind == L.CMD_MODIFY:
            modify_cmd(e, w, rh, rd, stop, j, cmd.side, cmd.qty, now, cmd.token)
            return
        if kind != L.CMD_REPLACE:
            return
        u_ref = _replace(e, w, rh, rd, stop, j, cmd, now)
        if u_ref == -2:
            return
    limit = _limit_of(e, j)
    if O.crosses(e, e.ord[j].loc, e.ord[j].side, limit):
        if cmd.flags & L.FLAG_POST_ONLY:
            _post_only_cancel(e, rh, rd, stop, j, now, cmd.token)
            return
        _match(e, w, rh, rd, stop, j, limit, now, cmd.token)
    _rest(e, w, rh, rd, stop, j, u_ref, now, cmd.token)


@vjit
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


@vjit
def set_open(e, is_open):
    e.state[S_OPEN] = 1 if is_open else 0
