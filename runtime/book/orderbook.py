"""Per-locate limit order books, updated from ITCH 5.0 event records in numba.

`book_apply(books, events, i, counters)` applies one event (A F E C X D U P; other types are
ignored) to the preallocated `Books` of book_layout.py and returns the locate it changed, or
-1. It never raises and never allocates: every refusal is a counter.

Design. Orders live in a table keyed by (locate, ITCH order ref), in two parts (layout.py):
a direct-mapped window (slot = ref mod its size) that holds the recent orders most updates
name -- a lookup is one read, a delete clears a flag -- and an overflow for orders that
outlive the window or arrive out of order: records in a pool that fills in order, found
through an index with a block hash (consecutive refs in consecutive slots, blocks scattered
by Fibonacci hashing), linear probing, backward-shift deletion (Knuth 6.4 algorithm R)
instead of tombstones, so a day of adds and deletes never lengthens probe chains, and at
most half full. The window took 11-13 % off book_apply_all on the shallow and deep flows
(alternating processes; bench/RESULTS.md); the pool and index, in place of records in the
hash table itself, took a fresh process's replay of a 5 M-message file from 0.6-2.1 s to
0.21-0.22 s (shallow; eleventh session). Each side of each locate keeps every one of its
aggregated price levels (price, total shares, order count) in one of two places. Near the
touch of a side deeper than 8 levels, in a ladder (ladder.py): a ring of level records
indexed by price over a window of cent prices that follows the market, so an add, an
execution or a delete reaches its level from the price in one read, and a level comes or
goes in place. Elsewhere -- shallow sides, far from the touch, off the cent grid, or when no
ladder is free -- sorted worst-first in the side's
region of a shared arena (levels.py): an add finds its level through the level cache (a hash
of locate, side and price to where the level was, checked before use: layout.py) or else a
short scan from the best end or a binary search below it, level changes shift only the
levels above (one memmove), and each order keeps where its level was (a hint, checked
against the price before use; a stale one falls back to the scan). The best of a side is the
better of the two bests; depth walks both, merged. There is no depth cap that can make the
top wrong: levels are refused only at configured memory bounds, and then the book is marked
unreliable (book_ok False) instead.

Policies (each counted in runtime/counters.py):
* unknown order ref (E C X D U)           -> BOOK_UNKNOWN_ORDER, nothing changes. An order is
  known by (locate, ref): a message naming a ref that only another instrument's book holds
  is unknown too, so a wrong locate or ref never changes another instrument's book
* add while max_orders are live             -> BOOK_FULL, the add is refused
* add with a ref live in the same book, a side other than 'B'/'S', or 0 shares
                                            -> BOOK_BAD_ADD, refused
* locate >= n_locates (any book message)    -> BOOK_BAD_LOCATE, ignored
* E/C/X for more shares than remain        -> BOOK_OVERFILL, clamped to what remains
* a new price level refused for capacity (its side holds max_levels_per_side levels, or
  the level arena has no room)                -> BOOK_LEVELS_FULL, and the book is marked
  unreliable (book_ok False until clear_books). The order is still kept in the order table,
  flagged uncounted, so its later E/C/X/D/U update only the table and never a level created
  later at the same price.
* add refused because the order table is full also marks that book unreliable.
* U: the old order is deleted, the new ref is added with the old order's side and locate;
  the new add can itself be refused (and counted) as above.
* BOOK_ADDS counts orders entering the table: A, F and the new order of U.
* Last trade (price, shares, ts_exch) per locate: E at the order's resting price, C at its
  execution price unless its printable flag (aux) is 'N', P at its price. Shares are the
  message's shares (what traded), not the clamped amount.

Speed: every function is inlined (numba inline="always") and the public entry points work on
borrowed views of the arrays (_borrow: meminfo NULL). Why: numba passes a tuple of arrays to
a non-inlined call by copying every field onto the stack, and gives every array value it
copies an atomic incref/decref pair; both together cost more than the book update itself
(measured: 176 -> 69 ns per message on the benchmark flow). book_apply_all also prefetches
the window slots and side records of the event a few ahead (_prefetch, llvm.prefetch), so
the misses of the refs that are not recent and of the books not seen for a while overlap
(with the hash table alone this measured 59 -> 49 ns per message). Callers that loop over
book_apply themselves can do the same with book_prefetch(books, events, i + ahead). The
level hint measured 100 -> 73 (shallow), 134 -> 97 (deep) and 124 -> 105 (wide) ns per
message (same process, interleaved, on a slow day): the scan's exit branch mispredicted on
nearly every reduce. The level cache does the same for adds: 33 -> 25 ns per message on the
shallow flow, where most adds join a level that exists (bench/RESULTS.md, eleventh session).
Both figures predate the ladders, which now hold most levels and need neither; the ladders
took book_apply_all from 40.4 to 30.6 ns an event on the deep flow (thirteenth session).

Prices are ITCH Price(4) integers (4 implied decimals); mid and microprice are float64 in
those units. Queries are jitted and callable from Python too; a locate out of range reads
as an empty book.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.core import counters as C
from tickpath.runtime.sys.intrinsics import borrow as _borrow
from tickpath.runtime.sys.intrinsics import prefetch as _prefetch
from tickpath.runtime.book.layout import (
    ASK,
    BID,
    HASH_BLOCK_BITS,
    HASH_SHIFT,
    LEVEL_CACHE_SHIFT,
    LT_PRICE,
    LT_SHARES,
    LT_TS_EXCH,
    MAX_ORDERS,
    N_LIVE,
    N_OVERFLOW,
    OVERFLOW_MAX_REF,
    POOL_FREE,
    POOL_TOP,
    REASON_ORDERS,
    Books,
    clear_books,
    new_books,
)
from tickpath.runtime.book.ladder import claim as _ladder_claim
from tickpath.runtime.book.ladder import level_gone as _ladder_level_gone
from tickpath.runtime.book.ladder import new_level as _ladder_new_level
from tickpath.runtime.book.ladder import side_top as _side_top
from tickpath.runtime.book.ladder import slot as _ladder_slot
from tickpath.runtime.book.ladder import walk_next as _walk_next
from tickpath.runtime.book.ladder import walk_start as _walk_start
from tickpath.runtime.book.levels import insert as _level_insert
from tickpath.runtime.book.levels import refused as _refused
from tickpath.runtime.book.levels import remove as _level_remove
from tickpath.runtime.book.levels import scan as _scan_side

__all__ = [
    "ASK",
    "BID",
    "Books",
    "best_ask",
    "best_bid",
    "book_apply",
    "book_apply_all",
    "book_ok",
    "book_prefetch",
    "clear_books",
    "depth",
    "depth_into",
    "find_order",
    "imbalance",
    "last_trade",
    "level_at",
    "microprice",
    "mid_price",
    "n_live_orders",
    "new_books",
    "shares_at",
    "stats_of_tops",
    "top_level",
    "top_stats",
]

_FIB = np.uint64(11400714819323198485)  # 2^64 / golden ratio: spreads sequential refs
_MAX_SHARES = np.uint64(1 << 62)        # clamp before int64 so arithmetic never wraps

_A, _F, _E, _C, _X, _D, _U, _P = (ord(c) for c in "AFECXDUP")
_SIDE_B, _SIDE_S, _NOT_PRINTABLE = ord("B"), ord("S"), ord("N")


# ---------------------------------------------------------------- borrowed views

@njit(nogil=True, inline="always")
def _borrowed(books):
    return Books(_borrow(books.orders), _borrow(books.state), _borrow(books.levels),
                 _borrow(books.sides), _borrow(books.free_head), _borrow(books.last_trade),
                 _borrow(books.unreliable), _borrow(books.window), _borrow(books.level_cache),
                 _borrow(books.ov_index), _borrow(books.ov_free), _borrow(books.ladder))


# ---------------------------------------------------------------- order table: overflow (hash)

@njit(nogil=True, inline="always")
def _home(books, ref):
    """Home slot of ref: its block of 2^b slots hashed, its low b bits kept (locality)."""
    b = np.uint64(books.state[HASH_BLOCK_BITS])
    block = ((ref >> b) * _FIB) >> np.uint64(books.state[HASH_SHIFT])
    return np.int64((block << b) | (ref & ((np.uint64(1) << b) - np.uint64(1))))


@njit(nogil=True, inline="always")
def _probe_overflow(books, ref, loc):
    """Pool record of (loc, ref) in the overflow, or -(empty index slot where it would go) - 1."""
    idx = books.ov_index
    pool = books.orders
    mask = idx.shape[0] - 1
    j = _home(books, ref)
    while True:  # ends: the index is at most half full, so an empty slot exists
        e = np.int64(idx[j])
        if e == 0:
            return -j - 1
        if pool[e - 1].ref == ref and pool[e - 1].locate == loc:
            return e - 1
        j = (j + 1) & mask


@njit(nogil=True, inline="always")
def _copy_order(dst, src):
    """An order's fields (all but `used`) from slot src to slot dst."""
    dst.ref = src.ref
    dst.shares = src.shares
    dst.price = src.price
    dst.locate = src.locate
    dst.side = src.side
    dst.counted = src.counted
    dst.hint = src.hint


