"""OUCH 5.0 encode (O/U/X/M, framed as SoupBinTCP 'U' packets) and decode of sequenced
messages into RESPONSE_DTYPE records, in numba.

Encoders write a whole framed packet at `buf[off:]` and return its length; the caller has
made room (session.py's tx queue). The decoder is given one message (`msg[off:off+n]`,
type byte first) and validates every length before it reads: a truncated message or one
whose appendage runs past its end is reported, never read past. Big-endian through
runtime/sys/byteorder.py (one unaligned load/store + bswap per field).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.sys.byteorder import load_be16, load_be32, load_be64, store_be16, \
    store_be32, store_be64
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.ouch import layout as L

_SPACE = 0x20
_DIGIT0 = 0x30
MAX_CLORDID = 99_999_999_999_999   # 14 ASCII digits


@njit(nogil=True, cache=True, inline="always")
def _header(buf, off, msg_len):
    store_be16(buf, off, msg_len + 1)
    buf[off + 2] = L.PKT_UNSEQUENCED


@njit(nogil=True, cache=True, inline="always")
def _digits14(buf, off, value):
    """`value` as 14 ASCII digits, zero padded (value <= MAX_CLORDID, checked by the caller)."""
    v = np.int64(value)
    for k in range(L.CLORDID_LEN - 1, -1, -1):
        buf[off + k] = _DIGIT0 + v % 10
        v //= 10


@njit(nogil=True, cache=True, inline="always")
def _symbol(buf, off, symbol_u64):
    # the ITCH stock bytes as the event record's little-endian u64: byte k is bits 8k..8k+7
    s = np.uint64(symbol_u64)
    for k in range(L.SYMBOL_LEN):
        buf[off + k] = np.uint8((s >> np.uint64(8 * k)) & np.uint64(0xFF))


@njit(nogil=True, cache=True, inline="always")
def encode_enter(buf, off, uref, side, qty, symbol_u64, price, tif, clordid):
    """Framed 'O' at buf[off:off+50]; returns 50."""
    _header(buf, off, L.O_LEN)
    m = off + L.SOUP_HDR
    buf[m] = ord("O")
    store_be32(buf, m + L.O_UREF, uref)
    buf[m + L.O_SIDE] = side
    store_be32(buf, m + L.O_QTY, qty)
    _symbol(buf, m + L.O_SYMBOL, symbol_u64)
    store_be64(buf, m + L.O_PRICE, price)
    buf[m + L.O_TIF] = _DIGIT0 + tif
    buf[m + L.O_DISPLAY] = ord("Y")
    buf[m + L.O_CAPACITY] = ord("A")
    buf[m + L.O_ISO] = ord("N")
    buf[m + L.O_CROSS] = ord("N")
    _digits14(buf, m + L.O_CLORDID, clordid)
    store_be16(buf, m + L.O_APPLEN, 0)
    return L.O_WIRE


@njit(nogil=True, cache=True, inline="always")
def encode_replace(buf, off, orig_uref, uref, qty, price, tif, clordid=0):
    """Framed 'U' at buf[off:off+43]; ClOrdID as 14 digits when > 0, else blank; returns 43."""
    _header(buf, off, L.U_LEN)
    m = off + L.SOUP_HDR
    buf[m] = ord("U")
    store_be32(buf, m + L.U_ORIG, orig_uref)
    store_be32(buf, m + L.U_UREF, uref)
    store_be32(buf, m + L.U_QTY, qty)
    store_be64(buf, m + L.U_PRICE, price)
    buf[m + L.U_TIF] = _DIGIT0 + tif
    buf[m + L.U_DISPLAY] = ord("Y")
    buf[m + L.U_ISO] = ord("N")
    if clordid > 0:
        _digits14(buf, m + L.U_CLORDID, clordid)
    else:
        for k in range(L.CLORDID_LEN):
            buf[m + L.U_CLORDID + k] = _SPACE
    store_be16(buf, m + L.U_APPLEN, 0)
    return L.U_WIRE


@njit(nogil=True, cache=True, inline="always")
def encode_cancel(buf, off, uref, qty):
    """Framed 'X' at buf[off:off+12]; qty = the new intended size (0 = all); returns 12."""
    _header(buf, off, L.X_LEN)
    m = off + L.SOUP_HDR
    buf[m] = ord("X")
    store_be32(buf, m + L.X_UREF, uref)
    store_be32(buf, m + L.X_QTY, qty)
    return L.X_WIRE


@njit(nogil=True, cache=True, inline="always")
def encode_modify(buf, off, uref, side, qty):
    """Framed 'M' at buf[off:off+13]; returns 13."""
    _header(buf, off, L.M_LEN)
    m = off + L.SOUP_HDR
    buf[m] = ord("M")
    store_be32(buf, m + L.M_UREF, uref)
    buf[m + L.M_SIDE] = side
    store_be32(buf, m + L.M_QTY, qty)
    return L.M_WIRE


@njit(nogil=True, cache=True, inline="always")
def _fixed_len(t):
    """The fixed part of an outbound message type, or -1 for a type we do not know."""
    if t == R.RESP_ACCEPTED:
        return L.A_LEN
    if t == R.RESP_EXECUTED:
        return L.E_LEN
    if t == R.RESP_CANCELED:
        return L.C_LEN
    if t == R.RESP_REPLACED:
        return L.RU_LEN
    if t == R.RESP_REJECTED:
        return L.J_LEN
    if t == R.RESP_SYSTEM:
        return L.S_LEN
    if t == R.RESP_CANCEL_PENDING:
        return L.P_LEN
    if t == R.RESP_CANCEL_REJECT:
        return L.I_LEN
    if t == R.RESP_BROKEN:
        return L.B_LEN
    if t == R.RESP_MODIFIED:
        return L.MM_LEN
    if t == R.RESP_PRIORITY:
        return L.T_LEN
    return -1


@njit(nogil=True, cache=True, inline="always")
def _applen_at(t):
    """Offset of AppendageLength for the types that end in one, else 0."""
    if t == R.RESP_ACCEPTED:
        return L.A_APPLEN
    if t == R.RESP_REPLACED:
        return L.RU_APPLEN
    if t == R.RESP_EXECUTED:
        return L.E_APPLEN
    return 0


@njit(nogil=True, cache=True, inline="always")
def blank(out, i, seq, recv_ns):
    """out[i] zeroed but for its sequence number and receive time (ring slots are reused)."""
    r = out[i]
    r.price = 0
    r.ref = 0
    r.venue_ts = 0
    r.recv_ns = recv_ns
    r.seq = seq
    r.uref = 0
    r.orig_uref = 0
    r.qty = 0
    r.reason = 0
    r.kind = 0
    r.side = 0
    r.liquidity = 0
    r.reason_code = 0
    r.state = 0
    r.tif = 0
    for k in range(4):
        r.pad[k] = 0


# decode results
DEC_OK = 0
DEC_OVERSIZE = 1        # decoded; bytes beyond the layout (+ appendage) ignored
DEC_TRUNCATED = -1
DEC_UNKNOWN = -2


@njit(nogil=True, cache=True, _nrt=False)
def decode_into(msg, off, n, out, i, seq, recv_ns):
    """Decode the OUCH message msg[off:off+n] (sequenced number `seq`) into out[i].

    Returns DEC_OK / DEC_OVERSIZE (out[i] written) or DEC_TRUNCATED / DEC_UNKNOWN (out[i]
    written as RESP_UNDECODED with the reason and the raw type byte). The caller checked
    that [off, off+n) lies inside msg."""
    r = out[i]
    blank(out, i, seq, recv_ns)
    if n < 1:
        r.kind = R.RESP_UNDECODED
        r.reason = L.BAD_TRUNCATED
        return DEC_TRUNCATED
    t = msg[off]
    fixed = _fixed_len(t)
    if fixed < 0:
        r.kind = R.RESP_UNDECODED
        r.reason = L.BAD_UNKNOWN_TYPE
        r.reason_code = t
        return DEC_UNKNOWN
    if n < fixed:
        r.kind = R.RESP_UNDECODED
        r.reason = L.BAD_TRUNCATED
        r.reason_code = t
        return DEC_TRUNCATED
    want = fixed
    ap = _applen_at(t)
    if ap > 0:
        want += load_be16(msg, off + ap)
        if n < want:
            r.kind = R.RESP_UNDECODED
            r.reason = L.BAD_TRUNCATED
            r.reason_code = t
            return DEC_TRUNCATED
    r.kind = t
    r.venue_ts = load_be64(msg, off + L.TS)
    if t == R.RESP_ACCEPTED:
        r.uref = load_be32(msg, off + L.A_UREF)
        r.side = msg[off + L.A_SIDE]
        r.qty = load_be32(msg, off + L.A_QTY)
        r.price = load_be64(msg, off + L.A_PRICE)
        r.tif = msg[off + L.A_TIF]
        r.ref = load_be64(msg, off + L.A_ORDREF)
        r.state = msg[off + L.A_STATE]
    elif t == R.RESP_EXECUTED:
        r.uref = load_be32(msg, off + L.E_UREF)
        r.qty = load_be32(msg, off + L.E_QTY)
        r.price = load_be64(msg, off + L.E_PRICE)
        r.liquidity = msg[off + L.E_LIQ]
        r.ref = load_be64(msg, off + L.E_MATCH)
    elif t == R.RESP_CANCELED:
        r.uref = load_be32(msg, off + L.C_UREF)
        r.qty = load_be32(msg, off + L.C_QTY)
        r.reason_code = msg[off + L.C_REASON]
    elif t == R.RESP_REPLACED:
        r.orig_uref = load_be32(msg, off + L.RU_ORIG)
        r.uref = load_be32(msg, off + L.RU_UREF)
        r.side = msg[off + L.RU_SIDE]
        r.qty = load_be32(msg, off + L.RU_QTY)
        r.price = load_be64(msg, off + L.RU_PRICE)
        r.tif = msg[off + L.RU_TIF]
        r.ref = load_be64(msg, off + L.RU_ORDREF)
        r.state = msg[off + L.RU_STATE]
    elif t == R.RESP_REJECTED:
        r.uref = load_be32(msg, off + L.J_UREF)
        r.reason = load_be16(msg, off + L.J_REASON)
    elif t == R.RESP_SYSTEM:
        r.reason_code = msg[off + L.S_EVENT]
    elif t == R.RESP_CANCEL_PENDING:
        r.uref = load_be32(msg, off + L.P_UREF)
    elif t == R.RESP_CANCEL_REJECT:
        r.uref = load_be32(msg, off + L.I_UREF)
    elif t == R.RESP_BROKEN:
        r.uref = load_be32(msg, off + L.B_UREF)
        r.ref = load_be64(msg, off + L.B_MATCH)
        r.reason_code = msg[off + L.B_REASON]
    elif t == R.RESP_MODIFIED:
        r.uref = load_be32(msg, off + L.MM_UREF)
        r.side = msg[off + L.MM_SIDE]
        r.qty = load_be32(msg, off + L.MM_QTY)
    else:   # R.RESP_PRIORITY
        r.uref = load_be32(msg, off + L.T_UREF)
        r.price = load_be64(msg, off + L.T_PRICE)
        r.ref = load_be64(msg, off + L.T_ORDREF)
    if n > want:
        return DEC_OVERSIZE
    return DEC_OK
