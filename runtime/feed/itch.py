"""NASDAQ TotalView-ITCH 5.0: the message table and a Python encoder.

Layout apart from algorithm: this module says where the bytes of every ITCH 5.0 message
are (type, total length, body fields); `decoder.py` moves them in numba and the encoder
here builds them in Python for the load generator and the tests. Every message starts with
the same 11-byte header: type(1) stock locate(2) tracking number(2) timestamp(6, ns since
midnight). Integers are big-endian, Price(4) is a u32 with 4 implied decimals, Price(8) a
u64 with 8, stock symbols are 8 bytes of space-padded ASCII. Lengths are the spec's (NASDAQ
TotalView-ITCH 5.0 specification, section 1.x per message); a decoder walks each message by
the MoldUDP64 length prefix and only requires it to be at least the spec length.

The encoder is slow-path Python (struct). `encode(msg_type, **fields)` builds any type from
named fields (missing ones are zero / spaces); `encode_add(...)` and friends are the typed
shortcuts for the messages the decoder turns into events.
"""
from __future__ import annotations

import struct

import numpy as np

from tickpath.runtime.core.errors import ConfigError

HEADER_BYTES = 11
TIMESTAMP_OFFSET = 5        # the 6-byte timestamp inside every message (offsets below)
TIMESTAMP_BYTES = 6
MAX_TIMESTAMP_NS = (1 << 48) - 1

# Body fields after the common header: (name, struct code). "c" = one ASCII byte,
# "Ns" = N-byte ASCII (space padded), H/I/Q = big-endian u16/u32/u64.
BODY_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    # 1.1 System Event
    "S": (("event_code", "c"),),
    # 1.2.1 Stock Directory
    "R": (("stock", "8s"), ("market_category", "c"), ("financial_status", "c"),
          ("round_lot_size", "I"), ("round_lots_only", "c"), ("issue_classification", "c"),
          ("issue_subtype", "2s"), ("authenticity", "c"), ("short_sale_threshold", "c"),
          ("ipo_flag", "c"), ("luld_tier", "c"), ("etp_flag", "c"),
          ("etp_leverage_factor", "I"), ("inverse_indicator", "c")),
    # 1.2.2 Stock Trading Action
    "H": (("stock", "8s"), ("trading_state", "c"), ("reserved", "c"), ("reason", "4s")),
    # 1.2.3 Reg SHO Short Sale Price Test Restricted Indicator
    "Y": (("stock", "8s"), ("reg_sho_action", "c")),
    # 1.2.4 Market Participant Position
    "L": (("mpid", "4s"), ("stock", "8s"), ("primary_market_maker", "c"),
          ("market_maker_mode", "c"), ("participant_state", "c")),
    # 1.2.5.1 MWCB Decline Level (Price(8))
    "V": (("level1", "Q"), ("level2", "Q"), ("level3", "Q")),
    # 1.2.5.2 MWCB Status
    "W": (("breached_level", "c"),),
    # 1.2.6 IPO Quoting Period Update
    "K": (("stock", "8s"), ("release_time_s", "I"), ("release_qualifier", "c"),
          ("ipo_price", "I")),
    # 1.2.7 LULD Auction Collar
    "J": (("stock", "8s"), ("reference_price", "I"), ("upper_price", "I"),
          ("lower_price", "I"), ("extension", "I")),
    # 1.2.8 Operational Halt
    "h": (("stock", "8s"), ("market_code", "c"), ("halt_action", "c")),
    # 1.3.1 Add Order, no MPID
    "A": (("order_ref", "Q"), ("side", "c"), ("shares", "I"), ("stock", "8s"), ("price", "I")),
    # 1.3.2 Add Order with MPID attribution
    "F": (("order_ref", "Q"), ("side", "c"), ("shares", "I"), ("stock", "8s"), ("price", "I"),
          ("attribution", "4s")),
    # 1.4.1 Order Executed
    "E": (("order_ref", "Q"), ("shares", "I"), ("match", "Q")),
    # 1.4.2 Order Executed with Price
    "C": (("order_ref", "Q"), ("shares", "I"), ("match", "Q"), ("printable", "c"),
          ("price", "I")),
    # 1.4.3 Order Cancel
    "X": (("order_ref", "Q"), ("shares", "I")),
    # 1.4.4 Order Delete
    "D": (("order_ref", "Q"),),
    # 1.4.5 Order Replace
    "U": (("order_ref", "Q"), ("new_order_ref", "Q"), ("shares", "I"), ("price", "I")),
    # 1.5.1 Trade (non-cross)
    "P": (("order_ref", "Q"), ("side", "c"), ("shares", "I"), ("stock", "8s"), ("price", "I"),
          ("match", "Q")),
    # 1.5.2 Cross Trade (8-byte shares)
    "Q": (("shares", "Q"), ("stock", "8s"), ("price", "I"), ("match", "Q"),
          ("cross_type", "c")),
    # 1.5.3 Broken Trade
    "B": (("match", "Q"),),
    # 1.6 Net Order Imbalance Indicator
    "I": (("paired_shares", "Q"), ("imbalance_shares", "Q"), ("imbalance_direction", "c"),
          ("stock", "8s"), ("far_price", "I"), ("near_price", "I"),
          ("reference_price", "I"), ("cross_type", "c"), ("price_variation", "c")),
    # 1.7 Retail Price Improvement Indicator
    "N": (("stock", "8s"), ("interest_flag", "c")),
    # 1.8 Direct Listing with Capital Raise Price Discovery
    "O": (("stock", "8s"), ("open_eligibility", "c"), ("min_price", "I"), ("max_price", "I"),
          ("near_execution_price", "I"), ("near_execution_time_ns", "Q"),
          ("lower_collar", "I"), ("upper_collar", "I")),
}

