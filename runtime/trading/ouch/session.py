"""The OUCH session on the hot thread: send orders, poll responses, keep the session alive.

All state is `OuchState`, a NamedTuple of preallocated numpy arrays (numba types it): `ctl`
(int64 slots, layout.C_*), `counters` (layout.K_*), `tx` (the outbound queue) and `rx`
(received bytes not yet framed). The Python client (client.py) makes the socket, logs in
and hands over the fd; from then on only these jitted functions touch it, and they never
raise, allocate or block:

* an order is encoded straight into the tx queue and sent with one non-blocking send(), or
  (send_now=False) left there so that several go out in one send() (`ouch_send`);
  what the kernel does not take stays queued (in order, never dropped) and goes out first
  on the next call or poll; a full queue refuses the order (ERR_TX_FULL, counted).
* `ouch_poll` flushes, reads once, frames SoupBinTCP packets by their u16 length,
  decodes every complete sequenced message into a RESPONSE record, skips replayed messages
  already applied, sends a heartbeat after 1 s of silence and declares the venue dead after
  the heartbeat timeout. A lost session yields one RESP_SESSION_LOST record.

`now_ns` is CLOCK_REALTIME (the project's contract; the client stamps the session's start
with it): heartbeat and timeout intervals are taken from it. recv_ns and the sent time
(ctl[C_SENT_NS]) are read from CLOCK_REALTIME right after the syscall returns, for
tick-to-trade; with OK_QUEUED the stamp is that of the send() that took part (or none)
of the order, the rest following on the next call, poll or flush.
Threads: one hot thread calls these; the Python side only reconnects while the state is
not STATE_UP (it reads C_STATE with an acquire load).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.sys.byteorder import load_be16
from tickpath.runtime.sys.intrinsics import load_acquire, realtime_ns, store_release
from tickpath.runtime.sys.libc import libc_errno, libc_recv, libc_send
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.ouch import codec
from tickpath.runtime.trading.ouch import layout as L

MSG_NOSIGNAL = 0x4000   # a dead peer gives EPIPE, not SIGPIPE
EAGAIN = 11
EINTR = 4
ENOBUFS = 105


class OuchState(NamedTuple):
    ctl: np.ndarray         # int64[N_CTL]
    counters: np.ndarray    # int64[N_COUNTERS]
    tx: np.ndarray          # uint8[TX_BYTES]: queued framed packets, [head, tail) unsent
    rx: np.ndarray          # uint8[RX_BYTES]: received bytes, [0, fill)


def new_state(tx_bytes: int = L.TX_BYTES, rx_bytes: int = L.RX_BYTES) -> OuchState:
    if rx_bytes < 2 + 0xFFFF:
        raise ValueError(f"rx_bytes={rx_bytes} must hold the largest SoupBinTCP packet (65537)")
    return OuchState(np.zeros(L.N_CTL, np.int64), np.zeros(L.N_COUNTERS, np.int64),
                     np.zeros(tx_bytes, np.uint8), np.zeros(rx_bytes, np.uint8))


# -- tx queue -------------------------------------------------------------------------------

@njit(nogil=True, cache=True, _nrt=False)
def _fail(st, reason):
    """A socket error on the hot path: the next poll reports the loss."""
    st.counters[L.K_LAST_ERRNO] = libc_errno()
    st.ctl[L.C_LOST_REASON] = reason
    store_release(st.ctl, L.C_STATE, L.STATE_FAILING)


@njit(nogil=True, cache=True, inline="always")
def _flush(st, now_ns):
    """Send what is queued. Returns bytes still queued, or -1 on a socket error."""
    ctl = st.ctl
    h = ctl[L.C_TX_HEAD]
    t = ctl[L.C_TX_TAIL]
    base = st.tx.ctypes.data
    while h < t:
        r = libc_send(ctl[L.C_FD], base + h, t - h, MSG_NOSIGNAL)
        if r > 0:
            st.counters[L.K_BYTES_SENT] += r
            ctl[L.C_LAST_TX_NS] = now_ns
            if r < t - h:
                st.counters[L.K_PARTIAL_WRITES] += 1
            h += r
            continue
        e = libc_errno()
        if r < 0 and e == EINTR:
            continue
        if r < 0 and (e == EAGAIN or e == ENOBUFS):
            st.counters[L.K_WOULD_BLOCK] += 1
            break
        ctl[L.C_TX_HEAD] = h
        _fail(st, L.LOST_ERROR)
        return -1
    if h == t:
        h = 0
        t = 0
    ctl[L.C_TX_HEAD] = h
    ctl[L.C_TX_TAIL] = t
    return t - h


@njit(nogil=True, cache=True, inline="always")
def _room(st, need):
    """Offset in tx where `need` bytes can be written (compacting if that helps), or -1."""
    ctl = st.ctl
    h = ctl[L.C_TX_HEAD]
    t = ctl[L.C_TX_TAIL]
    cap = st.tx.shape[0]
    if t + need <= cap:
        return t
    if t - h + need > cap:
        return -1
    # move the unsent bytes to the front (rare: only with a backlog); dst < src, forward copy
    tx = st.tx
    for k in range(t - h):
        tx[k] = tx[h + k]
    ctl[L.C_TX_HEAD] = 0
    ctl[L.C_TX_TAIL] = t - h
    return t - h


@njit(nogil=True, cache=True, inline="always")
def _commit(st, nbytes, now_ns, send_now):
    """The packet written at the tail joins the queue; send now, or (send_now False) leave it
    for the caller's ouch_send of the whole batch. OK_SENT / OK_QUEUED / error."""
    st.ctl[L.C_TX_TAIL] += nbytes
    if not send_now:
        return L.OK_QUEUED
    return _send_stamped(st, now_ns)


