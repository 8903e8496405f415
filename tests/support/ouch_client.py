"""A plain-socket OUCH 5.0 / SoupBinTCP 4.1 client for the venue tests (struct only, apart
from the venue's own codec on purpose), and an ITCH/MoldUDP64 capture."""
from __future__ import annotations

import socket
import struct
import threading
import time

OUT_FORMATS = {   # outbound OUCH 5.0 (REFERENCE.md offsets)
    b"S": (">cQc", ("type", "ts", "event")),
    b"A": (">cQIcI8sQccQcccc14sH", ("type", "ts", "uref", "side", "qty", "symbol", "price", "tif",
                                    "display", "order_ref", "capacity", "iso", "cross", "state",
                                    "clordid", "appendage_len")),
    b"U": (">cQIIcI8sQccQcccc14sH", ("type", "ts", "orig_uref", "uref", "side", "qty", "symbol",
                                     "price", "tif", "display", "order_ref", "capacity", "iso",
                                     "cross", "state", "clordid", "appendage_len")),
    b"C": (">cQIIc", ("type", "ts", "uref", "qty", "reason")),
    b"E": (">cQIIQcQH", ("type", "ts", "uref", "qty", "price", "liquidity", "match", "appendage_len")),
    b"J": (">cQIH14s", ("type", "ts", "uref", "reason", "clordid")),
    b"M": (">cQIcI", ("type", "ts", "uref", "side", "qty")),
}


def packet(t: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">H", 1 + len(payload)) + t + payload


def login_packet(user, password, session="", seq=1, timeout_ms=15000) -> bytes:
    return packet(b"L", struct.pack(">6s10s10s20s5s", user.encode().ljust(6), password.encode().ljust(10),
                                    session.encode().ljust(10), str(seq).encode().rjust(20),
                                    str(timeout_ms).encode().rjust(5)))


def enter_msg(uref, side, qty, symbol, price, tif=b"0", display=b"Y", capacity=b"A", iso=b"N",
              cross=b"N", clordid=b"", appendage=b""):
    return struct.pack(">cIcI8sQccccc14sH", b"O", uref, side, qty, symbol.ljust(8), price, tif,
                       display, capacity, iso, cross, clordid.ljust(14), len(appendage)) + appendage


def replace_msg(orig, uref, qty, price, tif=b"0", display=b"Y", iso=b"N", clordid=b""):
    return struct.pack(">cIIIQccc14sH", b"U", orig, uref, qty, price, tif, display, iso,
                       clordid.ljust(14), 0)


def cancel_msg(uref, qty=0):
    return struct.pack(">cII", b"X", uref, qty)


def modify_msg(uref, side, qty):
    return struct.pack(">cIcI", b"M", uref, side, qty)


class Client:
    def __init__(self, addr, user="TEST1", password="tickpath", session="", seq=1, timeout_ms=15000,
                 login=True):
        self.sock = socket.create_connection(addr, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.login_reply = None
        if login:
            self.sock.sendall(login_packet(user, password, session, seq, timeout_ms))
            self.login_reply = self.read_packet()

    def send(self, ouch: bytes):
        self.sock.sendall(packet(b"U", ouch))

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def read_packet(self, timeout=5.0):
        """(type, payload), or None at EOF."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:
                n = struct.unpack_from(">H", self.buf)[0]
                if len(self.buf) >= 2 + n:
                    t, p = self.buf[2:3], self.buf[3:2 + n]
                    self.buf = self.buf[2 + n:]
                    return t, p
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no packet from the venue") from None
            if not d:
                return None
            self.buf += d

    def next_msg(self, timeout=5.0) -> dict:
        """The next sequenced OUCH message, decoded (heartbeats skipped)."""
        while True:
            pk = self.read_packet(timeout)
            if pk is None:
                raise EOFError("venue closed the session")
            t, p = pk
            if t == b"H":
                continue
            assert t == b"S", (t, p)
            fmt, names = OUT_FORMATS[p[:1]]
            assert len(p) == struct.calcsize(fmt), (p[:1], len(p))
            d = dict(zip(names, struct.unpack(fmt, p)))
            d["type"] = d["type"].decode()
            return d

    def msgs(self, n, timeout=5.0) -> list[dict]:
        return [self.next_msg(timeout) for _ in range(n)]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Capture:
    """Receive the venue's MoldUDP64 packets on a UDP socket, on a thread."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.05)
        self.address = self.sock.getsockname()
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.packets.append(self.sock.recv(65536))
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return

    def messages(self) -> list[tuple[int, bytes]]:
        """(seq, message) of every message received, in arrival order."""
        out = []
        for p in list(self.packets):
            seq, count = struct.unpack_from(">QH", p, 10)
            if count in (0, 0xFFFF):
                continue
            o = 20
            for k in range(count):
                n = struct.unpack_from(">H", p, o)[0]
                out.append((seq + k, p[o + 2:o + 2 + n]))
                o += 2 + n
        return out

    def wait_for(self, pred, timeout=5.0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            m = self.messages()
            if pred(m):
                return m
            time.sleep(0.01)
        return self.messages()

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.sock.close()
