"""`tickpath trade` against a real `tickpath venue` process on loopback: the market maker runs
and its audit log verifies; risk-rejected orders never reach the venue; `tickpath kill` from
another process cancels every open order at the venue and nothing leaves afterwards (checked
from the venue's own record: its summary, and its sequenced OUCH output replayed by a fresh
login); a strategy that does not compile fails before anything connects.

The first run compiles the venue and the trading loop (minutes on a busy 2-core box); waits
for readiness are long for that reason, the trading runs themselves are seconds."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tickpath.runtime.trading import records as R
from tickpath.runtime.trading.audit import layout as AL
from tickpath.runtime.trading.audit.reader import read_records

READY_S = 2400         # compile on a cold cache (the step inlines the whole hot path: minutes on a loaded box)
SUPPORT = os.path.join(os.path.dirname(__file__), "..", "..", "support")


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.abspath(SUPPORT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Venue:
    def __init__(self, tmp, instruments=8, rate=5000):
        self.itch_port = _free_udp_port()
        self.ready_file = str(tmp / "venue.ready")
        self.json = str(tmp / "venue.json")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickpath.runtime.cli", "venue", "--ouch-port", "0",
             "--itch-to", f"127.0.0.1:{self.itch_port}", "--instruments", str(instruments),
             "--rate", str(rate), "--ready-file", self.ready_file, "--json", self.json, "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env())
        deadline = time.monotonic() + READY_S
        while not os.path.exists(self.ready_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"venue did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        with open(self.ready_file) as f:
            self.ready = json.loads(f.readline())
        self.ouch = self.ready["ouch"]

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(60)
        with open(self.json) as f:
            return json.load(f)

    def replay_user(self, user="TEST1", password="tickpath", quiet_s=1.0) -> np.ndarray:
        """Every sequenced OUCH message the venue sent `user` today, from a fresh login at 1."""
        from tickpath.runtime.trading.ouch.client import OuchClient
        from tickpath.runtime.trading.ouch.session import ouch_poll
        host, port = self.ouch.rsplit(":", 1)
        c = OuchClient(host, int(port), user, password, first_seq=1)
        c.connect(10)
        buf = R.new_responses(256)
        got = []
        last = time.monotonic()
        try:
            while time.monotonic() - last < quiet_s:
                n = ouch_poll(c.state, buf, time.clock_gettime_ns(time.CLOCK_REALTIME))
                if n:
                    got.append(buf[:n].copy())
                    last = time.monotonic()
                else:
                    time.sleep(0.01)
        finally:
            c.logout()
        return np.concatenate(got) if got else R.new_responses(0)


@pytest.fixture
def venue(tmp_path):
    v = Venue(tmp_path)
    yield v
    if v.proc.poll() is None:
        v.proc.send_signal(signal.SIGINT)
        try:
            v.proc.wait(60)
        except subprocess.TimeoutExpired:
            v.proc.kill()


def _config(tmp, venue, strategy="market_maker", params=None, risk=None, seconds=8.0, audit=True):
    params = params if params is not None else {"symbols": ["AAAA", "AAAB", "AAAC"]}
    risk = risk or {}

    def toml_val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(toml_val(x) for x in v) + "]"
        return repr(v)
    lines = ["[feed]", 'address = "127.0.0.1"', f"port = {venue.itch_port}", "first_seq = 0",
             "[book]", "instruments = 64", "max_orders = 65536",
             "[venue]", f'ouch = "{venue.ouch}"', 'user = "TEST1"', 'password = "tickpath"',
             f'ready_file = "{venue.ready_file}"',
             "[strategy]", f'name = "{strategy}"', "[strategy.params]",
             *[f"{k} = {toml_val(v)}" for k, v in params.items()],
             "[risk]", *[f"{k} = {toml_val(v)}" for k, v in risk.items()],
             "[trading]", f"seconds = {seconds}", "live_interval_s = 0.5",
             f'audit_path = "{tmp / "trade.audit"}"' if audit else ""]
    p = tmp / "trade.toml"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


class Trade:
    """`tickpath trade` as a subprocess; stderr lines collected as they come."""

    def __init__(self, cfg, tmp):
        self.summary_path = str(tmp / "trade.json")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickpath.runtime.cli", "trade", "--config", cfg, "--json",
             self.summary_path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
        self.lines: list[str] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pred, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for ln in list(self.lines):
                m = pred(ln)
                if m:
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("trade never got there:\n" + "\n".join(self.lines[-30:]))

    def finish(self, timeout_s=120) -> dict:
        self.proc.wait(timeout_s)
        self.t.join(5)
        assert self.proc.returncode == 0, "\n".join(self.lines[-30:])
        with open(self.summary_path) as f:
            return json.load(f)


def _ready(line):
    if line.startswith("{") and '"ready"' in line:
        return json.loads(line)
    return None


def _audit_sets(path):
    """(urefs sent as NEW/REPLACE with their send time, urefs the risk gate rejected)."""
    r = read_records(path).records
    sent = r[(r["kind"] == AL.KIND_SENT) & np.isin(r["code"], [R.INTENT_NEW, R.INTENT_REPLACE])]
    rej = r[(r["kind"] == AL.KIND_RISK) & (r["code"] == AL.VERDICT_REJECT)]
    return dict(zip(sent["uref"].tolist(), sent["t_ns"].tolist())), set(rej["uref"].tolist())


def _open_at_venue(resp: np.ndarray) -> dict:
    """Open shares per uref from the venue's own responses."""
    open_: dict[int, int] = {}
    for r in resp:
        k, u = int(r["kind"]), int(r["uref"])
        if k == R.RESP_ACCEPTED:
            if r["state"] == ord("L"):
                open_[u] = int(r["qty"])
        elif k == R.RESP_REPLACED:
            open_.pop(int(r["orig_uref"]), None)
            if r["state"] == ord("L"):
                open_[u] = int(r["qty"])
        elif k in (R.RESP_EXECUTED, R.RESP_CANCELED) and u in open_:
            open_[u] -= int(r["qty"])
            if open_[u] <= 0:
                del open_[u]
    return open_