@njit(nogil=True, cache=True, inline="always")
def _send_stamped(st, now_ns):
    """Send the queue; stamp the call and the return for tick-to-trade."""
    ctl = st.ctl
    ctl[L.C_SEND_CALL_NS] = realtime_ns()   # tick-to-trade without the syscall: the software's part
    left = _flush(st, now_ns)
    ctl[L.C_SENT_NS] = realtime_ns()
    if left < 0:
        return L.ERR_SEND_FAILED
    return L.OK_SENT if left == 0 else L.OK_QUEUED


@njit(nogil=True, cache=True, inline="always")
def _up(st):
    return load_acquire(st.ctl, L.C_STATE) == L.STATE_UP


# -- orders ---------------------------------------------------------------------------------

@njit(nogil=True, cache=True, _nrt=False)
def ouch_enter(st, uref, side, qty, symbol_u64, price, tif, clordid_u64, now_ns, send_now=True):
    """Enter Order 'O'. clordid_u64: written as 14 ASCII digits (<= 99999999999999).
    send_now False (here and in cancel/replace): queued only, ouch_send sends the batch."""
    if not _up(st):
        return L.ERR_NOT_CONNECTED
    if clordid_u64 < 0 or clordid_u64 > codec.MAX_CLORDID or tif < 0 or tif > 9:
        return L.ERR_BAD_ARGUMENT
    off = _room(st, L.O_WIRE)
    if off < 0:
        st.counters[L.K_TX_FULL] += 1
        return L.ERR_TX_FULL
    codec.encode_enter(st.tx, off, uref, side, qty, symbol_u64, price, tif, clordid_u64)
    st.counters[L.K_ORDERS_SENT] += 1
    st.ctl[L.C_LAST_UREF] = uref
    return _commit(st, L.O_WIRE, now_ns, send_now)


@njit(nogil=True, cache=True, _nrt=False)
def ouch_cancel(st, uref, qty, now_ns, send_now=True):
    """Cancel Order 'X': qty = the new intended size (0 = cancel all)."""
    if not _up(st):
        return L.ERR_NOT_CONNECTED
    off = _room(st, L.X_WIRE)
    if off < 0:
        st.counters[L.K_TX_FULL] += 1
        return L.ERR_TX_FULL
    codec.encode_cancel(st.tx, off, uref, qty)
    st.counters[L.K_CANCELS_SENT] += 1
    return _commit(st, L.X_WIRE, now_ns, send_now)


@njit(nogil=True, cache=True, _nrt=False)
def ouch_replace(st, orig_uref, new_uref, qty, price, tif, now_ns, clordid_u64=0, send_now=True):
    """Replace Order 'U' (loses time priority; qty = total for the chain). clordid_u64 > 0:
    written as 14 ASCII digits (a trigger's name, as for an Enter Order), else blank."""
    if not _up(st):
        return L.ERR_NOT_CONNECTED
    if tif < 0 or tif > 9 or clordid_u64 < 0 or clordid_u64 > codec.MAX_CLORDID:
        return L.ERR_BAD_ARGUMENT
    off = _room(st, L.U_WIRE)
    if off < 0:
        st.counters[L.K_TX_FULL] += 1
        return L.ERR_TX_FULL
    codec.encode_replace(st.tx, off, orig_uref, new_uref, qty, price, tif, clordid_u64)
    st.counters[L.K_REPLACES_SENT] += 1
    st.ctl[L.C_LAST_UREF] = new_uref
    return _commit(st, L.U_WIRE, now_ns, send_now)


