"""The OUCH session against a scripted fake venue socket: deterministic, one bad input of
issue 14 per test (truncated response, unknown type, unknown UserRefNum, out of sequence,
connection closed mid-message, partial writes), plus the login outcomes, heartbeats and
timeouts (driven by the now_ns the caller passes), the state file and a full response
array. The fake's side is plain sockets + struct, written from the spec."""
from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np
import pytest
from numba import njit

from tickpath.bench.venue import ouch as V
from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.ouch import layout as L
from tickpath.runtime.trading.ouch.client import (OuchClient, OuchConnectError, OuchLoginError,
                                                 OuchTimeout, read_state_file)
from tickpath.runtime.trading.ouch.session import (ouch_cancel, ouch_connected, ouch_enter,
                                                  ouch_flush, ouch_modify, ouch_poll, ouch_replace,
                                                  ouch_send)

SYM = int.from_bytes(b"AAA     ", "little")


def now():
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def pkt(t: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">H", 1 + len(payload)) + t + payload


def seqd(msg: bytes) -> bytes:
    return pkt(b"S", msg)


def accepted(uref, qty=100, ts=1):
    return V.encode_outbound("A", ts=ts, uref=uref, side=b"B", qty=qty, symbol=b"AAA", price=1_000_000,
                             tif=b"0", display=b"Y", order_ref=uref + 1000, capacity=b"A", iso=b"N",
                             cross=b"N", state=b"L", clordid=b"", appendage_len=0)


def executed(uref, qty, match=1):
    return V.encode_outbound("E", ts=2, uref=uref, qty=qty, price=1_000_000, liquidity=b"A",
                             match=match, appendage_len=0)


class Fake:
    """One scripted venue connection: answers the login, then the test drives `conn`."""

    def __init__(self, answer: bytes | None = None, first_seq: int = 1, session=b"FAKE01"):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.port = self.lsock.getsockname()[1]
        self.answer = answer if answer is not None else \
            pkt(b"A", session.ljust(10) + str(first_seq).encode().rjust(20))
        self.login = None
        self.conn = None
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self):
        self.lsock.settimeout(10)
        try:
            c, _ = self.lsock.accept()
        except OSError:
            return
        c.settimeout(10)
        buf = b""
        while len(buf) < 2 + 1 + L.LOGIN_PAYLOAD:
            d = c.recv(4096)
            if not d:
                break
            buf += d
        self.login = buf
        if self.answer:
            c.sendall(self.answer)
        self.conn = c

    def client(self, **kw) -> OuchClient:
        cl = OuchClient("127.0.0.1", self.port, "TEST1", "pw", **kw).connect(5.0)
        self._t.join(5)
        return cl

    def read_packets(self, n, timeout=5.0):
        """n SoupBinTCP packets from the client as (type, payload)."""
        out, buf = [], b""
        deadline = time.monotonic() + timeout
        self.conn.settimeout(0.2)
        while len(out) < n and time.monotonic() < deadline:
            try:
                d = self.conn.recv(1 << 16)
            except socket.timeout:
                continue
            if not d:
                break
            buf += d
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack_from(">H", buf)[0]:
                ln = struct.unpack_from(">H", buf)[0]
                out.append((buf[2:3], buf[3:2 + ln]))
                buf = buf[2 + ln:]
        return out

    def close(self):
        for s in (self.conn, self.lsock):
            if s is not None:
                s.close()


@pytest.fixture
def fake():
    f = Fake()
    yield f
    f.close()


def poll_until(cl, want, cap=64, timeout=5.0, t_ns=None):
    """Poll until `want` records arrived (or the session is lost); returns them."""
    resp = np.zeros(cap, R.RESPONSE_DTYPE)
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        n = ouch_poll(cl.state, resp, now() if t_ns is None else t_ns)
        got.extend(resp[:n].copy())
        if n == 0:
            if not ouch_connected(cl.state) and cl.state.ctl[L.C_STATE] == L.STATE_DOWN:
                break
            time.sleep(0.002)
    return got