def test_market_maker_runs_restricted_never_reaches_the_venue_and_audit_verifies(venue, tmp_path):
    cfg = _config(tmp_path, venue, params={"symbols": ["AAAA", "AAAB", "AAAC"]},
                  risk={"restricted": ["AAAB"], "max_breaches": 0}, seconds=10.0)
    tr = Trade(cfg, tmp_path)
    tr.wait_for(_ready, READY_S)
    s = tr.finish()
    c = s["counters"]
    assert c["new_sent"] > 0 and c["accepted"] > 0
    assert c["impossible_transitions"] == 0 and c["unknown_uref"] == 0
    assert s["risk_rejects_by_reason"].get("restricted", 0) > 0
    # the market maker reads only books (READS_INDICATORS = False): the pipeline kept no indicator
    assert s["indicators"] == {"on": False, "updates": 0} and s["feed"]["book_adds"] > 0
    # every order a feed event triggered is in the tick-to-trade histogram (the kill switch's
    # cancels at shutdown have no trigger)
    assert s["tick_to_trade_ns"]["count"] == (c["new_sent"] + c["replace_sent"] + c["cancel_sent"]
                                              - c["kill_cancels"])
    # send() alone, timed before the loop started, on Debug packets the venue ignores
    bs = s["bare_send_ns"]
    assert bs["samples"] == 200 and 0 < bs["min"] <= bs["p50"] <= bs["p99"]
    v = venue.stop()
    u = v["users"]["TEST1"]
    assert (u["enter"], u["replace"], u["cancel"]) == (c["new_sent"], c["replace_sent"], c["cancel_sent"])
    assert u["debug"] == 200
    sent, rejected = _audit_sets(str(tmp_path / "trade.audit"))
    assert rejected and not (rejected & set(sent))
    # the audit log verifies (CRCs, order, state machine)
    out = subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", "audit", "verify",
                          str(tmp_path / "trade.audit")], capture_output=True, text=True, env=_env())
    assert out.returncode == 0, out.stdout + out.stderr


def test_risk_rejected_orders_never_reach_the_venue(venue, tmp_path):
    # quotes of 100 shares against a 50-share limit: every one refused by the gate
    cfg = _config(tmp_path, venue, risk={"max_order_qty": 50, "max_position": 50}, seconds=5.0)
    tr = Trade(cfg, tmp_path)
    tr.wait_for(_ready, READY_S)
    s = tr.finish()
    assert s["risk_rejects_by_reason"].get("max_order_qty", 0) > 0
    assert s["counters"]["new_sent"] == 0
    replay = venue.replay_user()
    assert not np.isin(replay["kind"], [R.RESP_ACCEPTED, R.RESP_REJECTED, R.RESP_REPLACED]).any()
    v = venue.stop()
    assert v["users"].get("TEST1", {}).get("enter", 0) == 0