_HEADER_FMT = ">cHH6s"
_FORMATS = {t: ">" + "".join(code for _, code in f) for t, f in BODY_FIELDS.items()}

# Total message length per type (header included), computed from the layouts above.
MESSAGE_BYTES: dict[str, int] = {
    t: HEADER_BYTES + struct.calcsize(fmt) for t, fmt in _FORMATS.items()
}


def field_offset(msg_type: str, name: str) -> int:
    """Byte offset of a field from the start of the message (the header included), from
    BODY_FIELDS: the one place the layout is written down."""
    pos = HEADER_BYTES
    for field, code in BODY_FIELDS[msg_type]:
        if field == name:
            return pos
        pos += struct.calcsize(">" + code)
    raise KeyError(f"{msg_type}.{name}")


# Offsets the decoder (numba) and the generators read: plain ints, frozen into compiled code.
# Header fields, common to every type:
LOCATE_OFFSET = 1
TRACKING_OFFSET = 3
# Body fields, named <type>_<field>:
A_ORDER_REF = field_offset("A", "order_ref")
A_SIDE = field_offset("A", "side")
A_SHARES = field_offset("A", "shares")
A_STOCK = field_offset("A", "stock")
A_PRICE = field_offset("A", "price")
F_ATTRIBUTION = field_offset("F", "attribution")
D_ORDER_REF = field_offset("D", "order_ref")
E_ORDER_REF = field_offset("E", "order_ref")
E_SHARES = field_offset("E", "shares")
E_MATCH = field_offset("E", "match")
X_ORDER_REF = field_offset("X", "order_ref")
X_SHARES = field_offset("X", "shares")
U_ORDER_REF = field_offset("U", "order_ref")
U_NEW_ORDER_REF = field_offset("U", "new_order_ref")
U_SHARES = field_offset("U", "shares")
U_PRICE = field_offset("U", "price")
C_ORDER_REF = field_offset("C", "order_ref")
C_SHARES = field_offset("C", "shares")
C_MATCH = field_offset("C", "match")
C_PRINTABLE = field_offset("C", "printable")
C_PRICE = field_offset("C", "price")
P_ORDER_REF = field_offset("P", "order_ref")
P_SIDE = field_offset("P", "side")
P_SHARES = field_offset("P", "shares")
P_STOCK = field_offset("P", "stock")
P_PRICE = field_offset("P", "price")
P_MATCH = field_offset("P", "match")
Q_SHARES = field_offset("Q", "shares")
Q_PRICE = field_offset("Q", "price")
Q_MATCH = field_offset("Q", "match")
Q_CROSS_TYPE = field_offset("Q", "cross_type")
S_EVENT_CODE = field_offset("S", "event_code")
R_STOCK = field_offset("R", "stock")
H_TRADING_STATE = field_offset("H", "trading_state")
B_MATCH = field_offset("B", "match")
# F is A with an attribution after it: the decoder reads both through the A offsets
assert BODY_FIELDS["F"][:len(BODY_FIELDS["A"])] == BODY_FIELDS["A"]

# The types the decoder turns into event records; every other spec type is walked over.
DECODED_TYPES = frozenset("SRHAFECXDUPQB")