def test_login_packet_and_orders_on_the_wire(fake):
    cl = fake.client(session="", heartbeat_timeout_ms=4000)
    lp = fake.login
    assert lp[:3] == struct.pack(">H", 52) + b"L"
    assert lp[3:9] == b"TEST1 " and lp[9:19] == b"pw".ljust(10) and lp[19:29] == b" " * 10
    assert lp[29:49] == b"1".rjust(20) and lp[49:54] == b" 4000"
    t = now()
    assert ouch_enter(cl.state, 1, R.SIDE_BUY, 100, SYM, 1_000_000, R.TIF_DAY, 77, t) == L.OK_SENT
    sent = cl.state.ctl[L.C_SENT_NS]
    assert t <= sent <= now()
    assert ouch_replace(cl.state, 1, 2, 200, 1_000_100, R.TIF_IOC, t) == L.OK_SENT
    assert ouch_cancel(cl.state, 2, 50, t) == L.OK_SENT
    assert ouch_modify(cl.state, 2, R.SIDE_SELL, 40, t) == L.OK_SENT
    msgs = [V.decode_inbound(p) for t_, p in fake.read_packets(4) if t_ == b"U"]
    assert [m["type"] for m in msgs] == ["O", "U", "X", "M"]
    assert (msgs[0]["uref"], msgs[0]["qty"], msgs[0]["symbol"],
                                        msgs[0]["clordid"]) == (1, 100, b"AAA     ", b"00000000000077")
    assert (msgs[1]["orig_uref"], msgs[1]["uref"], msgs[1]["tif"]) == (2 - 1, 2, b"3")
    assert (msgs[2]["uref"], msgs[2]["qty"]) == (2, 50)
    assert (msgs[3]["side"], msgs[3]["qty"]) == (b"S", 40)
    s = cl.stats()
    assert (s["orders_sent"], s["replaces_sent"], s["cancels_sent"], s["modifies_sent"]) == (1, 1, 1, 1)
    assert ouch_enter(cl.state, 3, R.SIDE_BUY, 1, SYM, 1, R.TIF_DAY, 10 ** 14, t) == L.ERR_BAD_ARGUMENT
    cl.close()
    assert ouch_enter(cl.state, 3, R.SIDE_BUY, 1, SYM, 1, R.TIF_DAY, 1, t) == L.ERR_NOT_CONNECTED


def test_a_steps_orders_queue_and_leave_in_one_send(fake):
    """send_now=False queues (nothing leaves, no stamp); ouch_send sends the batch in order and
    stamps it as one order's send() would."""
    cl = fake.client(session="", heartbeat_timeout_ms=4000)
    t = now()
    before = cl.stats()["bytes_sent"]
    assert ouch_enter(cl.state, 1, R.SIDE_BUY, 100, SYM, 1_000_000, R.TIF_DAY, 77, t, False) == L.OK_QUEUED
    assert ouch_replace(cl.state, 1, 2, 200, 1_000_100, R.TIF_IOC, t, 78, False) == L.OK_QUEUED
    assert ouch_cancel(cl.state, 2, 50, t, False) == L.OK_QUEUED
    assert cl.stats()["bytes_sent"] == before and cl.state.ctl[L.C_TX_TAIL] > 0
    assert ouch_send(cl.state, t) == L.OK_SENT
    assert t <= cl.state.ctl[L.C_SEND_CALL_NS] <= cl.state.ctl[L.C_SENT_NS] <= now()
    assert cl.state.ctl[L.C_TX_TAIL] == 0
    msgs = [V.decode_inbound(p) for t_, p in fake.read_packets(3) if t_ == b"U"]
    assert [(m["type"], m["uref"]) for m in msgs] == [("O", 1), ("U", 2), ("X", 2)]
    assert msgs[1]["clordid"] == b"00000000000078"
    cl.close()
    assert ouch_send(cl.state, t) == L.ERR_NOT_CONNECTED


@njit(nogil=True)
def _send_intents(st, intents, symbols, now_ns):
    """As the trading core will: the contract records' own field types (u4 uref/qty, u1
    side/tif, i8 price, the event's u8 symbol) straight into the order functions."""
    out = 0
    for i in range(intents.shape[0]):
        it = intents[i]
        if it.kind == R.INTENT_NEW:
            r = ouch_enter(st, it.uref, it.side, it.qty, symbols[it.locate], it.price, it.tif,
                           it.trigger_seq, now_ns)
        elif it.kind == R.INTENT_REPLACE:
            r = ouch_replace(st, it.uref, it.uref + np.uint32(1), it.qty, it.price, it.tif, now_ns)
        else:
            r = ouch_cancel(st, it.uref, it.qty, now_ns)
        if r >= 0:
            out += 1
    return out


