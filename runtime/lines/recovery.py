"""MoldUDP64 gap recovery: ages the arbiter's holes, asks a retransmission server for what
is missing on both lines, and gives up explicitly at the deadline.

Request packet (NASDAQ MoldUDP64 v1.00, "request packet"): session (10 bytes ASCII),
sequence number (u64 BE, the first message wanted), message count (u16 BE). The server
answers with ordinary downstream packets to the requesting socket; the arbiter takes them
as source SRC_R (runtime/arbiter.py checks session, bounds and that they were asked for).

Per hole, once per duty cycle (`maintain`, numba, allocation-free):
  detected ── wait_ns ──▶ declared missing on both lines (ARB_MISSING_BOTH), request sent
  (RETRANS_REQUESTS) if fewer than max_outstanding are in flight ── timeout_ns ──▶ re-sent
  (RETRANS_RETRIES) up to `retries` times ── deadline_ns after detection, once it is the
  oldest thing missing ──▶ delivered as a gap event (UNRECOVERABLE, UNRECOVERABLE_GAPS).
Without a server (enabled=0) holes go straight from declared to the deadline.
A request never truncates its count: a range longer than max_request_msgs (<= 65534, the
u16 count field less the end-of-session value) goes out as several requests. The server's
answers arrive on a socket connected to the server's address and port (runtime/lines/
runner.py), so the kernel drops datagrams from anyone else before the arbiter sees them.
Rows of a full hole table free up here; the arbiter's untracked range is then reopened as
holes, and at its deadline, once it is the oldest thing missing, given up like a hole.
Also here: the heartbeat timeout — both lines silent for stale_ns counts STALE_FEED once per
silence and sets the arbiter's stale flag until a packet arrives.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.lines.arbiter import (
    H_COUNT,
    H_DETECTED_NS,
    H_FIRST,
    H_SENT_NS,
    H_TRIES,
    P_CAPACITY,
    P_STALE_NS,
    P_WAIT_NS,
    S_UNTRACKED_END,
    S_UNTRACKED_FIRST,
    S_UNTRACKED_NS,
    S_LAST_RX_A,
    S_LAST_RX_B,
    S_N_HOLES,
    S_NEXT,
    S_STALE,
    S_START_NS,
    advance_to,
    open_holes,
)
from tickpath.runtime.core.errors import ConfigError
from tickpath.runtime.feed.moldudp64 import MAX_MESSAGES_PER_PACKET, SESSION_BYTES
from tickpath.runtime.sys.libc import libc_sendto

REQUEST_BYTES = 20
H_DECLARED = 5        # hole column: 1 once counted missing on both lines

# params slots (int64)
R_ENABLED, R_FD, R_TIMEOUT_NS, R_RETRIES, R_DEADLINE_NS, R_MAX_OUTSTANDING, R_MAX_REQUEST_MSGS = range(7)
N_RPARAMS = 8
MSG_DONTWAIT = 0x40


class Recovery(NamedTuple):
    """The retransmission client's arrays (numba types the tuple)."""
    params: np.ndarray    # int64[N_RPARAMS], R_* slots
    req: np.ndarray       # uint8[REQUEST_BYTES]: the request being built
    addr: np.ndarray      # uint8[16]: the server's struct sockaddr_in


def make_recovery(server: tuple[str, int] | None = None, fd: int = -1, timeout_ns: int = 20_000_000,
                  retries: int = 3, deadline_ns: int = 250_000_000, max_outstanding: int = 16,
                  max_request_msgs: int = 1000, wait_ns: int = 0):
    """The Recovery state for the loop. server=None: no retransmission, holes wait for the
    deadline only."""
    checks = (("timeout_ns", timeout_ns, 100_000, 60_000_000_000), ("retries", retries, 0, 100),
              ("deadline_ns", deadline_ns, 1_000_000, 3_600_000_000_000),
              ("max_outstanding", max_outstanding, 1, 4096),
              ("max_request_msgs", max_request_msgs, 1, MAX_MESSAGES_PER_PACKET))
    for name, v, lo, hi in checks:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ConfigError("recovery setting out of range", key=f"recovery.{name}", value=v,
                              allowed=f"{lo}..{hi}")
    if deadline_ns < wait_ns:
        raise ConfigError("the recovery deadline must not be shorter than the arbitration wait",
                          deadline_ns=deadline_ns, wait_ns=wait_ns)
    params = np.zeros(N_RPARAMS, dtype=np.int64)
    params[[R_TIMEOUT_NS, R_RETRIES, R_DEADLINE_NS, R_MAX_OUTSTANDING, R_MAX_REQUEST_MSGS]] = (
        timeout_ns, retries, deadline_ns, max_outstanding, max_request_msgs)
    addr = np.zeros(16, dtype=np.uint8)
    if server is not None:
        host, port = server
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise ConfigError("retransmission server must be an IPv4 address",
                              key="recovery.server", address=host) from exc
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535 or fd < 0:
            raise ConfigError("retransmission server port or socket invalid", key="recovery.server",
                              port=port, fd=fd)
        addr[:] = np.frombuffer(socket.AF_INET.to_bytes(2, "little") + int(port).to_bytes(2, "big")
                                + ip.packed + b"\0" * 8, dtype=np.uint8)
        params[R_ENABLED] = 1
        params[R_FD] = fd
    return Recovery(params, np.zeros(REQUEST_BYTES, dtype=np.uint8), addr)