@njit(nogil=True, cache=True, _nrt=False)
def ouch_modify(st, uref, side, qty, now_ns):
    """Modify Order 'M' (side change among B/S/T/E, or a size reduction)."""
    if not _up(st):
        return L.ERR_NOT_CONNECTED
    off = _room(st, L.M_WIRE)
    if off < 0:
        st.counters[L.K_TX_FULL] += 1
        return L.ERR_TX_FULL
    codec.encode_modify(st.tx, off, uref, side, qty)
    st.counters[L.K_MODIFIES_SENT] += 1
    return _commit(st, L.M_WIRE, now_ns, True)


@njit(nogil=True, cache=True, _nrt=False)
def ouch_send(st, now_ns):
    """Send the orders queued with send_now=False, in one send() where the kernel takes them
    all, stamping C_SEND_CALL_NS / C_SENT_NS as one order's send does. OK_SENT / OK_QUEUED /
    ERR_NOT_CONNECTED / ERR_SEND_FAILED."""
    if not _up(st):
        return L.ERR_NOT_CONNECTED
    return _send_stamped(st, now_ns)


@njit(nogil=True, cache=True, _nrt=False)
def ouch_flush(st, now_ns):
    """Push queued bytes. Returns bytes still queued (>= 0) or an error code."""
    if not _up(st):
        return L.ERR_NOT_CONNECTED
    left = _flush(st, now_ns)
    return L.ERR_SEND_FAILED if left < 0 else left


@njit(nogil=True, cache=True, _nrt=False)
def ouch_connected(st):
    return _up(st)


# -- responses ------------------------------------------------------------------------------

@njit(nogil=True, cache=True, _nrt=False)
def _lost(st, responses, n, reason, recv_ns):
    """Write the RESP_SESSION_LOST record at responses[n], mark the session down."""
    ctl = st.ctl
    codec.blank(responses, n, ctl[L.C_NEXT_SEQ] - 1, recv_ns)   # seq: the last one received
    r = responses[n]
    r.kind = R.RESP_SESSION_LOST
    r.reason = reason
    ctl[L.C_LOST_REASON] = reason
    st.counters[L.K_SESSIONS_LOST] += 1
    store_release(ctl, L.C_STATE, L.STATE_DOWN)
    return n + 1


@njit(nogil=True, cache=True, _nrt=False)
def _gap(st, responses, n, recv_ns):
    ctl = st.ctl
    codec.blank(responses, n, ctl[L.C_NEXT_SEQ], recv_ns)      # seq: the first one after the gap
    r = responses[n]
    r.kind = R.RESP_UNDECODED
    r.reason = L.BAD_SEQ_GAP
    r.qty = ctl[L.C_GAP_PENDING]
    st.counters[L.K_OUT_OF_SEQUENCE] += ctl[L.C_GAP_PENDING]
    ctl[L.C_GAP_PENDING] = 0
    return n + 1