def test_order_functions_take_the_contract_record_types(fake):
    cl = fake.client()
    intents = R.new_intents(3)
    intents[0] = (1_000_000, 123, 0, 0, 1, 100, 1, R.INTENT_NEW, R.SIDE_BUY, R.TIF_IOC, [0] * 3)
    intents[1] = (1_000_100, 0, 0, 0, 1, 80, 1, R.INTENT_REPLACE, 0, R.TIF_DAY, [0] * 3)
    intents[2] = (0, 0, 0, 0, 2, 0, 1, R.INTENT_CANCEL, 0, 0, [0] * 3)
    symbols = np.array([0, SYM], np.uint64)
    assert _send_intents(cl.state, intents, symbols, now()) == 3
    msgs = [V.decode_inbound(p) for _, p in fake.read_packets(3)]
    assert [(m["type"], m["uref"]) for m in msgs] == [("O", 1), ("U", 2), ("X", 2)]
    assert msgs[0]["symbol"] == b"AAA     " and msgs[0]["clordid"] == b"00000000000123" and msgs[0]["tif"] == b"3"


def test_every_response_in_order_and_unknown_uref_decoded(fake):
    cl = fake.client()
    msgs = [V.encode_outbound("S", ts=1, event=b"S"), accepted(1), executed(1, 40, match=9),
            executed(999, 5),    # a UserRefNum we never sent: decoded as is (the order manager counts it)
            V.encode_outbound("C", ts=3, uref=1, qty=60, reason=b"U"),
            struct.pack(">cQI", b"P", 4, 1), struct.pack(">cQI", b"I", 5, 1)]
    fake.conn.sendall(b"".join(seqd(m) for m in msgs) + pkt(b"H") + pkt(b"+", b"debug"))
    got = poll_until(cl, len(msgs))
    assert [chr(r["kind"]) for r in got] == list("SAEECPI")
    assert [int(r["seq"]) for r in got] == list(range(1, 8))
    assert (got[3]["uref"], got[3]["qty"]) == (999, 5)
    assert got[2]["ref"] == 9 and got[4]["qty"] == 60
    time.sleep(0.05)
    poll_until(cl, 1, timeout=0.2)
    s = cl.stats()
    assert s["sequenced"] == 7 and s["heartbeats_rx"] == 1 and s["debug_rx"] == 1 and s["last_seq"] == 7


def test_truncated_response_is_reported_and_the_stream_goes_on(fake):
    cl = fake.client()
    fake.conn.sendall(seqd(executed(1, 10)[:20]) + seqd(accepted(2)))
    got = poll_until(cl, 2)
    assert got[0]["kind"] == R.RESP_UNDECODED and got[0]["reason"] == L.BAD_TRUNCATED
    assert got[0]["reason_code"] == ord("E") and got[0]["seq"] == 1
    assert got[1]["kind"] == R.RESP_ACCEPTED and got[1]["seq"] == 2 and got[1]["uref"] == 2
    assert cl.stats()["truncated"] == 1 and cl.connected


def test_oversize_message_is_decoded_and_counted(fake):
    cl = fake.client()
    fake.conn.sendall(seqd(V.encode_outbound("C", ts=3, uref=1, qty=60, reason=b"U") + b"future") + seqd(accepted(2)))
    got = poll_until(cl, 2)
    assert [(chr(r["kind"]), int(r["uref"]), int(r["seq"])) for r in got] == [("C", 1, 1), ("A", 2, 2)]
    assert got[0]["qty"] == 60 and cl.stats()["oversize"] == 1


def test_busy_poll_is_optional():
    f = Fake()
    try:
        cl = f.client(busy_poll_us=50)       # needs CAP_NET_ADMIN above the current value
        got = cl.sock.getsockopt(socket.SOL_SOCKET, 46)
        assert cl.stats()["busy_poll"] == (got == 50) and cl.connected
    finally:
        f.close()


def test_unknown_type_is_reported(fake):
    cl = fake.client()
    fake.conn.sendall(seqd(b"Q" + bytes(20)) + seqd(accepted(3)))
    got = poll_until(cl, 2)
    assert (got[0]["kind"], got[0]["reason"], got[0]["reason_code"]) == \
        (R.RESP_UNDECODED, L.BAD_UNKNOWN_TYPE, ord("Q"))
    assert got[1]["uref"] == 3 and got[1]["seq"] == 2
    assert cl.stats()["unknown_type"] == 1