def test_kill_from_another_process_cancels_everything_and_nothing_leaves_after(venue, tmp_path):
    cfg = _config(tmp_path, venue, params={"symbols": ["AAAA", "AAAB", "AAAC", "AAAD"]},
                  risk={"max_open_orders": 4, "max_venue_rejects_per_s": 0, "max_breaches": 0},
                  seconds=120.0)
    tr = Trade(cfg, tmp_path)
    ready = tr.wait_for(_ready, READY_S)

    def open_orders(line):
        m = re.search(r"open\s+(\d+)", line)
        return m and int(m.group(1)) >= 3
    tr.wait_for(open_orders, 120)
    k = subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", "kill", "--pid", str(ready["pid"])],
                       capture_output=True, text=True, env=_env())
    assert k.returncode == 0, k.stderr
    assert json.loads(k.stdout)["pid"] == ready["pid"]
    time.sleep(3)                 # the cancels go out and are answered; the strategy is muted
    tr.proc.send_signal(signal.SIGINT)
    s = tr.finish()
    assert s["kill_switch"]["tripped"] and s["kill_switch"]["reason"] == "kill_command"
    assert s["counters"]["kill_cancels"] >= 3
    killed_ns = s["kill_switch"]["tripped_ns"]
    sent, _ = _audit_sets(str(tmp_path / "trade.audit"))
    # no order or replace left after the kill. The loop checks the switch right before each
    # send() (test_kill_at_the_wire.py pins that down); an order whose send() was under way
    # when the switch tripped is stamped when send() returns, which on loopback includes the
    # venue's TCP receive: 2 ms covers that one send and a preemption inside it, against 3 s
    # of a live market maker that, were it not muted, would quote on.
    assert sent and max(sent.values()) <= killed_ns + 2_000_000
    # the venue's own record: every order it accepted from us was sent before the kill, and
    # none is open any more
    replay = venue.replay_user()
    acc = replay[np.isin(replay["kind"], [R.RESP_ACCEPTED, R.RESP_REPLACED])]
    assert len(acc) > 0 and set(acc["uref"].tolist()) <= set(sent)
    assert _open_at_venue(replay) == {}
    v = venue.stop()
    assert v["users"]["TEST1"]["enter"] == s["counters"]["new_sent"]


def test_strategy_that_does_not_compile_fails_before_connecting(tmp_path):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    lst.settimeout(0.5)
    port = lst.getsockname()[1]

    class _V:
        itch_port = _free_udp_port()
        ouch = f"127.0.0.1:{port}"
        ready_file = ""
    cfg = _config(tmp_path, _V, strategy="trading_badstrat", params={}, audit=False)
    out = subprocess.run([sys.executable, "-m", "tickpath.runtime.cli", "trade", "--config", cfg],
                         capture_output=True, text=True, env=_env(), timeout=READY_S)
    assert out.returncode == 2
    assert "trading_badstrat" in out.stderr and "does not compile" in out.stderr
    with pytest.raises(socket.timeout):
        lst.accept()              # nothing ever connected to the "venue"
    lst.close()


def test_venue_gone_mid_run_trips_session_lost_without_hanging(venue, tmp_path):
    cfg = _config(tmp_path, venue, risk={"max_venue_rejects_per_s": 0, "max_breaches": 0}, seconds=120.0)
    tr = Trade(cfg, tmp_path)
    tr.wait_for(_ready, READY_S)
    tr.wait_for(lambda ln: (m := re.search(r"open\s+(\d+)", ln)) and int(m.group(1)) >= 1, 120)
    venue.proc.kill()             # the venue dies with our orders in it
    venue.proc.wait(30)
    tr.wait_for(lambda ln: "KILLED session_lost" in ln, 60)
    tr.proc.send_signal(signal.SIGINT)
    s = tr.finish(60)
    assert s["kill_switch"]["reason"] == "session_lost"
    assert s["counters"]["session_lost"] >= 1 and s["order_entry"]["connected"] is False
    assert s["counters"]["impossible_transitions"] == 0


