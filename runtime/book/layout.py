"""Where the bytes of the order books are (layout apart from algorithm; see levels.py and
orderbook.py).

All books of one pipeline live in one `Books` namedtuple of preallocated numpy arrays, sized
once from configuration, so numba passes it around as a plain tuple and nothing is
allocated per event. Three structures:

Order table, in two parts. ITCH order refs rise through the day and most updates name a
recent order (on the benchmark flows, the median reduce names the order 43 refs back, the
p99 about 1,000), so:

* `window`: a direct-mapped table of `window_slots` (a power of two) slots, slot = ref mod
  its size. A lookup is one read and a compare, a delete clears a flag, and adds stream
  through it in order. An add whose slot holds an older live order moves that order to the
  overflow table first; an add whose slot holds a newer one goes to the overflow table
  itself (refs out of order: replays, hostile feeds).
* the overflow, in two arrays. `orders` is a pool of max_orders records, handed out in
  order and reused through a free stack (`ov_free`), so the records in use stay packed at
  the pool's start and never move. `ov_index` finds them: open addressing over 2 *
  max_orders int32 slots (record + 1; 0 = empty), linear probing, backward-shift deletion (no
  tombstones, so probe chains never rot over a trading day), load factor <= 0.5 even if
  every live order were there. The hash keeps blocks of 2^HASH_BLOCK_BITS (16) consecutive
  refs in consecutive slots and scatters the blocks (Fibonacci hashing of ref >> 4). Why an
  index and a pool, not the records in the hash table itself: the orders a wrapping window
  evicts land at scattered slots, and every first touch of a page is a fault; 4-byte index
  slots fault in an eighth of the memory 32-byte records did (bench/RESULTS.md, eleventh
  session). The overflow is read only while it holds an order (`state[N_OVERFLOW]`) and
  only for refs no newer than the newest it ever held (`state[OVERFLOW_MAX_REF]`): a new
  ref's duplicate check is one read of the window.

`max_orders` (a power of two) bounds the live orders in both parts together.
One record is 32 bytes, two per cache line (window slots and pool records alike):

    byte 0        8          16      20    22   23   24      25   28    32
         +--------+----------+-------+-----+----+----+-------+----+-----+
         |  ref   |  shares  | price | loc |side|used|counted|pad |hint |
         |  u64   |   i64    |  u32  | u16 | u8 | u8 |  u8   |    | u32 |
         +--------+----------+-------+-----+----+----+-------+----+-----+

    ref       ITCH order reference number (the key)
    shares    remaining shares
    price     ITCH Price(4), 4 implied decimals
    loc       stock locate
    side      BID=0 / ASK=1
    used      1 = slot holds a live order
    counted   1 = its shares are in its price level; 0 = its level was refused for capacity
              (that book is then marked unreliable; the order never touches a level)
    hint      where its arena level was in its side's region when last seen (index from
              the worst end); levels move, so it is checked against the price before use
              (unused for a ladder level: its price is its index)

Price levels away from the touch: one arena `levels` of 16-byte records (price u32, orders
u32, shares i64) shared by every book. Each side of each locate owns one contiguous region of
it, `sides[loc, side].off` .. + `.cap`, holding its `.arena_n` levels
sorted worst-first, so the BEST level is at index n-1: best bid/ask are one read, and the
common case -- activity near the top -- shifts only the few levels above the one touched.
Regions have power-of-two capacities (LEVEL_REGION_MIN << class); a full region moves to
one twice its size, an emptied one is freed. Freed regions go on a free list per class
(the link is kept in the region's first record), new ones are cut from the arena's top.
Bounds, all from configuration: `max_levels_per_side` levels on one side of one book, and
`max_levels_total` records in the arena; a level refused by either marks its book
unreliable (see below). No allocation is ever driven by input.

Ladders: the region of a side around its touch lives in a ladder instead (ladder.py), a
ring of LADDER_SLOTS level records indexed by price: slot = (price / LADDER_TICK) mod
LADDER_SLOTS, for the prices of the side's window [lo_q, lo_q + LADDER_SLOTS) ticks. A level
is in the ladder exactly when its side has a ladder and its price is in the window and on
the cent grid; every other level is in the arena region above. So a level is found from its
price in one read, created and dropped in place, and the arena keeps what lies far from the
touch or off the grid (sub-penny prices below $1, hostile prices). Ladders come from one pool
of `ladders` (configuration) in the order sides first reach LADDER_MIN_LEVELS levels; a side
that stays shallower, or finds the pool empty, keeps all its levels in the arena: as fast
for a shallow side, slower for a deep one, never wrong.

Sides: `sides[loc, side]`, one 32-byte record a side (SIDE_DTYPE), so a locate's two sides
are 64 adjacent bytes (one or two cache lines: numpy aligns the array to 16 bytes, and
aligning it to 64 measured no gain, thirteenth and fourteenth sessions): `n_levels` (the
side's levels, ladder and arena: the bound max_levels_per_side applies to this sum), the
arena region (`off`, `cap`, `arena_n`), the ladder's first record (`lad`, -1: none yet), its
window's lowest tick (`lo_q`) and its best level (`best`, a ladder index, valid while it
holds a level). All int32: every bound fits (arena <= 2^30 records, ladders <= 2^17 *
LADDER_SLOTS records, prices < 2^32 / LADDER_TICK ticks).

Level cache: `level_cache`, a direct-mapped table of arena indices keyed by a hash of
(locate, side, price). An add tries it first: when the record it names lies inside that
side's region and holds that price, it is the level (prices are unique on a side), found in
one read instead of a search whose exit branch mispredicts. Any other entry (levels moved,
another key hashed there, -1) is just a miss: the search runs and refreshes the entry, so the
cache is never trusted and never needs invalidating. Sized from n_locates
(level_cache_slots), a power of two.

Last trade per locate: `last_trade[loc] = (price, shares, ts_exch)`.

Reliability per locate: `unreliable[loc]` is 0 while that book is known right; a bound reached
(a level or an order refused for capacity) sets a REASON_* bit, and `book_ok` then reads False
until the books are cleared: strategies must not trade on a book missing part of its flow.

Books have one writer (the thread running book_apply); readers on other threads must wait
for it to stop -- there is no seqlock here.
"""
from __future__ import annotations

