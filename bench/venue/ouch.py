"""NASDAQ OUCH 5.0 message layouts (the venue's side) and a Python codec.

Layout apart from algorithm: the tables say where the bytes of every message the venue
takes and sends are (REFERENCE.md, from NASDAQ's OUCH 5.0 specification); wire.py moves
them in numba on the network thread, the Python encode/decode here serve the slow path
and the tests. All integers are big-endian; Price is 8 bytes with 4 implied decimals;
timestamps are 8 bytes of ns since midnight; alpha fields are space padded. Messages
with an appendage end in AppendageLength (u16) followed by that many bytes of optional
fields ({len u8, tag u8, value}); the venue reads over them and sends none.

This is the venue's own implementation, written from the spec on purpose apart from the
client side in runtime/trading: two implementations that must interoperate check each
other.
"""
from __future__ import annotations

import struct

from tickpath.runtime.core.errors import ConfigError

# (name, struct code); "c" one ASCII byte, "Ns" N bytes, I u32, H u16, Q u64
INBOUND: dict[str, tuple[tuple[str, str], ...]] = {
    "O": (("uref", "I"), ("side", "c"), ("qty", "I"), ("symbol", "8s"), ("price", "Q"),
          ("tif", "c"), ("display", "c"), ("capacity", "c"), ("iso", "c"), ("cross", "c"),
          ("clordid", "14s"), ("appendage_len", "H")),
    "U": (("orig_uref", "I"), ("uref", "I"), ("qty", "I"), ("price", "Q"), ("tif", "c"),
          ("display", "c"), ("iso", "c"), ("clordid", "14s"), ("appendage_len", "H")),
    "X": (("uref", "I"), ("qty", "I")),
    "M": (("uref", "I"), ("side", "c"), ("qty", "I")),
}
OUTBOUND: dict[str, tuple[tuple[str, str], ...]] = {
    "S": (("ts", "Q"), ("event", "c")),
    "A": (("ts", "Q"), ("uref", "I"), ("side", "c"), ("qty", "I"), ("symbol", "8s"),
          ("price", "Q"), ("tif", "c"), ("display", "c"), ("order_ref", "Q"), ("capacity", "c"),
          ("iso", "c"), ("cross", "c"), ("state", "c"), ("clordid", "14s"), ("appendage_len", "H")),
    "U": (("ts", "Q"), ("orig_uref", "I"), ("uref", "I"), ("side", "c"), ("qty", "I"),
          ("symbol", "8s"), ("price", "Q"), ("tif", "c"), ("display", "c"), ("order_ref", "Q"),
          ("capacity", "c"), ("iso", "c"), ("cross", "c"), ("state", "c"), ("clordid", "14s"),
          ("appendage_len", "H")),
    "C": (("ts", "Q"), ("uref", "I"), ("qty", "I"), ("reason", "c")),
    "E": (("ts", "Q"), ("uref", "I"), ("qty", "I"), ("price", "Q"), ("liquidity", "c"),
          ("match", "Q"), ("appendage_len", "H")),
    "J": (("ts", "Q"), ("uref", "I"), ("reason", "H"), ("clordid", "14s")),
    "M": (("ts", "Q"), ("uref", "I"), ("side", "c"), ("qty", "I")),
    # Cancel Pending / Cancel Reject answer a cancel of a cross order in the pre-cross late
    # period (NASDAQ's specification); the venue runs the continuous market only (cross
    # types other than N are rejected), so it never sends them: layouts for decoders.
    "P": (("ts", "Q"), ("uref", "I")),
    "I": (("ts", "Q"), ("uref", "I")),
}
_IN_FMT = {t: ">c" + "".join(c for _, c in f) for t, f in INBOUND.items()}
_OUT_FMT = {t: ">c" + "".join(c for _, c in f) for t, f in OUTBOUND.items()}
INBOUND_BYTES = {t: struct.calcsize(f) for t, f in _IN_FMT.items()}     # O 47, U 40, X 9, M 10
OUTBOUND_BYTES = {t: struct.calcsize(f) for t, f in _OUT_FMT.items()}   # S 10, A 64, U 68, C 18, E 36, J 29, M 18
assert (INBOUND_BYTES["O"], INBOUND_BYTES["U"], INBOUND_BYTES["X"], INBOUND_BYTES["M"]) == (47, 40, 9, 10)
assert (OUTBOUND_BYTES["A"], OUTBOUND_BYTES["U"], OUTBOUND_BYTES["C"], OUTBOUND_BYTES["E"],
        OUTBOUND_BYTES["J"]) == (64, 68, 18, 36, 29)
# where the appendage length sits (offset) in the messages that carry one
APPENDAGE_OFFSET = {"O": 45, "U": 38}
MAX_APPENDAGE_BYTES = 256        # more than any optional field set; beyond: malformed


def _value(code: str, v):
    if code == "c" or code.endswith("s"):
        width = 1 if code == "c" else int(code[:-1])
        if v is None:
            v = b""
        if isinstance(v, str):
            v = v.encode("ascii")
        if isinstance(v, int):
            v = bytes([v])
        if len(v) > width:
            raise ConfigError("OUCH alpha field too long", value=v, width=width)
        return bytes(v).ljust(width, b" ")
    return 0 if v is None else int(v)


def _encode(table, fmts, msg_type: str, fields: dict) -> bytes:
    layout = table.get(msg_type)
    if layout is None:
        raise ConfigError("unknown OUCH message type", msg_type=msg_type)
    extra = set(fields) - {n for n, _ in layout}
    if extra:
        raise ConfigError("unknown OUCH field", msg_type=msg_type, fields=sorted(extra))
    return struct.pack(fmts[msg_type], msg_type.encode(), *(_value(c, fields.get(n)) for n, c in layout))


def _decode(table, fmts, msg: bytes) -> dict:
    t = chr(msg[0])
    if t not in table or len(msg) < struct.calcsize(fmts[t]):
        raise ConfigError("not an OUCH 5.0 message of a known type and length", type=t, length=len(msg))
    vals = struct.unpack_from(fmts[t], msg)
    return {"type": t} | {n: v for (n, _), v in zip(table[t], vals[1:])}


def encode_inbound(msg_type: str, **fields) -> bytes:
    return _encode(INBOUND, _IN_FMT, msg_type, fields)


def encode_outbound(msg_type: str, **fields) -> bytes:
    return _encode(OUTBOUND, _OUT_FMT, msg_type, fields)


def decode_inbound(msg: bytes) -> dict:
    return _decode(INBOUND, _IN_FMT, msg)


def decode_outbound(msg: bytes) -> dict:
    return _decode(OUTBOUND, _OUT_FMT, msg)


def price4(dollars: float) -> int:
    return int(round(dollars * 10_000))
