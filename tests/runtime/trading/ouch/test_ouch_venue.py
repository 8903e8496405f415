"""The OUCH client against a real `tickpath venue` process on loopback (the venue's own,
independent OUCH/SoupBinTCP implementation): enter/accept, an execution against a second
session, reduce, replace, reject, heartbeats when idle, a reconnect mid-stream that loses
and repeats nothing (counting urefs and executions), a new process resuming from the state
file, and the venue SIGKILLed mid-run (a session-lost record, no hang)."""
from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.ouch import layout as L
from tickpath.runtime.trading.ouch.client import OuchClient, OuchConnectError, OuchLoginError
from tickpath.runtime.trading.ouch.session import (ouch_cancel, ouch_enter, ouch_poll,
                                                  ouch_replace)

P = 10_000   # Price(4) per dollar
AAA = int.from_bytes(b"AAA     ", "little")
BBB = int.from_bytes(b"BBB     ", "little")
ZZZ = int.from_bytes(b"ZZZ     ", "little")
USERS = [f"U{i}" for i in range(1, 9)]
CONFIG = ('[venue]\nrate = 0.0\nhistory_mib = 16\nstore_mib = 8\nmax_orders = 65536\n'
          '[[instrument]]\nsymbol = "AAA"\nref_price = 100.0\n'
          '[[instrument]]\nsymbol = "BBB"\nref_price = 20.0\n')
READY_TIMEOUT_S = 900    # a cold numba cache compiles the venue first (minutes on a loaded box)


