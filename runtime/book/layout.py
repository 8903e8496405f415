"""Where the bytes of the order books are (layout apart from algorithm; see book.py).

All books of one pipeline live in one `Books` namedtuple of preallocated numpy arrays, sized
once from configuration, so numba passes it around as a plain tuple and nothing is
allocated per event. Two structures:

Order table: open addressing with linear probing and backward-shift deletion (no
tombstones, so probe chains never rot over a trading day). `max_orders` (a power of two)
is the number of live orders it accepts; it has 2 * max_orders slots so the load factor
stays <= 0.5 and probes stay short. The hash keeps blocks of 2^HASH_BLOCK_BITS (16)
consecutive refs in consecutive slots and scatters the blocks (Fibonacci hashing of
ref >> 4): ITCH refs rise through the day and orders are mostly touched soon after they
are added, so recent orders share a few hot cache lines and new ones stream in order,
while strided or clustered refs still spread over the table. Why 16: a backward-shift
delete scans to the end of its run, and full blocks make runs at least a block long
(measured on the benchmark flow: 64-ref blocks made deletes 2x slower, 1-ref blocks --
plain Fibonacci hashing -- made every add a cache miss).
One slot is 32 bytes, two per cache line:

    byte 0        8          16         24      28    30   31   32
         +--------+----------+----------+-------+-----+----+----+
         |  ref   | level_id |  shares  | price | loc |side|used|
         |  u64   |   i64    |   i64    |  u32  | u16 | u8 | u8 |
         +--------+----------+----------+-------+-----+----+----+

    ref       ITCH order reference number (the key)
    level_id  id of the price level that counts this order's shares; 0 = counted nowhere
              (its level was refused or evicted when the side had no room, see book.py)
    shares    remaining shares
    price     ITCH Price(4), 4 implied decimals
    loc       stock locate
    side      BID=0 / ASK=1
    used      1 = slot holds a live order

Price levels, per locate and side, in arrays shaped (n_locates, 2, max_levels_per_side):
`lvl_price`, `lvl_shares` (total), `lvl_count` (orders), `lvl_id` (unique per level ever
created, from `state[NEXT_LEVEL_ID]`), with `n_levels[loc, side]` in use. Each side is sorted
worst-first, so the BEST level is at index n-1: best bid/ask are one read, depth is the
reversed slice [n-1::-1], and the common case -- activity at the top of the book -- shifts
only the few levels above the one touched when a level appears or disappears.

Last trade per locate: `last_trade[loc] = (price, shares, ts_exch)`.

Reliability per locate: `unreliable[loc]` is 0 while that book is known right; a bound reached
(a level or an order refused for capacity) sets a REASON_* bit, and `book_ok` then reads False
until the books are cleared: strategies must not trade on a book missing part of its flow.

Books have one writer (the thread running book_apply); readers on other threads must wait
for it to stop -- there is no seqlock here.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from tickpath.runtime.core.errors import ConfigError

BID = 0
ASK = 1

ORDER_DTYPE = np.dtype(
    [
        ("ref", "<u8"),
        ("level_id", "<i8"),
        ("shares", "<i8"),
        ("price", "<u4"),
        ("locate", "<u2"),
        ("side", "u1"),
        ("used", "u1"),
    ],
    align=True,
)
assert ORDER_DTYPE.itemsize == 32, ORDER_DTYPE.itemsize

# state slots (one int64 array; mutable scalars must live in an array for numba)
N_LIVE = 0          # live orders in the table
MAX_ORDERS = 1      # live-order capacity (config)
HASH_SHIFT = 2      # 64 - log2(number of blocks), for the multiplicative block hash
NEXT_LEVEL_ID = 3   # next level id to hand out (ids start at 1; 0 = "no level")
HASH_BLOCK_BITS = 4 # log2(consecutive refs kept in consecutive slots)
N_STATE = 8

# last_trade columns
LT_PRICE = 0
LT_SHARES = 1
LT_TS_EXCH = 2

# unreliable[loc] bits: why that book may be wrong (kept until clear_books)
REASON_LEVELS = 1             # a price level was refused or evicted for capacity
REASON_ORDERS = 2             # an add was refused because the order table was full

MAX_LOCATES = 1 << 16         # the locate field is u16
MAX_ORDERS_LIMIT = 1 << 30    # 2^31 slots * 32 B = 64 GiB: beyond any real day
MAX_LEVELS_LIMIT = 1 << 16

Books = namedtuple(
    "Books",
    ["orders", "state", "lvl_price", "lvl_shares", "lvl_count", "lvl_id", "n_levels",
     "last_trade", "unreliable"],
)


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError("book size must be an integer", name=name, value=value,
                          allowed=f"{lo}..{hi}")
    v = int(value)
    if not lo <= v <= hi:
        raise ConfigError("book size out of range", name=name, value=v, allowed=f"{lo}..{hi}")
    return v


def validate_book_config(n_locates, max_orders, max_levels_per_side) -> tuple[int, int, int]:
    """Check the three sizes; ConfigError (key=value) naming the bad one and its range."""
    n_loc = _check_int("n_locates", n_locates, 1, MAX_LOCATES)
    n_ord = _check_int("max_orders", max_orders, 1, MAX_ORDERS_LIMIT)
    if n_ord & (n_ord - 1):
        raise ConfigError("max_orders must be a power of two", name="max_orders", value=n_ord,
                          allowed=f"1, 2, 4, ... {MAX_ORDERS_LIMIT}")
    n_lvl = _check_int("max_levels_per_side", max_levels_per_side, 1, MAX_LEVELS_LIMIT)
    return n_loc, n_ord, n_lvl


def table_bytes(n_locates: int, max_orders: int, max_levels_per_side: int) -> int:
    """Memory the books will take, for sizing before allocating."""
    n_loc, n_ord, n_lvl = validate_book_config(n_locates, max_orders, max_levels_per_side)
    per_level = 4 + 8 + 4 + 8
    return (2 * n_ord * ORDER_DTYPE.itemsize + n_loc * 2 * n_lvl * per_level
            + n_loc * (2 * 4 + 3 * 8 + 1) + N_STATE * 8)


def new_books(n_locates: int, max_orders: int, max_levels_per_side: int) -> Books:
    """Preallocate books for locates [0, n_locates), max_orders live orders (a power of two)
    and max_levels_per_side price levels per side of each locate."""
    n_loc, n_ord, n_lvl = validate_book_config(n_locates, max_orders, max_levels_per_side)
    n_slots = 2 * n_ord  # load factor <= 0.5 keeps linear probes short
    state = np.zeros(N_STATE, dtype=np.int64)
    state[MAX_ORDERS] = n_ord
    slot_bits = n_slots.bit_length() - 1
    block_bits = min(4, slot_bits - 1)  # >= 1 block bit left, so the shift stays < 64
    state[HASH_BLOCK_BITS] = block_bits
    state[HASH_SHIFT] = 64 - (slot_bits - block_bits)
    state[NEXT_LEVEL_ID] = 1
    shape = (n_loc, 2, n_lvl)
    return Books(
        orders=np.zeros(n_slots, dtype=ORDER_DTYPE),
        state=state,
        lvl_price=np.zeros(shape, dtype=np.uint32),
        lvl_shares=np.zeros(shape, dtype=np.int64),
        lvl_count=np.zeros(shape, dtype=np.int32),
        lvl_id=np.zeros(shape, dtype=np.int64),
        n_levels=np.zeros((n_loc, 2), dtype=np.int32),
        last_trade=np.zeros((n_loc, 3), dtype=np.int64),
        unreliable=np.zeros(n_loc, dtype=np.uint8),
    )


def clear_books(books: Books) -> None:
    """Empty every book in place (start of day), keeping the memory."""
    books.orders[:] = 0
    books.state[N_LIVE] = 0
    books.state[NEXT_LEVEL_ID] = 1
    for arr in (books.lvl_price, books.lvl_shares, books.lvl_count, books.lvl_id,
                books.n_levels, books.last_trade, books.unreliable):
        arr[:] = 0
