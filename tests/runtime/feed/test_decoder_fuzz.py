"""Hypothesis fuzzing of the numba decoder: random bytes and damaged valid packets never
crash it, never write outside events[ev_start:return], and keep the counters consistent
(decoder.py's identities); valid messages before a damaged one still decode unchanged;
and, event for event and counter for counter, it agrees with a plain-Python model of the
same rules written from the spec (struct parsing, event.py's field mapping)."""
from __future__ import annotations

import collections
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tickpath.bench.load import market
from tickpath.runtime.core import counters as C
from tickpath.runtime.feed import itch
from tickpath.runtime.feed import moldudp64 as mold
from tickpath.runtime.feed.decoder import (
    DEFAULT_MAX_GAP_MSGS,
    DEFAULT_RESET_PACKETS,
    GAP_AUX_RESET,
    MOLD_NEXT_SEQ,
    decode_packet,
    new_mold_state,
)
from tickpath.runtime.core.event import (
    EVENT_VERSION,
    FLAG_ATTRIBUTED,
    FLAG_CROSS,
    FLAG_GAP,
    empty_events,
)
from tickpath.runtime.feed.itch import DECODED_TYPES

SESSION = b"FUZZ000001"
SENTINEL = 0x5A5A5A5A5A5A5A5A
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_DECODED = {ord(t) for t in DECODED_TYPES}


@pytest.fixture(scope="module")
def packets():
    mkt = market.generate(21, 3_000, 8)
    pk = market.pack_mold(mkt, SESSION, max_payload_bytes=400)
    return [pk.packet(k) for k in range(pk.n_packets)]


def run_stream(pkts, capacity=64, next_seq=1, session=SESSION):
    """Feed pkts in order, checking the per-call invariants; returns (counters, mold, evs)."""
    m, sess = new_mold_state(session=session, next_seq=next_seq)
    ctr = C.new_counters()
    events = empty_events(capacity)
    written = []
    seq_floor = m[MOLD_NEXT_SEQ]
    for i, p in enumerate(pkts):
        events["seq"] = SENTINEL
        start = min(i % 3, capacity)   # a few different start offsets
        n = decode_packet(np.frombuffer(p, dtype=np.uint8), 1000 + i, m, sess, events, start,
                          ctr)
        assert start <= n <= capacity
        assert np.all(events["seq"][:start] == SENTINEL)
        assert np.all(events["seq"][n:] == SENTINEL)
        out = events[start:n]
        assert np.all(out["version"] == EVENT_VERSION)
        assert np.all(out["ts_recv"] == 1000 + i)
        for e in out:
            if e["msg_type"] == 0:
                assert e["flags"] == FLAG_GAP and e["shares"] > 0
            else:
                assert e["msg_type"] in _DECODED and not e["flags"] & FLAG_GAP
        assert m[MOLD_NEXT_SEQ] >= seq_floor            # never goes backwards
        seq_floor = m[MOLD_NEXT_SEQ]
        written.append(out.copy())
    assert ctr[C.PACKETS] == len(pkts)
    return ctr, m, written


def assert_identities(ctr, m, first_seq=1):
    c = ctr
    assert c[C.MESSAGES] == (c[C.DUPLICATES] + c[C.MALFORMED_MESSAGES] + c[C.UNKNOWN_TYPES]
                             + c[C.SKIPPED_TYPES] + c[C.EVENTS] + c[C.EVENTS_DROPPED]
                             - c[C.GAPS])
    overruns = c[C.GAP_MESSAGES] + c[C.MESSAGES] - c[C.DUPLICATES] - (m[MOLD_NEXT_SEQ]
                                                                       - first_seq)
    assert 0 <= overruns <= min(c[C.MALFORMED_PACKETS], c[C.MALFORMED_MESSAGES])
    assert c[C.GAP_MESSAGES] >= c[C.GAPS]
    assert np.all(c >= 0)


# ---- random bytes ----

header_then_noise = st.builds(
    lambda seq, count, body: SESSION + seq.to_bytes(8, "big") + count.to_bytes(2, "big") + body,
    st.integers(0, 40) | st.integers(0, 2 ** 64 - 1),
    st.sampled_from([0, 1, 2, 3, 7, 0xFFFF]) | st.integers(0, 0xFFFF),
    st.binary(max_size=200),
)
any_packet = st.binary(max_size=120) | header_then_noise


@FUZZ
@given(st.lists(any_packet, max_size=12), st.integers(1, 64), st.sampled_from([None, SESSION]))
def test_random_bytes_never_crash_and_counters_hold(pkts, capacity, session):
    ctr, m, _ = run_stream(pkts, capacity=capacity, session=session)
    assert_identities(ctr, m)


# ---- damaged valid packets ----