@njit(nogil=True, inline="always")
def _remove_overflow(books, p):
    """Free pool record p: drop its index entry and shift later members of its probe run
    back (no tombstones); the record goes on the free stack."""
    idx = books.ov_index
    pool = books.orders
    mask = idx.shape[0] - 1
    i = _home(books, pool[p].ref)
    while idx[i] != p + 1:   # ends: p's entry is in its probe run
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        e = np.int64(idx[j])
        if e == 0:
            break
        k = _home(books, pool[e - 1].ref)
        # the entry at j may move to i only if its home is not cyclically in (i, j]
        if (i <= j and (k <= i or k > j)) or (i > j and k <= i and k > j):
            idx[i] = e
            i = j
    idx[i] = 0
    pool[p].used = 0
    books.ov_free[books.state[POOL_FREE]] = p
    books.state[POOL_FREE] += 1
    books.state[N_OVERFLOW] -= 1


# ---------------------------------------------------------------- order table: both parts
# An order's handle j is its window slot (j < window size) or window size + pool record.

@njit(nogil=True, inline="always")
def _window_slot(books, ref):
    return np.int64(ref & np.uint64(books.window.shape[0] - 1))


@njit(nogil=True, inline="always")
def _probe(books, ref, loc):
    """Handle of the order ref of locate loc, or -1 when that book holds no such order."""
    w = books.window
    s = _window_slot(books, ref)
    if w[s].used != 0 and w[s].ref == ref and w[s].locate == loc:
        return s
    # the overflow can hold ref only if it holds anything and has held a ref this new
    if books.state[N_OVERFLOW] == 0 or ref > np.uint64(books.state[OVERFLOW_MAX_REF]):
        return np.int64(-1)
    j = _probe_overflow(books, ref, loc)
    return w.shape[0] + j if j >= 0 else np.int64(-1)


