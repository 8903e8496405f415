"""The OUCH client's slow path: connect, log in, hand the socket to the hot path, reconnect.

`OuchClient.connect()` opens a TCP socket (TCP_NODELAY, optional SO_BUSY_POLL), sends the
SoupBinTCP 4.1 login request with the requested session and sequence number, waits for
'A' (or raises a clear OuchLoginError: rejected 'A' not authorised / 'S' session not
available, timeout, connection closed), then makes the socket non-blocking and puts its
fd into `state` for the jitted functions in session.py.

Exactly once across reconnects: the session counts sequenced messages (ctl C_NEXT_SEQ).
A re-login asks for that number; if the venue starts lower, the replayed messages below it
are skipped (counted as duplicates); if it starts higher, the gap is reported as one
RESP_UNDECODED record (reason BAD_SEQ_GAP). The last sequenced number received is kept in
a small state file (`session seq`, written atomically: temp file, fsync, rename) by
`persist()`, `reconnect()` and `close()`, so a new process resumes where its
predecessor's persisted state left off. Bytes still queued when a session dies never
reached the venue's matching (a partial packet is discarded by the venue); they are
dropped at reconnect and counted (tx_discarded_bytes).
"""
from __future__ import annotations

import os
import socket
import time

from tickpath.runtime.core.errors import TickpathError
from tickpath.runtime.trading.ouch import layout as L
from tickpath.runtime.trading.ouch.session import OuchState, new_state

SO_BUSY_POLL = getattr(socket, "SO_BUSY_POLL", 46)


class OuchError(TickpathError):
    """Order entry could not be set up, or its session failed."""


class OuchConnectError(OuchError):
    """The TCP connection to the venue could not be made or broke during the login."""


class OuchLoginError(OuchError):
    """The venue answered the login with a reject (reason named) or not at all."""


class OuchTimeout(OuchLoginError):
    """No login answer within the timeout."""


_REJECT_REASONS = {b"A": "not authorised (user name / password)",
                   b"S": "session not available (requested session name)"}


def _now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_REALTIME)


def login_packet(user: str, password: str, session: str, seq: int, timeout_ms: int) -> bytes:
    """SoupBinTCP 4.1 'L': alpha fields space padded right, numbers space padded left."""
    fields = [(user, L.LOGIN_USER, "user"), (password, L.LOGIN_PASSWORD, "password"),
              (session, L.LOGIN_SESSION, "session")]
    p = b""
    for value, width, name in fields:
        raw = value.encode("ascii")
        if len(raw) > width:
            raise OuchError(f"OUCH login {name} too long", **{name: value, "max_chars": width})
        p += raw.ljust(width)
    if not 0 <= seq < 10 ** L.LOGIN_SEQ or not 0 < timeout_ms < 10 ** L.LOGIN_TIMEOUT:
        raise OuchError("OUCH login numbers out of range", seq=seq, heartbeat_timeout_ms=timeout_ms)
    p += str(seq).encode().rjust(L.LOGIN_SEQ) + str(timeout_ms).encode().rjust(L.LOGIN_TIMEOUT)
    return (1 + len(p)).to_bytes(2, "big") + bytes([L.PKT_LOGIN_REQUEST]) + p


