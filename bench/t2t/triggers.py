"""Triggers: marked market-data events the venue publishes on a fixed schedule, open loop.

A trigger is an order the harness enters at the venue over its own OUCH session: a day buy
of `MARKER_SHARES` (an odd lot: the background flow only makes round lots, so no flow
message ever looks like one) at the lowest price the instrument's band accepts, on one of a
few quiet instruments in turn. The venue's
engine books it and publishes its ITCH Add Order; the responder under test (tickpath's
strategy, or the C floor) answers that exact message with one order whose ClOrdID is the
message's MoldUDP64 sequence number. The venue's timestamp log then holds both ends on one
clock: the trigger's packet send time, and the answer's kernel receive time.

Open loop: trigger k is sent at t0 + k / rate whatever the responder does (no coordinated
omission); the first `warmup` triggers are marked and left out of the figures. Triggers rest
(a 1-share bid each, 10 k for 10 s at 1 k/s); `linger` > 0 cancels each that many later —
but the cancel is an ITCH message of the same instrument, so it may share a batch with the
next trigger, which a strategy that reacts to book updates would then not see as one.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from tickpath.bench.venue import ouch, soupbin

MARKER_SHARES = 1


@dataclass
class TriggerPlan:
    rate_per_s: float = 1000.0
    seconds: float = 10.0
    warmup: int = 200
    linger: int = 0                  # > 0: cancel trigger k when sending trigger k + linger (0: they rest)
    burst: int = 1                   # triggers sent back to back at each tick (a burst scenario)


def marker_for(refdata: list[dict], symbols) -> dict:
    """The trigger pattern over the quiet instruments of the venue's ready line (consecutive
    locates): triggers go round-robin over them, so two triggers in one packet are two
    instruments — a strategy that reacts once per instrument per batch still sees both. The
    answer is always on the first one, at its lowest band price."""
    rows = [r for r in refdata if r["symbol"] in set(symbols)]
    locs = sorted(r["locate"] for r in rows)
    if not rows or len(rows) != len(set(symbols)) or locs != list(range(locs[0], locs[0] + len(locs))):
        raise ValueError(f"trigger instruments must be listed, consecutive locates: {symbols}")
    rows.sort(key=lambda r: r["locate"])
    return {"instruments": [{"symbol": r["symbol"], "locate": r["locate"], "price": r["band_lo"]}
                            for r in rows],
            "locate_lo": locs[0], "locate_hi": locs[-1], "shares": MARKER_SHARES,
            "symbol": rows[0]["symbol"], "answer_price": rows[0]["band_lo"]}


class TriggerSender(threading.Thread):
    """Enters the scheduled trigger orders (and their cancels) on its own OUCH session."""

    def __init__(self, host: str, port: int, user: str, password: str, marker: dict, plan: TriggerPlan):
        super().__init__(name="t2t-triggers", daemon=True)
        self.marker, self.plan = marker, plan
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(soupbin.login_request(user, password))
        buf = b""
        while True:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"venue closed the trigger session during login as {user}")
            pkts, buf = soupbin.split(buf + chunk)
            kinds = [t for t, _ in pkts]
            if soupbin.LOGIN_REJECTED in kinds:
                raise ConnectionError(f"trigger login rejected for {user}")
            if soupbin.LOGIN_ACCEPTED in kinds:
                break
        self.sock.setblocking(False)
        self.sent = 0
        self.late_ns_max = 0
        self.error: str | None = None
        self.stop_flag = threading.Event()

    def _drain(self) -> None:
        try:
            while self.sock.recv(65536):
                pass
            self.error = self.error or "venue closed the trigger session"
            self.stop_flag.set()
        except BlockingIOError:
            pass

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except BlockingIOError:
                self._drain()
                time.sleep(0.0001)

    def _order(self, uref: int) -> bytes:
        m = self.marker
        ins = m["instruments"][(uref - 1) % len(m["instruments"])]
        return soupbin.packet(soupbin.UNSEQUENCED, ouch.encode_inbound(
            "O", uref=uref, side="B", qty=m["shares"], symbol=ins["symbol"], price=ins["price"], tif="0",
            display="Y", capacity="P", iso="N", cross="N", clordid=b"TRIGGER", appendage_len=0))

    def run(self) -> None:
        p = self.plan
        period_ns = int(1e9 / p.rate_per_s) * p.burst
        n_ticks = int(p.seconds * p.rate_per_s / p.burst)
        t0 = time.monotonic_ns() + 50_000_000
        uref = 0
        try:
            for k in range(n_ticks):
                due = t0 + k * period_ns
                while True:
                    now = time.monotonic_ns()
                    if now >= due or self.stop_flag.is_set():
                        break
                    time.sleep(min(0.0005, (due - now) / 1e9))
                if self.stop_flag.is_set():
                    break
                self.late_ns_max = max(self.late_ns_max, time.monotonic_ns() - due)
                out = b""
                for _ in range(p.burst):
                    uref += 1
                    out += self._order(uref)
                    if p.linger and uref > p.linger:   # the trigger `linger` ago: cancel it (qty 0 = all)
                        out += soupbin.packet(soupbin.UNSEQUENCED,
                                              ouch.encode_inbound("X", uref=uref - p.linger, qty=0))
                self._send(out)
                self.sent += p.burst
                self._drain()
            self._send(soupbin.packet(soupbin.CLIENT_HEARTBEAT))
        except OSError as exc:
            self.error = f"trigger session: {exc}"

    def close(self) -> None:
        self.stop_flag.set()
        self.join(5)
        try:
            self.sock.close()
        except OSError:
            pass