@njit(nogil=True, inline="always")
def _slot(books, j):
    n_w = books.window.shape[0]
    return books.window[j] if j < n_w else books.orders[j - n_w]


@njit(nogil=True, inline="always")
def _to_overflow(books, ref, loc):
    """Pool record for (loc, ref) (known absent there), indexed, counted and remembered as
    held: a freed record if any, else the next never used (the pool fills in order). There
    is always one: the overflow holds fewer live orders than max_orders, the pool's size."""
    slot = -_probe_overflow(books, ref, loc) - 1
    if books.state[POOL_FREE] > 0:
        books.state[POOL_FREE] -= 1
        p = np.int64(books.ov_free[books.state[POOL_FREE]])
    else:
        p = books.state[POOL_TOP]
        books.state[POOL_TOP] += 1
    books.ov_index[slot] = p + 1
    books.state[N_OVERFLOW] += 1
    if ref > np.uint64(books.state[OVERFLOW_MAX_REF]):
        books.state[OVERFLOW_MAX_REF] = np.int64(ref)
    return p


@njit(nogil=True, inline="always")
def _place(books, ref, loc):
    """Handle for a new (loc, ref) known not to be live: its window slot, after moving an
    older (or same-ref) live occupant to the overflow; if the occupant is newer, an
    overflow record."""
    w = books.window
    s = _window_slot(books, ref)
    if w[s].used == 0:
        return s
    if w[s].ref > ref:   # refs out of order: the newer order keeps the window slot
        return w.shape[0] + _to_overflow(books, ref, loc)
    dst = books.orders[_to_overflow(books, w[s].ref, np.int64(w[s].locate))]
    _copy_order(dst, w[s])
    dst.used = 1
    return s