import mmap
from collections import namedtuple

import numpy as np

from tickpath.runtime.core.errors import ConfigError

BID = 0
ASK = 1

ORDER_DTYPE = np.dtype(
    [
        ("ref", "<u8"),
        ("shares", "<i8"),
        ("price", "<u4"),
        ("locate", "<u2"),
        ("side", "u1"),
        ("used", "u1"),
        ("counted", "u1"),
        ("pad", "u1", (3,)),
        ("hint", "<u4"),
    ],
    align=True,
)
assert ORDER_DTYPE.itemsize == 32, ORDER_DTYPE.itemsize

LEVEL_DTYPE = np.dtype([("price", "<u4"), ("orders", "<u4"), ("shares", "<i8")], align=True)
assert LEVEL_DTYPE.itemsize == 16, LEVEL_DTYPE.itemsize

# state slots (one int64 array; mutable scalars must live in an array for numba)
N_LIVE = 0          # live orders in the table
MAX_ORDERS = 1      # live-order capacity (config)
HASH_SHIFT = 2      # 64 - log2(number of blocks), for the multiplicative block hash
ARENA_TOP = 3       # first never-used record of the level arena
HASH_BLOCK_BITS = 4 # log2(consecutive refs kept in consecutive slots)
MAX_SIDE_LEVELS = 5 # levels one side of one book may hold (config)
N_OVERFLOW = 6      # live orders in the overflow table (0: lookups read the window only)
OVERFLOW_MAX_REF = 7  # newest ref the overflow table has held since clear (u64 bits)
LEVEL_CACHE_SHIFT = 8  # 64 - log2(level_cache slots), for its multiplicative hash
POOL_TOP = 9        # overflow records ever handed out (the pool fills in order)
POOL_FREE = 10      # freed overflow records on the free stack
LADDER_TOP = 11     # ladders handed out (the pool fills in order, never frees until clear)
N_LADDERS = 12      # ladders in the pool (config)
N_STATE = 13