# numba-friendly tables indexed by the type byte: spec length (0 = not an ITCH 5.0 type)
# and kind. Read-only globals, which numba freezes into the compiled code.
KIND_UNKNOWN = 0
KIND_SKIPPED = 1
KIND_DECODED = 2
LENGTH_BY_TYPE = np.zeros(256, dtype=np.int64)
KIND_BY_TYPE = np.zeros(256, dtype=np.int64)
for _t, _n in MESSAGE_BYTES.items():
    LENGTH_BY_TYPE[ord(_t)] = _n
    KIND_BY_TYPE[ord(_t)] = KIND_DECODED if _t in DECODED_TYPES else KIND_SKIPPED
LENGTH_BY_TYPE.flags.writeable = False
KIND_BY_TYPE.flags.writeable = False
MIN_DECODED_BYTES = min(MESSAGE_BYTES[t] for t in DECODED_TYPES)


def _field_value(msg_type: str, name: str, code: str, value):
    """Convert one field to what struct wants; ASCII fields accept str or bytes."""
    if code.endswith("s") or code == "c":
        width = 1 if code == "c" else int(code[:-1])
        if value is None:
            value = b" " * width
        if isinstance(value, str):
            value = value.encode("ascii")
        if isinstance(value, int):  # an ASCII code given as a number
            value = bytes([value])
        if not isinstance(value, (bytes, bytearray)) or len(value) > width:
            raise ConfigError("ITCH ascii field too long or not text", msg_type=msg_type,
                              field=name, value=value, width=width)
        return bytes(value).ljust(width, b" ")
    return 0 if value is None else int(value)


def encode(msg_type: str, locate: int = 0, tracking: int = 0, ts_ns: int = 0, **fields) -> bytes:
    """Build one ITCH 5.0 message of `msg_type` from named body fields (see BODY_FIELDS)."""
    layout = BODY_FIELDS.get(msg_type)
    if layout is None:
        raise ConfigError("unknown ITCH 5.0 message type", msg_type=msg_type)
    names = {n for n, _ in layout}
    extra = set(fields) - names
    if extra:
        raise ConfigError("unknown ITCH field", msg_type=msg_type, fields=sorted(extra))
    if not 0 <= ts_ns <= MAX_TIMESTAMP_NS:
        raise ConfigError("ITCH timestamp out of the 6-byte range", ts_ns=ts_ns)
    values = [_field_value(msg_type, n, c, fields.get(n)) for n, c in layout]
    try:
        head = struct.pack(_HEADER_FMT, msg_type.encode("ascii"), locate, tracking,
                           int(ts_ns).to_bytes(6, "big"))
        body = struct.pack(_FORMATS[msg_type], *values)
    except struct.error as exc:
        raise ConfigError("ITCH field out of range", msg_type=msg_type, reason=str(exc),
                          locate=locate, tracking=tracking) from exc
    return head + body


# Typed shortcuts: the messages the decoder turns into events.
def encode_system_event(locate, tracking, ts_ns, event_code) -> bytes:
    return encode("S", locate, tracking, ts_ns, event_code=event_code)


def encode_stock_directory(locate, tracking, ts_ns, stock, round_lot_size=100, **rest) -> bytes:
    rest.setdefault("market_category", "Q")
    rest.setdefault("financial_status", "N")
    rest.setdefault("round_lots_only", "N")
    rest.setdefault("issue_classification", "C")
    rest.setdefault("authenticity", "P")
    rest.setdefault("short_sale_threshold", "N")
    rest.setdefault("ipo_flag", "N")
    rest.setdefault("luld_tier", "1")
    rest.setdefault("etp_flag", "N")
    rest.setdefault("inverse_indicator", "N")
    return encode("R", locate, tracking, ts_ns, stock=stock, round_lot_size=round_lot_size,
                  **rest)


def encode_trading_action(locate, tracking, ts_ns, stock, trading_state, reason="") -> bytes:
    return encode("H", locate, tracking, ts_ns, stock=stock, trading_state=trading_state,
                  reserved=" ", reason=reason)


def encode_add(locate, tracking, ts_ns, order_ref, side, shares, stock, price) -> bytes:
    return encode("A", locate, tracking, ts_ns, order_ref=order_ref, side=side, shares=shares,
                  stock=stock, price=price)


def encode_add_mpid(locate, tracking, ts_ns, order_ref, side, shares, stock, price,
                    attribution) -> bytes:
    return encode("F", locate, tracking, ts_ns, order_ref=order_ref, side=side, shares=shares,
                  stock=stock, price=price, attribution=attribution)


def encode_executed(locate, tracking, ts_ns, order_ref, shares, match) -> bytes:
    return encode("E", locate, tracking, ts_ns, order_ref=order_ref, shares=shares, match=match)