@njit(nogil=True, inline="always")
def _remove_slot(books, j):
    """Forget the order at handle j: a window slot is just cleared."""
    n_w = books.window.shape[0]
    if j < n_w:
        books.window[j].used = 0
    else:
        _remove_overflow(books, j - n_w)
    books.state[N_LIVE] -= 1


# ---------------------------------------------------------------- price levels

@njit(nogil=True, inline="always")
def _scan(books, loc, side, price):
    """Index of the first arena level from the best end that is not better than price (or -1)."""
    return _scan_side(books, np.int64(books.sides[loc, side].off),
                      np.int64(books.sides[loc, side].arena_n), side, np.int64(price))


@njit(nogil=True, inline="always")
def _cache_slot(books, loc, side, price):
    """Level-cache slot of (loc, side, price): the key's Fibonacci hash."""
    key = ((np.uint64(loc) << np.uint64(33)) | (np.uint64(side) << np.uint64(32))
           | np.uint64(price))
    return np.int64((key * _FIB) >> np.uint64(books.state[LEVEL_CACHE_SHIFT]))


@njit(nogil=True, inline="always")
def _arena_level_for_add(books, loc, side, price, counters):
    """Arena index of the level at price, created if needed; -1 if refused for capacity.
    The level cache first: trusted only when it names a record of this side at this price."""
    base = np.int64(books.sides[loc, side].off)
    h = _cache_slot(books, loc, side, price)
    k = np.int64(books.level_cache[h])
    # one unsigned compare: base <= k < base + n (false for -1 and for a side with no region)
    if (np.uint64(k - base) < np.uint64(books.sides[loc, side].arena_n)
            and np.int64(books.levels[k].price) == price):
        return k
    i = _scan(books, loc, side, price)
    if i >= 0 and books.levels[base + i].price == price:
        books.level_cache[h] = base + i
        return base + i
    j = _level_insert(books, loc, side, i + 1, price)
    books.level_cache[h] = j   # -1 when refused: a miss next time, as it should be
    if j < 0:
        _refused(books, loc, counters)
    return j


@njit(nogil=True, inline="always")
def _level_add_order(books, loc, side, price, shares, counters):
    """Put an order of shares at price into its level (made if needed): the ladder's when
    the price is the ladder's (ladder.py), else the arena's. Returns the order's hint (its
    arena level's index in the region; 0 in a ladder, where the price is the index), or -1
    when the level was refused for capacity."""
    k = _ladder_slot(books, loc, side, price)
    if k < 0:
        k = _ladder_claim(books, loc, side, price, counters)
    if k >= 0:
        lv = books.ladder[k]
        if lv.orders == 0 and not _ladder_new_level(books, loc, side, k, price):
            _refused(books, loc, counters)
            return np.int64(-1)
        lv.shares += shares
        lv.orders += 1
        return np.int64(0)
    li = _arena_level_for_add(books, loc, side, price, counters)
    if li < 0:
        return np.int64(-1)
    lv = books.levels[li]
    lv.shares += shares
    lv.orders += 1
    return li - np.int64(books.sides[loc, side].off)