# the ladder (ladder.py): a price-indexed ring of level records for the region of a side
# around its touch
LADDER_TICK = 100          # Price(4) units a slot: one cent, the grid of every NASDAQ price >= $1
LADDER_SLOTS = 128         # slots a ladder (a power of two): a window of $1.28 a side
LADDER_MASK = LADDER_SLOTS - 1
LADDERS_DEFAULT_MAX = 1 << 14   # at most 16 Ki ladders (32 MiB) unless configured
LADDER_MIN_LEVELS = 8      # a side gets a ladder when it holds this many levels and adds one
# one side of one book: a locate's two sides are 64 adjacent bytes (all int32: see new_books)
SIDE_DTYPE = np.dtype([("n_levels", "<i4"), ("arena_n", "<i4"), ("off", "<i4"), ("cap", "<i4"),
                       ("lad", "<i4"), ("lo_q", "<i4"), ("best", "<i4"), ("pad", "<i4")],
                      align=True)
assert SIDE_DTYPE.itemsize == 32, SIDE_DTYPE.itemsize

LEVEL_REGION_MIN = 8       # records in the smallest region (class 0)
N_REGION_CLASSES = 16      # classes 0..15: 8 .. 262144 records
NO_REGION = -1

# last_trade columns
LT_PRICE = 0
LT_SHARES = 1
LT_TS_EXCH = 2

# unreliable[loc] bits: why that book may be wrong (kept until clear_books)
REASON_LEVELS = 1             # a price level was refused: a side or the arena was full
REASON_ORDERS = 2             # an add was refused because the order table was full

MAX_LOCATES = 1 << 16         # the locate field is u16
MAX_ORDERS_LIMIT = 1 << 30    # a 32 GiB pool and an 8 GiB index: beyond any real day
MAX_LEVELS_LIMIT = LEVEL_REGION_MIN << (N_REGION_CLASSES - 1)
MAX_LEVELS_TOTAL_LIMIT = 1 << 30   # 16 GiB of level records

Books = namedtuple(
    "Books",
    ["orders", "state", "levels", "sides", "free_head", "last_trade", "unreliable", "window",
     "level_cache", "ov_index", "ov_free", "ladder"],
)


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError("book size must be an integer", name=name, value=value,
                          allowed=f"{lo}..{hi}")
    v = int(value)
    if not lo <= v <= hi:
        raise ConfigError("book size out of range", name=name, value=v, allowed=f"{lo}..{hi}")
    return v


def default_levels_total(n_locates: int, max_orders: int) -> int:
    """Arena records when not configured: a level holds >= 1 live order, regions are >= half
    full once past the smallest class, and every side may hold a smallest region."""
    return 2 * max_orders + 2 * LEVEL_REGION_MIN * n_locates


def default_ladders(n_locates: int) -> int:
    """Ladders when not configured: one per side, at most LADDERS_DEFAULT_MAX (32 MiB)."""
    return min(2 * n_locates, LADDERS_DEFAULT_MAX)


def validate_book_config(n_locates, max_orders, max_levels_per_side,
                         max_levels_total=None, ladders=None) -> tuple[int, int, int, int, int]:
    """Check the sizes; ConfigError (key=value) naming the bad one and its range."""
    n_loc = _check_int("n_locates", n_locates, 1, MAX_LOCATES)
    n_ord = _check_int("max_orders", max_orders, 1, MAX_ORDERS_LIMIT)
    if n_ord & (n_ord - 1):
        raise ConfigError("max_orders must be a power of two", name="max_orders", value=n_ord,
                          allowed=f"1, 2, 4, ... {MAX_ORDERS_LIMIT}")
    n_lvl = _check_int("max_levels_per_side", max_levels_per_side, 1, MAX_LEVELS_LIMIT)
    if max_levels_total is None:
        max_levels_total = min(default_levels_total(n_loc, n_ord), MAX_LEVELS_TOTAL_LIMIT)
    n_tot = _check_int("max_levels_total", max_levels_total, LEVEL_REGION_MIN,
                       MAX_LEVELS_TOTAL_LIMIT)
    n_lad = _check_int("ladders", default_ladders(n_loc) if ladders is None else ladders, 0,
                       2 * n_loc)
    return n_loc, n_ord, n_lvl, n_tot, n_lad