@njit(nogil=True, cache=True, _nrt=False)
def ouch_poll(st, responses, now_ns):
    """Flush, read once, decode every complete sequenced message into responses[0:n].

    Returns n (>= 0); len(responses) must be >= 2 (one slot is kept for a loss record).
    A lost session (EOF, socket error, server silent past the timeout, 'Z', broken framing)
    writes one RESP_SESSION_LOST record as the last of the n; after it the state is down
    until client.reconnect(). Messages left unframed because responses was full stay in
    rx for the next call."""
    ctl = st.ctl
    k = st.counters
    state = load_acquire(ctl, L.C_STATE)
    cap = responses.shape[0]
    if state == L.STATE_DOWN or cap < 2:
        return 0
    n = 0
    if state == L.STATE_FAILING:
        return _lost(st, responses, n, ctl[L.C_LOST_REASON], realtime_ns())
    if ctl[L.C_GAP_PENDING] > 0:
        n = _gap(st, responses, n, realtime_ns())
    if ctl[L.C_TX_TAIL] > ctl[L.C_TX_HEAD]:
        if _flush(st, now_ns) < 0:
            return _lost(st, responses, n, L.LOST_ERROR, realtime_ns())
    rx = st.rx
    fill = ctl[L.C_RX_FILL]
    room = rx.shape[0] - fill
    eof = False
    recv_ns = 0
    if room > 0:
        got = libc_recv(ctl[L.C_FD], rx.ctypes.data + fill, room, 0x40)   # MSG_DONTWAIT
        recv_ns = realtime_ns()
        if got > 0:
            fill += got
            k[L.K_BYTES_RECEIVED] += got
            ctl[L.C_LAST_RX_NS] = now_ns
        elif got == 0:
            eof = True
        else:
            e = libc_errno()
            if e != EAGAIN and e != EINTR:
                k[L.K_LAST_ERRNO] = e
                ctl[L.C_RX_FILL] = fill
                return _lost(st, responses, n, L.LOST_ERROR, recv_ns)
    # frame: u16 length | type | payload; keep at most cap-1 records (one slot for a loss)
    off = 0
    while fill - off >= 2:
        if n >= cap - 1:
            k[L.K_RX_STALLS] += 1
            break
        plen = load_be16(rx, off)
        if plen == 0:
            ctl[L.C_RX_FILL] = 0
            return _lost(st, responses, n, L.LOST_BAD_FRAMING, recv_ns)
        if fill - off - 2 < plen:
            break
        ptype = rx[off + 2]
        if ptype == L.PKT_SEQUENCED:
            seq = ctl[L.C_NEXT_SEQ]
            ctl[L.C_NEXT_SEQ] = seq + 1
            k[L.K_SEQUENCED] += 1
            if seq < ctl[L.C_SKIP_BELOW]:
                k[L.K_DUPLICATES] += 1       # replayed after a re-login: applied already
            else:
                res = codec.decode_into(rx, off + 3, plen - 1, responses, n, seq, recv_ns)
                n += 1
                k[L.K_RESPONSES] += 1
                if res == codec.DEC_TRUNCATED:
                    k[L.K_TRUNCATED] += 1
                elif res == codec.DEC_UNKNOWN:
                    k[L.K_UNKNOWN_TYPE] += 1
                elif res == codec.DEC_OVERSIZE:
                    k[L.K_OVERSIZE] += 1
        elif ptype == L.PKT_SERVER_HEARTBEAT:
            k[L.K_HEARTBEATS_RX] += 1
        elif ptype == L.PKT_END_OF_SESSION:
            ctl[L.C_RX_FILL] = 0
            return _lost(st, responses, n, L.LOST_END_OF_SESSION, recv_ns)
        elif ptype == L.PKT_UNSEQUENCED:
            k[L.K_UNSEQUENCED_RX] += 1
        elif ptype == L.PKT_DEBUG:
            k[L.K_DEBUG_RX] += 1
        else:
            k[L.K_UNKNOWN_PACKETS] += 1
        off += 2 + plen
    # keep the incomplete rest at the front (dst < src: forward copy, no temporary)
    rest = fill - off
    if off > 0:
        for j in range(rest):
            rx[j] = rx[off + j]
    ctl[L.C_RX_FILL] = rest
    if eof:
        if n >= cap - 1 and rest >= 2:
            return n          # records still to frame; the EOF is seen again next poll
        return _lost(st, responses, n,
                     L.LOST_CLOSED_MID_MESSAGE if rest > 0 else L.LOST_EOF, recv_ns)
    if now_ns - ctl[L.C_LAST_RX_NS] > ctl[L.C_TIMEOUT_NS]:
        return _lost(st, responses, n, L.LOST_TIMEOUT, realtime_ns())
    if now_ns - ctl[L.C_LAST_TX_NS] >= L.HEARTBEAT_INTERVAL_NS:
        off = _room(st, 3)
        if off >= 0:
            st.tx[off] = 0
            st.tx[off + 1] = 1
            st.tx[off + 2] = L.PKT_CLIENT_HEARTBEAT
            ctl[L.C_TX_TAIL] += 3
            k[L.K_HEARTBEATS_TX] += 1
            ctl[L.C_LAST_TX_NS] = now_ns     # one per interval, even when it must queue
            if _flush(st, now_ns) < 0:
                return _lost(st, responses, n, L.LOST_ERROR, realtime_ns())
    return n


# -- the cost of the syscall alone ----------------------------------------------------------

@njit(nogil=True, cache=True, _nrt=False)
def bare_send_ns(st, scratch, packet_bytes, out_ns):
    """send() of a SoupBinTCP Debug packet ('+', ignored by the venue) of `packet_bytes` on the
    session's socket, len(out_ns) times, each timed alone: what send() costs with no
    encoding, queueing or trading around it — the figure tick-to-trade is read against.
    scratch: uint8[>= packet_bytes]. Returns how many were timed (stops at the first error
    or a full socket, which would time the queue, not the call)."""
    if packet_bytes < 3 or packet_bytes > scratch.shape[0] or not _up(st):
        return 0
    n = packet_bytes - 2
    scratch[0] = (n >> 8) & 0xFF
    scratch[1] = n & 0xFF
    scratch[2] = L.PKT_DEBUG
    for k in range(3, packet_bytes):
        scratch[k] = 32
    base = scratch.ctypes.data
    for i in range(out_ns.shape[0]):
        t0 = realtime_ns()
        r = libc_send(st.ctl[L.C_FD], base, packet_bytes, MSG_NOSIGNAL)
        t1 = realtime_ns()
        if r != packet_bytes:
            return i
        out_ns[i] = t1 - t0
    return out_ns.shape[0]
