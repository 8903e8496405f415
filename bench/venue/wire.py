"""The network thread's byte moving, in numba: SoupBinTCP packets from a logged-in
client parsed and their OUCH 5.0 messages turned into engine commands (pushed into the
command ring), and engine responses formatted as OUCH 5.0 inside SoupBinTCP 'S' packets
into each user's sequenced store. Layouts: ouch.py, soupbin.py, layout.py.

The sequenced store of a user is the day's outbound stream itself: packets back to back
in `ob_buf[u]`, packet n (1-based sequence number) starting at `ob_off[u, n - 1]`. Sending
to a session is one send() of the bytes from its position; a client logging in again with
a sequence number resumes from that packet, so it gets exactly what it missed. The store
is bounded (size it for the day); a full store counts and drops (ST_FULL).

Bad input never raises: each kind is counted per user (U_* slots) and the parse status
tells the Python side when to log the client out.
"""
from __future__ import annotations

import numpy as np

from tickpath.runtime.ipc import ring as R
from tickpath.runtime.sys.intrinsics import cpu_relax, load_acquire

from tickpath.bench.venue import layout as L
from tickpath.bench.venue.itch_out import put_be
from tickpath.bench.venue.jit import vjit

# per-user inbound counters
(U_OUCH, U_HEARTBEATS, U_BAD_LENGTH, U_UNKNOWN_TYPE, U_UNKNOWN_PACKET, U_UREF_IGNORED,
 U_BAD_FRAME, U_ENTER, U_REPLACE, U_CANCEL, U_MODIFY, U_DEBUG, U_RING_WAITS, U_BAD_APPENDAGE) = range(14)
N_USER_COUNTERS = 16
USER_COUNTER_NAMES = ("ouch_messages", "client_heartbeats", "ouch_bad_length",
                      "ouch_unknown_type", "soupbin_unknown_packet", "userrefnum_not_increasing",
                      "soupbin_bad_length", "enter", "replace", "cancel", "modify", "debug",
                      "command_ring_waits", "ouch_bad_appendage")

# parse status
PS_OK, PS_LOGOUT, PS_BAD_FRAME, PS_LOGIN_AGAIN, PS_STOPPED = range(5)

# outbound store state per user
ST_WPOS, ST_NMSGS, ST_FULL = 0, 1, 2
N_ST = 4

_MAX_PAYLOAD = 1 + 47 + 256


@vjit(inline="always")
def _be(buf, o, n):
    v = np.uint64(0)
    for k in range(n):
        v = (v << np.uint64(8)) | np.uint64(buf[o + k])
    return v


@vjit
def _locate(sym_keys, sym_locs, key):
    lo, hi = 0, sym_keys.shape[0] - 1
    while lo <= hi:
        mid = (lo + hi) >> 1
        k = sym_keys[mid]
        if k == key:
            return sym_locs[mid]
        if k < key:
            lo = mid + 1
        else:
            hi = mid - 1
    return 0


@vjit(inline="always")
def _digits(buf, o, n):
    """The ASCII digits buf[o:o+n] (space padding allowed at either end) as a number; 0 when
    anything else is there or there is no digit."""
    v = np.uint64(0)
    seen = False
    for k in range(n):
        b = buf[o + k]
        if b >= 48 and b <= 57:
            v = v * np.uint64(10) + np.uint64(b - 48)
            seen = True
        elif b != 32:
            return np.uint64(0)
    return v if seen else np.uint64(0)


@vjit(inline="always")
def _appendage_flags(buf, q, end):
    """CMD flags from the optional appendage buf[q:end] of {len u8 (tag + value), tag u8,
    value} elements (OUCH 5.0 Appendix A): PostOnly (tag 12) = 'P' sets FLAG_POST_ONLY;
    other options are read over. -1: an element runs past the end or is empty."""
    flags = 0
    while q < end:
        ln = np.int64(buf[q])
        if ln < 1 or q + 1 + ln > end:
            return -1
        if buf[q + 1] == 12 and ln == 2 and buf[q + 2] == 80:
            flags |= L.FLAG_POST_ONLY
        q += 1 + ln
    return flags


