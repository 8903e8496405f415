"""MoldUDP64 downstream packets: the header layout and a Python encoder.

Layout apart from algorithm: offsets and sizes here, byte moving in `decoder.py` (numba)
and in the encoder below (slow path, for the load generator and the tests).

    byte 0                10                      18      20
         +----------------+-----------------------+-------+--------+-----------+--------+---
         | session (10 B) | sequence number (u64) | count | len u16| message   | len u16| ...
         | ASCII          | big-endian, seq of    | u16   | BE     | bytes     |        |
         |                | the first message     | BE    |        |           |        |
         +----------------+-----------------------+-------+--------+-----------+--------+---

count 0 is a heartbeat and count 0xFFFF the end of session: both carry no messages and
their sequence number is the next one the server will send. Sequence numbers start at 1
(NASDAQ MoldUDP64 protocol specification v1.00).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from tickpath.runtime.core.errors import ConfigError

SESSION_OFFSET = 0
SESSION_BYTES = 10
SEQ_OFFSET = 10
COUNT_OFFSET = 18
HEADER_BYTES = 20
LENGTH_PREFIX_BYTES = 2
HEARTBEAT_COUNT = 0
END_OF_SESSION_COUNT = 0xFFFF
MAX_MESSAGES_PER_PACKET = 0xFFFE     # 0xFFFF is reserved for end of session
MAX_MESSAGE_BYTES = 0xFFFF           # the u16 length prefix
MAX_UDP_PAYLOAD_BYTES = 65507        # IPv4: 65535 - 20 (IP) - 8 (UDP)
MTU1500_PAYLOAD_BYTES = 1472         # 1500 - 20 (IP) - 8 (UDP): one unfragmented datagram
FIRST_SEQ = 1

_HEADER = struct.Struct(">10sQH")


def session_bytes(session: str | bytes) -> bytes:
    """The 10-byte session field: ASCII, right-padded with spaces."""
    if isinstance(session, str):
        try:
            session = session.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ConfigError("MoldUDP64 session must be ASCII", session=session) from exc
    if not isinstance(session, (bytes, bytearray)) or len(session) > SESSION_BYTES:
        raise ConfigError("MoldUDP64 session must be at most 10 ASCII bytes", session=session)
    return bytes(session).ljust(SESSION_BYTES, b" ")


def _header(session, seq: int, count: int) -> bytes:
    if not 0 <= seq < (1 << 64):
        raise ConfigError("MoldUDP64 sequence number out of u64 range", seq=seq)
    return _HEADER.pack(session_bytes(session), seq, count)


def mold_packet(session: str | bytes, seq: int, messages: list[bytes]) -> bytes:
    """One downstream packet carrying `messages`; `seq` is the first message's number."""
    if not 1 <= len(messages) <= MAX_MESSAGES_PER_PACKET:
        raise ConfigError("MoldUDP64 message count out of range", count=len(messages),
                          max_count=MAX_MESSAGES_PER_PACKET)
    parts = [_header(session, seq, len(messages))]
    for i, msg in enumerate(messages):
        if not 1 <= len(msg) <= MAX_MESSAGE_BYTES:
            raise ConfigError("MoldUDP64 message length out of range", index=i,
                              length=len(msg))
        parts.append(len(msg).to_bytes(2, "big"))
        parts.append(bytes(msg))
    return b"".join(parts)


def mold_heartbeat(session: str | bytes, next_seq: int) -> bytes:
    """A heartbeat: no messages, carries the next sequence number the server will send."""
    return _header(session, next_seq, HEARTBEAT_COUNT)


def mold_end_of_session(session: str | bytes, next_seq: int) -> bytes:
    """End of session: no more messages will follow in this session."""
    return _header(session, next_seq, END_OF_SESSION_COUNT)


def parse_header(pkt: bytes) -> tuple[bytes, int, int]:
    """(session, seq, count) of a packet, for the slow path and the tests."""
    if len(pkt) < HEADER_BYTES:
        raise ConfigError("MoldUDP64 packet shorter than its header", length=len(pkt),
                          header_bytes=HEADER_BYTES)
    return _HEADER.unpack_from(pkt, 0)


@dataclass(frozen=True)
class MoldPackets:
    """A packetized stream (the generator's, an ITCH file's chunk): what senders and the
    retransmission server send. MoldUDP64 packets back to back: packet k is buf[offsets[k]:offsets[k]+lengths[k]],
    carrying messages [msg_first[k], msg_first[k]+msg_count[k]), the first numbered
    first_seq[k]. ts_offsets[i] is where message i's 6-byte timestamp lies in buf."""
    buf: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    first_seq: np.ndarray
    msg_first: np.ndarray
    msg_count: np.ndarray
    ts_offsets: np.ndarray
    session: bytes

    @property
    def n_packets(self) -> int:
        return len(self.lengths)

    def packet(self, k: int) -> bytes:
        o = self.offsets[k]
        return self.buf[o:o + self.lengths[k]].tobytes()
