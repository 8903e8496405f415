"""The OUCH 5.0 / SoupBinTCP 4.1 server: the venue's network thread.

One Python thread with an epoll selector serves every client: accepts, logins (slow path,
Python), inbound bytes of logged-in sessions parsed by wire.parse_inbound (numba: one
call per recv) into the command ring, responses moved from the response ring into the
users' sequenced stores by wire.drain_responses (numba), and each session's store sent
from its position with one non-blocking send. Heartbeats: an 'H' after a second without
sending; a client silent past its login's heartbeat timeout is logged out.

Policies (each counted in `counts`): data before login, a bad login packet, a wrong
password or unknown user (J 'A'), a session name that is not the venue's (J 'S'), a second
login of a user already logged in (J 'A'), a SoupBinTCP length beyond the maximum (the
connection is closed: framing is lost), a client whose unsent output exceeds
max_queue_bytes (slow consumer: logged out; its messages stay in the store for a
reconnect), a silent client (timeout). Unknown packet types, OUCH messages of a wrong
length or unknown type and non-increasing UserRefNums are counted per user and ignored.
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading
import time

import numpy as np

from tickpath.bench.venue import layout as L
from tickpath.bench.venue import soupbin as SB
from tickpath.bench.venue import wire

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux: SCM_TIMESTAMPNS == SO_TIMESTAMPNS
RBUF_BYTES = 1 << 16
MAX_LOGIN_PACKET = 2 + 1 + SB.LOGIN_PAYLOAD_41


def _now() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


class Session:
    __slots__ = ("sock", "peer", "user", "rbuf", "fill", "next_msg", "pos", "last_rx_ns",
                 "last_tx_ns", "timeout_ns", "closed", "read_was_full")

    def __init__(self, sock, peer, now):
        self.sock, self.peer = sock, peer
        self.user = 0
        self.rbuf = np.zeros(RBUF_BYTES, np.uint8)
        self.fill = 0
        self.next_msg = 0
        self.pos = 0
        self.last_rx_ns = self.last_tx_ns = now
        self.timeout_ns = SB.DEFAULT_TIMEOUT_MS * 1_000_000
        self.closed = False
        self.read_was_full = False   # the last read stopped inside a kernel buffer: its stamp is stale


class OuchServer:
    def __init__(self, *, host, port, session: bytes, users: list[tuple[str, str]], ref,
                 resp_ring, cmd_ring, abort, in_log, tokens, midnight_ns: int,
                 store_bytes: int = 64 << 20, store_msgs: int = 1 << 20,
                 max_queue_bytes: int = 4 << 20, sndbuf_bytes: int | None = None):
        self.session = session.ljust(10)[:10]
        self.users = {name.upper(): (i + 1, pw) for i, (name, pw) in enumerate(users)}
        self.user_names = ["" ] + [n for n, _ in users]
        nu = len(users) + 1
        self.ref = ref
        self.resp_ring, self.cmd_ring, self.abort = resp_ring, cmd_ring, abort
        self.in_log, self.tokens, self.midnight_ns = in_log, tokens, midnight_ns
        self.ob_buf = np.zeros((nu, store_bytes), np.uint8)   # calloc: pages fault in as used
        self.ob_off = np.zeros((nu, store_msgs), np.int64)
        self.ob_tok = np.zeros((nu, store_msgs), np.int64)
        self.ob_st = np.zeros((nu, wire.N_ST), np.int64)
        self.last_tok = np.full(nu, -1, np.int64)
        self.last_uref = np.zeros(nu, np.int64)
        self.uc = np.zeros((nu, wire.N_USER_COUNTERS), np.int64)
        self.status = np.zeros(2, np.int64)
        self.active: dict[int, Session] = {}
        self.sessions: dict[int, Session] = {}
        self.max_queue_bytes, self.sndbuf = max_queue_bytes, sndbuf_bytes
        self.counts = {k: 0 for k in (
            "connections", "logins", "login_rejected_auth", "login_rejected_session",
            "login_rejected_duplicate", "bad_login_packet", "data_before_login", "logouts",
            "disconnects", "timeouts", "slow_consumer_logouts", "bad_frame_closes",
            "login_again_closes", "truncated_at_close", "heartbeats_sent", "store_full")}
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(256)
        self.lsock.setblocking(False)
        self.address = self.lsock.getsockname()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True, name="tickpath-venue-net")
        self.ended = False
        self._compile()

    def _compile(self):
        """Compile the numba paths now, not on the first client's message."""
        wire.drain_responses(self.resp_ring.hdr, self.resp_ring.data, self.ob_buf, self.ob_off,
                             self.ob_tok, self.ob_st, self.last_tok, self.ref.symbols,
                             self.midnight_ns, 0)
        wire.parse_inbound(np.zeros(4, np.uint8), 0, 0, 0, self.cmd_ring.hdr, self.cmd_ring.data,
                           self.abort, self.ref.sym_keys, self.ref.sym_locs, self.last_uref,
                           self.in_log, self.tokens, self.uc, self.status)
        wire.mark_sent(self.ob_off, self.ob_tok, self.ob_st, 0, 0, 0, self.in_log, 0)

    # ------------------------------------------------------------ public
    def start(self):
        self.thread.start()
        return self

    def system_event(self, code: str, ts_ns: int):
        """An OUCH System Event to every user's store (S start / E end of day)."""
        r = np.zeros(1, L.RESP_DTYPE)
        r["kind"], r["reason_c"], r["ts_ns"], r["token"] = L.R_SYSTEM, ord(code), ts_ns, -1
        for u in range(1, self.ob_buf.shape[0]):
            r["user"] = u
            wire.format_one(self.ob_buf, self.ob_off, self.ob_tok, self.ob_st, self.last_tok,
                            r[0], self.ref.symbols, self.midnight_ns)

    def close(self, end_of_session: bool = True, end_of_day_ns: int | None = None):
        """Stop the thread, then (this thread now owns the stores) drain, add the OUCH end
        of day, send what is pending, SoupBinTCP Z, close."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(5)
        self._drain()
        if end_of_day_ns is not None:
            self.system_event("E", end_of_day_ns)
        now = _now()
        for s in list(self.sessions.values()):
            self._send_pending(s, now)
            if end_of_session and not s.closed and s.user:
                try:
                    s.sock.send(SB.packet(SB.END_OF_SESSION))
                except OSError:
                    pass
            self._close(s, None)
        self.sel.close()
        self.lsock.close()

    def stats(self) -> dict:
        per_user = {}
        for name, (u, _) in self.users.items():
            per_user[name] = {n: int(self.uc[u, i]) for i, n in enumerate(wire.USER_COUNTER_NAMES)}
            per_user[name]["sequenced_messages"] = int(self.ob_st[u, wire.ST_NMSGS])
        self.counts["store_full"] = int(self.ob_st[:, wire.ST_FULL].sum())
        return {"sessions": dict(self.counts), "users": per_user, "open_sessions": len(self.sessions)}

    def store_messages(self, user: int) -> int:
        return int(self.ob_st[user, wire.ST_NMSGS])

    # ------------------------------------------------------------ loop
    def _serve(self):
        last_house = 0
        while not self._stop.is_set():
            for key, _ in self.sel.select(timeout=0.0005):
                if key.data is None:
                    self._accept()
                else:
                    self._read(key.data)
            moved = self._drain()
            now = _now()
            for s in list(self.active.values()):
                if s.pos < self.ob_st[s.user, wire.ST_WPOS]:
                    self._send_pending(s, now)
            if now - last_house > 50_000_000:
                last_house = now
                self._housekeeping(now)
            if moved:
                continue

    def _drain(self) -> int:
        total = 0
        while True:
            n = wire.drain_responses(self.resp_ring.hdr, self.resp_ring.data, self.ob_buf,
                                     self.ob_off, self.ob_tok, self.ob_st, self.last_tok,
                                     self.ref.symbols, self.midnight_ns, 4096)
            total += n
            if n < 4096:
                return total

    def _accept(self):
        while True:
            try:
                sock, peer = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                pass
            if self.sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
            s = Session(sock, peer, _now())
            self.sessions[sock.fileno()] = s
            self.sel.register(sock, selectors.EVENT_READ, s)
            self.counts["connections"] += 1

    def _read(self, s: Session):
        if s.closed:
            return
        mv = memoryview(s.rbuf)[s.fill:]
        try:
            n, anc, _, _ = s.sock.recvmsg_into([mv], 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n, anc = 0, []
        if n == 0:
            if s.fill:
                self.counts["truncated_at_close"] += 1
            self.counts["disconnects"] += 1
            self._close(s, None)
            return
        recv_ns = 0
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(data) >= 16:
                sec, nsec = struct.unpack_from("qq", data)
                recv_ns = sec * 1_000_000_000 + nsec
        if s.read_was_full:          # this read starts inside a buffer stamped before the last read
            recv_ns = 0
        s.read_was_full = n == len(mv)
        now = _now()
        s.fill += n
        s.last_rx_ns = now
        if not s.user and not self._login(s, now):
            return
        self._parse(s, recv_ns or now, now)

    def _parse(self, s: Session, recv_ns: int, later_ns: int):
        """Parse what is buffered. The kernel's timestamp is that of the first new byte: TCP
        coalesces segments that arrive while this thread is busy into one buffer that keeps
        the first one's stamp, so only the first packet of a read is stamped with it; the
        packets after it get the time the read returned (an upper bound, never early)."""
        if s.fill == 0 or s.closed:
            return
        first_end = s.fill
        if s.fill >= 2:
            first_end = min(s.fill, 2 + (int(s.rbuf[0]) << 8 | int(s.rbuf[1])))
        used = self._parse_range(s, 0, first_end, recv_ns)
        if used == first_end and first_end < s.fill and int(self.status[0]) == wire.PS_OK:
            used += self._parse_range(s, first_end, s.fill, later_ns)
        st = int(self.status[0])
        if st == wire.PS_LOGOUT:
            self.counts["logouts"] += 1
            self._send_pending(s, _now())
            self._close(s, None)
            return
        if st in (wire.PS_BAD_FRAME, wire.PS_LOGIN_AGAIN, wire.PS_STOPPED):
            self.counts["bad_frame_closes" if st == wire.PS_BAD_FRAME else "login_again_closes"] += 1
            self._close(s, None)
            return
        rest = s.fill - used
        if rest and used:
            s.rbuf[:rest] = s.rbuf[used:s.fill]
        s.fill = rest

    def _parse_range(self, s: Session, start: int, end: int, recv_ns: int) -> int:
        return wire.parse_inbound(s.rbuf[start:], end - start, s.user, recv_ns, self.cmd_ring.hdr,
                                  self.cmd_ring.data, self.abort, self.ref.sym_keys,
                                  self.ref.sym_locs, self.last_uref, self.in_log, self.tokens,
                                  self.uc, self.status)

    def _login(self, s: Session, now: int) -> bool:
        """Handle the login packet; True when logged in with bytes left to parse or none."""
        if s.fill < 3:
            return False
        ln = int(s.rbuf[0]) << 8 | int(s.rbuf[1])
        if s.rbuf[2] != SB.LOGIN_REQUEST:
            self.counts["data_before_login"] += 1
            self._close(s, None)
            return False
        if ln - 1 not in (SB.LOGIN_PAYLOAD_41, SB.LOGIN_PAYLOAD_30):
            self.counts["bad_login_packet"] += 1
            self._close(s, None)
            return False
        if s.fill < 2 + ln:
            return False
        try:
            req = SB.parse_login(s.rbuf[3:2 + ln].tobytes())
        except ValueError:
            self.counts["bad_login_packet"] += 1
            self._close(s, None)
            return False
        entry = self.users.get(req["username"].upper())
        if entry is None or entry[1] != req["password"]:
            self.counts["login_rejected_auth"] += 1
            self._close(s, SB.login_rejected(SB.REJECT_NOT_AUTHORIZED))
            return False
        if req["session"] and req["session"].encode() != self.session.strip():
            self.counts["login_rejected_session"] += 1
            self._close(s, SB.login_rejected(SB.REJECT_SESSION_UNAVAILABLE))
            return False
        u = entry[0]
        if u in self.active or self.ended:
            self.counts["login_rejected_duplicate"] += 1
            self._close(s, SB.login_rejected(SB.REJECT_NOT_AUTHORIZED
                                             if not self.ended else SB.REJECT_SESSION_UNAVAILABLE))
            return False
        nm = int(self.ob_st[u, wire.ST_NMSGS])
        seq = req["seq"]
        seq = nm + 1 if seq == 0 or seq > nm + 1 else seq
        s.user = u
        s.next_msg = seq - 1
        s.pos = int(self.ob_off[u, seq - 1]) if seq - 1 < nm else int(self.ob_st[u, wire.ST_WPOS])
        s.timeout_ns = max(req["timeout_ms"], 100) * 1_000_000
        self.active[u] = s
        self.counts["logins"] += 1
        try:
            s.sock.send(SB.login_accepted(self.session, seq))
        except OSError:
            self._close(s, None)
            return False
        s.last_tx_ns = now
        rest = s.fill - (2 + ln)
        s.rbuf[:rest] = s.rbuf[2 + ln:s.fill]
        s.fill = rest
        return True

    def _send_pending(self, s: Session, now: int):
        if s.closed or not s.user:
            return
        u = s.user
        wpos = int(self.ob_st[u, wire.ST_WPOS])
        if s.pos < wpos:
            try:
                sent = s.sock.send(memoryview(self.ob_buf[u])[s.pos:wpos])
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.counts["disconnects"] += 1
                self._close(s, None)
                return
            if sent:
                s.pos += sent
                s.last_tx_ns = now
                s.next_msg = wire.mark_sent(self.ob_off, self.ob_tok, self.ob_st, u, s.next_msg,
                                            s.pos, self.in_log, _now())
            if wpos - s.pos > self.max_queue_bytes:
                self.counts["slow_consumer_logouts"] += 1
                self._close(s, None)

    def _housekeeping(self, now: int):
        for s in list(self.sessions.values()):
            if s.closed:
                continue
            if now - s.last_rx_ns > (s.timeout_ns if s.user else 15_000_000_000):
                self.counts["timeouts"] += 1
                self._close(s, None)
                continue
            if s.user and now - s.last_tx_ns > SB.HEARTBEAT_INTERVAL_NS \
                    and s.pos >= self.ob_st[s.user, wire.ST_WPOS]:
                try:
                    s.sock.send(SB.packet(SB.SERVER_HEARTBEAT))
                    s.last_tx_ns = now
                    self.counts["heartbeats_sent"] += 1
                except OSError:
                    pass

    def _close(self, s: Session, last: bytes | None):
        if s.closed:
            return
        s.closed = True
        if last:
            try:
                s.sock.send(last)
            except OSError:
                pass
        try:
            self.sel.unregister(s.sock)
        except (KeyError, ValueError, OSError):
            pass
        self.sessions.pop(s.sock.fileno(), None)
        if s.user and self.active.get(s.user) is s:
            del self.active[s.user]
        try:
            s.sock.close()
        except OSError:
            pass