class DroppingProxy:
    """A TCP relay between `tickpath trade` and the venue that can hold back what the venue
    sends and then cut the session: the responses held (fills among them) never reach the
    client on that connection, so only its re-login replay can deliver them."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.lsock.settimeout(0.1)
        self.addr = f"127.0.0.1:{self.lsock.getsockname()[1]}"
        self.holding = False
        self.held = b""
        self.accepted = 0
        self._drop = threading.Event()
        self._stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        import select
        pair = None
        while not self._stop.is_set():
            if pair is None:
                try:
                    c, _ = self.lsock.accept()
                except socket.timeout:
                    continue
                pair = (c, socket.create_connection(self.target, timeout=5))
                self.accepted += 1
            c, v = pair
            if self._drop.is_set():
                for s in pair:
                    s.close()
                pair = None
                self._drop.clear()
                continue
            r, _, _ = select.select([c, v], [], [], 0.05)
            closed = False
            for s in r:
                data = s.recv(65536)
                if not data:
                    closed = True
                elif s is c:
                    v.sendall(data)
                elif self.holding:
                    self.held += data                # dropped with the session
                else:
                    c.sendall(data)
            if closed:
                for s in pair:
                    s.close()
                pair = None
        self.lsock.close()

    def held_messages(self) -> bytes:
        """The OUCH message types inside the sequenced packets held back (b'E' = a fill)."""
        out, buf = b"", self.held
        while len(buf) >= 3:
            n = int.from_bytes(buf[:2], "big")
            if buf[2:3] == b"S" and n >= 2 and len(buf) >= 2 + n:
                out += buf[3:4]
            buf = buf[2 + n:]
        return out

    def cut(self, until: bytes = b"E", max_hold_s: float = 4.0):
        """Hold the venue's side until a message of a type in `until` is held (or max_hold_s,
        under the client's 5 s heartbeat timeout), then drop both connections."""
        self.holding = True
        deadline = time.monotonic() + max_hold_s
        while time.monotonic() < deadline and not set(self.held_messages()) & set(until):
            time.sleep(0.01)
        self._drop.set()
        while self._drop.is_set():
            time.sleep(0.01)
        self.holding = False

    def close(self):
        self._stop.set()
        self.t.join(5)


def _venue_fills(replay: np.ndarray) -> tuple[int, int, int]:
    """(executions, bought, sold) from the venue's own sequenced output."""
    side = {}
    for r in replay:
        if int(r["kind"]) in (R.RESP_ACCEPTED, R.RESP_REPLACED):
            side[int(r["uref"])] = int(r["side"])
    ex = replay[replay["kind"] == R.RESP_EXECUTED]
    bought = sum(int(r["qty"]) for r in ex if side[int(r["uref"])] == ord("B"))
    return len(ex), bought, int(ex["qty"].sum()) - bought


def _positions_from_audit(path, fees_per_share):
    """Plain-Python average-cost positions and P&L per locate, from the audit log alone."""
    recs = read_records(path).records
    order = {}
    for r in recs[recs["kind"] == AL.KIND_SENT]:
        order[int(r["uref"])] = (int(r["side"]), int(r["locate"]))
    out = {}
    for r in recs[(recs["kind"] == AL.KIND_RESPONSE) & (recs["code"] == R.RESP_EXECUTED)]:
        side, loc = order[int(r["uref"])]
        p = out.setdefault(loc, {"position": 0, "avg": 0.0, "realised": 0.0, "fees": 0.0, "bought": 0, "sold": 0})
        qty, px = int(r["qty"]), float(r["price"])
        signed = qty if side == ord("B") else -qty
        p["bought" if side == ord("B") else "sold"] += qty
        p["fees"] += qty * fees_per_share
        q = p["position"]
        if q == 0 or (q > 0) == (signed > 0):
            p["avg"] = (p["avg"] * abs(q) + px * qty) / abs(q + signed)
        else:
            closed = min(abs(q), qty)
            p["realised"] += (1.0 if q > 0 else -1.0) * (px - p["avg"]) * closed * 1e-4
            if q + signed == 0:
                p["avg"] = 0.0
            elif (q + signed > 0) != (q > 0):
                p["avg"] = px
        p["position"] = q + signed
    return out


