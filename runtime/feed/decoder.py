"""The MoldUDP64 + ITCH 5.0 decoder: numba, the hot path.

`decode_packet` turns one UDP payload into 64-byte event records (runtime/event.py) and
counts everything it refuses (runtime/counters.py); it never raises, allocates or touches a
Python object. Every read is preceded by a length check, because numba does not bounds-check.
Every entry point is compiled `_nrt=False`: with reference counting on, numba wraps each
inlined helper that takes an array in an incref/decref pair, two calls per message (measured:
decoding from an ITCH block 60 -> 22 ns per message without them).

Stream state lives in a small int64 array `mold` (slots MOLD_*) plus the 10-byte session:
* The first packet fixes the session (unless `new_mold_state(session=...)` fixed it);
  packets from another session are counted WRONG_SESSION and ignored.
* A packet (or heartbeat / end of session, whose seq is the next one the server will send)
  ahead of the expected sequence number emits one gap event (msg_type 0, FLAG_GAP, seq =
  first missing, shares = count missing) before its messages.
* Gap window (MOLD_MAX_GAP, 0 = none): a packet more than the window ahead is not adopted
  on one datagram's word (damage or spoof would otherwise make every later legitimate
  message a "duplicate" until restart). It is dropped and counted SEQ_SUSPECT, and the
  stream continues from the expected number. `MOLD_RESET_PACKETS` such packets in a row,
  each continuing exactly where the previous one ended (a real session reset or a long
  outage), are a reset: one gap event with aux = GAP_AUX_RESET (counted SEQ_RESETS, GAPS
  and GAP_MESSAGES) and the stream continues from that packet. A packet inside the window
  breaks the run.
* Messages below the expected sequence number are walked over and counted DUPLICATES
  (whatever they hold: their numbers were seen already).
* Each message consumes one sequence number, including skipped, unknown and malformed
  (zero-length or too short) ones. A message whose length runs past the end of the packet
  stops the packet and does not consume a number: the next packet then reveals the lost
  tail as a gap, so a damaged count field cannot make the stream skip ahead.
* MALFORMED_PACKETS: shorter than the 20-byte header, a sequence number above MAX_SEQ
  (damage; ignored), a message running past the end, fewer messages than the count, or
  bytes left after the last message (the messages before are still decoded).
* A full event array: events not written are counted EVENTS_DROPPED; decoding and the
  sequence go on (size it with max_events_per_packet and this never happens).
Counter identity after any input (the fuzz test checks it):
    MESSAGES == DUPLICATES + MALFORMED_MESSAGES + UNKNOWN_TYPES + SKIPPED_TYPES
                + (EVENTS + EVENTS_DROPPED - GAPS)
and MOLD_NEXT_SEQ advances by GAP_MESSAGES + MESSAGES - DUPLICATES - overruns, where the
overruns (messages running past the end) number at most MALFORMED_PACKETS.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.feed import moldudp64 as mold_layout
from tickpath.runtime.sys.byteorder import load_be16, load_be32, load_be48, load_be64
from tickpath.runtime.core.counters import (
    DUPLICATES,
    END_OF_SESSION,
    SEQ_RESETS,
    SEQ_SUSPECT,
    EVENTS,
    EVENTS_DROPPED,
    GAP_MESSAGES,
    GAPS,
    HEARTBEATS,
    MALFORMED_MESSAGES,
    MALFORMED_PACKETS,
    MESSAGES,
    N_COUNTERS,
    PACKETS,
    SKIPPED_TYPES,
    UNKNOWN_TYPES,
    WRONG_SESSION,
)
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.core.event import (
    EVENT_DTYPE,
    EVENT_VERSION,
    FLAG_ATTRIBUTED,
    FLAG_CROSS,
    FLAG_GAP,
)
from tickpath.runtime.feed import itch   # field offsets itch.A_PRICE...: ints numba freezes
from tickpath.runtime.feed.itch import (
    KIND_BY_TYPE,
    KIND_DECODED,
    KIND_UNKNOWN,
    LENGTH_BY_TYPE,
    MIN_DECODED_BYTES,
)

# cache=True: every process that imports the runtime would otherwise recompile (~3 s).
# numba keys the cache on this file only: after editing itch.py's tables or byteorder.py,
# touch this file (or set NUMBA_DISABLE_CACHE=1) so a stale build is not reused.

# mold state slots
MOLD_NEXT_SEQ = 0      # next expected sequence number; 0 = adopt the first packet's
MOLD_SESSION_SET = 1   # 1 once the session bytes are fixed
MOLD_ENDED = 2         # 1 once an end-of-session packet arrived
MOLD_MAX_GAP = 3       # gap window in messages (0: adopt any jump, the old rule)
MOLD_RESET_PACKETS = 4 # consistent far-ahead packets in a row that make a session reset
MOLD_SUSPECT_NEXT = 5  # where the next far-ahead packet must start to continue the run
MOLD_SUSPECT_RUN = 6   # far-ahead packets in the current run
MOLD_N_SLOTS = 8       # one spare slot, keeps the array 64 bytes

DEFAULT_MAX_GAP_MSGS = 1 << 20     # ~10 s of a busy ITCH feed; a larger jump needs confirming
DEFAULT_RESET_PACKETS = 3
GAP_AUX_RESET = ord("R")           # aux of the gap event that reports a session reset

_HDR = mold_layout.HEADER_BYTES
_SESSION_BYTES = mold_layout.SESSION_BYTES
_SEQ_OFF = mold_layout.SEQ_OFFSET
_COUNT_OFF = mold_layout.COUNT_OFFSET
_HEARTBEAT = mold_layout.HEARTBEAT_COUNT
_EOS = mold_layout.END_OF_SESSION_COUNT
# Above this a sequence number is nonsense (damage): refusing it keeps seq + count in int64.
MAX_SEQ = (1 << 62) - 1

_A, _B, _C, _D, _E, _F = ord("A"), ord("B"), ord("C"), ord("D"), ord("E"), ord("F")
_H, _P, _Q, _R, _S, _U, _X = ord("H"), ord("P"), ord("Q"), ord("R"), ord("S"), ord("U"), ord("X")


def new_mold_state(session: str | bytes | None = None, next_seq: int = mold_layout.FIRST_SEQ,
                   max_gap_msgs: int = DEFAULT_MAX_GAP_MSGS,
                   reset_packets: int = DEFAULT_RESET_PACKETS):
    """(mold, session) for one MoldUDP64 stream.

    session=None lets the first packet fix it. next_seq=1 (MoldUDP64 numbers start at 1)
    reports a late join as a gap; next_seq=0 adopts the first packet's number instead.
    max_gap_msgs=0 turns the gap window off (any jump is adopted: the FPGA card's rule).
    """
    if not 0 <= next_seq <= MAX_SEQ:
        raise ConfigError("next_seq out of range", next_seq=next_seq, max_seq=MAX_SEQ)
    mold = np.zeros(MOLD_N_SLOTS, dtype=np.int64)
    mold[MOLD_NEXT_SEQ] = next_seq
    set_gap_policy(mold, max_gap_msgs, reset_packets)
    sess = np.zeros(_SESSION_BYTES, dtype=np.uint8)
    if session is not None:
        sess[:] = np.frombuffer(mold_layout.session_bytes(session), dtype=np.uint8)
        mold[MOLD_SESSION_SET] = 1
    return mold, sess


def set_gap_policy(mold, max_gap_msgs: int, reset_packets: int,
                   section: str = "feed") -> None:
    """Set the gap window (messages; 0 = off) and the reset rule on a mold state."""
    for key, v, lo, hi in (("max_gap_msgs", max_gap_msgs, 0, MAX_SEQ),
                           ("reset_packets", reset_packets, 1, 1000)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise ConfigError("gap policy setting out of range", key=f"{section}.{key}",
                              value=v, allowed=f"{lo}..{hi}")
    mold[MOLD_MAX_GAP] = max_gap_msgs
    mold[MOLD_RESET_PACKETS] = reset_packets
    mold[MOLD_SUSPECT_RUN] = 0


def check_decoder_buffers(mold, session, events, counters) -> None:
    """Setup-time check of the arrays decode_packet writes (ConfigError naming the bad one).
    The hot path repeats the size checks and leaves arrays that fail them untouched."""
    want = (("mold", mold, np.int64, MOLD_N_SLOTS), ("session", session, np.uint8,
            _SESSION_BYTES), ("counters", counters, np.int64, N_COUNTERS))
    for name, arr, dtype, n in want:
        if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != 1 or \
                arr.shape[0] < n:
            raise ConfigError("decoder buffer has the wrong type or size", buffer=name,
                              dtype=getattr(arr, "dtype", type(arr).__name__),
                              shape=getattr(arr, "shape", None), want_dtype=np.dtype(dtype).name,
                              want_min_len=n)
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise ConfigError("events must be a 1-D EVENT_DTYPE array",
                          dtype=getattr(events, "dtype", type(events).__name__))


def max_events_per_packet(packet_bytes: int) -> int:
    """Most events one packet of `packet_bytes` can produce: a gap event + one per message."""
    body = max(0, int(packet_bytes) - _HDR)
    return 1 + body // (mold_layout.LENGTH_PREFIX_BYTES + MIN_DECODED_BYTES)


# big-endian reads (runtime/byteorder.py); callers check that [o, o+n) lies inside p
_be16 = load_be16
_be32 = load_be32
_be48 = load_be48
_be64 = load_be64   # int64 bit pattern of the u64; stored into u64 fields unchanged


@njit(nogil=True, inline="always")
def _le64(p, o):
    # raw ASCII symbol read as a little-endian u64 (event.py: R -> ref2)
    v = np.int64(0)
    for i in range(8):
        v |= np.int64(p[o + i]) << (8 * i)
    return v


@njit(nogil=True, inline="always")
def _write(events, i, seq, ts_exch, recv_ns, order_ref, ref2, shares, price, locate,
           tracking, msg_type, side, aux, flags):
    e = events[i]
    e.seq = seq
    e.ts_exch = ts_exch
    e.ts_recv = recv_ns
    e.order_ref = order_ref
    e.ref2 = ref2
    e.shares = shares
    e.price = price
    e.locate = locate
    e.tracking = tracking
    e.msg_type = msg_type
    e.side = side
    e.version = EVENT_VERSION
    e.aux = aux
    e.flags = flags


@njit(nogil=True, cache=True, _nrt=False)
def _emit_gap(events, ev, first_missing, n_missing, recv_ns, counters, aux=0):
    counters[GAPS] += 1
    counters[GAP_MESSAGES] += n_missing
    if ev < 0 or ev >= events.shape[0]:
        counters[EVENTS_DROPPED] += 1
        return ev
    _write(events, ev, first_missing, 0, recv_ns, 0, 0, n_missing, 0, 0, 0, 0, 0, aux, FLAG_GAP)
    counters[EVENTS] += 1
    return ev + 1


@njit(nogil=True, inline="always")
def _far_ahead(mold, seq, count, expected):
    """The gap-window rule for a packet at seq; True: drop it (the caller counts it).
    A confirmed run (a reset) returns False with MOLD_NEXT_SEQ untouched: the caller
    reports the jump. Every operand stays below 2^63 (seq <= MAX_SEQ, count <= 0xFFFF)."""
    window = mold[MOLD_MAX_GAP]
    if window <= 0 or seq - expected <= window:
        mold[MOLD_SUSPECT_RUN] = 0   # the expected stream is alive: a run must be unbroken
        return False
    run = mold[MOLD_SUSPECT_RUN]
    if run > 0 and seq == mold[MOLD_SUSPECT_NEXT]:
        run += 1
    else:
        run = 1
    mold[MOLD_SUSPECT_NEXT] = seq + (0 if count == _HEARTBEAT or count == _EOS else count)
    if run < mold[MOLD_RESET_PACKETS]:
        mold[MOLD_SUSPECT_RUN] = run
        return True
    mold[MOLD_SUSPECT_RUN] = 0
    return False


@njit(nogil=True, inline="always")
def _decode_message(p, o, length, seq, recv_ns, events, ev, counters):
    """One message at p[o:o+length] (inside the packet); returns the new event end
    (the caller counts EVENTS)."""
    t = np.int64(p[o])
    kind = KIND_BY_TYPE[t]
    if kind == KIND_UNKNOWN:
        counters[UNKNOWN_TYPES] += 1
        return ev
    if length < LENGTH_BY_TYPE[t]:
        counters[MALFORMED_MESSAGES] += 1
        return ev
    if kind != KIND_DECODED:
        counters[SKIPPED_TYPES] += 1
        return ev
    if ev < 0 or ev >= events.shape[0]:
        counters[EVENTS_DROPPED] += 1
        return ev
    # from here every read is inside [o, o + spec length) <= [o, o + length)
    locate = _be16(p, o + itch.LOCATE_OFFSET)
    tracking = _be16(p, o + itch.TRACKING_OFFSET)
    ts = _be48(p, o + itch.TIMESTAMP_OFFSET)
    order_ref = 0
    ref2 = 0
    shares = 0
    price = 0
    side = 0
    aux = 0
    flags = 0
    if t == _A or t == _F:
        order_ref = _be64(p, o + itch.A_ORDER_REF)     # F is A plus an attribution (itch.py)
        side = p[o + itch.A_SIDE]
        shares = _be32(p, o + itch.A_SHARES)
        price = _be32(p, o + itch.A_PRICE)
        if t == _F:
            flags = FLAG_ATTRIBUTED
    elif t == _D:
        order_ref = _be64(p, o + itch.D_ORDER_REF)
    elif t == _E:
        order_ref = _be64(p, o + itch.E_ORDER_REF)
        shares = _be32(p, o + itch.E_SHARES)
        ref2 = _be64(p, o + itch.E_MATCH)
    elif t == _X:
        order_ref = _be64(p, o + itch.X_ORDER_REF)
        shares = _be32(p, o + itch.X_SHARES)
    elif t == _U:
        order_ref = _be64(p, o + itch.U_ORDER_REF)
        ref2 = _be64(p, o + itch.U_NEW_ORDER_REF)
        shares = _be32(p, o + itch.U_SHARES)
        price = _be32(p, o + itch.U_PRICE)
    elif t == _C:
        order_ref = _be64(p, o + itch.C_ORDER_REF)
        shares = _be32(p, o + itch.C_SHARES)
        ref2 = _be64(p, o + itch.C_MATCH)
        aux = p[o + itch.C_PRINTABLE]
        price = _be32(p, o + itch.C_PRICE)
    elif t == _P:
        # event.py lists order_ref for A F E C X D U only: P's (zeroed by NASDAQ) is not kept
        side = p[o + itch.P_SIDE]
        shares = _be32(p, o + itch.P_SHARES)
        price = _be32(p, o + itch.P_PRICE)
        ref2 = _be64(p, o + itch.P_MATCH)
    elif t == _Q:
        shares = _be64(p, o + itch.Q_SHARES)
        price = _be32(p, o + itch.Q_PRICE)
        ref2 = _be64(p, o + itch.Q_MATCH)
        aux = p[o + itch.Q_CROSS_TYPE]
        flags = FLAG_CROSS
    elif t == _S:
        aux = p[o + itch.S_EVENT_CODE]
    elif t == _R:
        ref2 = _le64(p, o + itch.R_STOCK)
    elif t == _H:
        aux = p[o + itch.H_TRADING_STATE]
    elif t == _B:
        ref2 = _be64(p, o + itch.B_MATCH)
    _write(events, ev, seq, ts, recv_ns, order_ref, ref2, shares, price, locate, tracking,
           t, side, aux, flags)
    return ev + 1


@njit(nogil=True, cache=True, _nrt=False)
def decode_packet(pkt, recv_ns, mold, session, events, ev_start, counters):
    """Decode one MoldUDP64 payload into events[ev_start:]; returns the new end index."""
    if (mold.shape[0] < MOLD_N_SLOTS or session.shape[0] < _SESSION_BYTES
            or counters.shape[0] < N_COUNTERS):
        return ev_start   # wrong buffers (check_decoder_buffers says which): touch nothing
    return _decode_at(pkt, 0, pkt.shape[0], recv_ns, mold, session, events, ev_start,
                      counters)


@njit(nogil=True, cache=True, _nrt=False)
def _decode_at(pkt, base, n_bytes, recv_ns, mold, session, events, ev_start, counters):
    """decode_packet on pkt[base:base+n_bytes] (the caller checked it lies inside pkt),
    without making a slice per packet. Offsets below are relative to base."""
    ev, count, cur, expected = _open(pkt, base, n_bytes, recv_ns, mold, session, events, ev_start,
                                     counters)
    if count < 0:
        return ev
    pos = _HDR
    n_msgs = 0
    ev_msgs = ev           # message events are counted once per packet, not per store
    broken = False
    for _ in range(count):
        ev, pos, status = _message(pkt, base, n_bytes, pos, cur, expected, recv_ns, events, ev, counters)
        if status == _NO_LENGTH:
            broken = True
            break
        n_msgs += 1
        if status == _OVERRUN:
            broken = True
            break
        cur += 1
    _close(mold, counters, n_msgs, ev - ev_msgs, broken or pos != n_bytes, cur, expected)
    return ev


@njit(nogil=True, inline="always")
def _open(pkt, base, n_bytes, recv_ns, mold, session, events, ev_start, counters):
    """The packet's header: session, sequence, gap window, heartbeat / end of session, gap
    event. Returns (ev, count, seq, expected): count < 0 when no message is to be decoded
    (the packet is fully accounted for); seq is its first message's number."""
    counters[PACKETS] += 1
    if n_bytes < _HDR:
        counters[MALFORMED_PACKETS] += 1
        return ev_start, -1, 0, 0
    if mold[MOLD_SESSION_SET] == 0:
        for i in range(_SESSION_BYTES):
            session[i] = pkt[base + i]
        mold[MOLD_SESSION_SET] = 1
    else:
        for i in range(_SESSION_BYTES):
            if session[i] != pkt[base + i]:
                counters[WRONG_SESSION] += 1
                return ev_start, -1, 0, 0
    seq = _be64(pkt, base + _SEQ_OFF)
    count = _be16(pkt, base + _COUNT_OFF)
    if seq < 0 or seq > MAX_SEQ:
        counters[MALFORMED_PACKETS] += 1
        return ev_start, -1, 0, 0
    if mold[MOLD_NEXT_SEQ] == 0:
        mold[MOLD_NEXT_SEQ] = seq
    expected = mold[MOLD_NEXT_SEQ]
    ev = ev_start
    if _far_ahead(mold, seq, count, expected):
        counters[SEQ_SUSPECT] += 1     # held to a run of consistent packets: not adopted
        return ev, -1, 0, 0
    if mold[MOLD_MAX_GAP] > 0 and seq - expected > mold[MOLD_MAX_GAP]:
        counters[SEQ_RESETS] += 1      # a confirmed run: the explicit reset event
        ev = _emit_gap(events, ev, expected, seq - expected, recv_ns, counters, GAP_AUX_RESET)
        expected = seq
        mold[MOLD_NEXT_SEQ] = seq
    if count == _HEARTBEAT or count == _EOS:
        if count == _EOS:
            counters[END_OF_SESSION] += 1
            mold[MOLD_ENDED] = 1
        else:
            counters[HEARTBEATS] += 1
        if seq > expected:
            ev = _emit_gap(events, ev, expected, seq - expected, recv_ns, counters)
            mold[MOLD_NEXT_SEQ] = seq
        if n_bytes != _HDR:
            counters[MALFORMED_PACKETS] += 1  # bytes after a message-less header
        return ev, -1, 0, 0
    if seq > expected:
        ev = _emit_gap(events, ev, expected, seq - expected, recv_ns, counters)
        expected = seq
        mold[MOLD_NEXT_SEQ] = seq   # the gap is reported even if no message follows
    return ev, count, seq, expected


_OK, _NO_LENGTH, _OVERRUN = 0, 1, 2    # _message's status


@njit(nogil=True, inline="always")
def _message(pkt, base, n_bytes, pos, cur, expected, recv_ns, events, ev, counters):
    """The message at pos, numbered cur: (ev, next pos, status). _NO_LENGTH: no length field
    left (the count promised more); _OVERRUN: its length runs past the end (it is counted as
    a message but consumes no number)."""
    if pos + 2 > n_bytes:
        return ev, pos, _NO_LENGTH
    length = _be16(pkt, base + pos)
    body = pos + 2
    end = body + length
    if end > n_bytes:
        counters[MALFORMED_MESSAGES] += 1
        return ev, pos, _OVERRUN
    if cur < expected:
        counters[DUPLICATES] += 1   # whatever it holds: its number was seen already
    elif length == 0:
        counters[MALFORMED_MESSAGES] += 1
    else:
        ev = _decode_message(pkt, base + body, length, cur, recv_ns, events, ev, counters)
    return ev, end, _OK


@njit(nogil=True, inline="always")
def _close(mold, counters, n_msgs, n_events, malformed, cur, expected):
    """A packet's messages are done: count them, and move the stream past them."""
    counters[MESSAGES] += n_msgs
    counters[EVENTS] += n_events
    if malformed:
        counters[MALFORMED_PACKETS] += 1
    if cur > expected:
        mold[MOLD_NEXT_SEQ] = cur


@njit(nogil=True, inline="always")
def _frame(payload, lengths, i, recv_ns, mold, session, events, ev, counters):
    length = lengths[i]
    if length < 0 or length > payload.shape[1]:
        counters[PACKETS] += 1
        counters[MALFORMED_PACKETS] += 1
        return ev
    return decode_packet(payload[i, :length], recv_ns[i], mold, session, events, ev, counters)


@njit(nogil=True, inline="always")
def _states_ok(mold, session, counters):
    return (mold.shape[0] >= MOLD_N_SLOTS and session.shape[0] >= _SESSION_BYTES
            and counters.shape[0] >= N_COUNTERS)


@njit(nogil=True, cache=True, _nrt=False)
def decode_frames(payload, lengths, n, recv_ns, mold, session, events, ev_start, counters):
    """Decode frame slots [0, n) of a backend's buffer (payload uint8[n_slots, slot_bytes],
    lengths int32, recv_ns int64); returns the new event end. A length outside the slot is
    a malformed packet (a backend bug), never a read past the slot."""
    if not _states_ok(mold, session, counters):
        return ev_start
    ev = ev_start
    for i in range(min(n, payload.shape[0])):
        ev = _frame(payload, lengths, i, recv_ns, mold, session, events, ev, counters)
    return ev


@njit(nogil=True, cache=True, _nrt=False)
def decode_frame(payload, lengths, i, recv_ns, mold, session, events, ev_start, counters):
    """Decode frame slot i alone (the trading loop answers packet by packet); as
    decode_frames otherwise."""
    if not _states_ok(mold, session, counters) or i < 0 or i >= payload.shape[0]:
        return ev_start
    return _frame(payload, lengths, i, recv_ns, mold, session, events, ev_start, counters)


# -- one frame, message by message (the trading loop) ----------------------------------------
# The trading loop steps the strategy after each run of one instrument's messages; decoding
# the rest of the packet first would make the first update wait for all of it. A frame is
# opened (header, gap event) and then decoded a message per call; its state between calls is
# a small int64 array. Events, counters and the stream come out as decode_frame makes them
# (tests/runtime/feed/test_frame_parts.py compares the two on fuzzed input).
P_LEFT, P_POS, P_CUR, P_EXPECTED, P_N_MSGS, P_EV_MSGS, P_FRAME, P_BYTES = range(8)
N_PART = 8


def new_frame_part() -> np.ndarray:
    return np.zeros(N_PART, dtype=np.int64)


@njit(nogil=True, cache=True, _nrt=False)
def frame_open(payload, lengths, i, recv_ns, mold, session, events, ev_start, counters, part):
    """Open frame slot i: its header and any gap event go to events[ev_start:]; returns the
    event end. part[P_LEFT]: messages frame_next has left to decode (0: none)."""
    if part.shape[0] < N_PART:
        return ev_start
    part[P_LEFT] = 0
    if not _states_ok(mold, session, counters) or i < 0 or i >= payload.shape[0]:
        return ev_start
    length = lengths[i]
    if length < 0 or length > payload.shape[1]:
        counters[PACKETS] += 1
        counters[MALFORMED_PACKETS] += 1
        return ev_start
    ev, count, cur, expected = _open(payload[i], 0, length, recv_ns[i], mold, session, events,
                                     ev_start, counters)
    if count < 0:
        return ev
    part[P_POS] = _HDR
    part[P_CUR] = cur
    part[P_EXPECTED] = expected
    part[P_N_MSGS] = 0
    part[P_EV_MSGS] = ev
    part[P_FRAME] = i
    part[P_BYTES] = length
    part[P_LEFT] = count     # >= 1: a count of 0 is a heartbeat, which _open accounted for
    return ev


@njit(nogil=True, cache=True, _nrt=False)
def frame_next(payload, recv_ns, mold, events, ev, counters, part):
    """Decode the open frame's next message into events[ev:]; returns the event end. After
    its last message (or one that breaks it) the frame is counted and the stream moved on."""
    return frame_next_inline(payload, recv_ns, mold, events, ev, counters, part)


@njit(nogil=True, inline="always")
def frame_next_inline(payload, recv_ns, mold, events, ev, counters, part):
    """frame_next, inlined into its caller: the trade loop calls it once per message, and
    the call (seven arrays passed) cost ~11 ns a message in a storm-like flow (125 vs 137 ns
    a message through the whole loop, bench/RESULTS.md)."""
    if part.shape[0] < N_PART or part[P_LEFT] <= 0:
        return ev
    i = part[P_FRAME]
    n_bytes = part[P_BYTES]
    cur = part[P_CUR]
    expected = part[P_EXPECTED]
    ev, pos, status = _message(payload[i], 0, n_bytes, part[P_POS], cur, expected, recv_ns[i],
                               events, ev, counters)
    n_msgs = part[P_N_MSGS]
    left = part[P_LEFT] - 1
    if status != _NO_LENGTH:
        n_msgs += 1
    if status == _OK:
        cur += 1
    else:
        left = 0
    part[P_POS] = pos
    part[P_CUR] = cur
    part[P_N_MSGS] = n_msgs
    part[P_LEFT] = left
    if left == 0:
        _close(mold, counters, n_msgs, ev - part[P_EV_MSGS], status != _OK or pos != n_bytes, cur,
               expected)
    return ev


@njit(nogil=True, cache=True, _nrt=False)
def decode_buffer(buf, offsets, lengths, first, n, recv_ns, mold, session, events, ev_start,
                  counters):
    """Decode packets [first, first+n) stored back to back in buf (offsets/lengths int64);
    returns the new event end. Used by the benchmark and replay tools."""
    if (mold.shape[0] < MOLD_N_SLOTS or session.shape[0] < _SESSION_BYTES
            or counters.shape[0] < N_COUNTERS):
        return ev_start
    ev = ev_start
    buf_bytes = buf.shape[0]
    last = min(first + n, offsets.shape[0], lengths.shape[0], recv_ns.shape[0])
    for i in range(max(first, 0), last):
        o = offsets[i]
        length = lengths[i]
        if o < 0 or length < 0 or o + length > buf_bytes:
            counters[PACKETS] += 1
            counters[MALFORMED_PACKETS] += 1
            continue
        ev = _decode_at(buf, o, length, recv_ns[i], mold, session, events, ev, counters)
    return ev