def _msg_bounds(pkt: bytes):
    """(start, end) of each length-prefixed message of a valid packet."""
    out, o = [], mold.HEADER_BYTES
    while o < len(pkt):
        ln = int.from_bytes(pkt[o:o + 2], "big")
        out.append((o, o + 2 + ln))
        o += 2 + ln
    return out


@st.composite
def damage(draw, pkt: bytes):
    """A damaged copy of pkt and the first byte position the damage touches."""
    kind = draw(st.sampled_from(["flip", "truncate", "length", "count", "zero_len"]))
    b = bytearray(pkt)
    bounds = _msg_bounds(pkt)
    if kind == "flip":
        positions = draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=4))
        for p in positions:
            b[p] ^= 1 << draw(st.integers(0, 7))
        return bytes(b), min(positions)
    if kind == "truncate":
        cut = draw(st.integers(0, len(b) - 1))
        return bytes(b[:cut]), cut
    if kind == "count":
        b[18:20] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        return bytes(b), 18
    start, _ = bounds[draw(st.integers(0, len(bounds) - 1))]
    new_len = 0 if kind == "zero_len" else draw(st.integers(0, 0xFFFF))
    b[start:start + 2] = new_len.to_bytes(2, "big")
    return bytes(b), start


@FUZZ
@given(st.data())
def test_damaged_packet_keeps_earlier_messages(packets, data):
    k = data.draw(st.integers(0, len(packets) - 1))
    pkt = packets[k]
    bad, first_bad = data.draw(damage(pkt))
    seq = mold.parse_header(pkt)[1]
    _, _, (ref,) = run_stream([pkt], capacity=128, next_seq=seq)
    ctr, m, (got,) = run_stream([bad], capacity=128, next_seq=seq)
    assert_identities(ctr, m, first_seq=seq)
    if first_bad >= mold.HEADER_BYTES:
        intact = sum(1 for s, e in _msg_bounds(pkt) if e <= first_bad)
        n_ok = int(np.sum(ref["seq"] < seq + intact))
        assert len(got) >= n_ok
        assert got[:n_ok].tobytes() == ref[:n_ok].tobytes()


@FUZZ
@given(st.data())
def test_stream_of_damaged_reordered_and_repeated_packets(packets, data):
    idx = data.draw(st.lists(st.integers(0, len(packets) - 1), min_size=1, max_size=15))
    stream = []
    for k in idx:
        p = packets[k]
        if data.draw(st.booleans()):
            p, _ = data.draw(damage(p))
        stream.append(p)
    if data.draw(st.booleans()):
        stream.append(mold.mold_heartbeat(SESSION, data.draw(st.integers(1, 5_000))))
    capacity = data.draw(st.integers(1, 128))
    ctr, m, _ = run_stream(stream, capacity=capacity)
    assert_identities(ctr, m)


def test_undamaged_stream_in_order_is_clean(packets):
    """The control for the fuzz tests: the same packets, pristine, decode with no complaint."""
    ctr, m, _ = run_stream(packets, capacity=256)
    clean = {k: v for k, v in C.as_dict(ctr).items() if v}
    assert set(clean) == {"packets", "messages", "events"}
    assert ctr[C.EVENTS] == ctr[C.MESSAGES] == 3_000
    assert_identities(ctr, m)


# ---- the numba decoder against a plain-Python model of the same rules ----

def _model_event(msg: bytes, seq: int, recv_ns: int):
    """The event record for one well-formed decoded-type message, from struct parsing and
    event.py's field mapping (not from the decoder's offsets)."""
    t = chr(msg[0])
    _, locate, tracking, ts = struct.unpack_from(">cHH6s", msg, 0)
    names = [n for n, _ in itch.BODY_FIELDS[t]]
    fmt = ">" + "".join(c for _, c in itch.BODY_FIELDS[t])
    f = dict(zip(names, struct.unpack_from(fmt, msg, itch.HEADER_BYTES)))
    ch = {k: v[0] for k, v in f.items() if isinstance(v, bytes) and len(v) == 1}
    ref2 = (f.get("new_order_ref") if t == "U" else f.get("match") if t in "ECPQB"
            else int.from_bytes(f["stock"], "little") if t == "R" else 0)
    aux = {"S": "event_code", "H": "trading_state", "Q": "cross_type", "C": "printable"}.get(t)
    flags = FLAG_ATTRIBUTED if t == "F" else FLAG_CROSS if t == "Q" else 0
    return (seq, int.from_bytes(ts, "big"), recv_ns,
            f["order_ref"] if t in "AFECXDU" else 0, ref2,
            f["shares"] if t in "AFECXUPQ" else 0, f["price"] if t in "AFCUPQ" else 0,
            locate, tracking, msg[0], ch["side"] if t in "AFP" else 0, EVENT_VERSION,
            ch[aux] if aux else 0, flags)