@vjit
def parse_inbound(buf, n, user, recv_ns, ch, cd, stop, sym_keys, sym_locs, last_uref,
                  in_log, tok, uc, status):
    """Parse complete SoupBinTCP packets of buf[:n]; push a command per valid OUCH message.
    Returns the bytes consumed; status[0] says why it stopped early (PS_*)."""
    o = 0
    status[0] = PS_OK
    mask = in_log.shape[0] - 1
    while n - o >= 2:
        ln = np.int64(buf[o]) << 8 | np.int64(buf[o + 1])
        if ln == 0 or ln > _MAX_PAYLOAD:
            uc[user, U_BAD_FRAME] += 1
            status[0] = PS_BAD_FRAME
            return o
        if n - o - 2 < ln:
            break                                   # the rest has not arrived yet
        t = buf[o + 2]
        p = o + 3                                   # payload
        plen = ln - 1
        o += 2 + ln
        if t == 82:                                 # R: client heartbeat
            uc[user, U_HEARTBEATS] += 1
            continue
        if t == 79:                                 # O: logout request
            status[0] = PS_LOGOUT
            return o
        if t == 76:                                 # L: a second login on this connection
            status[0] = PS_LOGIN_AGAIN
            return o
        if t == 43:                                 # +: debug
            uc[user, U_DEBUG] += 1
            continue
        if t != 85:                                 # anything but U
            uc[user, U_UNKNOWN_PACKET] += 1
            continue
        uc[user, U_OUCH] += 1
        if plen < 1:
            uc[user, U_BAD_LENGTH] += 1
            continue
        mt = buf[p]
        if mt == 79:
            need = 47
            if plen >= 47:
                need = 47 + np.int64(_be(buf, p + 45, 2))
        elif mt == 85:
            need = 40
            if plen >= 40:
                need = 40 + np.int64(_be(buf, p + 38, 2))
        elif mt == 88:
            need = 9
        elif mt == 77:
            need = 10
        else:
            uc[user, U_UNKNOWN_TYPE] += 1
            continue
        if plen != need:
            uc[user, U_BAD_LENGTH] += 1
            continue
        flags = 0
        if mt == 79 or mt == 85:                    # the optional appendage: TagValue elements
            flags = _appendage_flags(buf, p + (47 if mt == 79 else 40), p + plen)
            if flags < 0:
                uc[user, U_BAD_APPENDAGE] += 1
                continue
        uref = np.int64(_be(buf, p + (5 if mt == 85 else 1), 4))
        if mt == 79 or mt == 85:                    # a new UserRefNum must rise
            if uref <= last_uref[user]:
                uc[user, U_UREF_IGNORED] += 1
                continue
            last_uref[user] = uref
        k = R.try_claim(ch)
        while k < 0:
            uc[user, U_RING_WAITS] += 1
            if load_acquire(stop, 0) != 0:
                status[0] = PS_STOPPED
                return o
            cpu_relax()
            k = R.try_claim(ch)
        c = cd[k]
        clordid = np.uint64(0)
        c.kind = mt
        c.user = user
        c.uref = uref
        c.orig_uref = 0
        c.recv_ns = recv_ns
        token = tok[0]
        tok[0] = token + 1
        c.token = token
        c.cross = L.CROSS_CONTINUOUS
        c.flags = flags
        c.capacity = 65
        c.side = 0
        c.locate = 0
        c.price = 0
        c.tif = 0
        c.display = 0
        c.iso = 0
        if mt == 79:
            uc[user, U_ENTER] += 1
            c.side = buf[p + 5]
            c.qty = np.int64(_be(buf, p + 6, 4))
            c.locate = _locate(sym_keys, sym_locs, _be(buf, p + 10, 8))
            px = _be(buf, p + 18, 8)
            c.price = np.int64(px) if px < np.uint64(1 << 62) else -1
            c.tif = buf[p + 26]
            c.display = buf[p + 27]
            c.capacity = buf[p + 28]
            c.iso = buf[p + 29]
            c.cross = buf[p + 30]
            for b in range(14):
                c.clordid[b] = buf[p + 31 + b]
            clordid = _digits(buf, p + 31, 14)
        elif mt == 85:
            uc[user, U_REPLACE] += 1
            c.orig_uref = np.int64(_be(buf, p + 1, 4))
            c.qty = np.int64(_be(buf, p + 9, 4))
            px = _be(buf, p + 13, 8)
            c.price = np.int64(px) if px < np.uint64(1 << 62) else -1
            c.tif = buf[p + 21]
            c.display = buf[p + 22]
            c.iso = buf[p + 23]
            for b in range(14):
                c.clordid[b] = buf[p + 24 + b]
            clordid = _digits(buf, p + 24, 14)
        elif mt == 88:
            uc[user, U_CANCEL] += 1
            c.qty = np.int64(_be(buf, p + 5, 4))
        else:
            uc[user, U_MODIFY] += 1
            c.side = buf[p + 5]
            c.qty = np.int64(_be(buf, p + 6, 4))
        lg = in_log[token & mask]
        lg.recv_ns = recv_ns
        lg.written_ns = 0
        lg.itch_seq = 0
        lg.clordid = clordid
        lg.user = user
        lg.uref = uref
        lg.kind = mt
        R.publish(ch, 1)
    return o


# ---------------------------------------------------------------- outbound