@njit(nogil=True, cache=True)
def send_request(rec, session, first, count):
    """Request [first, first+count) in packets of at most R_MAX_REQUEST_MSGS (never a
    truncated count); returns the packets sent (a failed send is retried at the timeout)."""
    params, req = rec.params, rec.req
    per = max(min(params[R_MAX_REQUEST_MSGS], MAX_MESSAGES_PER_PACKET), 1)
    sent = 0
    end = first + count
    while first < end:
        n = min(end - first, per)
        for i in range(SESSION_BYTES):
            req[i] = session[i]
        for i in range(8):
            req[10 + i] = (first >> (56 - 8 * i)) & 0xFF
        req[18] = (n >> 8) & 0xFF
        req[19] = n & 0xFF
        libc_sendto(params[R_FD], req.ctypes.data, REQUEST_BYTES, MSG_DONTWAIT,
                    rec.addr.ctypes.data, 16)
        sent += 1
        first += n
    return sent


# not cached: it takes a sink (arbiter.py says why)
@njit(nogil=True)
def maintain(arb, rec, now_ns, counters, sink):
    """Stale-feed check and one pass over the holes; returns the actions taken."""
    st, params, session, rb_seq, holes = arb.state, arb.params, arb.session, arb.rb_seq, arb.holes
    rp = rec.params
    if st[S_START_NS] == 0:
        st[S_START_NS] = now_ns
    last = max(st[S_LAST_RX_A], st[S_LAST_RX_B], st[S_START_NS])
    if st[S_STALE] == 0 and now_ns - last > params[P_STALE_NS]:
        counters[C.STALE_FEED] += 1   # both lines silent past the heartbeat timeout
        st[S_STALE] = 1
    nh = st[S_N_HOLES]
    if nh == 0 and st[S_UNTRACKED_END] == 0:
        return 0
    cap = params[P_CAPACITY]
    enabled = rp[R_ENABLED] != 0
    outstanding = 0
    for h in range(nh):
        if holes[h, H_TRIES] > 0:
            outstanding += 1
    work = 0
    w = 0
    for h in range(nh):
        first = max(holes[h, H_FIRST], st[S_NEXT])
        end = holes[h, H_FIRST] + holes[h, H_COUNT]
        while first < end and rb_seq[first % cap] == first:   # filled from the front
            first += 1
        while end > first and rb_seq[(end - 1) % cap] == end - 1:   # and from the back
            end -= 1
        if end <= first:
            if holes[h, H_TRIES] > 0:
                outstanding -= 1
            continue   # filled (by a line or the server): the hole closes
        age = now_ns - holes[h, H_DETECTED_NS]
        if holes[h, H_DECLARED] == 0 and age >= params[P_WAIT_NS]:
            holes[h, H_DECLARED] = 1
            counters[C.ARB_MISSING_BOTH] += end - first
        if enabled and holes[h, H_DECLARED] != 0:
            if holes[h, H_TRIES] == 0 and outstanding < rp[R_MAX_OUTSTANDING]:
                counters[C.RETRANS_REQUESTS] += send_request(rec, session, first, end - first)
                holes[h, H_SENT_NS] = now_ns
                holes[h, H_TRIES] = 1
                outstanding += 1
                work += 1
            elif (holes[h, H_TRIES] > 0 and holes[h, H_TRIES] <= rp[R_RETRIES]
                  and now_ns - holes[h, H_SENT_NS] >= rp[R_TIMEOUT_NS]):
                counters[C.RETRANS_RETRIES] += send_request(rec, session, first, end - first)
                holes[h, H_SENT_NS] = now_ns
                holes[h, H_TRIES] += 1
                work += 1
        if age >= rp[R_DEADLINE_NS] and first == st[S_NEXT]:
            if holes[h, H_DECLARED] == 0:
                counters[C.ARB_MISSING_BOTH] += end - first
            if holes[h, H_TRIES] > 0:
                outstanding -= 1
            advance_to(arb, end, now_ns, counters, False, sink)   # the explicit gap
            work += 1
            continue
        for c in range(holes.shape[1]):
            holes[w, c] = holes[h, c]
        holes[w, H_FIRST] = first
        holes[w, H_COUNT] = end - first
        w += 1
    st[S_N_HOLES] = w
    if st[S_UNTRACKED_END] != 0:
        work += _untracked(arb, rp, now_ns, counters, sink)
    return work


@njit(nogil=True)
def _untracked(arb, rp, now_ns, counters, sink):
    """The range a full hole table could not take: given up at its deadline once it is the
    oldest thing missing, else reopened as holes while rows are free."""
    st = arb.state
    first = max(st[S_UNTRACKED_FIRST], st[S_NEXT])
    end = st[S_UNTRACKED_END]
    if first >= end:
        st[S_UNTRACKED_END] = 0
        return 0
    if now_ns - st[S_UNTRACKED_NS] >= rp[R_DEADLINE_NS] and first == st[S_NEXT]:
        counters[C.ARB_MISSING_BOTH] += end - first
        st[S_UNTRACKED_END] = 0
        advance_to(arb, end, now_ns, counters, False, sink)   # held ones go out
        return 1
    st[S_UNTRACKED_END] = 0   # what does not fit goes back into the range
    open_holes(arb, first, end, st[S_UNTRACKED_NS], rp[R_MAX_REQUEST_MSGS], counters, False)
    return 0
