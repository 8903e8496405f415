"""SoupBinTCP 4.1 framing (the venue's side): packet layout and a Python codec.

Every packet is `u16 length (big-endian, not counting itself) | u8 type | payload`.
Client -> server: L login request (username 6, password 10, requested session 10,
requested sequence number 20 ASCII digits space padded, heartbeat timeout 5 ASCII ms —
4.1; a 3.0-style request without the timeout is accepted too), U unsequenced data, R
client heartbeat, O logout request. Server -> client: A login accepted (session 10,
sequence number 20 = the next sequenced message), J login rejected (reason A not
authorised, S session not available), S sequenced data, U unsequenced data, H server
heartbeat, Z end of session. '+' debug either way (ignored).
"""
from __future__ import annotations

import struct

from tickpath.runtime.core.errors import ConfigError

LOGIN_REQUEST = ord("L")
UNSEQUENCED = ord("U")
CLIENT_HEARTBEAT = ord("R")
LOGOUT_REQUEST = ord("O")
DEBUG = ord("+")
LOGIN_ACCEPTED = ord("A")
LOGIN_REJECTED = ord("J")
SEQUENCED = ord("S")
SERVER_HEARTBEAT = ord("H")
END_OF_SESSION = ord("Z")

REJECT_NOT_AUTHORIZED = b"A"
REJECT_SESSION_UNAVAILABLE = b"S"

LOGIN_PAYLOAD_41 = 6 + 10 + 10 + 20 + 5
LOGIN_PAYLOAD_30 = 6 + 10 + 10 + 20
MAX_INBOUND_PAYLOAD = 1 + 47 + 256        # U + the longest OUCH message with an appendage
HEARTBEAT_INTERVAL_NS = 1_000_000_000      # each side sends a heartbeat after 1 s of silence
DEFAULT_TIMEOUT_MS = 15_000                # a client silent this long is logged out


def packet(ptype: int | bytes, payload: bytes = b"") -> bytes:
    t = ptype if isinstance(ptype, bytes) else bytes([ptype])
    return struct.pack(">H", 1 + len(payload)) + t + payload


def login_request(username: str, password: str, session: str = "", seq: int = 0,
                  timeout_ms: int | None = DEFAULT_TIMEOUT_MS) -> bytes:
    p = (username.encode().ljust(6)[:6] + password.encode().ljust(10)[:10]
         + session.encode().ljust(10)[:10] + str(seq).encode().rjust(20))
    if timeout_ms is not None:
        p += str(timeout_ms).encode().rjust(5)
    return packet(LOGIN_REQUEST, p)


def parse_login(payload: bytes) -> dict:
    if len(payload) not in (LOGIN_PAYLOAD_41, LOGIN_PAYLOAD_30):
        raise ConfigError("login request of the wrong length", length=len(payload))
    t = payload[46:51].strip()
    seq = payload[26:46].strip()
    if seq and not seq.isdigit() or t and not t.isdigit():
        raise ConfigError("login request numbers are not ASCII digits", seq=seq, timeout=t)
    return {"username": payload[0:6].decode("ascii", "replace").strip(),
            "password": payload[6:16].decode("ascii", "replace").strip(),
            "session": payload[16:26].decode("ascii", "replace").strip(),
            "seq": int(seq or 0), "timeout_ms": int(t) if t else DEFAULT_TIMEOUT_MS}


def login_accepted(session: bytes, next_seq: int) -> bytes:
    return packet(LOGIN_ACCEPTED, session.ljust(10)[:10] + str(next_seq).encode().rjust(20))


def login_rejected(reason: bytes) -> bytes:
    return packet(LOGIN_REJECTED, reason)


def split(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete packets [(type, payload)] and the incomplete rest."""
    out, o = [], 0
    while len(buf) - o >= 2:
        n = struct.unpack_from(">H", buf, o)[0]
        if n == 0 or len(buf) - o - 2 < n:
            break
        out.append((buf[o + 2], bytes(buf[o + 3:o + 2 + n])))
        o += 2 + n
    return out, bytes(buf[o:])