def test_relogin_mid_fills_loses_nothing_and_positions_equal_the_audit_log(venue, tmp_path):
    """The session is cut while the venue's answers (fills among them) are held back: the
    client logs in again with its last sequence number, applies the replay exactly once and
    cancels what is still open. Its executions and positions then equal the venue's own
    record, and a plain-Python recomputation from the audit log gives the same positions and
    P&L as the summary."""
    proxy = DroppingProxy(venue.ouch)
    try:
        cfg = _config(tmp_path, venue, params={"symbols": ["AAAA", "AAAB", "AAAC", "AAAD"]},
                      risk={"fees_per_share": 0.0015, "max_breaches": 0, "max_venue_rejects_per_s": 0},
                      seconds=240.0)
        text = open(cfg).read().replace(f'ouch = "{venue.ouch}"', f'ouch = "{proxy.addr}"')
        open(cfg, "w").write(text)
        tr = Trade(cfg, tmp_path)
        tr.wait_for(_ready, READY_S)
        tr.wait_for(lambda ln: (m := re.search(r"fills\s+(\d+)", ln)) and int(m.group(1)) >= 2, 180)
        proxy.cut()
        # logged in again, then cancel-on-disconnect emptied the book of our orders
        tr.wait_for(lambda ln: "KILLED session_lost" in ln, 60)
        deadline = time.monotonic() + 60
        while proxy.accepted < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        tr.wait_for(lambda ln: "KILLED" in ln and re.search(r"open\s+0\b", ln), 60)
        tr.proc.send_signal(signal.SIGINT)
        s = tr.finish(60)
    finally:
        proxy.close()
    held = proxy.held_messages()
    print(f"held back then replayed: {held!r}")
    assert held and proxy.accepted >= 2 and s["reconnects"] == 1   # answers were lost in flight
    c = s["counters"]
    assert c["session_lost"] >= 1 and c["impossible_transitions"] == 0 and c["unknown_uref"] == 0
    replay = venue.replay_user()
    n_exec, bought, sold = _venue_fills(replay)
    pos = s["positions"]
    assert n_exec == c["executions"] and n_exec >= 2                 # each fill applied once
    assert (sum(p["bought"] for p in pos.values()), sum(p["sold"] for p in pos.values())) == (bought, sold)
    assert not _open_at_venue(replay)                                 # nothing left open
    mine = _positions_from_audit(str(tmp_path / "trade.audit"), 0.0015)
    assert {p["locate"] for p in pos.values()} == set(mine)
    for sym, p in pos.items():
        a = mine[p["locate"]]
        assert (p["position"], p["bought"], p["sold"]) == (a["position"], a["bought"], a["sold"]), sym
        assert p["avg_price"] == round(a["avg"] * 1e-4, 6), sym
        assert p["realised"] == pytest.approx(round(a["realised"], 4), abs=1e-4), sym
        assert p["fees"] == pytest.approx(round(a["fees"], 4), abs=1e-4), sym


def test_market_maker_on_the_fpga_emulator_backend(venue, tmp_path):
    """The same trading loop on the FPGA path: the emulated card parses the venue's ITCH and
    hands over event records (no software decoder); the market maker quotes from them."""
    from fpga_helpers import start_emulator, stop_emulator
    dev = tmp_path / "card"
    dev.mkdir()
    emu = start_emulator(dev, "--udp", f"127.0.0.1:{venue.itch_port}", "--fifo-depth", "65536")
    try:
        cfg = _config(tmp_path, venue, seconds=8.0)
        text = open(cfg).read().replace("[venue]", f'[backend]\nkind = "fpga-emu"\n[backend.fpga]\n'
                                                    f'device_dir = "{dev}"\n[venue]', 1)
        open(cfg, "w").write(text)
        tr = Trade(cfg, tmp_path)
        tr.wait_for(_ready, READY_S)
        s = tr.finish(READY_S)
    finally:
        stop_emulator(emu)
    c = s["counters"]
    assert s["backend"] == "fpga-emu" and s["feed"]["events"] == 0   # no software decoding here
    assert s["feed"]["book_adds"] > 1000 and c["book_calls"] > 0
    assert c["new_sent"] > 0 and c["accepted"] > 0 and s["tick_to_trade_ns"]["count"] > 0
    assert c["impossible_transitions"] == 0 and c["unknown_uref"] == 0
    v = venue.stop()
    assert v["users"]["TEST1"]["enter"] == c["new_sent"]


def test_a_packet_is_stepped_once_per_run_of_one_instruments_messages(venue, tmp_path):
    """The loop steps the strategy after each run of consecutive messages of one instrument,
    not once per packet: an update is answered before the rest of its packet is booked. One
    packet of adds on locates 1, 1, 2, 1 is three updates (1; 2; 1 again), where stepping per
    packet made it two (1 and 2 touched once each)."""
    from tickpath.runtime.feed import itch
    from tickpath.runtime.feed.moldudp64 import mold_packet
    port = _free_udp_port()
    cfg = _config(tmp_path, venue, seconds=3.0, audit=False)
    text = open(cfg).read().replace(f"port = {venue.itch_port}", f"port = {port}", 1)
    open(cfg, "w").write(text)   # the feed is this test's one packet, not the venue's flow
    tr = Trade(cfg, tmp_path)
    tr.wait_for(_ready, READY_S)
    msgs = [itch.encode_add(loc, 0, 1_000 + i, 100 + i, "B", 100, "ZZZZ", 90_000 + i)
            for i, loc in enumerate((1, 1, 2, 1))]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(mold_packet("TESTSESS01", 1, msgs), ("127.0.0.1", port))
    out = tr.finish(READY_S)
    assert out["feed"]["book_adds"] == 4
    assert out["counters"]["book_calls"] == 3
