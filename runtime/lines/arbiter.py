"""A/B line arbitration: two copies of one MoldUDP64 feed (lines A and B) plus the
retransmission server's answers become one in-order stream of packets for the decoder.

Numba, allocation-free, never raises. It works on MoldUDP64 messages, not packets, so A and
B may pack differently. For each message numbered s (next = the next one to deliver):
* s < next, or already held: a copy that came second, counted per line (ARB_DUP_A/B).
* s == next: delivered at once, then every held successor that is now in order.
* s > next: held in a bounded reorder buffer (slot s % capacity). A message more than
  `capacity` ahead forces the window on: what is missing below it is delivered as a gap and
  counted REORDER_OVERFLOW (bounded memory wins over waiting; never skipped silently).
A message (or a line heartbeat announcing a higher number) beyond the highest number seen
opens a *hole* [hi+1, s) in a small table (rows of at most max_request_msgs). A full table
does not grow a row: the rest is kept as one *untracked* range (HOLES_UNTRACKED), reopened
as rows free up, and given up at the deadline like a hole. runtime/recovery.py ages holes:
after the arbitration wait a hole is "missing on both lines" and requested from the
retransmission server; at the deadline the head hole is delivered as an explicit gap event.

Gap window (P_MAX_GAP, 0 = none): a line packet more than the window beyond the highest
number known is not believed on one datagram's word (a spoofed or damaged number would
otherwise open a hole the size of 2^40): it is dropped and counted SEQ_SUSPECT. When
P_RESET_PACKETS such packets in a row on one line each continue where the previous ended,
it is a session reset: what is held goes out, what is missing below becomes gaps, one
staged gap with aux GAP_AUX_RESET covers the jump (SEQ_RESETS), and the numbering goes on
from there. Every walk over a gap is bounded by the reorder capacity, not by its size:
nothing can be held more than `capacity` beyond next, so one range covers the rest.

Delivery goes through a staging area: runs of consecutive messages from one source are
re-framed as MoldUDP64 packets (seq, count, length-prefixed messages), gaps as rows with
source SRC_GAP; `deliver(sink, stage arrays, n)` hands them on to the sink, chosen by the
sink's type when numba compiles (runtime/lines/sink.py; a function passed as an argument
would make every caller uncacheable) — to the decoder and pipeline in runtime/lines/loop.py.
Counters: ARB_FIRST_A/B and RECOVERED count delivered messages by the source that won.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import moldudp64 as M
from tickpath.runtime.sys.byteorder import load_be16, load_be64
from tickpath.runtime.feed.decoder import (
    DEFAULT_MAX_GAP_MSGS,
    DEFAULT_RESET_PACKETS,
    GAP_AUX_RESET,
    MAX_SEQ,
)
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.lines.sink import deliver

SRC_A, SRC_B, SRC_R, SRC_GAP = 0, 1, 2, 3

# state slots (int64)
S_NEXT = 0            # next sequence number to deliver (0: adopt the first packet's)
S_HI = 1              # highest sequence number seen (or announced by a heartbeat)
S_SESSION_SET = 2
S_N_HOLES = 3
S_STAGE_N = 4         # staged rows
S_STAGE_BYTES = 5     # bytes used in the staging buffer
S_OPEN = 6            # staged row still accepting messages, -1 none
S_LAST_RX_A = 7       # monotonic ns of the last packet on line A (0 never)
S_LAST_RX_B = 8
S_STALE = 9           # 1 while both lines are silent past the heartbeat timeout
S_START_NS = 10       # monotonic ns of the first maintenance pass
S_ENDED = 11          # an end-of-session packet arrived
S_SUSPECT_NEXT = 12   # + SRC_A/SRC_B: where that line's next far-ahead packet must start
S_SUSPECT_RUN = 14    # + SRC_A/SRC_B: far-ahead packets in a row on that line
S_UNTRACKED_FIRST = 16  # missing range the full hole table could not take (end 0: none)
S_UNTRACKED_END = 17
S_UNTRACKED_NS = 18   # when its first part was detected (its deadline runs from here)
N_STATE = 24

# params slots (int64)
P_CAPACITY = 0        # reorder buffer slots
P_SLOT_BYTES = 1      # longest message a slot holds
P_WAIT_NS = 2         # arbitration wait: how long a hole may wait for the other line
P_STALE_NS = 3        # heartbeat timeout: both lines silent this long = stale feed
P_MAX_STAGE_MSGS = 4  # most messages in one staged packet (the event batch bounds it)
P_MAX_GAP = 5         # gap window in messages (0: believe any jump)
P_RESET_PACKETS = 6   # consistent far-ahead packets in a row that make a session reset
N_PARAMS = 8

# hole table columns
H_FIRST, H_COUNT, H_DETECTED_NS, H_SENT_NS, H_TRIES = range(5)
H_COLS = 8

_HDR = M.HEADER_BYTES
_SESS = M.SESSION_BYTES
_DUP_SLOT = (C.ARB_DUP_A, C.ARB_DUP_B, C.RETRANS_DUPLICATES)
_FIRST_SLOT = (C.ARB_FIRST_A, C.ARB_FIRST_B, C.RECOVERED)
# _nrt=False on every function here: nothing in the arbiter allocates, and without NRT numba
# emits no atomic incref/decref for each array taken out of the state tuple — measured 6-7x
# more messages/s (bench/micro/test_lines_bench.py, bench/RESULTS.md)


class ArbState(NamedTuple):
    """The arrays one arbitrated feed works on (numba types the tuple; no run-time cost)."""
    state: np.ndarray     # int64[N_STATE], S_* slots
    params: np.ndarray    # int64[N_PARAMS], P_* slots
    session: np.ndarray   # uint8[10]
    rb_seq: np.ndarray    # reorder buffer, slot s % capacity: seq held (-1 empty)
    rb_len: np.ndarray
    rb_src: np.ndarray
    rb_recv: np.ndarray
    rb_data: np.ndarray   # uint8[capacity, slot_bytes]
    holes: np.ndarray     # int64[max_holes, H_COLS]
    st_buf: np.ndarray    # staging bytes (re-framed MoldUDP64 packets)
    st_meta: np.ndarray   # int64[6, rows]: src, seq, count, offset (gap: aux), length, recv_ns


class Arbiter:
    """Preallocated state for one arbitrated feed (setup params checked here)."""

    def __init__(self, capacity: int = 1 << 16, slot_bytes: int = 64, wait_ns: int = 200_000,
                 stale_ns: int = 2_000_000_000, max_holes: int = 64, stage_bytes: int = 1 << 18,
                 stage_rows: int = 4096, max_stage_msgs: int = 1023, session: bytes | None = None,
                 first_seq: int = M.FIRST_SEQ, max_gap_msgs: int = DEFAULT_MAX_GAP_MSGS,
                 reset_packets: int = DEFAULT_RESET_PACKETS):
        checks = (("capacity", capacity, 1, 1 << 24), ("slot_bytes", slot_bytes, 8, M.MAX_MESSAGE_BYTES),
                  ("wait_ns", wait_ns, 0, 60_000_000_000), ("stale_ns", stale_ns, 1_000_000, 3_600_000_000_000),
                  ("max_holes", max_holes, 1, 1 << 16), ("stage_rows", stage_rows, 2, 1 << 20),
                  ("max_stage_msgs", max_stage_msgs, 1, M.MAX_MESSAGES_PER_PACKET),
                  ("first_seq", first_seq, 0, MAX_SEQ), ("max_gap_msgs", max_gap_msgs, 0, MAX_SEQ),
                  ("reset_packets", reset_packets, 1, 1000))
        for name, v, lo, hi in checks:
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ConfigError("arbiter setting out of range", key=f"lines.{name}", value=v,
                                  allowed=f"{lo}..{hi}")
        if stage_bytes < _HDR + 2 + M.MAX_MESSAGE_BYTES:   # any message must fit one staged packet
            raise ConfigError("stage_bytes cannot hold the longest MoldUDP64 message",
                              stage_bytes=stage_bytes, min_bytes=_HDR + 2 + M.MAX_MESSAGE_BYTES)
        self.state = np.zeros(N_STATE, dtype=np.int64)
        self.state[S_NEXT] = first_seq
        self.state[S_HI] = first_seq - 1
        self.state[S_OPEN] = -1
        self.params = np.zeros(N_PARAMS, dtype=np.int64)
        self.params[[P_CAPACITY, P_SLOT_BYTES, P_WAIT_NS, P_STALE_NS, P_MAX_STAGE_MSGS,
                     P_MAX_GAP, P_RESET_PACKETS]] = (
            capacity, slot_bytes, wait_ns, stale_ns, max_stage_msgs, max_gap_msgs, reset_packets)
        self.session = np.zeros(_SESS, dtype=np.uint8)
        if session:
            self.session[:] = np.frombuffer(M.session_bytes(session), dtype=np.uint8)
            self.state[S_SESSION_SET] = 1
        self.rb_seq = np.full(capacity, -1, dtype=np.int64)
        self.rb_len = np.zeros(capacity, dtype=np.int64)
        self.rb_src = np.zeros(capacity, dtype=np.int64)
        self.rb_recv = np.zeros(capacity, dtype=np.int64)
        self.rb_data = np.zeros((capacity, slot_bytes), dtype=np.uint8)
        self.holes = np.zeros((max_holes, H_COLS), dtype=np.int64)
        self.st_buf = np.zeros(stage_bytes, dtype=np.uint8)
        self.st_meta = np.zeros((6, stage_rows), dtype=np.int64)   # src seq count off len recv

    @property
    def arrays(self) -> ArbState:
        return ArbState(self.state, self.params, self.session, self.rb_seq, self.rb_len,
                        self.rb_src, self.rb_recv, self.rb_data, self.holes, self.st_buf,
                        self.st_meta)

    def held(self) -> int:
        """Messages waiting in the reorder buffer (slow path, for stats)."""
        return int(np.count_nonzero(self.rb_seq >= 0))

    def stats(self, now_ns: int) -> dict:
        st = self.state
        idle = {k: (now_ns - int(st[s]) if st[s] else None) for k, s in
                (("line_a_idle_ns", S_LAST_RX_A), ("line_b_idle_ns", S_LAST_RX_B))}
        return {"next_seq": int(st[S_NEXT]), "highest_seq": int(st[S_HI]), "held": self.held(),
                "open_holes": int(st[S_N_HOLES]), "stale": bool(st[S_STALE]),
                "untracked": int(st[S_UNTRACKED_END] - max(st[S_UNTRACKED_FIRST], st[S_NEXT]))
                if st[S_UNTRACKED_END] > st[S_NEXT] else 0,
                "ended": bool(st[S_ENDED]), **idle}


# --- staging ----------------------------------------------------------------------------

# not cached (here and below, where a sink is taken): a cache index pickles the sink's type, and
# a sink class defined in a test or a script would make it unreadable in other processes; the
# cached A/B loop (loop.py) compiles these into its own cached code instead
@njit(nogil=True, _nrt=False)
def flush(arb, sink):
    """Hand every staged row to the sink; returns the rows handed on."""
    st = arb.state
    n = st[S_STAGE_N]
    if n > 0:
        deliver(sink, arb.st_buf, arb.st_meta, n)
        st[S_STAGE_N] = 0
        st[S_STAGE_BYTES] = 0
        st[S_OPEN] = -1
    return n


@njit(nogil=True, _nrt=False)
def _stage_msg(arb, src, s, p, o, ln, recv_ns, counters, sink):
    """Append message s (p[o:o+ln], the caller checked the bounds) to the staging area."""
    st, params, session, st_buf, meta = arb.state, arb.params, arb.session, arb.st_buf, arb.st_meta
    counters[_FIRST_SLOT[src]] += 1
    r = st[S_OPEN]
    if r >= 0 and (meta[0, r] != src or meta[1, r] + meta[2, r] != s or meta[5, r] != recv_ns
                   or meta[2, r] >= params[P_MAX_STAGE_MSGS]
                   or st[S_STAGE_BYTES] + 2 + ln > st_buf.shape[0]):
        r = -1
    if r < 0:
        if st[S_STAGE_N] >= meta.shape[1] or st[S_STAGE_BYTES] + _HDR + 2 + ln > st_buf.shape[0]:
            flush(arb, sink)
        r = st[S_STAGE_N]
        st[S_STAGE_N] = r + 1
        off = st[S_STAGE_BYTES]
        for i in range(_SESS):
            st_buf[off + i] = session[i]
        for i in range(8):
            st_buf[off + _SESS + i] = (s >> (56 - 8 * i)) & 0xFF
        meta[0, r] = src
        meta[1, r] = s
        meta[2, r] = 0
        meta[3, r] = off
        meta[4, r] = _HDR
        meta[5, r] = recv_ns
        st[S_STAGE_BYTES] = off + _HDR
        st[S_OPEN] = r
    w = st[S_STAGE_BYTES]
    st_buf[w] = (ln >> 8) & 0xFF
    st_buf[w + 1] = ln & 0xFF
    for i in range(ln):
        st_buf[w + 2 + i] = p[o + i]
    st[S_STAGE_BYTES] = w + 2 + ln
    cnt = meta[2, r] + 1
    meta[2, r] = cnt
    meta[4, r] += 2 + ln
    hdr = meta[3, r]
    st_buf[hdr + 18] = (cnt >> 8) & 0xFF
    st_buf[hdr + 19] = cnt & 0xFF


@njit(nogil=True, _nrt=False)
def stage_gap(arb, first, count, now_ns, aux, sink):
    """Stage an explicit gap [first, first+count): the sink turns it into a gap event
    (aux 0, or GAP_AUX_RESET for a session reset; kept in the row's offset column)."""
    st, meta = arb.state, arb.st_meta
    if st[S_STAGE_N] >= meta.shape[1]:
        flush(arb, sink)
    r = st[S_STAGE_N]
    st[S_STAGE_N] = r + 1
    st[S_OPEN] = -1
    meta[0, r] = SRC_GAP
    meta[1, r] = first
    meta[2, r] = count
    meta[3, r] = aux
    meta[4, r] = 0
    meta[5, r] = now_ns


# --- in-order delivery ------------------------------------------------------------------

@njit(nogil=True, _nrt=False)
def drain(arb, counters, sink):
    """Deliver held messages while they are in order; returns how many."""
    st, rb_seq = arb.state, arb.rb_seq
    cap = arb.params[P_CAPACITY]
    n = 0
    while True:
        s = st[S_NEXT]
        k = s % cap
        if rb_seq[k] != s:
            return n
        _stage_msg(arb, arb.rb_src[k], s, arb.rb_data[k], 0, arb.rb_len[k], arb.rb_recv[k],
                   counters, sink)
        rb_seq[k] = -1
        st[S_NEXT] = s + 1
        n += 1


@njit(nogil=True, _nrt=False)
def advance_to(arb, target, now_ns, counters, overflow, sink):
    """Move next up to `target`: held messages are delivered, missing runs become gaps
    (counted UNRECOVERABLE, and REORDER_OVERFLOW when `overflow`). O(capacity), not
    O(target - next): nothing is held at or beyond next + capacity (accept_message keeps
    it so), so past that one gap covers the rest however far target is."""
    st, rb_seq = arb.state, arb.rb_seq
    cap = arb.params[P_CAPACITY]
    while st[S_NEXT] < target:
        s = st[S_NEXT]
        if rb_seq[s % cap] == s:
            drain(arb, counters, sink)
            continue
        lim = min(target, s + cap)
        e = s + 1
        while e < lim and rb_seq[e % cap] != e:
            e += 1
        if e == lim:
            e = target   # nothing held in [s, target): one range, not a walk
        stage_gap(arb, s, e - s, now_ns, 0, sink)
        counters[C.UNRECOVERABLE] += e - s
        counters[C.UNRECOVERABLE_GAPS] += 1
        if overflow:
            counters[C.REORDER_OVERFLOW] += e - s
        st[S_NEXT] = e
    drain(arb, counters, sink)


@njit(nogil=True, cache=True, _nrt=False)
def open_holes(arb, first, end, detected_ns, max_request_msgs, counters, detected):
    """Holes for [first, end) in rows of at most max_request_msgs. A full table takes no
    more: the rest joins the untracked range (counted HOLES_UNTRACKED when newly `detected`).
    While an untracked range waits, new detections join it too, so its union never spans a
    row (rows free up for it, oldest first). Returns where the rows stopped."""
    st, holes = arb.state, arb.holes
    while first < end:
        nh = st[S_N_HOLES]
        if nh >= holes.shape[0] or (detected and st[S_UNTRACKED_END] != 0):
            if detected:
                counters[C.HOLES_UNTRACKED] += end - first
            if st[S_UNTRACKED_END] == 0:
                st[S_UNTRACKED_FIRST] = first
                st[S_UNTRACKED_END] = end
                st[S_UNTRACKED_NS] = detected_ns
            else:   # one union range: over-covering is safe (held numbers are skipped)
                st[S_UNTRACKED_FIRST] = min(st[S_UNTRACKED_FIRST], first)
                st[S_UNTRACKED_END] = max(st[S_UNTRACKED_END], end)
                st[S_UNTRACKED_NS] = min(st[S_UNTRACKED_NS], detected_ns)
            return first
        cnt = min(end - first, max_request_msgs)
        for c in range(holes.shape[1]):
            holes[nh, c] = 0   # a reused row: no state from the hole it held before
        holes[nh, H_FIRST] = first
        holes[nh, H_COUNT] = cnt
        holes[nh, H_DETECTED_NS] = detected_ns
        st[S_N_HOLES] = nh + 1
        first += cnt
    return end


@njit(nogil=True, cache=True, _nrt=False)
def note_seen(arb, s, now_ns, max_request_msgs, counters):
    """Everything below s was sent (a message s arrived, or a heartbeat announced s as the
    next): holes open for [highest seen + 1, s)."""
    st = arb.state
    hi = st[S_HI]
    if s - 1 <= hi:
        return
    first = max(hi + 1, st[S_NEXT])
    st[S_HI] = s - 1
    open_holes(arb, first, s, now_ns, max_request_msgs, counters, True)


@njit(nogil=True, cache=True, _nrt=False)
def hole_asked(arb, s):
    """True when s lies in a hole already requested from the retransmission server."""
    st, holes = arb.state, arb.holes
    for h in range(st[S_N_HOLES]):
        if holes[h, H_TRIES] > 0 and holes[h, H_FIRST] <= s < holes[h, H_FIRST] + holes[h, H_COUNT]:
            return True
    return False


@njit(nogil=True, _nrt=False)
def accept_message(arb, src, s, p, o, ln, recv_ns, now_ns, max_request_msgs, counters, sink):
    """Arbitrate one message s = p[o:o+ln] from src (bounds checked by the caller)."""
    st, params, rb_seq = arb.state, arb.params, arb.rb_seq
    cap = params[P_CAPACITY]
    nxt = st[S_NEXT]
    if s < nxt or rb_seq[s % cap] == s:
        counters[_DUP_SLOT[src]] += 1
        return
    if src == SRC_R and not hole_asked(arb, s):
        counters[C.RETRANS_UNASKED] += 1
        return
    if s - nxt >= cap:
        note_seen(arb, s, now_ns, max_request_msgs, counters)
        advance_to(arb, s - cap + 1, now_ns, counters, True, sink)
        nxt = st[S_NEXT]   # the window may have moved up to s itself
    if s == nxt:
        _stage_msg(arb, src, s, p, o, ln, recv_ns, counters, sink)
        st[S_NEXT] = s + 1
        if st[S_HI] < s:
            st[S_HI] = s
        drain(arb, counters, sink)
        return
    if ln > params[P_SLOT_BYTES]:
        counters[C.REORDER_OVERFLOW] += 1   # cannot be held: it stays a hole
        note_seen(arb, s + 1, now_ns, max_request_msgs, counters)
        return
    note_seen(arb, s, now_ns, max_request_msgs, counters)
    k = s % cap
    rb_seq[k] = s
    arb.rb_len[k] = ln
    arb.rb_src[k] = src
    arb.rb_recv[k] = recv_ns
    rb_data = arb.rb_data
    for i in range(ln):
        rb_data[k, i] = p[o + i]
    if st[S_HI] < s:
        st[S_HI] = s


@njit(nogil=True, _nrt=False)
def session_reset(arb, seq, now_ns, counters, sink):
    """A confirmed jump to seq: deliver what is held, give up what is missing below the
    highest number seen, one reset gap up to seq, then number from seq."""
    st = arb.state
    counters[C.SEQ_RESETS] += 1
    advance_to(arb, st[S_HI] + 1, now_ns, counters, False, sink)
    if seq > st[S_NEXT]:
        stage_gap(arb, st[S_NEXT], seq - st[S_NEXT], now_ns, GAP_AUX_RESET, sink)
    st[S_NEXT] = seq
    st[S_HI] = seq - 1
    st[S_N_HOLES] = 0
    st[S_UNTRACKED_FIRST] = 0
    st[S_UNTRACKED_END] = 0


@njit(nogil=True, inline="always", _nrt=False)
def _far_ahead(arb, src, seq, count):
    """The gap-window rule for a line packet; True: drop it (the caller counts it). A run
    that is now confirmed returns False with the suspect state cleared."""
    st, params = arb.state, arb.params
    window = params[P_MAX_GAP]
    known = max(st[S_HI], st[S_NEXT] - 1)    # the highest number the feed has shown
    if window <= 0 or seq - known - 1 <= window:
        st[S_SUSPECT_RUN + src] = 0   # the line is in step: a suspect run must be unbroken
        return False
    run = st[S_SUSPECT_RUN + src]
    if run > 0 and seq == st[S_SUSPECT_NEXT + src]:
        run += 1
    else:
        run = 1
    st[S_SUSPECT_NEXT + src] = seq + (0 if count == M.HEARTBEAT_COUNT or
                                      count == M.END_OF_SESSION_COUNT else count)
    if run < params[P_RESET_PACKETS]:
        st[S_SUSPECT_RUN + src] = run
        return True
    st[S_SUSPECT_RUN + SRC_A] = 0
    st[S_SUSPECT_RUN + SRC_B] = 0
    return False


@njit(nogil=True, _nrt=False)
def accept_packet(arb, src, p, n_bytes, recv_ns, now_ns, max_request_msgs, counters, sink):
    """One MoldUDP64 packet p[0:n_bytes] from a line (SRC_A/B) or the server (SRC_R)."""
    st, session = arb.state, arb.session
    line = src != SRC_R
    if n_bytes < _HDR or n_bytes > p.shape[0]:
        counters[C.MALFORMED_PACKETS if line else C.RETRANS_TRUNCATED] += 1
        return 0
    if st[S_SESSION_SET] == 0 and line:
        for i in range(_SESS):
            session[i] = p[i]
        st[S_SESSION_SET] = 1
    same = st[S_SESSION_SET] != 0
    for i in range(_SESS):
        if session[i] != p[i]:
            same = False
    if not same:
        counters[C.WRONG_SESSION if line else C.RETRANS_WRONG_SESSION] += 1
        return 0
    seq = load_be64(p, M.SEQ_OFFSET)
    count = load_be16(p, M.COUNT_OFFSET)
    if seq < 1 or seq > MAX_SEQ:
        counters[C.MALFORMED_PACKETS if line else C.RETRANS_TRUNCATED] += 1
        return 0
    if st[S_NEXT] == 0:
        st[S_NEXT] = seq
        st[S_HI] = seq - 1
    if line:
        if _far_ahead(arb, src, seq, count):
            counters[C.SEQ_SUSPECT] += 1   # not believed on one packet's word (see above)
            return 0
        if arb.params[P_MAX_GAP] > 0 and seq - max(st[S_HI], st[S_NEXT] - 1) - 1 > arb.params[P_MAX_GAP]:
            session_reset(arb, seq, now_ns, counters, sink)
        st[S_LAST_RX_A if src == SRC_A else S_LAST_RX_B] = now_ns
        st[S_STALE] = 0
    if count == M.HEARTBEAT_COUNT or count == M.END_OF_SESSION_COUNT:
        if line:
            if count == M.HEARTBEAT_COUNT:
                counters[C.HEARTBEATS] += 1
            else:
                counters[C.END_OF_SESSION] += 1
                st[S_ENDED] = 1
            note_seen(arb, seq, now_ns, max_request_msgs, counters)   # seq = the next to be sent
        return 1
    pos = _HDR
    for j in range(count):
        if pos + 2 > n_bytes:
            counters[C.MALFORMED_PACKETS if line else C.RETRANS_TRUNCATED] += 1
            return 1
        ln = load_be16(p, pos)
        if pos + 2 + ln > n_bytes:
            counters[C.MALFORMED_PACKETS if line else C.RETRANS_TRUNCATED] += 1
            return 1
        accept_message(arb, src, seq + j, p, pos + 2, ln, recv_ns, now_ns, max_request_msgs,
                       counters, sink)
        pos += 2 + ln
    if pos != n_bytes:
        counters[C.MALFORMED_PACKETS if line else C.RETRANS_TRUNCATED] += 1
    return 1


@njit(nogil=True, _nrt=False)
def accept_frames(arb, src, payload, lengths, recv_ns, n, now_ns, max_request_msgs,
                  counters, sink):
    """Frames [0, n) of a backend's buffer; a length outside the slot is malformed."""
    slot_bytes = payload.shape[1]
    for i in range(min(n, payload.shape[0])):
        ln = lengths[i]
        if ln < 0 or ln > slot_bytes:
            counters[C.MALFORMED_PACKETS if src != SRC_R else C.RETRANS_TRUNCATED] += 1
            continue
        accept_packet(arb, src, payload[i], ln, recv_ns[i], now_ns, max_request_msgs,
                      counters, sink)
    return n