def test_out_of_sequence_login_gap_is_reported():
    f = Fake(first_seq=5)
    try:
        cl = f.client()              # asked for 1, the venue starts at 5: 1..4 are lost
        f.conn.sendall(seqd(accepted(1)))
        got = poll_until(cl, 2)
        assert (got[0]["kind"], got[0]["reason"], got[0]["qty"]) == (R.RESP_UNDECODED, L.BAD_SEQ_GAP, 4)
        assert got[1]["kind"] == R.RESP_ACCEPTED and got[1]["seq"] == 5
        assert cl.stats()["out_of_sequence"] == 4
    finally:
        f.close()


def test_state_file_resume_skips_what_was_applied(tmp_path):
    state = tmp_path / "ouch.state"
    f = Fake()
    try:
        cl = f.client(state_path=str(state))
        assert read_state_file(str(state)) == ("FAKE01", 0)
        f.conn.sendall(b"".join(seqd(accepted(u)) for u in range(1, 11)))
        assert len(poll_until(cl, 10)) == 10
        cl.close()
        assert read_state_file(str(state)) == ("FAKE01", 10)
    finally:
        f.close()
    f = Fake(first_seq=8)            # a venue that replays from 8: 8..10 were applied already
    try:
        cl = OuchClient("127.0.0.1", f.port, "TEST1", "pw", state_path=str(state)).connect(5)
        f._t.join(5)
        assert f.login[29:49] == b"11".rjust(20) and f.login[19:29] == b"FAKE01".ljust(10)
        f.conn.sendall(b"".join(seqd(accepted(u)) for u in range(8, 13)))
        got = poll_until(cl, 2)
        assert [(int(r["seq"]), int(r["uref"])) for r in got] == [(11, 11), (12, 12)]
        assert cl.stats()["duplicates"] == 3
    finally:
        f.close()


def test_connection_closed_mid_message(fake):
    cl = fake.client()
    whole = seqd(accepted(1))
    fake.conn.sendall(whole + seqd(executed(1, 10))[:15])
    fake.conn.close()
    fake.conn = None
    got = poll_until(cl, 3, timeout=5.0)
    assert [chr(r["kind"]) for r in got] == ["A", "!"]
    assert got[1]["reason"] == L.LOST_CLOSED_MID_MESSAGE and got[1]["seq"] == 1
    assert not cl.connected and cl.stats()["sessions_lost"] == 1
    assert ouch_enter(cl.state, 2, R.SIDE_BUY, 1, SYM, 1, R.TIF_DAY, 1, now()) == L.ERR_NOT_CONNECTED


def test_zero_length_packet_and_end_of_session(fake):
    cl = fake.client()
    fake.conn.sendall(seqd(accepted(1)) + b"\x00\x00")
    got = poll_until(cl, 3)
    assert [chr(r["kind"]) for r in got] == ["A", "!"] and got[1]["reason"] == L.LOST_BAD_FRAMING
    f2 = Fake()
    try:
        cl2 = f2.client()
        f2.conn.sendall(pkt(b"Z"))
        got = poll_until(cl2, 2)
        assert got[-1]["kind"] == R.RESP_SESSION_LOST and got[-1]["reason"] == L.LOST_END_OF_SESSION
    finally:
        f2.close()


def test_partial_writes_are_queued_and_delivered_in_order(fake):
    cl = fake.client()
    cl.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fake.conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    n_orders = 10000
    codes = [ouch_enter(cl.state, u, R.SIDE_BUY, u, SYM, 1_000_000, R.TIF_DAY, u, now())
             for u in range(1, n_orders + 1)]
    assert set(codes) <= {L.OK_SENT, L.OK_QUEUED} and L.OK_QUEUED in codes
    s = cl.stats()
    assert s["would_block"] + s["partial_writes"] > 0 and s["queued_bytes"] > 0
    got = []
    reader = threading.Thread(target=lambda: got.extend(fake.read_packets(n_orders, timeout=20)))
    reader.start()
    deadline = time.monotonic() + 20
    while ouch_flush(cl.state, now()) > 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    reader.join()
    assert cl.stats()["queued_bytes"] == 0
    msgs = [V.decode_inbound(p) for _, p in got]
    assert [m["uref"] for m in msgs] == list(range(1, n_orders + 1))
    assert all(m["qty"] == m["uref"] for m in msgs)
    assert cl.stats()["bytes_sent"] == n_orders * L.O_WIRE


