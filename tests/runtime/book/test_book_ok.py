"""book_ok: the per-instrument reliability flag strategies check before trading on a book."""
from __future__ import annotations

import numpy as np
from numba import njit

from tickpath.runtime.book.orderbook import book_apply, book_ok, clear_books, new_books
from tickpath.runtime.core import counters as C
from tickpath.runtime.core.event import EVENT_DTYPE


def _add(books, counters, ref, side, shares, price, loc):
    e = np.zeros(1, dtype=EVENT_DTYPE)
    e["msg_type"] = ord("A")
    e["order_ref"] = ref
    e["side"] = ord(side)
    e["shares"] = shares
    e["price"] = price
    e["locate"] = loc
    return book_apply(books, e, 0, counters)


def test_ok_until_a_level_is_refused_and_only_for_that_instrument():
    books, counters = new_books(4, 64, 2), C.new_counters()
    assert all(book_ok(books, loc) for loc in range(4))
    _add(books, counters, 1, "B", 10, 100, 1)
    _add(books, counters, 2, "B", 10, 101, 1)
    _add(books, counters, 3, "B", 10, 102, 2)
    assert book_ok(books, 1) and book_ok(books, 2)
    _add(books, counters, 4, "B", 10, 99, 1)          # third level on a 2-level side
    assert counters[C.BOOK_LEVELS_FULL] == 1
    assert not book_ok(books, 1)
    assert book_ok(books, 0) and book_ok(books, 2) and book_ok(books, 3)
    clear_books(books)
    assert book_ok(books, 1)


def test_not_ok_when_the_order_table_refuses_an_add():
    books, counters = new_books(3, 2, 16), C.new_counters()
    _add(books, counters, 1, "S", 10, 100, 0)
    _add(books, counters, 2, "S", 10, 100, 0)
    _add(books, counters, 3, "S", 10, 100, 2)          # table full: refused for locate 2
    assert counters[C.BOOK_FULL] == 1
    assert book_ok(books, 0) and not book_ok(books, 2)


def test_out_of_range_locate_is_not_ok():
    books = new_books(3, 4, 4)
    assert not book_ok(books, 3) and not book_ok(books, -1) and not book_ok(books, 1 << 40)


@njit(cache=True)
def _ok_from_jit(books, loc):
    return book_ok(books, loc)


def test_callable_from_jitted_code():
    books, counters = new_books(2, 4, 1), C.new_counters()
    assert _ok_from_jit(books, 0)
    _add(books, counters, 1, "B", 1, 10, 0)
    _add(books, counters, 2, "B", 1, 11, 0)
    assert not _ok_from_jit(books, 0) and _ok_from_jit(books, 1)