@njit(nogil=True, inline="always")
def _level_reduce(books, loc, side, price, shares, order_gone, hint):
    """Take shares (and the order, if gone) off the level at price; returns the order's next
    hint. In a ladder the price is the index; in the arena the hint is tried first (a scan
    mispredicts its exit)."""
    k = _ladder_slot(books, loc, side, price)
    if k >= 0:
        lv = books.ladder[k]
        if lv.orders == 0:
            return np.int64(hint)   # its level was lost for capacity: the book is unreliable
        lv.shares -= shares
        if order_gone:
            lv.orders -= 1
            if lv.orders == 0:
                _ladder_level_gone(books, loc, side, k)
        return np.int64(hint)
    base = np.int64(books.sides[loc, side].off)
    i = np.int64(hint)
    if i >= books.sides[loc, side].arena_n or books.levels[base + i].price != price:
        i = _scan(books, loc, side, price)   # a level below it came or went since
        if i < 0 or books.levels[base + i].price != price:
            return np.int64(0)  # its level was lost for capacity: the book is unreliable
    lv = books.levels[base + i]
    lv.shares -= shares
    if order_gone:
        lv.orders -= 1
        if lv.orders == 0:
            _level_remove(books, loc, side, i)
    return i


# ---------------------------------------------------------------- messages

@njit(nogil=True, inline="always")
def _add(books, ref, loc, side, shares_u64, price, counters):
    if side > 1 or shares_u64 == 0:
        counters[C.BOOK_BAD_ADD] += 1
        return -1
    if books.state[N_LIVE] >= books.state[MAX_ORDERS]:
        counters[C.BOOK_FULL] += 1
        counters[C.BOOK_UNRELIABLE] += books.unreliable[loc] == 0   # once per instrument
        books.unreliable[loc] |= REASON_ORDERS  # an order this book should hold is missing
        return -1
    if _probe(books, ref, loc) >= 0:
        counters[C.BOOK_BAD_ADD] += 1  # duplicate ref in this book: keep the order we have
        return -1
    j = _place(books, ref, loc)
    shares = np.int64(min(shares_u64, _MAX_SHARES))
    hint = _level_add_order(books, loc, side, price, shares, counters)
    o = _slot(books, j)
    o.ref = ref
    o.counted = 1 if hint >= 0 else 0
    o.hint = np.uint32(hint) if hint >= 0 else np.uint32(0)
    o.shares = shares
    o.price = price
    o.locate = loc
    o.side = side
    o.used = 1
    books.state[N_LIVE] += 1
    counters[C.BOOK_ADDS] += 1
    return loc


@njit(nogil=True, inline="always")
def _take(books, j, shares_u64, counters):
    """Reduce order j by shares (E C X), clamped to what remains; delete it at zero."""
    o = _slot(books, j)
    left = o.shares
    n = np.int64(min(shares_u64, _MAX_SHARES))
    if n > left:
        counters[C.BOOK_OVERFILL] += 1
        n = left
    gone = n == left
    i = np.int64(0)
    if o.counted:
        i = _level_reduce(books, np.int64(o.locate), np.int64(o.side), o.price, n, gone,
                          o.hint)
    if gone:
        _remove_slot(books, j)
    else:
        o.shares = left - n
        o.hint = np.uint32(i)   # found by a scan if the old hint was stale: keep it fresh


@njit(nogil=True, inline="always")
def _delete(books, j):
    o = _slot(books, j)
    if o.counted:
        _level_reduce(books, np.int64(o.locate), np.int64(o.side), o.price, o.shares, True,
                      o.hint)
    _remove_slot(books, j)


@njit(nogil=True, inline="always")
def _trade(books, loc, price, shares_u64, ts_exch):
    books.last_trade[loc, LT_PRICE] = price
    books.last_trade[loc, LT_SHARES] = np.int64(min(shares_u64, _MAX_SHARES))
    books.last_trade[loc, LT_TS_EXCH] = np.int64(ts_exch)


