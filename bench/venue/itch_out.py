"""ITCH 5.0 out over MoldUDP64, from numba: a packet writer over a preallocated history,
and encoders for the messages the matching engine emits.

The history is the MoldUDP64 stream itself: packets are built in place, back to back, in
one big byte buffer (header, then `len u16 | message` per message), so sending a packet is
one sendto of a slice and answering a retransmission request is reading earlier bytes —
the existing bench.load.retransmit.RetransmitServer does that from `msg_off` (where each
message starts) and `state[SENT_MSGS]` (how many have left). The history is bounded: when
it is full, further messages are counted in FULL and not published (size it for the day).

A packet is flushed (header written, sent, logged with its CLOCK_REALTIME send time) when
the next message would not fit the payload limit (1472 bytes: one unfragmented datagram on
a 1500-byte MTU) and at the end of every pass of the matching loop, so packets coalesce
under load and go out at once when idle. Heartbeats (count 0) and end of session (0xFFFF)
are header-only packets carrying the next sequence number, not kept in the history.

Encoders write the same bytes as runtime.feed.itch.encode_* (tests check byte equality);
the session preamble (S, R, H) is encoded by those Python functions and copied in with
put_raw. Tracking number 0; timestamps are ns since UTC midnight.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.sys.byteorder import store_be16, store_be32, store_be64
from tickpath.runtime.sys.intrinsics import realtime_ns, store_release
from tickpath.runtime.sys.libc import libc_sendto
from tickpath.bench.venue.jit import vjit

# state slots
W_POS, PKT_START, PKT_COUNT, N_MSGS, N_PKTS, FD, MAX_PAYLOAD, FULL, MIDNIGHT_NS, \
    SENT_MSGS, SEND_ERRORS, HEARTBEATS, LAST_SEND_NS = range(13)
N_STATE = 16

LEN_A = itch.MESSAGE_BYTES["A"]
LEN_F = itch.MESSAGE_BYTES["F"]
LEN_E = itch.MESSAGE_BYTES["E"]
LEN_X = itch.MESSAGE_BYTES["X"]
LEN_D = itch.MESSAGE_BYTES["D"]
LEN_U = itch.MESSAGE_BYTES["U"]
LEN_P = itch.MESSAGE_BYTES["P"]
LEN_S = itch.MESSAGE_BYTES["S"]

MoldOut = namedtuple("MoldOut", ["buf", "msg_off", "pkt_first", "pkt_count", "pkt_off",
                                 "pkt_len", "pkt_send_ns", "state", "session", "addr", "scratch"])


def new_mold_out(history_bytes: int, max_messages: int, session: bytes, fd: int = -1,
                 addr: np.ndarray | None = None, midnight_ns: int = 0,
                 max_payload: int = M.MTU1500_PAYLOAD_BYTES) -> MoldOut:
    if history_bytes < 4096 or max_messages < 16:
        raise ConfigError("history too small", history_bytes=history_bytes, max_messages=max_messages)
    if not M.HEADER_BYTES + 64 <= max_payload <= M.MAX_UDP_PAYLOAD_BYTES:
        raise ConfigError("max_payload out of range", max_payload=max_payload)
    max_pkts = max_messages + 1
    state = np.zeros(N_STATE, np.int64)
    state[PKT_START] = -1
    state[FD] = fd
    state[MAX_PAYLOAD] = max_payload
    state[MIDNIGHT_NS] = midnight_ns
    return MoldOut(buf=np.zeros(history_bytes, np.uint8),       # calloc: pages fault in as used
                   msg_off=np.zeros(max_messages, np.int64),
                   pkt_first=np.zeros(max_pkts, np.int64), pkt_count=np.zeros(max_pkts, np.int32),
                   pkt_off=np.zeros(max_pkts, np.int64), pkt_len=np.zeros(max_pkts, np.int32),
                   pkt_send_ns=np.zeros(max_pkts, np.int64), state=state,
                   session=np.frombuffer(M.session_bytes(session), np.uint8).copy(),
                   addr=np.zeros(16, np.uint8) if addr is None else addr, scratch=np.zeros(32, np.uint8))


@vjit(inline="always")
def put_be(buf, o, value, n_bytes):
    """value's low n_bytes, big-endian, at buf[o:o + n_bytes] (bswap stores for 2/4/6/8:
    the byte-by-byte loop cost ~45 ns per order in the engine benchmark)."""
    if n_bytes == 8:
        store_be64(buf, o, value)
    elif n_bytes == 4:
        store_be32(buf, o, value)
    elif n_bytes == 2:
        store_be16(buf, o, value)
    elif n_bytes == 6:
        store_be16(buf, o, np.uint64(value) >> np.uint64(32))
        store_be32(buf, o + 2, value)
    else:
        v = np.uint64(value)
        for k in range(n_bytes - 1, -1, -1):
            buf[o + k] = np.uint8(v & np.uint64(0xFF))
            v >>= np.uint64(8)


@vjit
def flush(w):
    """Close the open packet: header, sendto (fd >= 0), log. Returns 1 if one was sent."""
    st = w.state
    start = st[PKT_START]
    if start < 0:
        return 0
    n = st[PKT_COUNT]
    buf = w.buf
    for k in range(10):
        buf[start + k] = w.session[k]
    first = st[N_MSGS] - n + 1
    store_be64(buf, start + 10, first)
    store_be16(buf, start + 18, n)
    length = st[W_POS] - start
    p = st[N_PKTS]
    # stamped before sendto: on loopback the datagram is delivered inside the call, and a
    # receiver on another CPU may answer before it returns (start of message, as STAC-T1)
    sent_ns = realtime_ns()
    if st[FD] >= 0:
        r = libc_sendto(st[FD], buf.ctypes.data + start, length, 0, w.addr.ctypes.data, 16)
        if r != length:
            st[SEND_ERRORS] += 1
    now = realtime_ns()
    w.pkt_first[p] = first
    w.pkt_count[p] = n
    w.pkt_off[p] = start
    w.pkt_len[p] = length
    w.pkt_send_ns[p] = sent_ns
    st[N_PKTS] = p + 1
    st[LAST_SEND_NS] = now
    st[PKT_START] = -1
    st[PKT_COUNT] = 0
    store_release(st, SENT_MSGS, st[N_MSGS])   # the retransmission server may serve them now
    return 1


@vjit(inline="always")
def begin(w, n_bytes):
    """Offset where the next message's n_bytes go (its length prefix written), or -1 when
    the history is full (counted)."""
    st = w.state
    if st[PKT_START] >= 0 and st[W_POS] - st[PKT_START] + 2 + n_bytes > st[MAX_PAYLOAD]:
        flush(w)
    if (st[W_POS] + 22 + n_bytes > w.buf.shape[0] or st[N_MSGS] >= w.msg_off.shape[0]
            or st[N_PKTS] >= w.pkt_first.shape[0]):
        st[FULL] += 1
        return -1
    if st[PKT_START] < 0:
        st[PKT_START] = st[W_POS]
        st[W_POS] += 20
    o = st[W_POS]
    store_be16(w.buf, o, n_bytes)
    w.msg_off[st[N_MSGS]] = o + 2
    st[N_MSGS] += 1
    st[PKT_COUNT] += 1
    st[W_POS] = o + 2 + n_bytes
    return o + 2


@vjit(inline="always")
def _hdr(w, o, t, locate, ts_ns):
    b = w.buf
    b[o] = t
    store_be16(b, o + 1, locate)
    b[o + 3] = 0
    b[o + 4] = 0
    put_be(b, o + 5, ts_ns - w.state[MIDNIGHT_NS], 6)


@vjit(inline="always")
def _sym(w, o, symbols, locate):
    for k in range(8):
        w.buf[o + k] = symbols[locate, k]


@vjit(inline="always")
def add_order(w, ts_ns, locate, ref, side_ch, shares, symbols, price, mpid):
    """A (mpid == 0) or F (mpid: 4 ASCII bytes as a big-endian u32)."""
    o = begin(w, LEN_A if mpid == 0 else LEN_F)
    if o < 0:
        return
    _hdr(w, o, 65 if mpid == 0 else 70, locate, ts_ns)
    store_be64(w.buf, o + 11, ref)
    w.buf[o + 19] = side_ch
    store_be32(w.buf, o + 20, shares)
    _sym(w, o + 24, symbols, locate)
    store_be32(w.buf, o + 32, price)
    if mpid != 0:
        store_be32(w.buf, o + 36, mpid)


@vjit(inline="always")
def executed(w, ts_ns, locate, ref, shares, match):
    o = begin(w, LEN_E)
    if o < 0:
        return
    _hdr(w, o, 69, locate, ts_ns)
    store_be64(w.buf, o + 11, ref)
    store_be32(w.buf, o + 19, shares)
    store_be64(w.buf, o + 23, match)


@vjit(inline="always")
def cancel(w, ts_ns, locate, ref, shares):
    o = begin(w, LEN_X)
    if o < 0:
        return
    _hdr(w, o, 88, locate, ts_ns)
    store_be64(w.buf, o + 11, ref)
    store_be32(w.buf, o + 19, shares)


@vjit(inline="always")
def delete(w, ts_ns, locate, ref):
    o = begin(w, LEN_D)
    if o < 0:
        return
    _hdr(w, o, 68, locate, ts_ns)
    store_be64(w.buf, o + 11, ref)


@vjit(inline="always")
def replace(w, ts_ns, locate, ref, new_ref, shares, price):
    o = begin(w, LEN_U)
    if o < 0:
        return
    _hdr(w, o, 85, locate, ts_ns)
    store_be64(w.buf, o + 11, ref)
    store_be64(w.buf, o + 19, new_ref)
    store_be32(w.buf, o + 27, shares)
    store_be32(w.buf, o + 31, price)


@vjit
def trade(w, ts_ns, locate, side_ch, shares, symbols, price, match):
    """P: an execution against a non-displayed order (order ref 0, as NASDAQ sends)."""
    o = begin(w, LEN_P)
    if o < 0:
        return
    _hdr(w, o, 80, locate, ts_ns)
    store_be64(w.buf, o + 11, 0)
    w.buf[o + 19] = side_ch
    store_be32(w.buf, o + 20, shares)
    _sym(w, o + 24, symbols, locate)
    store_be32(w.buf, o + 32, price)
    store_be64(w.buf, o + 36, match)


@vjit
def system_event(w, ts_ns, code):
    o = begin(w, LEN_S)
    if o >= 0:
        _hdr(w, o, 83, 0, ts_ns)
        w.buf[o + 11] = code


@vjit
def put_raw(w, msg):
    """Append one already-encoded ITCH message (the Python encoder's bytes)."""
    o = begin(w, msg.shape[0])
    if o >= 0:
        for k in range(msg.shape[0]):
            w.buf[o + k] = msg[k]


@vjit
def header_only(w, count):
    """Send a heartbeat (count 0) or end of session (0xFFFF) carrying the next seq."""
    s = w.scratch
    for k in range(10):
        s[k] = w.session[k]
    store_be64(s, 10, w.state[N_MSGS] + 1)
    store_be16(s, 18, count)
    if w.state[FD] >= 0:
        libc_sendto(w.state[FD], s.ctypes.data, 20, 0, w.addr.ctypes.data, 16)
    w.state[HEARTBEATS] += 1
    w.state[LAST_SEND_NS] = realtime_ns()


def message(w: MoldOut, i: int) -> bytes:
    """Message i (0-based) of the history, for tests and the slow path."""
    o = int(w.msg_off[i])
    ln = int(w.buf[o - 2]) << 8 | int(w.buf[o - 1])
    return w.buf[o:o + ln].tobytes()


def messages(w: MoldOut, first: int = 0) -> list[bytes]:
    return [message(w, i) for i in range(first, int(w.state[N_MSGS]))]


class _TsOffsets:
    """msg_off + 5 element by element (no copy of the whole index per request)."""

    def __init__(self, msg_off):
        self.msg_off = msg_off

    def __getitem__(self, i):
        return int(self.msg_off[i]) + itch.TIMESTAMP_OFFSET

    def __len__(self):
        return len(self.msg_off)


class HistoryView:
    """What bench.load.retransmit.RetransmitServer reads (a MoldPackets look-alike): the
    history buffer and, per message, where its timestamp is."""

    def __init__(self, w: MoldOut):
        self.w = w
        self.buf = w.buf
        self.session = bytes(w.session)
        self.first_seq = np.array([1], np.int64)
        self.n_packets = 1

        self.ts_offsets = _TsOffsets(w.msg_off)

    def sent_msgs(self) -> int:
        return int(self.w.state[SENT_MSGS])


def _borrow_out():
    from tickpath.bench.venue.book import _make_borrower
    return _make_borrower(MoldOut, "borrow_out")


borrow_out = _borrow_out()