def test_full_tx_queue_refuses_without_queuing_half():
    f = Fake()
    try:
        cl = f.client(tx_bytes=4 * L.O_WIRE + 10)
        cl.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        f.conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        codes = [ouch_enter(cl.state, u, R.SIDE_BUY, 1, SYM, 1, R.TIF_DAY, u, now()) for u in range(1, 5000)]
        assert L.ERR_TX_FULL in codes
        accepted_n = sum(c >= 0 for c in codes)
        assert cl.stats()["tx_full"] == codes.count(L.ERR_TX_FULL)
        got = []
        reader = threading.Thread(target=lambda: got.extend(f.read_packets(accepted_n, timeout=20)))
        reader.start()
        deadline = time.monotonic() + 20
        while ouch_flush(cl.state, now()) > 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        reader.join()
        urefs = [V.decode_inbound(p)["uref"] for _, p in got]
        assert urefs == [u for u, c in zip(range(1, 5000), codes) if c >= 0]   # whole, in order
    finally:
        f.close()


def test_heartbeat_after_one_second_idle_and_server_timeout(fake):
    cl = fake.client(heartbeat_timeout_ms=3000)
    t0 = int(cl.state.ctl[L.C_LAST_TX_NS])
    resp = np.zeros(8, R.RESPONSE_DTYPE)
    assert ouch_poll(cl.state, resp, t0 + 900_000_000) == 0 and cl.stats()["heartbeats_tx"] == 0
    assert ouch_poll(cl.state, resp, t0 + 1_000_000_000) == 0 and cl.stats()["heartbeats_tx"] == 1
    assert fake.read_packets(1) == [(b"R", b"")]
    assert ouch_poll(cl.state, resp, t0 + 1_500_000_000) == 0 and cl.stats()["heartbeats_tx"] == 1
    fake.conn.sendall(pkt(b"H"))
    time.sleep(0.05)
    assert ouch_poll(cl.state, resp, t0 + 2_000_000_000) == 0       # rx stamped at t0 + 2 s
    assert ouch_poll(cl.state, resp, t0 + 4_900_000_000) == 0 and cl.connected
    n = ouch_poll(cl.state, resp, t0 + 5_100_000_000)               # 3.1 s of silence
    assert n == 1 and resp[0]["kind"] == R.RESP_SESSION_LOST and resp[0]["reason"] == L.LOST_TIMEOUT
    assert not cl.connected


def test_small_response_array_delivers_everything_in_order(fake):
    cl = fake.client()
    fake.conn.sendall(b"".join(seqd(accepted(u)) for u in range(1, 21)))
    time.sleep(0.1)
    got = poll_until(cl, 20, cap=4)
    assert [int(r["uref"]) for r in got] == list(range(1, 21))
    assert cl.stats()["rx_stalls"] > 0


def test_login_rejects_timeouts_and_refusals_are_clear_errors():
    f = Fake(answer=pkt(b"J", b"A"))
    try:
        with pytest.raises(OuchLoginError, match="not authorised"):
            OuchClient("127.0.0.1", f.port, "TEST1", "bad").connect(5)
    finally:
        f.close()
    f = Fake(answer=pkt(b"J", b"S"))
    try:
        with pytest.raises(OuchLoginError, match="session not available"):
            OuchClient("127.0.0.1", f.port, "TEST1", "pw", session="OLD").connect(5)
    finally:
        f.close()
    f = Fake(answer=b"")                 # never answers
    try:
        with pytest.raises(OuchTimeout, match="no OUCH login answer"):
            OuchClient("127.0.0.1", f.port, "TEST1", "pw").connect(0.5)
    finally:
        f.close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                            # nothing listens there
    with pytest.raises(OuchConnectError, match="cannot connect"):
        OuchClient("127.0.0.1", port, "TEST1", "pw").connect(1)
    with pytest.raises(Exception, match="user too long"):
        OuchClient("127.0.0.1", port, "TOOLONGNAME", "pw").connect(1)