def encode_executed_price(locate, tracking, ts_ns, order_ref, shares, match, printable,
                          price) -> bytes:
    return encode("C", locate, tracking, ts_ns, order_ref=order_ref, shares=shares, match=match,
                  printable=printable, price=price)


def encode_cancel(locate, tracking, ts_ns, order_ref, shares) -> bytes:
    return encode("X", locate, tracking, ts_ns, order_ref=order_ref, shares=shares)


def encode_delete(locate, tracking, ts_ns, order_ref) -> bytes:
    return encode("D", locate, tracking, ts_ns, order_ref=order_ref)


def encode_replace(locate, tracking, ts_ns, order_ref, new_order_ref, shares, price) -> bytes:
    return encode("U", locate, tracking, ts_ns, order_ref=order_ref,
                  new_order_ref=new_order_ref, shares=shares, price=price)


def encode_trade(locate, tracking, ts_ns, order_ref, side, shares, stock, price, match) -> bytes:
    return encode("P", locate, tracking, ts_ns, order_ref=order_ref, side=side, shares=shares,
                  stock=stock, price=price, match=match)


def encode_cross_trade(locate, tracking, ts_ns, shares, stock, price, match,
                       cross_type) -> bytes:
    return encode("Q", locate, tracking, ts_ns, shares=shares, stock=stock, price=price,
                  match=match, cross_type=cross_type)


def encode_broken_trade(locate, tracking, ts_ns, match) -> bytes:
    return encode("B", locate, tracking, ts_ns, match=match)


# The types the decoder walks over (SKIPPED_TYPES): typed shortcuts too, for test feeds.
def encode_reg_sho(locate, tracking, ts_ns, stock, reg_sho_action) -> bytes:
    return encode("Y", locate, tracking, ts_ns, stock=stock, reg_sho_action=reg_sho_action)


def encode_market_participant(locate, tracking, ts_ns, mpid, stock, primary_market_maker,
                              market_maker_mode, participant_state) -> bytes:
    return encode("L", locate, tracking, ts_ns, mpid=mpid, stock=stock,
                  primary_market_maker=primary_market_maker,
                  market_maker_mode=market_maker_mode, participant_state=participant_state)


def encode_mwcb_decline(locate, tracking, ts_ns, level1, level2, level3) -> bytes:
    """Levels are Price(8): 8 implied decimals."""
    return encode("V", locate, tracking, ts_ns, level1=level1, level2=level2, level3=level3)


def encode_mwcb_status(locate, tracking, ts_ns, breached_level) -> bytes:
    return encode("W", locate, tracking, ts_ns, breached_level=breached_level)


def encode_ipo_quoting(locate, tracking, ts_ns, stock, release_time_s, release_qualifier,
                       ipo_price) -> bytes:
    return encode("K", locate, tracking, ts_ns, stock=stock, release_time_s=release_time_s,
                  release_qualifier=release_qualifier, ipo_price=ipo_price)


def encode_luld_collar(locate, tracking, ts_ns, stock, reference_price, upper_price,
                       lower_price, extension) -> bytes:
    return encode("J", locate, tracking, ts_ns, stock=stock, reference_price=reference_price,
                  upper_price=upper_price, lower_price=lower_price, extension=extension)


def encode_operational_halt(locate, tracking, ts_ns, stock, market_code, halt_action) -> bytes:
    return encode("h", locate, tracking, ts_ns, stock=stock, market_code=market_code,
                  halt_action=halt_action)


def encode_noii(locate, tracking, ts_ns, paired_shares, imbalance_shares, imbalance_direction,
                stock, far_price, near_price, reference_price, cross_type,
                price_variation) -> bytes:
    return encode("I", locate, tracking, ts_ns, paired_shares=paired_shares,
                  imbalance_shares=imbalance_shares, imbalance_direction=imbalance_direction,
                  stock=stock, far_price=far_price, near_price=near_price,
                  reference_price=reference_price, cross_type=cross_type,
                  price_variation=price_variation)


def encode_rpii(locate, tracking, ts_ns, stock, interest_flag) -> bytes:
    return encode("N", locate, tracking, ts_ns, stock=stock, interest_flag=interest_flag)


def encode_dlcr(locate, tracking, ts_ns, stock, open_eligibility, min_price, max_price,
                near_execution_price, near_execution_time_ns, lower_collar,
                upper_collar) -> bytes:
    return encode("O", locate, tracking, ts_ns, stock=stock, open_eligibility=open_eligibility,
                  min_price=min_price, max_price=max_price,
                  near_execution_price=near_execution_price,
                  near_execution_time_ns=near_execution_time_ns, lower_collar=lower_collar,
                  upper_collar=upper_collar)