def window_slots(max_orders: int) -> int:
    """Slots of the direct-mapped window: half of max_orders (a power of two, >= 1). Why
    half: it measured as fast as max_orders on the benchmark flows, and the window is memory
    a live path prefaults at start-up (16 MiB at the defaults)."""
    return max(max_orders // 2, 1)


LEVEL_CACHE_MIN_SLOTS = 1 << 12
LEVEL_CACHE_MAX_SLOTS = 1 << 16


def level_cache_slots(n_locates: int) -> int:
    """Slots of the level cache: 64 per locate (a power of two), within [2^12, 2^16]. Why
    capped: 2^16 four-byte slots (256 KiB) stay in L2 beside the hot levels; a bigger table
    measured no better on the wide flow (bench/RESULTS.md, eleventh session)."""
    want = 1 << max(int(n_locates) * 64 - 1, 1).bit_length()
    return min(max(want, LEVEL_CACHE_MIN_SLOTS), LEVEL_CACHE_MAX_SLOTS)


def table_bytes(n_locates: int, max_orders: int, max_levels_per_side: int,
                max_levels_total=None, ladders=None) -> int:
    """Memory the books will take, for sizing before allocating."""
    n_loc, n_ord, _n_lvl, n_tot, n_lad = validate_book_config(
        n_locates, max_orders, max_levels_per_side, max_levels_total, ladders)
    return ((n_ord + window_slots(n_ord)) * ORDER_DTYPE.itemsize + 3 * n_ord * 4
            + (n_tot + n_lad * LADDER_SLOTS) * LEVEL_DTYPE.itemsize
            + n_loc * 2 * SIDE_DTYPE.itemsize + level_cache_slots(n_loc) * 4
            + n_loc * (3 * 8 + 1) + (N_STATE + N_REGION_CLASSES) * 8)


_HUGE_PAGE = 2 << 20


def huge_zeros(n: int, dtype) -> np.ndarray:
    """n zeroed records; when they take 2 MiB or more, in an anonymous mapping of their own,
    starting on a 2 MiB boundary advised for transparent huge pages. Why huge pages: the
    tables' accesses are scattered: in 4 KiB pages the ladders of the deep flow measured
    29-34 ns an event alone and 47-58 beside the replay's decode thread; in huge pages
    32-39 (bench/RESULTS.md, thirteenth session). Why a mapping of its own (np.zeros gave
    the same in a fresh process): in a process that builds books again and again (the
    benchmarks, the tests, many replays) np.zeros' big tables came back from the C heap,
    so the constructor zeroed all of them (~3 ms on the wide flow) and some runs then
    spent ~150 ms faulting them in again in the kernel (deep replays of 190-270 ms instead
    of ~40, fourteenth session). A mapping is zeroed by the kernel page by page as it is
    touched, and unmapped when the array goes."""
    dtype = np.dtype(dtype)
    nbytes = n * dtype.itemsize
    if nbytes < _HUGE_PAGE:
        return np.zeros(n, dtype=dtype)
    m = mmap.mmap(-1, nbytes + _HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    raw = np.frombuffer(m, np.uint8)   # holds the mapping: unmapped when the array goes
    start = (-raw.ctypes.data) % _HUGE_PAGE
    if hasattr(mmap, "MADV_HUGEPAGE"):   # Linux
        m.madvise(mmap.MADV_HUGEPAGE, start, nbytes - nbytes % _HUGE_PAGE)
    return raw[start:start + nbytes].view(dtype)


def new_books(n_locates: int, max_orders: int, max_levels_per_side: int,
              max_levels_total: int | None = None, ladders: int | None = None) -> Books:
    """Preallocate books for locates [0, n_locates), max_orders live orders (a power of two),
    at most max_levels_per_side price levels on one side of one book, an arena of
    max_levels_total level records shared by all books (default: default_levels_total), and
    a pool of `ladders` ladders (default: default_ladders; 0: every level in the arena)."""
    n_loc, n_ord, n_lvl, n_tot, n_lad = validate_book_config(
        n_locates, max_orders, max_levels_per_side, max_levels_total, ladders)
    n_slots = 2 * n_ord  # load factor <= 0.5 keeps linear probes short
    state = np.zeros(N_STATE, dtype=np.int64)
    state[MAX_ORDERS] = n_ord
    slot_bits = n_slots.bit_length() - 1
    block_bits = min(4, slot_bits - 1)  # >= 1 block bit left, so the shift stays < 64
    state[HASH_BLOCK_BITS] = block_bits
    state[HASH_SHIFT] = 64 - (slot_bits - block_bits)
    state[MAX_SIDE_LEVELS] = n_lvl
    n_cache = level_cache_slots(n_loc)
    state[LEVEL_CACHE_SHIFT] = 64 - (n_cache.bit_length() - 1)
    state[N_LADDERS] = n_lad
    sides = np.zeros((n_loc, 2), dtype=SIDE_DTYPE)
    sides["off"] = NO_REGION
    sides["lad"] = NO_REGION
    return Books(
        orders=huge_zeros(n_ord, ORDER_DTYPE),
        state=state,
        levels=huge_zeros(n_tot, LEVEL_DTYPE),
        sides=sides,
        free_head=np.full(N_REGION_CLASSES, NO_REGION, dtype=np.int64),
        last_trade=np.zeros((n_loc, 3), dtype=np.int64),
        unreliable=np.zeros(n_loc, dtype=np.uint8),
        window=huge_zeros(window_slots(n_ord), ORDER_DTYPE),
        level_cache=np.full(n_cache, NO_REGION, dtype=np.int32),
        ov_index=huge_zeros(n_slots, np.int32),
        ov_free=huge_zeros(n_ord, np.int32),
        ladder=huge_zeros(n_lad * LADDER_SLOTS, LEVEL_DTYPE),
    )


def clear_books(books: Books) -> None:
    """Empty every book in place (start of day), keeping the memory and the bounds."""
    # as bytes: a record array's `[:] = 0` goes field by field (the bench's 6 MB: 7 ms, not 0.8)
    books.orders[:books.state[POOL_TOP]].view(np.uint8)[:] = 0   # only what was handed out
    books.ov_index[:] = 0
    books.state[POOL_TOP] = 0
    books.state[POOL_FREE] = 0
    books.window.view(np.uint8)[:] = 0
    books.state[N_LIVE] = 0
    books.state[N_OVERFLOW] = 0
    books.state[OVERFLOW_MAX_REF] = 0
    books.state[ARENA_TOP] = 0
    books.free_head[:] = NO_REGION
    books.levels.view(np.uint8)[:] = 0
    books.level_cache[:] = NO_REGION
    books.ladder[:books.state[LADDER_TOP] * LADDER_SLOTS].view(np.uint8)[:] = 0   # handed out
    books.state[LADDER_TOP] = 0
    books.sides.view(np.uint8)[:] = 0
    books.sides["off"] = NO_REGION
    books.sides["lad"] = NO_REGION
    for arr in (books.last_trade, books.unreliable):
        arr[:] = 0


def unreliable_report(books: Books) -> dict:
    """{locate: [reasons]} of every book marked unreliable (slow path: logs and summaries)."""
    out = {}
    for loc in np.flatnonzero(books.unreliable):
        bits = int(books.unreliable[loc])
        out[int(loc)] = [name for bit, name in ((REASON_LEVELS, "levels_full"),
                                                (REASON_ORDERS, "orders_full")) if bits & bit]
    return out