def now():
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def start_venue(tmp_path):
    cfg = tmp_path / "venue.toml"
    cfg.write_text(CONFIG)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # ITCH goes here, unread
    sink.bind(("127.0.0.1", 0))
    args = [sys.executable, "-m", "tickpath.runtime.cli", "venue", "--config", str(cfg), "--quiet",
            "--itch-to", f"127.0.0.1:{sink.getsockname()[1]}"]
    for u in USERS:
        args += ["--user", f"{u}:pw"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    r, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    if not r:
        proc.kill()
        pytest.fail(f"tickpath venue printed no ready line in {READY_TIMEOUT_S} s")
    line = proc.stdout.readline()
    if not line:
        proc.wait(30)
        pytest.fail(f"tickpath venue exited before its ready line (rc={proc.returncode})")
    ready = json.loads(line)
    host, port = ready["ouch"].rsplit(":", 1)
    return proc, sink, (host, int(port)), ready


def stop_venue(proc, sink):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    sink.close()


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    proc, sink, addr, ready = start_venue(tmp_path_factory.mktemp("venue"))
    yield addr, ready
    stop_venue(proc, sink)


def client(addr, user, **kw) -> OuchClient:
    """Logged in; retried briefly: the venue may still hold this user's previous session."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return OuchClient(addr[0], addr[1], user, "pw", **kw).connect(10.0)
        except OuchLoginError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def collect(cl, want, timeout=10.0, cap=64, keep=None):
    """Poll until `want(records)` holds (or the timeout); returns every record polled."""
    out = [] if keep is None else keep
    resp = np.zeros(cap, R.RESPONSE_DTYPE)
    deadline = time.monotonic() + timeout
    while not want(out) and time.monotonic() < deadline:
        n = ouch_poll(cl.state, resp, now())
        out.extend(resp[:n].copy())
        if n == 0:
            time.sleep(0.001)
    return out


def kinds(recs, k):
    return [r for r in recs if r["kind"] == ord(k)]


def test_enter_accept_execute_reduce_replace_reject(venue):
    addr, ready = venue
    c1, c2 = client(addr, "U1"), client(addr, "U2")
    try:
        got1 = collect(c1, lambda rs: len(kinds(rs, "S")) >= 1)    # start-of-day system event
        assert got1[0]["seq"] == 1
        t = now()
        assert ouch_enter(c1.state, 1, R.SIDE_BUY, 300, AAA, 99 * P, R.TIF_DAY, 11, t) == L.OK_SENT
        assert c1.sent_ns >= t
        got1 = collect(c1, lambda rs: kinds(rs, "A"), keep=got1)
        [a] = kinds(got1, "A")
        assert (a["uref"], a["side"], a["qty"], a["price"], a["state"], a["tif"]) == \
            (1, R.SIDE_BUY, 300, 99 * P, ord("L"), ord("0"))
        assert a["ref"] > 0 and 0 < a["venue_ts"] < 86_400 * 10**9 and a["recv_ns"] >= t

        # a second session crosses it: both sides see the execution, one match number
        collect(c2, lambda rs: kinds(rs, "S"))
        assert ouch_enter(c2.state, 1, R.SIDE_SELL, 100, AAA, 98 * P, R.TIF_IOC, 21, now()) == L.OK_SENT
        got2 = collect(c2, lambda rs: kinds(rs, "E"))
        got1 = collect(c1, lambda rs: kinds(rs, "E"), keep=got1)
        [e1], [e2] = kinds(got1, "E"), kinds(got2, "E")
        assert (e1["uref"], e1["qty"], e1["price"], e1["liquidity"]) == (1, 100, 99 * P, ord("A"))
        assert (e2["uref"], e2["qty"], e2["price"], e2["liquidity"]) == (1, 100, 99 * P, ord("R"))
        assert e1["ref"] == e2["ref"] != 0

        # reduce to 150 (200 open -> decrement 50), then replace (loses priority), then reject
        assert ouch_cancel(c1.state, 1, 150, now()) == L.OK_SENT
        got1 = collect(c1, lambda rs: kinds(rs, "C"), keep=got1)
        [c] = kinds(got1, "C")
        assert (c["uref"], c["qty"]) == (1, 50)
        assert ouch_replace(c1.state, 1, 2, 250, 99 * P + 5000, R.TIF_DAY, now()) == L.OK_SENT
        got1 = collect(c1, lambda rs: kinds(rs, "U"), keep=got1)
        [u] = kinds(got1, "U")
        assert (u["orig_uref"], u["uref"], u["price"], u["side"], u["state"]) == (1, 2, 99 * P + 5000,
                                                                                 R.SIDE_BUY, ord("L"))
        assert ouch_enter(c1.state, 3, R.SIDE_BUY, 100, ZZZ, 99 * P, R.TIF_DAY, 31, now()) == L.OK_SENT
        got1 = collect(c1, lambda rs: kinds(rs, "J"), keep=got1)
        [j] = kinds(got1, "J")
        assert j["uref"] == 3 and j["reason"] != 0
        assert ouch_cancel(c1.state, 2, 0, now()) == L.OK_SENT
        got1 = collect(c1, lambda rs: len(kinds(rs, "C")) >= 2, keep=got1)
        assert kinds(got1, "C")[1]["uref"] == 2
        assert [int(r["seq"]) for r in got1] == list(range(1, len(got1) + 1))   # nothing skipped
        s = c1.stats()
        assert s["truncated"] == s["unknown_type"] == s["out_of_sequence"] == 0 and s["last_seq"] == len(got1)
    finally:
        c1.close()
        c2.close()


def test_heartbeats_keep_an_idle_session_alive(venue):
    addr, _ = venue
    c = client(addr, "U3", heartbeat_timeout_ms=2000)   # the venue logs us out after 2 s of our silence
    try:
        got = collect(c, lambda rs: False, timeout=4.5)
        s = c.stats()
        assert c.connected and not kinds(got, "!")
        assert s["heartbeats_tx"] >= 3 and s["heartbeats_rx"] >= 2, s
    finally:
        c.close()


def test_reconnect_mid_stream_applies_everything_exactly_once(venue, tmp_path):
    addr, _ = venue
    state = str(tmp_path / "u4.state")
    maker, taker = client(addr, "U4", state_path=state), client(addr, "U5")
    n_orders, n_fills = 40, 30
    try:
        for u in range(1, n_orders + 1):
            assert ouch_enter(maker.state, u, R.SIDE_BUY, 100, AAA, 99 * P, R.TIF_DAY, u, now()) >= 0
        applied = collect(maker, lambda rs: len(kinds(rs, "A")) >= n_orders)
        assert len(kinds(applied, "A")) == n_orders

        def sell(first, count):
            for k in range(count):
                assert ouch_enter(taker.state, first + k, R.SIDE_SELL, 100, AAA, 98 * P, R.TIF_IOC,
                                  first + k, now()) >= 0
        sell(1, n_fills // 2)
        time.sleep(0.3)                                  # the executions are on their way to the maker
        applied = collect(maker, lambda rs: len(rs) > n_orders + 2, cap=4, keep=applied)
        maker.sock.shutdown(socket.SHUT_RDWR)            # the connection drops mid-stream
        applied = collect(maker, lambda rs: kinds(rs, "!"), keep=applied)
        [lost] = kinds(applied, "!")
        assert not maker.connected
        sell(1 + n_fills // 2, n_fills - n_fills // 2)   # more fills while the maker is away
        time.sleep(0.3)
        maker.reconnect(timeout_s=10)
        applied = [r for r in applied if r["kind"] != ord("!")]
        applied = collect(maker, lambda rs: len(kinds(rs, "E")) >= n_fills, keep=applied)
        time.sleep(0.2)
        applied = collect(maker, lambda rs: False, timeout=0.3, keep=applied)
        seqs = [int(r["seq"]) for r in applied]
        assert seqs == list(range(1, len(applied) + 1))          # contiguous: nothing lost or repeated
        assert lost["seq"] < len(applied)                         # the drop really was mid-stream
        assert sorted(int(r["uref"]) for r in kinds(applied, "A")) == list(range(1, n_orders + 1))
        fills = kinds(applied, "E")
        assert len(fills) == n_fills and sum(int(r["qty"]) for r in fills) == 100 * n_fills
        assert len({int(r["ref"]) for r in fills}) == n_fills             # match numbers distinct
        assert sorted(int(r["uref"]) for r in fills) == list(range(1, n_fills + 1))   # FIFO
        taker_fills = collect(taker, lambda rs: len(kinds(rs, "E")) >= n_fills)
        assert sorted(int(r["ref"]) for r in kinds(taker_fills, "E")) == sorted(int(r["ref"]) for r in fills)

        # bytes already received but not yet applied when the client drops the connection:
        # asked for again by number, applied once
        extra = 5
        sell(1 + n_fills, extra)
        time.sleep(0.3)
        one = np.zeros(2, R.RESPONSE_DTYPE)               # room for one record per poll
        deadline = time.monotonic() + 5
        while maker.state.ctl[L.C_RX_FILL] == 0 and time.monotonic() < deadline:
            applied.extend(one[:ouch_poll(maker.state, one, now())].copy())
        assert maker.state.ctl[L.C_RX_FILL] > 0
        maker.reconnect(timeout_s=10)
        applied = collect(maker, lambda rs: len(kinds(rs, "E")) >= n_fills + extra, keep=applied)
        time.sleep(0.2)
        applied = collect(maker, lambda rs: False, timeout=0.3, keep=applied)
        assert [int(r["seq"]) for r in applied] == list(range(1, len(applied) + 1))
        fills = kinds(applied, "E")
        assert len(fills) == len({int(r["ref"]) for r in fills}) == n_fills + extra
        assert maker.stats()["tx_discarded_bytes"] == 0
        last = maker.last_seq
        maker.close()

        # a new process resumes from the state file: nothing replayed, only what is new
        maker2 = client(addr, "U4", state_path=state)
        try:
            sell(1 + n_fills + extra, 1)
            new = collect(maker2, lambda rs: kinds(rs, "E"))
            assert [(int(r["seq"]), chr(r["kind"])) for r in new] == [(last + 1, "E")]
            assert maker2.stats()["duplicates"] == 0
        finally:
            maker2.close()
    finally:
        maker.close()
        taker.close()


def test_venue_killed_mid_run(tmp_path):
    proc, sink, addr, _ = start_venue(tmp_path)
    try:
        c = client(addr, "U1")
        for u in range(1, 6):
            ouch_enter(c.state, u, R.SIDE_BUY, 100, AAA, 99 * P, R.TIF_DAY, u, now())
        collect(c, lambda rs: len(kinds(rs, "A")) >= 5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        t0 = time.monotonic()
        got = collect(c, lambda rs: kinds(rs, "!"), timeout=10)
        assert time.monotonic() - t0 < 5
        [lost] = kinds(got, "!")
        assert lost["reason"] in (L.LOST_EOF, L.LOST_ERROR)
        assert ouch_enter(c.state, 9, R.SIDE_BUY, 1, AAA, 99 * P, R.TIF_DAY, 9, now()) == L.ERR_NOT_CONNECTED
        with pytest.raises((OuchConnectError, OuchLoginError)):
            c.reconnect(timeout_s=1.0)
        c.close()
    finally:
        stop_venue(proc, sink)


def test_order_lives_against_the_venue_make_an_audit_log_that_verifies(venue, tmp_path):
    """The two halves this module and audit/ provide, as the trading core will join them:
    each decision, verdict, send and venue response of real order lives (resting, filled,
    reduced, replaced, IOC, cancelled, one refused by risk) logged through audit_write_*,
    then `tickpath audit verify` on the file. On BBB: the other tests leave AAA orders resting."""
    from tickpath.runtime.trading.audit import layout as AL
    from tickpath.runtime.trading.audit.log import AuditLog
    from tickpath.runtime.trading.audit.reader import read_records, verify
    from tickpath.runtime.trading.audit.writer import (audit_write_decision,
                                                      audit_write_response_record,
                                                      audit_write_risk, audit_write_sent)
    addr, _ = venue
    path = str(tmp_path / "trade.audit")
    log = AuditLog(path, ring_records=1 << 10, flush_interval_ms=5).start()
    aw = log.writer
    maker, taker = client(addr, "U6"), client(addr, "U7")
    resp = np.zeros(64, R.RESPONSE_DTYPE)
    seen = []

    def pump(cl, want_kinds, logged=True, timeout=10.0):
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = ouch_poll(cl.state, resp, now())
            for i in range(n):
                if logged:
                    assert audit_write_response_record(aw, resp, i, 1)
                got.append(chr(resp[i]["kind"]))
            if all(got.count(k) >= c for k, c in want_kinds.items()):
                break
            if n == 0:
                time.sleep(0.001)
        seen.extend(got)
        return got

    def decide_and_send(kind, uref, side, qty, price, tif, orig=0, passed=True, trigger=0):
        t = now()
        assert audit_write_decision(aw, t, t - 1000, trigger, kind, orig if kind == R.INTENT_REPLACE else uref,
                                    1, side, qty, price, tif)
        assert audit_write_risk(aw, now(), kind, uref, 1, passed, 0 if passed else 7)
        if not passed:
            return
        if kind == R.INTENT_NEW:
            assert ouch_enter(maker.state, uref, side, qty, BBB, price, tif, uref, now()) == L.OK_SENT
        elif kind == R.INTENT_REPLACE:
            assert ouch_replace(maker.state, orig, uref, qty, price, tif, now()) == L.OK_SENT
        else:
            assert ouch_cancel(maker.state, uref, qty, now()) == L.OK_SENT
        assert audit_write_sent(aw, maker.sent_ns, t - 1000, kind, uref, orig, 1, side, qty, price, tif)

    try:
        pump(maker, {"S": 1})
        pump(taker, {"S": 1}, logged=False)
        decide_and_send(R.INTENT_NEW, 1, R.SIDE_BUY, 300, 19 * P + 9000, R.TIF_DAY)
        pump(maker, {"A": 1})
        assert ouch_enter(taker.state, 1, R.SIDE_SELL, 100, BBB, 19 * P, R.TIF_IOC, 1, now()) >= 0
        pump(maker, {"E": 1})
        decide_and_send(R.INTENT_CANCEL, 1, R.SIDE_BUY, 150, 0, 0)                  # reduce: C of 50
        pump(maker, {"C": 1})
        decide_and_send(R.INTENT_REPLACE, 2, R.SIDE_BUY, 250, 19 * P + 9500, R.TIF_DAY, orig=1)
        pump(maker, {"U": 1})
        assert ouch_enter(taker.state, 2, R.SIDE_SELL, 100, BBB, 19 * P + 9000, R.TIF_IOC, 2, now()) >= 0
        pump(maker, {"E": 2})
        decide_and_send(R.INTENT_NEW, 3, R.SIDE_SELL, 100, 20 * P + 1000, R.TIF_IOC)      # rests nowhere: A, C
        pump(maker, {"A": 2, "C": 2})
        decide_and_send(R.INTENT_CANCEL, 2, R.SIDE_BUY, 0, 0, 0)                    # the rest of the chain
        pump(maker, {"C": 3})
        decide_and_send(R.INTENT_NEW, 4, R.SIDE_BUY, 10 ** 6, 19 * P, R.TIF_DAY, passed=False)
    finally:
        maker.close()
        taker.close()
        stats = log.stop()
    assert seen.count("E") == 2 and seen.count("C") == 3 and seen.count("U") == 1
    assert stats["records_dropped_ring_full"] == 0 and stats["records_written"] == stats["records_logged"]
    v = verify(path)
    assert v.ok, v.problems
    assert v.counts["fills"] == 2 and v.counts["orders"] == 4 and v.counts["sent"] == 5
    p = subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", "audit", "verify", path],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and p.stdout.rstrip().endswith("OK"), p.stdout + p.stderr
    # tick-to-trade is one subtraction per SENT record: sent time - trigger receive time
    recs = read_records(path).records
    sent = recs[recs["kind"] == AL.KIND_SENT]
    assert ((sent["t_ns"] - sent["t2_ns"]) > 0).all()
