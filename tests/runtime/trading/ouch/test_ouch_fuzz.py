"""A malicious venue cannot make the client read out of bounds: messages and the receive
buffer end right at a PROT_NONE guard page, so any read past them faults (numba does not
bounds-check); hypothesis feeds random and mutated messages and byte streams. Counters
must account for every sequenced message."""
from __future__ import annotations

import ctypes
import mmap
import socket
import struct
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickpath.bench.venue import ouch as V
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.ouch import codec
from tickpath.runtime.trading.ouch import layout as L
from tickpath.runtime.trading.ouch.session import OuchState, new_state, ouch_poll

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def guarded(nbytes: int):
    """A uint8 array of nbytes whose end touches a PROT_NONE page (kept alive with it)."""
    data_pages = (nbytes + PAGE - 1) // PAGE
    mm = mmap.mmap(-1, (data_pages + 1) * PAGE)
    raw = np.frombuffer(mm, np.uint8)
    guard = raw.ctypes.data + data_pages * PAGE
    assert _libc.mprotect(guard, PAGE, 0) == 0, ctypes.get_errno()
    start = data_pages * PAGE - nbytes
    return raw[start:start + nbytes], mm


_GUARD, _GUARD_MM = guarded(PAGE)
_SAMPLES = [V.encode_outbound("A", ts=1, uref=1, side=b"B", qty=1, symbol=b"A", price=1, tif=b"0",
                              display=b"Y", order_ref=1, capacity=b"A", iso=b"N", cross=b"N", state=b"L",
                              clordid=b"", appendage_len=0),
            V.encode_outbound("E", ts=1, uref=1, qty=1, price=1, liquidity=b"A", match=1, appendage_len=0),
            V.encode_outbound("U", ts=1, orig_uref=1, uref=2, side=b"B", qty=1, symbol=b"A", price=1,
                              tif=b"0", display=b"Y", order_ref=1, capacity=b"A", iso=b"N", cross=b"N",
                              state=b"L", clordid=b"", appendage_len=0),
            V.encode_outbound("C", ts=1, uref=1, qty=1, reason=b"U"),
            V.encode_outbound("J", ts=1, uref=1, reason=1, clordid=b""),
            struct.pack(">cQIQc14s", b"B", 1, 1, 1, b"E", b""), struct.pack(">cQIQcQ", b"T", 1, 1, 1, b"Y", 1)]


def decode_at_the_guard(msg: bytes):
    n = len(msg)
    _GUARD[PAGE - n:] = np.frombuffer(msg, np.uint8)
    out = np.zeros(1, R.RESPONSE_DTYPE)
    return codec.decode_into(_GUARD, PAGE - n, n, out, 0, 1, 0), out[0]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SAMPLES), st.integers(0, 80), st.binary(max_size=8), st.integers(0, 0xFFFF))
def test_decode_never_reads_past_the_message(base, cut, tail, applen):
    msg = bytearray(base[:cut] + tail)
    t = msg[0] if msg else 0
    ap = {ord("A"): L.A_APPLEN, ord("U"): L.RU_APPLEN, ord("E"): L.E_APPLEN}.get(t)
    if ap is not None and len(msg) >= ap + 2:
        msg[ap:ap + 2] = applen.to_bytes(2, "big")       # appendage lengths that lie
    res, r = decode_at_the_guard(bytes(msg))
    assert res in (codec.DEC_OK, codec.DEC_OVERSIZE, codec.DEC_TRUNCATED, codec.DEC_UNKNOWN)
    if res < 0:
        assert r["kind"] == R.RESP_UNDECODED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=PAGE))
def test_decode_random_bytes(msg):
    if msg:
        decode_at_the_guard(msg)


def guarded_state() -> tuple[OuchState, object]:
    base = new_state()
    rx, mm = guarded(L.RX_BYTES)
    return OuchState(base.ctl, base.counters, base.tx, rx), mm


_stream = st.lists(st.one_of(
    st.builds(lambda m: struct.pack(">H", len(m) + 1) + b"S" + m, st.sampled_from(_SAMPLES)),
    st.builds(lambda m, k: struct.pack(">H", len(m[:k]) + 1) + b"S" + m[:k], st.sampled_from(_SAMPLES),
              st.integers(0, 70)),
    st.builds(lambda b: struct.pack(">H", len(b) + 1) + b"S" + b, st.binary(max_size=100)),
    st.sampled_from([b"\x00\x01H", b"\x00\x01R", b"\x00\x03+hi", b"\x00\x02UX"]),
    st.binary(max_size=40)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(_stream)
def test_poll_survives_any_byte_stream(chunks):
    a, b = socket.socketpair()
    state, mm = guarded_state()
    try:
        a.setblocking(False)
        state.ctl[L.C_FD] = a.fileno()
        state.ctl[L.C_NEXT_SEQ] = 1
        state.ctl[L.C_TIMEOUT_NS] = 60 * 10**9
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        state.ctl[L.C_LAST_RX_NS] = state.ctl[L.C_LAST_TX_NS] = now
        state.ctl[L.C_STATE] = L.STATE_UP
        b.sendall(b"".join(chunks))
        b.close()
        resp = np.zeros(8, R.RESPONSE_DTYPE)
        out = []
        for _ in range(10_000):
            n = ouch_poll(state, resp, now)
            out.extend(resp[:n].copy())
            if state.ctl[L.C_STATE] == L.STATE_DOWN:
                break
        assert state.ctl[L.C_STATE] == L.STATE_DOWN and out and out[-1]["kind"] == R.RESP_SESSION_LOST
        k = state.counters
        assert k[L.K_SEQUENCED] == k[L.K_RESPONSES] == len(out) - 1
        seqs = [int(r["seq"]) for r in out[:-1]]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        a.close()
        del state