@njit(nogil=True, inline="always")
def book_apply(books, events, i, counters):
    """Apply events[i]; return the locate whose book it changed, or -1 (ignored/refused)."""
    return _apply(_borrowed(books), _borrow(events), i, _borrow(counters))


@njit(nogil=True, inline="always")
def _apply(books, events, i, counters):
    if i < 0 or i >= events.shape[0]:
        return -1
    ev = events[i]
    t = ev.msg_type
    if not (t == _A or t == _F or t == _E or t == _C or t == _X or t == _D or t == _U
            or t == _P):
        return -1
    loc = np.int64(ev.locate)
    if loc >= books.sides.shape[0]:
        counters[C.BOOK_BAD_LOCATE] += 1
        return -1
    if t == _A or t == _F:
        side = 0 if ev.side == _SIDE_B else (1 if ev.side == _SIDE_S else 2)
        return _add(books, ev.order_ref, loc, side, ev.shares, ev.price, counters)
    if t == _P:
        _trade(books, loc, ev.price, ev.shares, ev.ts_exch)
        return loc
    j = _probe(books, ev.order_ref, loc)
    if j < 0:   # not in this instrument's book (another's holding that ref stays untouched)
        counters[C.BOOK_UNKNOWN_ORDER] += 1
        return -1
    o = _slot(books, j)
    if t == _E:
        _trade(books, loc, o.price, ev.shares, ev.ts_exch)
        _take(books, j, ev.shares, counters)
    elif t == _C:
        if ev.aux != _NOT_PRINTABLE:
            _trade(books, loc, ev.price, ev.shares, ev.ts_exch)
        _take(books, j, ev.shares, counters)
    elif t == _X:
        _take(books, j, ev.shares, counters)
    elif t == _D:
        _delete(books, j)
    else:  # U: replace keeps side and locate
        side = np.int64(o.side)
        _delete(books, j)
        _add(books, ev.ref2, loc, side, ev.shares, ev.price, counters)
    return loc


@njit(nogil=True, inline="always")
def _prefetch_event(books, events, i):
    """Start loading the window slots of the refs events[i] names and its locate's side
    records (reads only the event). Why the side records: on a wide feed (10 k books) a
    book's record leaves L2 between two of its messages; prefetching it took
    book_apply_all from 45-51 to 40-41 ns an event on the wide flow (and deep 32-33 ->
    30-31). Why not the levels: their address is in the side record, which is not loaded
    yet, and a second stage that read it measured slower on every flow (bench/RESULTS.md,
    fourteenth session)."""
    if i < 0 or i >= events.shape[0]:
        return
    ev = events[i]
    t = ev.msg_type
    if not (t == _A or t == _F or t == _E or t == _C or t == _X or t == _D or t == _U):
        return
    _prefetch(books.window, (_window_slot(books, ev.order_ref),))
    if t == _U:
        _prefetch(books.window, (_window_slot(books, ev.ref2),))
    loc = np.int64(ev.locate)
    if loc < books.sides.shape[0]:
        _prefetch(books.sides, (loc, 0))   # the bid record; the ask is its 32-byte neighbour


@njit(nogil=True, inline="always")
def book_prefetch(books, events, i):
    """Hint the caches to load the order slots and side records events[i] will need (no
    effect on state; any i is safe). For loops that call book_apply themselves: prefetch
    i + a few."""
    _prefetch_event(_borrowed(books), _borrow(events), i)


_PREFETCH_AHEAD = 6  # events: far enough to cover a miss (~100 ns), near enough to stay cached


@njit(nogil=True, cache=True, inline="always")
def book_apply_all(books, events, counters):
    """Apply every event in order; return how many changed a book. Prefetches the order
    slots and side records of the event _PREFETCH_AHEAD ahead, so the cache misses (refs
    that are not recent, books not seen for a while) overlap instead of stalling one
    message each."""
    b = _borrowed(books)
    ev = _borrow(events)
    changed = 0
    for i in range(events.shape[0]):
        _prefetch_event(b, ev, i + _PREFETCH_AHEAD)
        if _apply(b, ev, i, _borrow(counters)) >= 0:
            changed += 1
    return changed