def read_state_file(path: str) -> tuple[str, int] | None:
    """(session, last sequenced number received), or None when there is no file."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    parts = text.split()
    if len(parts) != 2 or not parts[1].isdigit():
        raise OuchError("OUCH state file is not 'SESSION SEQ'", path=path, content=text[:60])
    return parts[0], int(parts[1])


def write_state_file(path: str, session: str, last_seq: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)      # never through a planted file or symlink
    except FileExistsError:                  # our own leftover from a crash: remove, retry once
        os.unlink(tmp)
        fd = os.open(tmp, flags, 0o600)
    try:
        os.write(fd, f"{session} {last_seq}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)     # atomic: a reader sees the old or the new file, never half


class OuchClient:
    """One OUCH 5.0 session over SoupBinTCP 4.1 (see the module doc)."""

    def __init__(self, host: str, port: int, user: str, password: str, session: str = "",
                 state_path: str | None = None, heartbeat_timeout_ms: int = 5000,
                 busy_poll_us: int = 0, first_seq: int = 1, tx_bytes: int = L.TX_BYTES):
        if heartbeat_timeout_ms < L.HEARTBEAT_INTERVAL_NS // 1_000_000:
            raise OuchError("heartbeat timeout below the 1 s heartbeat interval",
                            heartbeat_timeout_ms=heartbeat_timeout_ms)
        self.host, self.port = host, int(port)
        self.user, self.password = user, password
        self.session = session
        self.state_path = state_path
        self.heartbeat_timeout_ms = int(heartbeat_timeout_ms)
        self.busy_poll_us = int(busy_poll_us)
        self.busy_poll_set = False
        self.sock: socket.socket | None = None
        self.state: OuchState = new_state(tx_bytes=tx_bytes)
        self.logins = 0
        self.gap_messages = 0
        saved = read_state_file(state_path) if state_path else None
        # the next sequenced number we want: after the persisted one, else from first_seq
        self._want_seq = saved[1] + 1 if saved else int(first_seq)
        if saved and not session:
            self.session = saved[0]

    # -- connection --------------------------------------------------------------------
    def connect(self, timeout_s: float = 5.0) -> "OuchClient":
        """Connect and log in (blocking). Raises OuchConnectError / OuchLoginError / OuchTimeout."""
        if self.sock is not None:
            raise OuchError("OUCH client already connected (reconnect() drops and logs in again)",
                            host=self.host, port=self.port, user=self.user)
        deadline = time.monotonic() + timeout_s
        login = login_packet(self.user, self.password, self.session, self._want_seq,
                             self.heartbeat_timeout_ms)
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
        except OSError as exc:
            raise OuchConnectError("cannot connect to the OUCH port", host=self.host, port=self.port,
                                   reason=exc.strerror or str(exc)) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.busy_poll_us:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, self.busy_poll_us)
                    self.busy_poll_set = True
                except OSError:
                    self.busy_poll_set = False    # reported in stats(); not fatal
            sock.sendall(login)
            ptype, payload = self._read_packet(sock, deadline)
        except BaseException:
            sock.close()
            raise
        if ptype == L.PKT_LOGIN_REJECTED:
            sock.close()
            code = payload[:1]
            raise OuchLoginError("OUCH login rejected", reason=code.decode("ascii", "replace"),
                                 meaning=_REJECT_REASONS.get(code, "unknown reject code"),
                                 user=self.user, session=self.session)
        if ptype != L.PKT_LOGIN_ACCEPTED or len(payload) != L.ACCEPT_PAYLOAD \
                or not payload[10:].strip().isdigit():
            sock.close()
            raise OuchLoginError("OUCH login answered with something other than a login accept",
                                 packet_type=chr(ptype), length=len(payload))
        self.session = payload[:10].decode("ascii", "replace").strip()
        first = int(payload[10:])
        sock.setblocking(False)
        self.sock = sock
        self._arm(sock.fileno(), first)
        self.logins += 1
        self.persist()
        return self

    def _read_packet(self, sock, deadline) -> tuple[int, bytes]:
        """One whole packet, reading no byte past it (what follows belongs to the hot path)."""
        def exactly(n):
            buf = b""
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OuchTimeout("no OUCH login answer in time", host=self.host, port=self.port,
                                      user=self.user)
                sock.settimeout(left)
                try:
                    chunk = sock.recv(n - len(buf))
                except socket.timeout as exc:
                    raise OuchTimeout("no OUCH login answer in time", host=self.host, port=self.port,
                                      user=self.user) from exc
                except OSError as exc:
                    raise OuchConnectError("OUCH connection failed during login",
                                           reason=exc.strerror or str(exc)) from exc
                if not chunk:
                    raise OuchLoginError("the venue closed the connection during login",
                                         host=self.host, port=self.port, user=self.user)
                buf += chunk
            return buf
        while True:
            n = int.from_bytes(exactly(2), "big")
            if n == 0:
                raise OuchLoginError("zero-length SoupBinTCP packet during login")
            body = exactly(n)
            if body[0] in (L.PKT_DEBUG, L.PKT_SERVER_HEARTBEAT):
                continue
            return body[0], body[1:]

    def _arm(self, fd: int, first_seq: int) -> None:
        """Hand the logged-in socket to the hot path (the state must be down)."""
        ctl = self.state.ctl
        want = self._want_seq
        ctl[L.C_FD] = fd
        ctl[L.C_NEXT_SEQ] = first_seq
        ctl[L.C_SKIP_BELOW] = want if first_seq < want else first_seq
        ctl[L.C_GAP_PENDING] = first_seq - want if first_seq > want else 0
        self.gap_messages += int(ctl[L.C_GAP_PENDING])
        discarded = int(ctl[L.C_TX_TAIL] - ctl[L.C_TX_HEAD])
        self.state.counters[L.K_TX_DISCARDED_BYTES] += discarded
        ctl[L.C_TX_HEAD] = ctl[L.C_TX_TAIL] = 0
        ctl[L.C_RX_FILL] = 0
        now = _now_ns()
        ctl[L.C_LAST_RX_NS] = ctl[L.C_LAST_TX_NS] = now
        ctl[L.C_TIMEOUT_NS] = self.heartbeat_timeout_ms * 1_000_000
        ctl[L.C_LOST_REASON] = 0
        ctl[L.C_STATE] = L.STATE_UP    # the jitted side reads it with an acquire load

    def reconnect(self, timeout_s: float = 5.0, retry_interval_s: float = 0.05) -> "OuchClient":
        """Drop the socket (if any) and log in again asking for the next unseen sequence number.
        Call it from the hot thread's side after ouch_poll reported RESP_SESSION_LOST (or
        while the hot thread is not polling). Retries until timeout_s: a venue may still hold
        the old session for a moment and refuse a second login of the same user."""
        self._drop()
        if self.state.ctl[L.C_NEXT_SEQ] > 0:
            self._want_seq = int(self.state.ctl[L.C_NEXT_SEQ])
        self.persist()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.connect(max(deadline - time.monotonic(), 0.05))
            except (OuchConnectError, OuchLoginError):
                if time.monotonic() + retry_interval_s >= deadline:
                    raise
                time.sleep(retry_interval_s)

    def _drop(self) -> None:
        self.state.ctl[L.C_STATE] = L.STATE_DOWN
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def logout(self) -> None:
        """SoupBinTCP 'O' (best effort), then close."""
        if self.sock is not None:
            try:
                self.sock.setblocking(True)
                self.sock.settimeout(1.0)
                self.sock.sendall(b"\x00\x01" + bytes([L.PKT_LOGOUT_REQUEST]))
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        if self.state.ctl[L.C_NEXT_SEQ] > 0:
            self._want_seq = int(self.state.ctl[L.C_NEXT_SEQ])
        self._drop()
        self.persist()

    # -- state file --------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        """The last sequenced number received (0: none yet)."""
        nxt = int(self.state.ctl[L.C_NEXT_SEQ])
        return nxt - 1 if nxt > 0 else self._want_seq - 1

    def persist(self) -> None:
        """Write `session last_seq` to the state file (atomically), if one was given."""
        if self.state_path and self.session:
            write_state_file(self.state_path, self.session, max(self.last_seq, 0))

    # -- observation -------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return int(self.state.ctl[L.C_STATE]) == L.STATE_UP

    @property
    def sent_ns(self) -> int:
        """CLOCK_REALTIME right after the last order's send() returned."""
        return int(self.state.ctl[L.C_SENT_NS])

    def stats(self) -> dict:
        c = self.state.counters
        out = {name: int(c[i]) for i, name in sorted(L.COUNTER_NAMES.items())}
        ctl = self.state.ctl
        out.update(connected=self.connected, session=self.session, last_seq=self.last_seq,
                   logins=self.logins, queued_bytes=int(ctl[L.C_TX_TAIL] - ctl[L.C_TX_HEAD]),
                   lost_reason=int(ctl[L.C_LOST_REASON]), busy_poll=self.busy_poll_set)
        return out