def model_packet(p: bytes, st: dict, ctr: collections.Counter, capacity: int, recv_ns: int):
    out = []

    def emit(rec):
        if len(out) < capacity:
            out.append(rec)
            ctr["events"] += 1
        else:
            ctr["events_dropped"] += 1

    def gap(first, n, aux=0):
        ctr["gaps"] += 1
        ctr["gap_messages"] += n
        emit((first, 0, recv_ns, 0, 0, n, 0, 0, 0, 0, 0, EVENT_VERSION, aux, FLAG_GAP))

    ctr["packets"] += 1
    if len(p) < 20:
        ctr["malformed_packets"] += 1
        return out
    if st["session"] is None:
        st["session"] = p[:10]
    elif p[:10] != st["session"]:
        ctr["wrong_session"] += 1
        return out
    seq, count = int.from_bytes(p[10:18], "big"), int.from_bytes(p[18:20], "big")
    if seq >= 1 << 62:
        ctr["malformed_packets"] += 1
        return out
    if st["next"] == 0:
        st["next"] = seq
    # the gap window: a far-ahead packet is believed only as the last of a consistent run
    window = st.get("window", DEFAULT_MAX_GAP_MSGS)
    if window and seq - st["next"] > window:
        run = st.get("run", 0) + 1 if st.get("run") and seq == st.get("susp_next") else 1
        st["susp_next"] = seq + (0 if count in (0, 0xFFFF) else count)
        if run < DEFAULT_RESET_PACKETS:
            st["run"] = run
            ctr["seq_suspect"] += 1
            return out
        st["run"] = 0
        ctr["seq_resets"] += 1
        gap(st["next"], seq - st["next"], GAP_AUX_RESET)
        st["next"] = seq
    else:
        st["run"] = 0
    if count in (0, 0xFFFF):
        ctr["end_of_session" if count else "heartbeats"] += 1
        if seq > st["next"]:
            gap(st["next"], seq - st["next"])
            st["next"] = seq
        if len(p) != 20:
            ctr["malformed_packets"] += 1
        return out
    if seq > st["next"]:
        gap(st["next"], seq - st["next"])
        st["next"] = seq
    pos, cur, whole = 20, seq, True
    for _ in range(count):
        if pos + 2 > len(p):
            whole = False
            break
        ln = int.from_bytes(p[pos:pos + 2], "big")
        ctr["messages"] += 1
        if pos + 2 + ln > len(p):
            ctr["malformed_messages"] += 1
            whole = False
            break
        m = p[pos + 2:pos + 2 + ln]
        t = chr(m[0]) if m else ""
        if cur < st["next"]:
            ctr["duplicates"] += 1
        elif ln == 0:
            ctr["malformed_messages"] += 1
        elif t not in itch.MESSAGE_BYTES:
            ctr["unknown_types"] += 1
        elif ln < itch.MESSAGE_BYTES[t]:
            ctr["malformed_messages"] += 1
        elif t not in DECODED_TYPES:
            ctr["skipped_types"] += 1
        else:
            emit(_model_event(m, cur, recv_ns))
        pos += 2 + ln
        cur += 1
    if not whole or pos != len(p):
        ctr["malformed_packets"] += 1
    st["next"] = max(st["next"], cur)
    return out


@FUZZ
@given(st.data())
def test_decoder_equals_python_model(packets, data):
    stream = []
    for _ in range(data.draw(st.integers(1, 12))):
        choice = data.draw(st.integers(0, 9))
        if choice <= 5:
            p = packets[data.draw(st.integers(0, len(packets) - 1))]
            stream.append(data.draw(damage(p))[0] if choice >= 3 else p)
        elif choice == 6:
            stream.append(mold.mold_heartbeat(SESSION, data.draw(st.integers(1, 3_500))))
        elif choice == 7:
            stream.append(mold.mold_end_of_session(SESSION, data.draw(st.integers(1, 3_500))))
        else:
            stream.append(data.draw(any_packet))
    capacity = data.draw(st.integers(1, 80))
    next_seq = data.draw(st.sampled_from([0, 1, 100]))
    session = data.draw(st.sampled_from([None, SESSION]))
    window = data.draw(st.sampled_from([0, 40, DEFAULT_MAX_GAP_MSGS]))   # small: resets happen
    m, sess = new_mold_state(session=session, next_seq=next_seq, max_gap_msgs=window)
    ctr = C.new_counters()
    events = empty_events(capacity)
    model_state = {"next": next_seq, "session": session, "window": window}
    model_ctr = collections.Counter()
    for i, p in enumerate(stream):
        n = decode_packet(np.frombuffer(p, dtype=np.uint8), 7 * i, m, sess, events, 0, ctr)
        want = model_packet(p, model_state, model_ctr, capacity, 7 * i)
        assert events[:n].tolist() == want
    assert {k: v for k, v in C.as_dict(ctr).items() if v} == +model_ctr
    assert m[MOLD_NEXT_SEQ] == model_state["next"]