# ---------------------------------------------------------------- queries

@njit(nogil=True, cache=True, inline="always")
def book_ok(books, loc):
    """True while the book of locate loc is known right; False once a bound was reached for
    it (a level or an order refused for capacity) until clear_books, and for a locate out of
    range. Strategies must not trade on a book for which this is False."""
    if loc < 0 or loc >= books.unreliable.shape[0]:
        return False
    return _borrow(books.unreliable)[loc] == 0


@njit(nogil=True, inline="always")
def _bad_loc(books, loc):
    return loc < 0 or loc >= books.sides.shape[0]


@njit(nogil=True, inline="always")
def _top(books, loc, side):
    books = _borrowed(books)
    if _bad_loc(books, loc):
        return np.int64(0), np.int64(0)
    px, sz, _n = _side_top(books, loc, side)
    return px, sz


@njit(nogil=True, inline="always")
def top_level(books, loc, side):
    """(price, shares, orders) of the best level of one side; (0, 0, 0) when it is empty."""
    books = _borrowed(books)
    if _bad_loc(books, loc) or side < 0 or side > 1:
        return np.int64(0), np.int64(0), np.int64(0)
    return _side_top(books, loc, side)


@njit(nogil=True, inline="always")
def level_at(books, loc, side, k):
    """(price, shares, orders) of the k-th best level of one side (k = 0: the best);
    (0, 0, 0) past the last level. O(k + LADDER_SLOTS): a loop over k should use
    depth_into, which walks once."""
    books = _borrowed(books)
    if (_bad_loc(books, loc) or side < 0 or side > 1 or k < 0
            or k >= np.int64(books.sides[loc, side].n_levels)):
        return np.int64(0), np.int64(0), np.int64(0)
    ai, lj, left = _walk_start(books, loc, side)
    for _ in range(k):
        _p, _s, _o, ai, lj, left = _walk_next(books, loc, side, ai, lj, left)
    px, sz, n_ord, ai, lj, left = _walk_next(books, loc, side, ai, lj, left)
    return px, sz, n_ord


@njit(nogil=True, inline="always")
def shares_at(books, loc, side, price):
    """Total shares resting at price on one side (0 when there is no such level)."""
    books = _borrowed(books)
    if _bad_loc(books, loc) or side < 0 or side > 1:
        return np.int64(0)
    k = _ladder_slot(books, loc, side, price)
    if k >= 0:
        return books.ladder[k].shares if books.ladder[k].orders != 0 else np.int64(0)
    i = _scan(books, loc, side, price)
    if i < 0:
        return np.int64(0)
    lv = books.levels[np.int64(books.sides[loc, side].off) + i]
    return lv.shares if np.int64(lv.price) == price else np.int64(0)


@njit(nogil=True, inline="always")
def best_bid(books, loc):
    """(price, shares) of the best bid; (0, 0) when there is none."""
    return _top(books, loc, BID)


@njit(nogil=True, inline="always")
def best_ask(books, loc):
    """(price, shares) of the best ask; (0, 0) when there is none."""
    return _top(books, loc, ASK)


@njit(nogil=True, inline="always")
def depth_into(books, loc, side, out):
    """Write up to out.shape[0] levels best-first into out[:, (price, shares, orders)];
    return how many. No allocation: the hot-path form of depth()."""
    if _bad_loc(books, loc) or side < 0 or side > 1 or out.ndim != 2 or out.shape[1] < 3:
        return 0
    books = _borrowed(books)
    n = min(np.int64(books.sides[loc, side].n_levels), np.int64(out.shape[0]))
    ai, lj, left = _walk_start(books, loc, side)
    for k in range(n):
        out[k, 0], out[k, 1], out[k, 2], ai, lj, left = _walk_next(books, loc, side, ai, lj,
                                                                    left)
    return n


