"""The hot thread's side of the audit log: one jitted `audit_write_*` per record kind.

Each takes plain values, claims a slot in the SPSC ring (runtime/ipc/ring.py), writes the
whole 80-byte record in place and publishes it: no file, no lock, no allocation, no CRC
(the writer thread computes it: `drain_with_crc`). A full ring refuses the record: the
function returns False and counts it (ring DROPPED and ctl W_DROPPED) — trading without
an audit trail is not allowed, so the caller trips the kill switch on False.

`AuditWriter` (a NamedTuple numba types) holds the ring's header and slots and a small
ctl array; `AuditLog.writer` in log.py gives the one to pass around.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tickpath.runtime.ipc import ring_layout as RL
from tickpath.runtime.ipc.ring import available, publish, read_slot, release, try_claim
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.audit import layout as L


class AuditWriter(NamedTuple):
    hdr: np.ndarray     # the ring header (int64)
    data: np.ndarray    # the ring slots (AUDIT_DTYPE)
    ctl: np.ndarray     # int64[N_WCTL]: W_NEXT_SEQ, W_DROPPED


@njit(nogil=True, cache=True, inline="always")
def _put(aw, kind, code, t_ns, t2_ns, price, ref, seq2, uref, aux, qty, reason, locate, side, flag):
    seq = aw.ctl[L.W_NEXT_SEQ]
    aw.ctl[L.W_NEXT_SEQ] = seq + 1       # a refused record still takes its number: a visible gap
    slot = try_claim(aw.hdr)
    if slot < 0:
        aw.hdr[RL.DROPPED] += 1
        aw.ctl[L.W_DROPPED] += 1
        return False
    r = aw.data[slot]
    r.seq = seq
    r.t_ns = t_ns
    r.t2_ns = t2_ns
    r.price = price
    r.ref = ref
    r.seq2 = seq2
    r.uref = uref
    r.aux = aux
    r.qty = qty
    r.reason = reason
    r.locate = locate
    r.kind = kind
    r.code = code
    r.side = side
    r.flag = flag
    for k in range(8):
        r.pad[k] = 0
    r.crc = 0
    publish(aw.hdr, 1)
    return True


@njit(nogil=True, cache=True, _nrt=False)
def audit_write_decision(aw, decision_ns, trigger_recv_ns, trigger_seq, intent_kind, uref, locate,
                         side, qty, price, tif):
    """The strategy's intent (INTENT_* kind) and what triggered it."""
    return _put(aw, L.KIND_DECISION, intent_kind, decision_ns, trigger_recv_ns, price, 0,
                trigger_seq, uref, 0, qty, 0, locate, side, tif)


@njit(nogil=True, cache=True, _nrt=False)
def audit_write_risk(aw, now_ns, intent_kind, uref, locate, passed, reason):
    """The risk gate's verdict for an intent: passed (bool) and its reason code."""
    return _put(aw, L.KIND_RISK, L.VERDICT_PASS if passed else L.VERDICT_REJECT, now_ns, 0, 0, 0,
                0, uref, 0, 0, reason, locate, 0, intent_kind)


@njit(nogil=True, cache=True, _nrt=False)
def audit_write_sent(aw, sent_ns, trigger_recv_ns, intent_kind, uref, orig_uref, locate, side, qty,
                     price, tif):
    """The order left: sent_ns = right after send() returned (OUCH ctl C_SENT_NS)."""
    return _put(aw, L.KIND_SENT, intent_kind, sent_ns, trigger_recv_ns, price, 0, 0, uref,
                orig_uref, qty, 0, locate, side, tif)


@njit(nogil=True, cache=True, _nrt=False)
def audit_write_response(aw, kind, recv_ns, venue_ts, seq, uref, orig_uref, qty, price, ref,
                         side, reason, flag, locate):
    """A venue response (RESP_* kind) with its venue timestamp; flag = state (A/U),
    liquidity (E) or reason_code (C/S/B/...)."""
    return _put(aw, L.KIND_RESPONSE, kind, recv_ns, venue_ts, price, ref, seq, uref, orig_uref,
                qty, reason, locate, side, flag)


@njit(nogil=True, cache=True, _nrt=False)
def audit_write_response_record(aw, responses, i, locate):
    """audit_write_response from responses[i] (RESPONSE_DTYPE), picking the flag by kind."""
    r = responses[i]
    k = r.kind
    if k == R.RESP_ACCEPTED or k == R.RESP_REPLACED:
        flag = r.state
    elif k == R.RESP_EXECUTED:
        flag = r.liquidity
    else:
        flag = r.reason_code
    return audit_write_response(aw, k, r.recv_ns, r.venue_ts, r.seq, r.uref, r.orig_uref, r.qty,
                                r.price, r.ref, r.side, r.reason, flag, locate)


# -- the writer thread's side ---------------------------------------------------------------

def _crc_table() -> np.ndarray:
    t = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t[i] = c
    return t


CRC_TABLE = _crc_table()


@njit(nogil=True, cache=True, _nrt=False)
def crc32(buf, start, n, table):
    """zlib's CRC-32 of buf[start:start+n] (the caller checked the bounds)."""
    c = np.uint32(0xFFFFFFFF)
    for k in range(start, start + n):
        c = table[(c ^ buf[k]) & np.uint32(0xFF)] ^ (c >> np.uint32(8))
    return c ^ np.uint32(0xFFFFFFFF)


@njit(nogil=True, cache=True, _nrt=False)
def drain_with_crc(hdr, data, out, out_bytes, table):
    """Move up to len(out) published records into out, each with its CRC; returns how many.
    out_bytes is out viewed as uint8 (len(out) * RECORD_BYTES)."""
    n = min(available(hdr), out.shape[0])
    for k in range(n):
        out[k] = data[read_slot(hdr, k)]
    release(hdr, n)
    for k in range(n):
        out[k].crc = crc32(out_bytes, k * L.RECORD_BYTES, L.CRC_BYTES, table)
    return n