@vjit(inline="always")
def _begin(ob_buf, ob_off, ob_tok, ob_st, u, n_bytes, token):
    """Start a sequenced packet of one n_bytes OUCH message for user u; offset of the
    message, or -1 when the store is full (counted)."""
    w = ob_st[u, ST_WPOS]
    m = ob_st[u, ST_NMSGS]
    if w + 3 + n_bytes > ob_buf.shape[1] or m >= ob_off.shape[1]:
        ob_st[u, ST_FULL] += 1
        return -1
    put_be(ob_buf[u], w, 1 + n_bytes, 2)
    ob_buf[u, w + 2] = 83                           # S: sequenced data
    ob_off[u, m] = w
    ob_tok[u, m] = token
    ob_st[u, ST_NMSGS] = m + 1
    ob_st[u, ST_WPOS] = w + 3 + n_bytes
    return w + 3


@vjit(inline="always")
def _sym(b, o, symbols, loc):
    for k in range(8):
        b[o + k] = symbols[loc, k]


@vjit(inline="always")
def _clordid(b, o, r):
    for k in range(14):
        b[o + k] = r.clordid[k]


@vjit
def format_one(ob_buf, ob_off, ob_tok, ob_st, last_tok, r, symbols, midnight_ns):
    """One response record -> one OUCH message in its user's store. Returns 1 if stored.
    The first message answering a command keeps its token (for the latency log)."""
    u = r.user
    if u <= 0 or u >= ob_buf.shape[0]:
        return 0
    kind = r.kind
    token = r.token
    if token >= 0 and token == last_tok[u]:
        token = -1                                  # not the first response to it
    elif token >= 0:
        last_tok[u] = token
    n = 64 if kind == 65 else 68 if kind == 85 else 18 if kind == 67 else 36 if kind == 69 \
        else 29 if kind == 74 else 18 if kind == 77 else 10
    o = _begin(ob_buf, ob_off, ob_tok, ob_st, u, n, token)
    if o < 0:
        return 0
    b = ob_buf[u]
    b[o] = kind
    put_be(b, o + 1, r.ts_ns - midnight_ns, 8)
    if kind == 65 or kind == 85:                    # A accepted, U replaced
        q = o + 9
        if kind == 85:
            put_be(b, q, r.orig_uref, 4)
            q += 4
        put_be(b, q, r.uref, 4)
        b[q + 4] = r.side
        put_be(b, q + 5, r.qty, 4)
        _sym(b, q + 9, symbols, r.locate)
        put_be(b, q + 17, r.price, 8)
        b[q + 25] = r.tif
        b[q + 26] = r.display
        put_be(b, q + 27, r.order_ref, 8)
        b[q + 35] = r.capacity
        b[q + 36] = r.iso
        b[q + 37] = r.cross
        b[q + 38] = r.state
        _clordid(b, q + 39, r)
        put_be(b, q + 53, 0, 2)
    elif kind == 67:                                # C canceled
        put_be(b, o + 9, r.uref, 4)
        put_be(b, o + 13, r.qty, 4)
        b[o + 17] = r.reason_c
    elif kind == 69:                                # E executed
        put_be(b, o + 9, r.uref, 4)
        put_be(b, o + 13, r.qty, 4)
        put_be(b, o + 17, r.price, 8)
        b[o + 25] = r.liquidity
        put_be(b, o + 26, r.match, 8)
        put_be(b, o + 34, 0, 2)
    elif kind == 74:                                # J rejected
        put_be(b, o + 9, r.uref, 4)
        put_be(b, o + 13, r.reason, 2)
        _clordid(b, o + 15, r)
    elif kind == 77:                                # M modified
        put_be(b, o + 9, r.uref, 4)
        b[o + 13] = r.side
        put_be(b, o + 14, r.qty, 4)
    else:                                           # S system event (code in reason_c)
        b[o + 9] = r.reason_c
    return 1


@vjit
def drain_responses(rh, rd, ob_buf, ob_off, ob_tok, ob_st, last_tok, symbols, midnight_ns,
                    max_n):
    """Move up to max_n responses from the ring into the users' stores; returns how many."""
    n = min(R.available(rh), max_n)
    for k in range(n):
        format_one(ob_buf, ob_off, ob_tok, ob_st, last_tok, rd[R.read_slot(rh, k)], symbols,
                   midnight_ns)
    R.release(rh, n)
    return n


@vjit
def mark_sent(ob_off, ob_tok, ob_st, u, first_msg, pos, in_log, now):
    """A session of user u has sent its store up to byte pos, from message first_msg on:
    stamp the first-response time of each command answered; returns the next message."""
    m = first_msg
    nm = ob_st[u, ST_NMSGS]
    mask = in_log.shape[0] - 1
    while m < nm:
        end = ob_off[u, m + 1] if m + 1 < nm else ob_st[u, ST_WPOS]
        if end > pos:
            break
        t = ob_tok[u, m]
        if t >= 0:
            lg = in_log[t & mask]
            if lg.written_ns == 0:
                lg.written_ns = now
        m += 1
    return m