@njit(nogil=True, inline="always")
def depth(books, loc, side, n_levels):
    """The best n_levels levels of one side, best-first: int64 array (k, 3) of
    (price, shares, orders), k <= n_levels. Allocates: use depth_into in a hot loop."""
    out = np.zeros((max(np.int64(n_levels), 0), 3), dtype=np.int64)
    k = depth_into(books, loc, side, out)
    return out[:k].copy()


@njit(nogil=True, inline="always")
def last_trade(books, loc):
    """(price, shares) of the last trade; (0, 0) before the first."""
    if _bad_loc(books, loc):
        return np.int64(0), np.int64(0)
    lt = _borrow(books.last_trade)
    return lt[loc, LT_PRICE], lt[loc, LT_SHARES]


@njit(nogil=True, inline="always")
def _mid(bp, bs, ap, as_):
    if bs <= 0 or as_ <= 0:
        return np.nan
    return 0.5 * (np.float64(bp) + np.float64(ap))


@njit(nogil=True, inline="always")
def _micro(bp, bs, ap, as_):
    if bs <= 0 or as_ <= 0:
        return np.nan
    return (np.float64(bp) * as_ + np.float64(ap) * bs) / np.float64(bs + as_)


@njit(nogil=True, inline="always")
def _imbalance(bs, as_):
    if bs + as_ <= 0:
        return np.nan
    return np.float64(bs - as_) / np.float64(bs + as_)


@njit(nogil=True, inline="always")
def mid_price(books, loc):
    """(best bid + best ask) / 2 in Price(4) units; NaN unless both sides exist."""
    bp, bs = best_bid(books, loc)
    ap, as_ = best_ask(books, loc)
    return _mid(bp, bs, ap, as_)


@njit(nogil=True, inline="always")
def microprice(books, loc):
    """Size-weighted mid: (bid * ask_sz + ask * bid_sz) / (bid_sz + ask_sz); NaN unless
    both sides exist. It leans toward the side with less size (the likelier next price)."""
    bp, bs = best_bid(books, loc)
    ap, as_ = best_ask(books, loc)
    return _micro(bp, bs, ap, as_)


@njit(nogil=True, inline="always")
def imbalance(books, loc):
    """Top-of-book imbalance (bid_sz - ask_sz) / (bid_sz + ask_sz) in [-1, 1]; NaN when
    both sides are empty."""
    return _imbalance(best_bid(books, loc)[1], best_ask(books, loc)[1])


@njit(nogil=True, inline="always")
def top_stats(books, loc):
    """(mid_price, microprice, imbalance) of one book from one read of each side: the same
    values as the three calls, for a loop that wants all three (the pipeline's indicators
    read each top twice less; measured 9-11 % off process_events)."""
    bp, bs = best_bid(books, loc)
    ap, as_ = best_ask(books, loc)
    return stats_of_tops(bp, bs, ap, as_)


@njit(nogil=True, inline="always")
def stats_of_tops(bp, bs, ap, as_):
    """(mid_price, microprice, imbalance) from a top of book read earlier: (price, shares) of
    the best bid and the best ask, (0, 0) for an empty side. top_stats' own arithmetic."""
    return _mid(bp, bs, ap, as_), _micro(bp, bs, ap, as_), _imbalance(bs, as_)


@njit(nogil=True, inline="always")
def n_live_orders(books):
    return books.state[N_LIVE]


@njit(nogil=True, inline="always")
def find_order(books, loc, ref):
    """(found, locate, side, price, shares, counted_in_level) for the order ref of the book
    of locate loc."""
    j = _probe(books, np.uint64(ref), np.int64(loc))
    if j < 0:
        return False, np.int64(-1), np.int64(-1), np.int64(0), np.int64(0), False
    o = _slot(books, j)
    return (True, np.int64(o.locate), np.int64(o.side), np.int64(o.price), o.shares,
            o.counted != 0)
